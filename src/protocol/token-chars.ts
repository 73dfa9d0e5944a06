/**
 * Why `token` cannot be a token, by its characters, or undefined. A token travels in an HTTP
 * header (`Authorization: Bearer`), whose value is bytes: one with a character beyond ASCII was
 * accepted in a config and then refused over HTTP (401; fetch would not even send it), and the
 * CLI reported that as an unreachable gateway.
 */
export function tokenCharsProblem(token: string): string | undefined {
  const bad = /[^\x21-\x7e]/u.exec(token);
  if (bad === null) return undefined;
  const code = bad[0].codePointAt(0)!;
  const what = code === 0x20 ? "a space" : `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
  return `it has ${what} at character ${bad.index + 1}: a token travels in an HTTP header, so it may hold printable ASCII only (no spaces)`;
}
