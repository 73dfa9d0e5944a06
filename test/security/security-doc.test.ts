/**
 * docs/security.md names, for each threat and each gap it lists as fixed, the test that proves
 * it. These checks hold those names to the tests that exist, so a renamed or removed test
 * cannot leave a claim without its proof.
 */
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const ROOT = new URL("../../", import.meta.url);
const DOC = readFileSync(new URL("docs/security.md", ROOT), "utf8");

/** The rows of the first table after `heading`, as arrays of trimmed cells (header and rule lines left out). */
function tableAfter(heading: string): Record<string, string>[] {
  const start = DOC.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`docs/security.md has no heading "${heading}"`);
  const lines = DOC.slice(start).split("\n");
  const first = lines.findIndex((line) => line.startsWith("|"));
  const table: string[] = [];
  for (const line of lines.slice(first)) {
    if (!line.startsWith("|")) break;
    table.push(line);
  }
  // A `\|` inside a cell is a pipe of its text, not a column.
  const cells = (line: string) =>
    line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim());
  const [header, , ...rows] = table;
  const names = cells(header!);
  return rows.map((row) => Object.fromEntries(cells(row).map((cell, i) => [names[i]!, cell])));
}

/** The titles of the `it(…)` tests in a test file. */
function testTitles(file: string): string[] {
  const source = readFileSync(new URL(file, ROOT), "utf8");
  return [...source.matchAll(/\bit(?:\.\w+)?\(\s*(["`])((?:\\.|(?!\1).)*)\1/g)].map((m) =>
    m[2]!.replaceAll('\\"', '"'),
  );
}

/**
 * The tests a cell names: `` `file.test.ts`: _title_, _title_ `` groups, separated by `;`. A
 * file without a folder is in test/security/. A `…` in a title stands for any text.
 */
function citations(cell: string): Array<{ file: string; title: string }> {
  const found: Array<{ file: string; title: string }> = [];
  const groups = [...cell.matchAll(/`([\w./-]+\.test\.ts)`:\s*(.*?)(?=;\s*`[\w./-]+\.test\.ts`|$)/g)];
  for (const [, file, titles] of groups) {
    const path = file!.includes("/") ? file! : `test/security/${file!}`;
    // A title ends at an underscore followed by a separator, a note in parentheses or the end
    // (titles may hold underscores: SESSION_NOT_FOUND).
    for (const [, title] of titles!.matchAll(/_(.+?)_(?=,|\s+and\s|\s*\(|\s*$)/g))
      found.push({ file: path, title: title! });
  }
  return found;
}

function isTitleIn(title: string, titles: string[]): boolean {
  const pattern = new RegExp(
    `^${title
      .split("…")
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
  return titles.some((t) => pattern.test(t));
}

describe("docs/security.md", () => {
  for (const [heading, column, key] of [
    ["## Threat model", "proved by", "who"],
    ["## Hardening, round 2", "test", "gap"],
    ["## Hardening, round 4", "test", "gap"],
    ["## Agents, review and the first hour", "test", "gap"],
    ["## Files, worktrees and search", "test", "gap"],
    ["## Share links", "test", "rule"],
  ] as const) {
    it(`names, in every row of the table under "${heading}", tests that exist`, () => {
      const rows = tableAfter(heading);
      expect(rows.length).toBeGreaterThan(3);
      const unproved: string[] = [];
      for (const row of rows) {
        const cited = citations(row[column] ?? "");
        if (cited.length === 0) unproved.push(`${row[key]!.slice(0, 60)}: names no test`);
        for (const { file, title } of cited) {
          if (!existsSync(new URL(file, ROOT))) unproved.push(`${file}: no such file`);
          else if (!isTitleIn(title, testTitles(file))) unproved.push(`${file}: no test "${title}"`);
        }
      }
      expect(unproved).toEqual([]);
    });
  }
});
