import { replaceHiddenChars } from "../protocol/display-text.js";

/**
 * Text from the gateway (session names, commands, cwd, error messages, tool titles) is
 * untrusted: a name like "x\e]0;pwned\a\e[2J" would retitle and clear the user's terminal, a
 * newline would break a table row, and a bidirectional control ("invoice\u202Efdp.exe" shows as
 * "invoiceexe.pdf") or an invisible character makes text show as something it is not.
 * Human-readable output shows such text through {@link printable}. (Session output itself, what
 * `logs` and `attach` print, stays raw: it is the program's own terminal stream.)
 */

const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\u001b": "\\e" };

/**
 * `text` on one line with control characters (C0, DEL, C1) escaped (`\n`, `\r`, `\t`, `\e`, else
 * `\xHH`) and bidi or invisible ones (`hiddenChars`) as `\u{HHHH}`.
 * @example
 * printable("evil\u001b]0;pwned\u0007"); // "evil\\e]0;pwned\\x07"
 * printable("invoice\u202Efdp.exe"); // "invoice\\u{202e}fdp.exe"
 */
export function printable(text: string): string {
  return replaceHiddenChars(text, ({ char, codePoint }) => {
    if (NAMED[char] !== undefined) return NAMED[char];
    return codePoint <= 0xff ? `\\x${codePoint.toString(16).padStart(2, "0")}` : `\\u{${codePoint.toString(16)}}`;
  });
}
