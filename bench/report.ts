import type { BenchRow, BenchSection } from "./types.js";

const cell = (text: string | undefined): string => (text ?? "").replace(/\|/g, "\\|");

/** The results table of `rows`: one header for every section, so they read alike. */
export function resultsTable(rows: readonly BenchRow[]): string {
  const lines = ["| measure | Switchboard | baseline | ratio | goal | met |", "|---|---|---|---|---|---|"];
  for (const r of rows) {
    const met = r.met === undefined ? "" : r.met ? "met" : "**not met**";
    lines.push(
      `| ${cell(r.measure)} | ${cell(r.ours)} | ${cell(r.baseline)} | ${cell(r.ratio)} | ${cell(r.goal)} | ${met} |`,
    );
  }
  return lines.join("\n");
}

/**
 * A list longer than this (characters) is folded into a collapsed `<details>` block, so that the
 * page reads as tables and short paragraphs (test/architecture/benchmarks-doc.test.ts).
 */
export const LIST_FOLD_CHARS = 1_500;

/** `items` as a Markdown list, folded under `summary` when it is longer than {@link LIST_FOLD_CHARS}. */
export function list(items: readonly string[], summary: string): string {
  const text = items.map((item) => `- ${item}`).join("\n");
  return text.length > LIST_FOLD_CHARS ? `<details><summary>${summary}</summary>\n\n${text}\n\n</details>` : text;
}

/** A section's body: its table(s), then its method note as a short list. */
export function renderSection(s: BenchSection): string {
  if (s.markdown !== undefined) return s.markdown;
  const parts: string[] = [];
  if (s.rows && s.rows.length > 0) parts.push(resultsTable(s.rows));
  parts.push(...(s.tables ?? []));
  if (s.method && s.method.length > 0) parts.push(`**Method**\n\n${list(s.method, "How it is measured")}`);
  return parts.join("\n\n");
}

/** The Notes appendix: each section's run figures under its title; empty when none has any. */
export function renderNotes(sections: readonly BenchSection[]): string {
  const withNotes = sections.filter((s) => s.notes && s.notes.length > 0);
  if (withNotes.length === 0) return "";
  const body = withNotes.map((s) => `### ${s.title}\n\n${list(s.notes!, "The runs' figures")}\n`).join("\n");
  return `## Notes\n\nEach run's figures. Investigations (what was tried, and what it gave) are dated in bench/README.md.\n\n${body}`;
}

/** What a module run on its own prints: its section, then its notes. */
export function renderStandalone(s: BenchSection): string {
  const notes = renderNotes([s]);
  return `## ${s.title}\n\n${renderSection(s)}\n${notes ? `\n${notes}` : ""}`;
}
