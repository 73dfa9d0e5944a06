/** What a POSIX shell reads as more than a word's letters (a leading `~` or `#` too; control characters are quoted). */
// eslint-disable-next-line no-control-regex
const SHELL_SPECIAL = /[\s'"`$\\!*?[\]{}()<>|&;#~\x00-\x1f\x7f-\x9f]/;

/**
 * A command's word as a POSIX shell would take it back: as it is when nothing in it is special
 * to a shell, else in single quotes (a `'` in it as `'\''`).
 *
 * @example
 * shellWord("make")          // make
 * shellWord("echo $A; ls")   // 'echo $A; ls'
 */
export function shellWord(word: string): string {
  if (word !== "" && !SHELL_SPECIAL.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * A command (argv) as one line a shell would split back into the same words: how lists and
 * headers show it. `sh -c 'echo $A; ls'`, where joining with spaces showed `sh -c echo $A; ls`,
 * which reads as (and pastes as) another command.
 */
export function joinCommand(words: readonly string[]): string {
  return words.map(shellWord).join(" ");
}
