// The nemesis's checker on one gateway (docs/operations.md, "Proven by a nemesis"): producers and
// viewers as in cluster mode, faults a single node meets — kill -9 and restart, a disk that fills
// up — and the same checker, with the node's own log as the log of record.
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "./checker.js";
import type { Anomaly } from "./checker.js";
import { NEMESIS_TOKEN, NemesisNode } from "./cluster.js";
import { liveness, processAnomalies, readAll, tally, waitHealthy } from "./run.js";
import { Rng, request, runProducer, runViewer, sleep } from "./workload.js";
import type { AppendOp, ViewerRecord } from "./workload.js";

export const SINGLE_FAULTS = ["kill", "disk-full"] as const;
export type SingleFault = (typeof SINGLE_FAULTS)[number];

/** The data dir's disk: small, so that filling it takes a moment. */
const DISK_SIZE = "96m";
/** After healing, every session must take a write within this. */
const SINGLE_LIVENESS_MS = 5_000;

export interface SingleNodeReport {
  seed: number;
  ops: { ok: number; fail: number; info: number };
  faults: Record<SingleFault, number>;
  events: number;
  anomalies: Anomaly[];
  warnings: string[];
}

/** Fills the disk of `dir` with a ballast file until ENOSPC; returns the file to delete. */
function fill(dir: string): string {
  const file = join(dir, `ballast-${process.pid}`);
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(256 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
  return file;
}

export async function runSingleNodeNemesis(o: {
  seed: number;
  faultMs: number;
  /**
   * Faults injected however long they take: a slow machine's restarts stretched 40 s of faults to
   * 5 of them once, against a test's floor of 6 (the schedule is the same, only later).
   */
  minFaults?: number;
  log?: (line: string) => void;
}): Promise<SingleNodeReport> {
  const say = o.log ?? (() => undefined);
  const rng = new Rng(o.seed);
  const root = mkdtempSync(join(tmpdir(), "sb-nemesis-one-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${DISK_SIZE}`, "tmpfs", root]);
  const node = new NemesisNode("gw", join(root, "data"), []);
  try {
    await node.start();
    const anomalies: Anomaly[] = [];
    const streams: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await request(node.url, "POST", "/v1/sessions", { kind: "stream", name: `stream-${i}` });
      if (res.status !== 201) throw new Error(`creating a session answered ${res.status}`);
      streams.push(res.json["id"] as string);
    }
    const ops: AppendOp[] = [];
    let stopped = false;
    const producers = [0, 1, 2].map((i) =>
      runProducer(`p${i}`, streams, [node], new Rng(o.seed + 1 + i), ops, () => stopped),
    );
    const viewers: ViewerRecord[] = [0, 1, 2, 3].map((i) => ({
      name: `v${i}`,
      session: streams[i % streams.length]!,
      bytes: i === 3,
      events: [],
      output: [],
      resets: [],
      problems: [],
      connections: 0,
    }));
    const viewing = viewers.map((v, i) => runViewer(v, [node], new Rng(o.seed + 100 + i), () => stopped));
    const faults = Object.fromEntries(SINGLE_FAULTS.map((k) => [k, 0])) as Record<SingleFault, number>;
    const end = Date.now() + o.faultMs;
    let injected = 0;
    while (Date.now() < end || injected < (o.minFaults ?? 0)) {
      injected++;
      await sleep(rng.int(2_000, 5_000));
      const kind = rng.pick(SINGLE_FAULTS);
      faults[kind]++;
      const ms = rng.int(300, 3_000);
      say(`${kind} for ${ms} ms`);
      if (kind === "kill") {
        node.kill9();
        await sleep(ms);
        await node.start();
      } else {
        const ballast = fill(root);
        await sleep(ms);
        unlinkSync(ballast);
      }
    }
    say("healing");
    await waitHealthy([node], 30_000, anomalies);
    stopped = true;
    await Promise.all([...producers, ...viewing]);
    await liveness([node], streams, ops, anomalies, SINGLE_LIVENESS_MS);
    const logs = await Promise.all(
      streams.map(async (id) => ({ session: id, from: "record", events: await readAll(node, id) })),
    );
    anomalies.push(...check({ ops, viewers, logs, streams }));
    anomalies.push(...processAnomalies([node]));
    return {
      seed: o.seed,
      ops: tally(ops),
      faults,
      events: logs.reduce((n, l) => n + l.events.length, 0),
      anomalies,
      warnings: node.report.warnings,
    };
  } finally {
    await node.stop();
    execFileSync("umount", ["-l", root]);
    rmSync(root, { recursive: true, force: true });
  }
}

export { NEMESIS_TOKEN };
