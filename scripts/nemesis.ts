// `npm run nemesis -- --seed N --minutes M`: the cluster nemesis (test/cluster/nemesis/run.ts)
// for as long as asked, one run per seed (consecutive seeds from N), with the checker's table.
// `--single`: one gateway under kill -9 and a full disk; `--hostile`: hostile clients beside
// honest ones (test/security/hostile/run.ts).
import { parseArgs } from "node:util";
import { hostileSummary, runHostileNemesis } from "../test/security/hostile/run.js";
import type { HostileKind } from "../test/security/hostile/schedule.js";
import { reportTable, runNemesis } from "../test/cluster/nemesis/run.js";
import { runSingleNodeNemesis } from "../test/cluster/nemesis/single-node.js";

const { values } = parseArgs({
  options: {
    seed: { type: "string" },
    minutes: { type: "string", default: "5" },
    "run-minutes": { type: "string", default: "2" },
    // One gateway (kill -9, a full disk) instead of three nodes on Redis.
    single: { type: "boolean", default: false },
    // Hostile clients beside honest ones on one gateway (docs/security.md, "Fuzzing").
    hostile: { type: "boolean", default: false },
    // With --hostile: only these kinds of the schedule (comma-separated), to tell which a finding needs.
    only: { type: "string" },
  },
});
const first = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const until = Date.now() + Number(values.minutes) * 60_000;
const runMs = Number(values["run-minutes"]) * 60_000;
let anomalies = 0;
for (let seed = first; Date.now() < until; seed++) {
  console.log(`nemesis: seed ${seed}, faults for ${runMs / 1000} s`);
  if (values.hostile) {
    const report = await runHostileNemesis({
      seed,
      baselineMs: Math.min(10_000, runMs / 4),
      hostileMs: Math.max(10_000, Math.min(runMs, until - Date.now())),
      ...(values.only !== undefined ? { only: values.only.split(",") as HostileKind[] } : {}),
      log: (l) => console.log(`  ${l}`),
    });
    console.log(hostileSummary(report));
    for (const a of report.anomalies.slice(0, 50)) console.log(`  ANOMALY ${a.kind}: ${a.detail}`);
    if (report.anomalies.length > 0) for (const n of report.notes.slice(-80)) console.log(`  NOTE ${n}`);
    anomalies += report.anomalies.length;
    continue;
  }
  if (values.single) {
    const one = await runSingleNodeNemesis({
      seed,
      faultMs: Math.min(runMs, until - Date.now()),
      log: (l) => console.log(`  ${l}`),
    });
    console.log(
      `seed ${seed}: ${JSON.stringify({ ops: one.ops, faults: one.faults, events: one.events, anomalies: one.anomalies.length })}`,
    );
    for (const a of one.anomalies.slice(0, 50)) console.log(`  ANOMALY ${a.kind}: ${a.detail}`);
    anomalies += one.anomalies.length;
    continue;
  }
  const report = await runNemesis({
    seed,
    faultMs: Math.min(runMs, until - Date.now()),
    log: (l) => console.log(`  ${l}`),
  });
  console.log(reportTable(report));
  for (const a of report.anomalies.slice(0, 50)) console.log(`  ANOMALY ${a.kind}: ${a.detail}`);
  if (report.anomalies.length > 0) for (const w of report.warnings.slice(-60)) console.log(`  LOG ${w}`);
  anomalies += report.anomalies.length;
}
console.log(anomalies === 0 ? "nemesis: 0 anomalies" : `nemesis: ${anomalies} anomalies`);
process.exit(anomalies === 0 ? 0 : 1);
