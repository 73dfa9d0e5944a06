// One nemesis run (docs/cluster.md, "Proven by a nemesis"): three nodes on one Redis, producers and
// viewers on random nodes, a seeded schedule of overlapping faults, then healing, a liveness
// check and the checker. Used by test/cluster/nemesis.test.ts (bounded) and `npm run nemesis`.
import { connectRedis } from "../../../src/cluster/redis-client.js";
import { RedisLog } from "../../../src/cluster/redis-log.js";
import { eventOf } from "../../../src/log/output-entry.js";
import { check } from "./checker.js";
import type { Anomaly, FinalLog } from "./checker.js";
import { NEMESIS_TTL_MS, startNemesisCluster } from "./cluster.js";
import type { NemesisCluster, NemesisNode } from "./cluster.js";
import { Rng, append, request, runProducer, runViewer, sleep } from "./workload.js";
import type { AppendOp, ViewerRecord } from "./workload.js";

export const FAULT_KINDS = ["kill", "pause", "partition", "redis-kill", "redis-pause"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface NemesisOptions {
  seed: number;
  /** How long faults are injected; the run takes about 40 s more (start, healing, checks). */
  faultMs: number;
  /** Pause between two faults' starts (faults overlap when one outlasts it). */
  gapMs?: [number, number];
  log?: (line: string) => void;
}

export interface NemesisReport {
  seed: number;
  ops: { ok: number; fail: number; info: number };
  faults: Record<FaultKind, number>;
  events: number;
  viewers: { connections: number; events: number; bytes: number };
  /** Longest time any stream session went without a successful append while faults ran. */
  longestUnavailableMs: number;
  /** Per fault kind: the longest such time that overlapped a fault of that kind. */
  unavailableByFault: Record<FaultKind, number>;
  /** After healing: how long until every session took a write through every node. */
  livenessMs: number;
  anomalies: Anomaly[];
  /** The nodes' newest warnings and errors, for a failed run's diagnosis. */
  warnings: string[];
}

const STREAMS = 3;
const PRODUCERS = 4;
const VIEWERS = 6;
/** A PTY that prints a numbered line every 100 ms for as long as its node lives. */
const PTY_TICKER = ["sh", "-c", 'i=0; while [ $i -lt 100000 ]; do echo "tick $i"; i=$((i+1)); sleep 0.1; done'];
/** After healing, every session must take a write through every node within this (2 TTLs). */
export const LIVENESS_MS = 2 * NEMESIS_TTL_MS;
/** How long healing may take: nodes restarted, Redis back, every node healthy. */
const HEAL_MS = 60_000;

/** Runs the nemesis once and checks it; resolves with the report (anomalies listed, never thrown). */
export async function runNemesis(o: NemesisOptions): Promise<NemesisReport> {
  const say = o.log ?? (() => undefined);
  const rng = new Rng(o.seed);
  const cluster = await startNemesisCluster(3);
  try {
    return await runOn(cluster, o, rng, say);
  } finally {
    await cluster.close();
  }
}

async function runOn(cluster: NemesisCluster, o: NemesisOptions, rng: Rng, say: (line: string) => void) {
  const { nodes } = cluster;
  const anomalies: Anomaly[] = [];
  const create = async (body: Record<string, unknown>) => {
    const res = await request(rng.pick(nodes).url, "POST", "/v1/sessions", body);
    if (res.status !== 201) throw new Error(`creating a session answered ${res.status}: ${JSON.stringify(res.json)}`);
    return res.json["id"] as string;
  };
  const streams: string[] = [];
  for (let i = 0; i < STREAMS; i++) streams.push(await create({ kind: "stream", name: `stream-${i}` }));
  const ptys = [await create({ kind: "terminal", command: PTY_TICKER, pty: true })];
  const ops: AppendOp[] = [];
  const times: Array<{ session: string; at: number }> = [];
  let stopped = false;
  const producers = Array.from({ length: PRODUCERS }, (_, i) =>
    runProducer(`p${i}`, streams, nodes, new Rng(o.seed + 1 + i), ops, () => stopped),
  );
  const viewers: ViewerRecord[] = Array.from({ length: VIEWERS }, (_, i) => ({
    name: `v${i}`,
    session: i === VIEWERS - 1 ? ptys[0]! : streams[i % STREAMS]!,
    bytes: i % 3 === 2,
    events: [],
    output: [],
    resets: [],
    problems: [],
    connections: 0,
  }));
  const viewing = viewers.map((v, i) => runViewer(v, nodes, new Rng(o.seed + 100 + i), () => stopped));

  const windows: FaultWindow[] = [];
  const faults = await injectFaults(cluster, o, rng, say, windows, anomalies);
  for (const op of ops) if (op.outcome.kind === "ok") times.push({ session: op.session, at: op.at });
  say("healing: every process running, Redis and every link back");
  const healed = Date.now();
  await waitHealthy(nodes, HEAL_MS, anomalies);
  say(`healthy after ${Date.now() - healed} ms`);
  stopped = true;
  await Promise.all([...producers, ...viewing]);

  const livenessMs = await liveness(cluster.nodes, streams, ops, anomalies);
  say(`every session took a write through every node ${livenessMs} ms after healing`);
  const logs = await finalLogs(cluster, [...streams, ...ptys], anomalies);
  anomalies.push(...check({ ops, viewers, logs, streams }));
  anomalies.push(...processAnomalies(nodes));
  return {
    seed: o.seed,
    ops: tally(ops),
    faults,
    events: logs.filter((l) => l.from === "record").reduce((n, l) => n + l.events.length, 0),
    viewers: {
      connections: viewers.reduce((n, v) => n + v.connections, 0),
      events: viewers.reduce((n, v) => n + v.events.length, 0),
      bytes: viewers.reduce((n, v) => n + v.output.reduce((m, p) => m + p.bytes.length, 0), 0),
    },
    longestUnavailableMs: longestGap(times, streams),
    unavailableByFault: gapsByFault(times, streams, windows),
    livenessMs,
    anomalies,
    warnings: nodes.flatMap((n) => n.report.warnings),
  };
}

/** What the producers were told, by kind of answer. */
export function tally(ops: readonly AppendOp[]): { ok: number; fail: number; info: number } {
  const count = (kind: string) => ops.filter((op) => op.outcome.kind === kind).length;
  return { ok: count("ok"), fail: count("fail"), info: count("info") };
}

/** The nodes' `bug:` lines and the exits the nemesis did not cause, as anomalies. */
export function processAnomalies(nodes: readonly NemesisNode[]): Anomaly[] {
  return nodes.flatMap((node) => [
    ...node.report.bugs.map((detail) => ({ kind: "process" as const, detail })),
    ...node.report.unexpectedExits.map((detail) => ({ kind: "process" as const, detail })),
  ]);
}

/** The longest time between two successful appends of one session (appends started then). */
function longestGap(times: ReadonlyArray<{ session: string; at: number }>, streams: readonly string[]): number {
  let longest = 0;
  for (const id of streams) {
    const at = times
      .filter((t) => t.session === id)
      .map((t) => t.at)
      .sort((a, b) => a - b);
    for (let i = 1; i < at.length; i++) longest = Math.max(longest, at[i]! - at[i - 1]!);
  }
  return longest;
}

/** When a fault of one kind was in force. */
interface FaultWindow {
  kind: FaultKind;
  start: number;
  end: number;
}

/** Per fault kind, the longest gap between two successful appends of one session that overlapped it. */
function gapsByFault(
  times: ReadonlyArray<{ session: string; at: number }>,
  streams: readonly string[],
  windows: readonly FaultWindow[],
): Record<FaultKind, number> {
  const out = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  for (const id of streams) {
    const at = times
      .filter((t) => t.session === id)
      .map((t) => t.at)
      .sort((a, b) => a - b);
    for (let i = 1; i < at.length; i++) {
      const [from, to] = [at[i - 1]!, at[i]!];
      for (const w of windows) if (w.start < to && w.end > from) out[w.kind] = Math.max(out[w.kind], to - from);
    }
  }
  return out;
}

/**
 * Starts a fault every `gapMs`, each healed after its own time, so that faults overlap: a node
 * killed and restarted under its id, paused past its TTL, cut off from Redis; Redis killed or
 * paused. At least one node is left untouched at any moment.
 */
async function injectFaults(
  cluster: NemesisCluster,
  o: NemesisOptions,
  rng: Rng,
  say: (line: string) => void,
  windows: FaultWindow[],
  failures: Anomaly[],
): Promise<Record<FaultKind, number>> {
  const { nodes, redis } = cluster;
  const counts = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  const busy = new Set<NemesisNode>();
  let redisBusy = false;
  const heals: Array<{ timer: NodeJS.Timeout; heal: () => Promise<void> }> = [];
  const restarts: Array<Promise<void>> = [];
  const schedule = (kind: FaultKind, ms: number, heal: () => Promise<void>) => {
    const window = { kind, start: Date.now(), end: Infinity };
    windows.push(window);
    // A heal that fails (a node that will not start again) is the run's finding, not its crash.
    const healed = async () => {
      await heal().catch((error: unknown) =>
        failures.push({ kind: "liveness", detail: `healing ${kind}: ${String(error)}` }),
      );
      window.end = Date.now();
    };
    const entry = { timer: setTimeout(() => void run(), ms), heal: healed };
    const run = async () => {
      heals.splice(heals.indexOf(entry), 1);
      const done = healed();
      restarts.push(done);
      await done;
    };
    heals.push(entry);
  };
  const end = Date.now() + o.faultMs;
  const [gapMin, gapMax] = o.gapMs ?? [3_000, 7_000];
  while (Date.now() < end) {
    await sleep(rng.int(gapMin, gapMax));
    const free = nodes.filter((n) => !busy.has(n));
    const kinds = FAULT_KINDS.filter((k) => (k.startsWith("redis") ? !redisBusy : free.length >= 2));
    if (kinds.length === 0) continue;
    const kind = rng.pick(kinds);
    const past = NEMESIS_TTL_MS + rng.int(300, 3_000);
    counts[kind]++;
    if (kind === "redis-kill" || kind === "redis-pause") {
      redisBusy = true;
      const ms = rng.int(300, 4_000);
      say(`${kind} for ${ms} ms`);
      if (kind === "redis-kill") await redis.kill9();
      else redis.pause();
      schedule(kind, ms, async () => {
        if (kind === "redis-kill") await redis.restart();
        else redis.resume();
        redisBusy = false;
      });
      continue;
    }
    const node = rng.pick(free);
    busy.add(node);
    say(`${kind} ${node.id} for ${past} ms`);
    if (kind === "kill") node.kill9();
    else if (kind === "pause") node.pause();
    else node.proxy!.blackhole("both");
    schedule(kind, past, async () => {
      if (kind === "kill") await node.start();
      else if (kind === "pause") node.resume();
      else node.proxy!.heal();
      busy.delete(node);
    });
  }
  // Heals what is still broken now, then waits for every restart.
  for (const entry of [...heals]) {
    clearTimeout(entry.timer);
    heals.splice(heals.indexOf(entry), 1);
    restarts.push(entry.heal());
  }
  await Promise.all(restarts);
  return counts;
}

/** Until every node answers /healthz with no degradation. */
export async function waitHealthy(nodes: readonly NemesisNode[], ms: number, anomalies: Anomaly[]): Promise<void> {
  const deadline = Date.now() + ms;
  for (const node of nodes) {
    for (;;) {
      const health = await request(node.url, "GET", "/healthz", undefined, 2_000).catch(() => undefined);
      if (health?.status === 200 && health.json["degraded"] === undefined) break;
      if (Date.now() > deadline) {
        anomalies.push({
          kind: "liveness",
          detail: `${node.id} not healthy ${ms} ms after healing: ${JSON.stringify(health?.json)}`,
        });
        break;
      }
      await sleep(100);
    }
  }
}

/** After healing: every stream session takes a write through every node, and every node lists every session. */
export async function liveness(
  nodes: readonly NemesisNode[],
  streams: readonly string[],
  ops: AppendOp[],
  anomalies: Anomaly[],
  within = LIVENESS_MS,
): Promise<number> {
  const started = Date.now();
  await Promise.all(
    streams.flatMap((id) =>
      nodes.map(async (node) => {
        for (let n = 0; ; n++) {
          const value = `live-${node.id}-${id}-${n}`;
          const at = Date.now();
          const outcome = await append(node, id, value);
          ops.push({ value, session: id, node: node.id, outcome, at });
          if (outcome.kind === "ok") return;
          if (Date.now() - started > within) {
            anomalies.push({
              kind: "liveness",
              detail: `${id} refused writes through ${node.id} ${within} ms after healing: ${JSON.stringify(outcome)}`,
            });
            return;
          }
          await sleep(50);
        }
      }),
    ),
  );
  return Date.now() - started;
}

/**
 * Each session's log from Redis and from every node, once every node's copy reached Redis's head
 * (a node copies on demand: the read itself asks it to).
 */
async function finalLogs(cluster: NemesisCluster, ids: readonly string[], anomalies: Anomaly[]): Promise<FinalLog[]> {
  const client = await connectRedis([`redis://127.0.0.1:${cluster.redis.port}`]);
  try {
    const log = new RedisLog(client, "sb:");
    const logs: FinalLog[] = [];
    for (const id of ids) {
      const read = async () =>
        (await log.read(id, 1, "+", 1_000_000)).map(
          (e) => JSON.parse(JSON.stringify(eventOf(e))) as Record<string, unknown>,
        );
      const events = await read();
      const head = (events.at(-1)?.["seq"] as number | undefined) ?? 0;
      for (const node of cluster.nodes) {
        const deadline = Date.now() + 15_000;
        for (;;) {
          const mine = await readAll(node, id).catch((error: Error) => error);
          const reached = !(mine instanceof Error) && ((mine.at(-1)?.["seq"] as number | undefined) ?? 0) >= head;
          if (reached || Date.now() > deadline) {
            if (mine instanceof Error)
              anomalies.push({ kind: "liveness", detail: `${node.id} cannot serve ${id}: ${mine.message}` });
            else logs.push({ session: id, from: node.id, events: mine });
            break;
          }
          await sleep(200);
        }
      }
      // Read again after the nodes: a PTY still running went on writing meanwhile.
      logs.push({ session: id, from: "record", events: await read(), reached: events.length });
    }
    return logs;
  } finally {
    client.disconnect();
  }
}

export async function readAll(node: NemesisNode, id: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for (let since = 0; ;) {
    const res = await request(node.url, "GET", `/v1/sessions/${id}/events?since=${since}&limit=1000`);
    if (res.status !== 200) throw new Error(`GET events answered ${res.status}: ${JSON.stringify(res.json)}`);
    const events = res.json["events"] as Array<Record<string, unknown>>;
    if (events.length === 0) return out;
    out.push(...events);
    since = res.json["next"] as number;
  }
}

/** The report as a table for the run's output and docs/cluster.md. */
export function reportTable(r: NemesisReport): string {
  const faults = FAULT_KINDS.map((k) => `${k} ${r.faults[k]}`).join(", ");
  const kinds = new Map<string, number>();
  for (const a of r.anomalies) kinds.set(a.kind, (kinds.get(a.kind) ?? 0) + 1);
  const byFault = FAULT_KINDS.map((k) => `${k} ${r.unavailableByFault[k]}`).join(", ");
  return [
    `longest without an append, by fault (ms): ${byFault}`,
    `| seed | appends ok / refused / unknown | faults | events | viewer connections | longest without an append | liveness after healing | anomalies |`,
    `| ${r.seed} | ${r.ops.ok} / ${r.ops.fail} / ${r.ops.info} | ${faults} | ${r.events} | ${r.viewers.connections} | ${r.longestUnavailableMs} ms | ${r.livenessMs} ms | ${r.anomalies.length === 0 ? 0 : [...kinds].map(([k, n]) => `${k} ${n}`).join(", ")} |`,
  ].join("\n");
}
