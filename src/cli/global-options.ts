/**
 * Options every client command takes, accepted before the command too:
 * `switchboard --url http://box:7317 ls` is `switchboard ls --url http://box:7317`. Those
 * with a value, as `--url U` or `--url=U`; `--json` alone.
 */
const WITH_VALUE = ["--url", "--token", "--token-file", "--data-dir"];
const FLAGS = ["--json"];

/** Whether `arg` is one of the options every client command takes (`--url`, `--url=U`, `--json`, ...). */
export function isGlobalOption(arg: string): boolean {
  return FLAGS.includes(arg) || WITH_VALUE.includes(arg) || WITH_VALUE.some((o) => arg.startsWith(`${o}=`));
}

/**
 * `argv` with the global options in front of the command moved to just after it (before
 * anything of the command's own, so also before a `--`). Anything else in front of the
 * command is left where it is, for the caller to refuse.
 */
export function hoistGlobalOptions(argv: readonly string[]): string[] {
  const hoisted: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (FLAGS.includes(arg) || WITH_VALUE.some((o) => arg.startsWith(`${o}=`))) {
      hoisted.push(arg);
      i += 1;
    } else if (WITH_VALUE.includes(arg) && i + 1 < argv.length) {
      hoisted.push(arg, argv[i + 1]!);
      i += 2;
    } else {
      break;
    }
  }
  const [command, ...rest] = argv.slice(i);
  if (command === undefined || hoisted.length === 0) return [...argv];
  return [command, ...hoisted, ...rest];
}

/**
 * The first of `args` that is neither an option nor a global option's value: what `help` is
 * asked about (`switchboard --token T help run` is about run, not about `T`).
 */
export function firstOperand(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (WITH_VALUE.includes(arg)) i++;
    else if (!arg.startsWith("-")) return arg;
  }
  return undefined;
}
