/**
 * docs/benchmarks.md reads as tables and short paragraphs: a paragraph or list longer than
 * LIST_FOLD_CHARS is folded into a collapsed `<details>` block, by hand or by bench/report.ts.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { LIST_FOLD_CHARS, list, renderNotes } from "../../bench/report.js";

/** The page's blocks (text between blank lines) outside `<details>`, tables left out. */
function openBlocks(markdown: string): string[] {
  const folded = markdown.replace(/<details>[\s\S]*?<\/details>/g, "");
  return folded.split(/\n\s*\n/).filter((block) => !block.trimStart().startsWith("|"));
}

describe("docs/benchmarks.md", () => {
  it(`has no paragraph or list over ${LIST_FOLD_CHARS} characters outside a collapsed block`, () => {
    const doc = readFileSync(new URL("../../docs/benchmarks.md", import.meta.url), "utf8");
    const long = openBlocks(doc)
      .filter((block) => block.length > LIST_FOLD_CHARS)
      .map((block) => `${block.length} characters: ${block.slice(0, 80)}…`);
    expect(long).toEqual([]);
  });

  it("folds a long method note or run's figures, and leaves a short one open", () => {
    const short = ["one", "two"];
    expect(list(short, "How it is measured")).toBe("- one\n- two");
    const long = Array.from({ length: 20 }, (_, i) => `run ${i}: ${"x".repeat(100)}`);
    const folded = list(long, "How it is measured");
    expect(folded.startsWith("<details><summary>How it is measured</summary>\n\n- run 0:")).toBe(true);
    expect(folded.endsWith("</details>")).toBe(true);
    expect(openBlocks(renderNotes([{ title: "t", notes: long }])).every((b) => b.length <= LIST_FOLD_CHARS)).toBe(true);
  });
});
