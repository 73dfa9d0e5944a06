/**
 * Text from the gateway (session names, commands, cwd, error messages, tool titles) is
 * untrusted: a name like "x\e]0;pwned\a\e[2J" would retitle and clear the user's terminal, and
 * a newline would break a table row. Human-readable output shows such text through
 * {@link printable}. (Session output itself, what `logs` and `attach` print, stays raw: it is
 * the program's own terminal stream.)
 */

// eslint-disable-next-line no-control-regex -- control characters are exactly what is escaped
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\u001b": "\\e" };

/**
 * `text` with every control character (C0, DEL, C1) written as an escape: `\n`, `\r`, `\t`,
 * `\e`, else `\xHH`. One line, nothing a terminal would act on.
 *
 * @example
 * printable("evil\u001b]0;pwned\u0007"); // "evil\\e]0;pwned\\x07"
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
