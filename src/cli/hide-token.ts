/** What a `--token` value is shown as on the command line once hidden. */
export const HIDDEN_TOKEN = "***";

/**
 * `argv` (the arguments after the program and script) with the value of every `--token` (`--token
 * T` and `--token=T`) replaced by {@link HIDDEN_TOKEN}; undefined when there is none.
 */
export function withoutTokens(argv: readonly string[]): string[] | undefined {
  let hidden = false;
  const out = argv.map((arg, i) => {
    if (arg.startsWith("--token=")) {
      hidden = true;
      return `--token=${HIDDEN_TOKEN}`;
    }
    if (i > 0 && argv[i - 1] === "--token") {
      hidden = true;
      return HIDDEN_TOKEN;
    }
    return arg;
  });
  return hidden ? out : undefined;
}

/**
 * Takes a `--token` value off this process's command line. Every local user can read any
 * process's command line (`ps`, `/proc/PID/cmdline`), and a token there would be theirs for as
 * long as the gateway (or `switchboard attach`) runs. Setting `process.title` overwrites the
 * memory the command line is read from on Linux and macOS, so `ps` shows
 * `switchboard serve --token ***`. The value stays visible from the start of the process until
 * this runs (well under a second): prefer `SWITCHBOARD_TOKEN` or the data dir's token file.
 */
export function hideTokenArgument(argv: readonly string[]): void {
  const shown = withoutTokens(argv);
  if (shown !== undefined) process.title = ["switchboard", ...shown].join(" ");
}
