import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { BaseSequencer } from "vitest/node";
import type { TestSpecification } from "vitest/node";

const DURATIONS = new URL("durations.json", import.meta.url);

/**
 * Runs the longest test files first, from test/durations.json (seconds per file, written by
 * `npm run test:durations` from a run's JSON report): on 2 workers that packs the run so no
 * 90 s file starts last. Vitest's own order needs its local cache, which a fresh clone (CI)
 * lacks: it then runs the largest files first, and the longest are small. A file not listed
 * counts as the median.
 */
export class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const known = JSON.parse(readFileSync(DURATIONS, "utf8")) as Record<string, number>;
    const values = Object.values(known).sort((a, b) => a - b);
    const median = values[Math.floor(values.length / 2)] ?? 0;
    const seconds = (spec: TestSpecification) =>
      known[relative(spec.project.config.root, spec.moduleId).split("\\").join("/")] ?? median;
    // Shared-process files last (vitest.config.ts): a worker keeps its process only while the
    // next file in the queue shares one too.
    const shared = (spec: TestSpecification) => (spec.project.config.isolate === false ? 1 : 0);
    return [...files].sort(
      (a, b) =>
        a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder ||
        shared(a) - shared(b) ||
        seconds(b) - seconds(a),
    );
  }
}
