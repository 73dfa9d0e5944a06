import { describe, expect, it } from "vitest";
import { reportTable, runNemesis } from "./nemesis/run.js";

/** A new seed each run (more schedules over time); NEMESIS_SEED replays one. */
const SEED =
  process.env["NEMESIS_SEED"] !== undefined ? Number(process.env["NEMESIS_SEED"]) : Math.floor(Math.random() * 2 ** 31);
/**
 * How long faults are injected (about 75 s with start-up, healing and the checks): ~16 overlapping
 * faults a run, new seeds every CI run; `npm run nemesis` runs longer schedules.
 */
const FAULT_MS = 60_000;

describe("cluster mode under a nemesis (docs/cluster.md, Proven by a nemesis)", () => {
  it("loses no acknowledged append, shows every viewer the log, keeps every node equal to Redis and takes writes on every node after healing", async () => {
    const lines: string[] = [];
    const report = await runNemesis({
      seed: SEED,
      faultMs: FAULT_MS,
      gapMs: [2_000, 5_000],
      log: (l) => lines.push(l),
    });
    const replay = `seed ${SEED}: replay with NEMESIS_SEED=${SEED} npx vitest run test/cluster/nemesis.test.ts, or npm run nemesis -- --seed ${SEED}`;
    expect(report.anomalies, [replay, reportTable(report), ...lines, ...report.warnings.slice(-40)].join("\n")).toEqual(
      [],
    );
    // A run that did not exercise the promises proves nothing.
    expect(report.ops.ok, replay).toBeGreaterThan(100);
    expect(
      Object.values(report.faults).reduce((a, b) => a + b, 0),
      replay,
    ).toBeGreaterThanOrEqual(8);
    expect(report.viewers.connections, replay).toBeGreaterThan(50);
    console.log(`${replay}\n${reportTable(report)}`);
  }, 360_000);
});
