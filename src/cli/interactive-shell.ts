/**
 * `switchboard run bash` means a shell to type into: on pipes a shell prints no prompt, has no
 * line editing or job control, and `attach` shows a blank screen. So `run` starts a shell given
 * no script, command or stdin option in a PTY unless told `--no-pty` (docs/cli.md, "run";
 * test/cli/commands.test.ts, "run of an interactive shell").
 */
import { basename } from "node:path";

/** Programs `run` recognises as shells, by the name they are started under. */
export const SHELLS: ReadonlySet<string> = new Set([
  "ash",
  "bash",
  "csh",
  "dash",
  "elvish",
  "fish",
  "ksh",
  "mksh",
  "nu",
  "pwsh",
  "sh",
  "tcsh",
  "xonsh",
  "zsh",
]);

/** An option that gives a shell its commands (`-c`, `-lc`) or has it read them from stdin (`-s`). */
const COMMANDS_OPTION = /^-[A-Za-z]*[cs]/;

/**
 * Whether `command` starts an interactive shell: a shell given only options, none of them one
 * that gives it its commands (`-c`, fish's `--command`) or reads them from stdin (`-s`, `-`).
 */
export function isInteractiveShell(command: readonly string[]): boolean {
  const [program, ...args] = command;
  if (program === undefined || !SHELLS.has(basename(program))) return false;
  return args.every(
    (arg) =>
      arg.startsWith("-") && arg !== "-" && arg !== "--" && !COMMANDS_OPTION.test(arg) && !arg.startsWith("--command"),
  );
}
