import { readFileSync, realpathSync, statSync } from "node:fs";
import { writeFileWhole } from "../system/private-file.js";

/**
 * Writes `value` as the config file `file`'s new content, keeping what the user chose for the
 * file: written where a symbolic link leads (a config kept in a dotfiles repository stays
 * linked), with the file's permissions, its indentation (tabs, 4 spaces, or one line) and its
 * final newline. Before, every write re-indented the file with 2 spaces, made it 0600 and
 * replaced a link with a copy. Whole or not at all. Returns the text.
 * (JSON has no comments to keep; the order of keys is the merge patch's, RFC 7396.)
 */
export function rewriteConfigFile(file: string, value: unknown): string {
  const real = realpathSync(file);
  const current = readFileSync(real, "utf8");
  const mode = statSync(real).mode & 0o7777;
  const text = `${JSON.stringify(value, null, indentOf(current))}${current.endsWith("\n") ? "\n" : ""}`;
  writeFileWhole(real, text, mode);
  return text;
}

/** The indentation `text` (a JSON document) uses: that of its first indented member, or "" for one written on one line. */
export function indentOf(text: string): string {
  const member = /\n([ \t]+)["}\]]/.exec(text);
  if (member) return member[1]!;
  return text.trim().includes("\n") ? "  " : "";
}
