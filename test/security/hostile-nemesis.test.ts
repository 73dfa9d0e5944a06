import { describe, expect, it } from "vitest";
import { hostileSummary, runHostileNemesis } from "./hostile/run.js";

/** A new seed each run; HOSTILE_SEED replays one. */
const SEED =
  process.env["HOSTILE_SEED"] !== undefined ? Number(process.env["HOSTILE_SEED"]) : Math.floor(Math.random() * 2 ** 31);

describe("honest clients beside hostile ones (docs/security.md, Fuzzing)", () => {
  it("keeps honest /healthz and echo prompt and their output whole, and cuts ended credentials' streams, under a seeded hostile schedule", async () => {
    const lines: string[] = [];
    const report = await runHostileNemesis({
      seed: SEED,
      baselineMs: 4_000,
      hostileMs: 16_000,
      log: (l) => lines.push(l),
    });
    const replay = `seed ${SEED}: replay with HOSTILE_SEED=${SEED} npx vitest run test/security/hostile-nemesis.test.ts, or npm run nemesis -- --hostile --seed ${SEED}`;
    const summary = hostileSummary(report);
    console.log(`${replay}\n${summary}`);
    expect(report.anomalies, [replay, summary, ...lines, ...report.notes].join("\n")).toEqual([]);
    // The run did what it says: honest clients sampled all along, hostile actions carried out.
    expect(report.healthz.hostile.n, replay).toBeGreaterThan(100);
    expect(report.echo.hostile.n, replay).toBeGreaterThan(50);
    const done = Object.values(report.actions).reduce((n, a) => n + a.done, 0);
    expect(done, replay).toBeGreaterThanOrEqual(10);
    expect(report.credentials.length, replay).toBeGreaterThanOrEqual(2);
  }, 150_000);
});
