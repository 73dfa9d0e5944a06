import { describe, expect, it } from "vitest";
import { runSingleNodeNemesis } from "../cluster/nemesis/single-node.js";

/** A new seed each run; NEMESIS_SEED replays one. */
const SEED =
  process.env["NEMESIS_SEED"] !== undefined ? Number(process.env["NEMESIS_SEED"]) : Math.floor(Math.random() * 2 ** 31);

/** Kills and full disks per run, however long a slow machine takes for them. */
const MIN_FAULTS = 6;

describe("one gateway under a nemesis (docs/operations.md, Proven by a nemesis)", () => {
  it("loses no acknowledged append and shows every viewer the log through kill -9 and a full disk (seeded)", async () => {
    const lines: string[] = [];
    const report = await runSingleNodeNemesis({
      seed: SEED,
      faultMs: 40_000,
      minFaults: MIN_FAULTS,
      log: (l) => lines.push(l),
    });
    const replay = `seed ${SEED}: replay with NEMESIS_SEED=${SEED} npx vitest run test/server/nemesis-single.test.ts, or npm run nemesis -- --single --seed ${SEED}`;
    expect(
      report.anomalies,
      [replay, JSON.stringify(report.ops), ...lines, ...report.warnings.slice(-30)].join("\n"),
    ).toEqual([]);
    expect(report.ops.ok, replay).toBeGreaterThan(100);
    expect(report.faults.kill + report.faults["disk-full"], replay).toBeGreaterThanOrEqual(MIN_FAULTS);
    console.log(`${replay}: ${JSON.stringify({ ops: report.ops, faults: report.faults, events: report.events })}`);
  }, 240_000);
});
