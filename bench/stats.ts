/** Small helpers shared by the benchmarks. */

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** Formats a number with thousands separators and `digits` decimals. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function met(ok: boolean): string {
  return ok ? "met" : "**not met**";
}

/**
 * Runs `subject` `rounds` times alternating with `baseline` (side by side, one process): both
 * medians, and the median of the ratios of each subject run to the baseline run of its round.
 */
export async function sideBySide(
  rounds: number,
  baseline: () => Promise<number> | number,
  subject: () => Promise<number> | number,
): Promise<{ baseline: number; subject: number; ratio: number; baselineRuns: number[]; subjectRuns: number[] }> {
  const b: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate the order so warm-up and drift do not favour one side.
    if (i % 2 === 0) {
      b.push(await baseline());
      s.push(await subject());
    } else {
      s.push(await subject());
      b.push(await baseline());
    }
  }
  // Each run against its own neighbour: the machine's speed drifts within minutes (docs/benchmarks.md).
  const ratio = median(s.map((x, i) => x / b[i]!));
  return { baseline: median(b), subject: median(s), ratio, baselineRuns: b, subjectRuns: s };
}
