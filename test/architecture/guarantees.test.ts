import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * docs/architecture.md, "Guarantees": every guarantee names the test that proves it, as
 * `test/….test.ts`, "test or describe title". Code cites the guarantees by number, so a renamed
 * or deleted test must show up here, not in a reader's search.
 */
const REPO = new URL("../../", import.meta.url).pathname;
const doc = readFileSync(join(REPO, "docs", "architecture.md"), "utf8");

/** Titles of `it`, `test` and `describe` calls; a template title becomes a pattern (`${…}` matches anything). */
function titlesOf(source: string): Array<string | RegExp> {
  const calls = source.matchAll(/\b(?:it|test|describe)\(\s*(["'`])((?:\\.|(?!\1)[^\\])*)\1/g);
  return [...calls].map(([, quote, title]) => {
    if (quote !== "`") return title!.replace(/\\(.)/g, "$1");
    const parts = title!.split(/\$\{[^}]*\}/).map((p) => p.replace(/\\`/g, "`").replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    return new RegExp(`^${parts.join(".+")}$`);
  });
}

const named = (titles: Array<string | RegExp>, name: string): boolean =>
  titles.some((t) => (typeof t === "string" ? t === name : t.test(name)));

describe("docs/architecture.md, Guarantees", () => {
  const start = doc.indexOf("## Guarantees");
  const section = doc.slice(start, doc.indexOf("\n## ", start + 1));
  const rows = [...section.matchAll(/^\|\s*(\d+)\s*\|(.*)\|\s*$/gm)].map((m) => ({ n: Number(m[1]), text: m[2]! }));

  it("numbers the guarantees 1 to 9, in order", () => {
    expect(rows.map((r) => r.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("names, for each guarantee, tests that exist under those titles", () => {
    const missing: string[] = [];
    for (const { n, text } of rows) {
      const cited = [...text.matchAll(/`(test\/[^`]+\.test\.ts)`,((?:\s*(?:and|;)?\s*"[^"]+")+)/g)];
      if (cited.length === 0) missing.push(`guarantee ${n} names no test`);
      for (const [, file, names] of cited) {
        const titles = titlesOf(readFileSync(join(REPO, file!), "utf8"));
        for (const [, name] of names!.matchAll(/"([^"]+)"/g)) {
          if (!named(titles, name!)) missing.push(`guarantee ${n}: ${file} has no test "${name}"`);
        }
      }
    }
    expect(missing).toEqual([]);
  });
});
