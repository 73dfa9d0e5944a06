/** One row of a section's results table: a measure, side by side with its baseline and goal. */
export interface BenchRow {
  measure: string;
  /** Switchboard's figure, with its unit. */
  ours: string;
  baseline?: string;
  /** Switchboard ÷ baseline, as printed ("1.04"). */
  ratio?: string;
  goal?: string;
  /** Whether the goal is met; absent for a row given for reference. */
  met?: boolean;
}

/** One section of docs/benchmarks.md, produced by one benchmark module under bench/. */
export interface BenchSection {
  /** Heading of the section, e.g. "Event log". */
  title: string;
  /** The results table (measure, Switchboard, baseline, ratio, goal, met). */
  rows?: BenchRow[];
  /** Further tables (Markdown), after the results table: a sweep, a table by size. */
  tables?: string[];
  /** How it was measured: a short note, at most ~8 lines. */
  method?: string[];
  /** Each run's figures and other detail, printed in the Notes appendix at the end of the file. */
  notes?: string[];
  /** A body the module renders itself, instead of rows, tables and method. */
  markdown?: string;
}

/** Every benchmark module exports `run` with this signature; bench/run.ts calls them in order. */
export type BenchModule = { run: () => Promise<BenchSection> };
