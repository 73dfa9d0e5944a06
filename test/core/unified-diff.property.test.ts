// A run's patch is what `git apply` takes to make the new files: for random old and new texts
// (lines from a small alphabet, so diffs interleave; with and without a final newline; CRs, tabs,
// non-ASCII; files made and removed; names git must quote), real `git apply` of gitPatch() on a
// copy of the old tree gives exactly the new texts, and diffHunks() counts the lines it changes.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { diffHunks, gitPatch } from "../../src/core/unified-diff.js";
import type { TextChange } from "../../src/core/unified-diff.js";
import { tempDir } from "../helpers/tmp.js";

const LINES = ["a", "b", "c", "", "  indented", "tab\there", "ü ñ", "carriage\r", "x".repeat(30)];
const text = fc
  .tuple(fc.array(fc.constantFrom(...LINES), { maxLength: 24 }), fc.boolean())
  .map(([lines, newline]) => lines.join("\n") + (newline && lines.length > 0 ? "\n" : ""));
const NAMES = ["plain.txt", "dir x/with space.txt", "ünï/cöde.ts", 'q"uote.md', "deep/a/b/c.txt", "tab\tname"];
const side = fc.option(text, { nil: null, freq: 5 });

/** Writes `files` under `dir` (null: absent). */
function writeTree(dir: string, files: [string, string | null][]): void {
  for (const [name, content] of files) {
    if (content === null) continue;
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
}

describe("gitPatch", () => {
  it("git apply of the patch on the old tree gives exactly the new texts", () => {
    const root = tempDir();
    let round = 0;
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.constantFrom(...NAMES), side, side), {
          minLength: 1,
          maxLength: NAMES.length,
          selector: ([name]) => name,
        }),
        (files) => {
          const dir = path.join(root, `r${round++}`);
          mkdirSync(dir);
          const changes: TextChange[] = files.map(([name, oldText, newText]) => ({ path: name, oldText, newText }));
          writeTree(
            dir,
            changes.map((c) => [c.path, c.oldText]),
          );
          execFileSync("git", ["init", "-q"], { cwd: dir });
          const patch = gitPatch(changes);
          writeFileSync(path.join(root, `r${round}.patch`), patch);
          if (patch !== "") {
            execFileSync("git", ["apply", "--whitespace=nowarn", path.join(root, `r${round}.patch`)], { cwd: dir });
          }
          for (const change of changes) {
            const file = path.join(dir, change.path);
            const now = existsSync(file) ? readFileSync(file, "utf8") : null;
            expect(now).toBe(change.newText);
          }
          rmSync(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: Number(process.env["FUZZ_RUNS"] ?? 40) > 40 ? 400 : 40 },
    );
  });

  it("diffHunks counts the lines removed and added", () => {
    fc.assert(
      fc.property(text, text, (oldText, newText) => {
        const { diff, added, removed } = diffHunks({ path: "f", oldText, newText });
        const lines = diff.split("\n");
        expect(lines.filter((l) => l.startsWith("+")).length).toBe(added);
        expect(lines.filter((l) => l.startsWith("-")).length).toBe(removed);
        expect(diff === "").toBe(oldText === newText);
      }),
      { numRuns: 300 },
    );
  });
});
