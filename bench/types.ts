/** One section of docs/benchmarks.md, produced by one benchmark module under bench/. */
export interface BenchSection {
  /** Heading of the section, e.g. "Event log". */
  title: string;
  /** Markdown body: what was measured, how, a table with measured value, goal, ratio and "met"/"not met". */
  markdown: string;
}

/** Every benchmark module exports `run` with this signature; bench/run.ts calls them in order. */
export type BenchModule = { run: () => Promise<BenchSection> };
