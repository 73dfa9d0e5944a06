/**
 * Cluster delivery against socket.io (docs/benchmarks.md, "Cluster delivery against socket.io"):
 * three `switchboard serve --redis` nodes beside three socket.io 4.8 nodes with
 * `@socket.io/redis-streams-adapter` (connection state recovery on), both on one redis-server this
 * module starts. A producer on the first node, 20 subscribers on the other two; rounds alternate
 * which side goes first. Per side: throughput, latency at 200 msg/s with the nodes' CPU per 1,000
 * deliveries (/proc), messages lost or duplicated when every subscriber is cut for 2 s and
 * resumes, the nodes' idle CPU, and the Redis memory a retained message takes.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocket } from "ws";
import { io as sioClient } from "socket.io-client";
import type { Socket as SioSocket } from "socket.io-client";
import { connectRedis } from "../src/cluster/redis-client.js";
import type { RedisClient } from "../src/cluster/redis-client.js";
import { childNode, redisServer } from "./cluster.js";
import { compiledCommand } from "./compiled.js";
import type { ChildNode } from "./cluster.js";
import type { BenchRow, BenchSection } from "./types.js";
import { fmt, median, percentile } from "./stats.js";
import { cpuMs } from "./proc.js";

/** Rounds per side; SWITCHBOARD_BENCH_ROUNDS sets more, for a steadier median (each round ~40 s). */
const ROUNDS = Number(process.env["SWITCHBOARD_BENCH_ROUNDS"] ?? 3);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  const given = process.env["SWITCHBOARD_BENCH_ROUNDS"];
  throw new Error(`SWITCHBOARD_BENCH_ROUNDS must be a whole number of rounds, 1 or more (got "${given}")`);
}
const SUBSCRIBERS = 20;
/** Throughput: messages sent back to back, until every subscriber has them all. */
const BURST_MESSAGES = 2_000;
const RATE = 200;
const PACED_MS = 5_000;
/** Resume: paced as above; every subscriber's connection is cut this far in, for CUT_MS. */
const CUT_AT_MS = 1_000;
const CUT_MS = 2_000;
/** As bench/cluster-idle.ts: start-up (heap shrinks of the main thread and workers) settles within this. */
const IDLE_WARMUP_MS = 40_000;
const IDLE_MS = 20_000;
/** A run whose deliveries are not all in this long after its last send is counted as it stands. */
const DRAIN_MS = 30_000;
const TOKEN = "bench-token-0123456789abcdef";

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cpuOf = (pids: readonly number[]) => pids.reduce((sum, pid) => sum + cpuMs(pid), 0);

/** A message as both sides carry it: its index in the run and when it was due. */
interface Message {
  i: number;
  t: number;
}

/** One run's subscribers: what each received (message indexes, in order) and every latency. */
export class Receipts {
  readonly got: number[][] = Array.from({ length: SUBSCRIBERS }, () => []);
  readonly latencies: number[] = [];
  received(sub: number, m: Message): void {
    this.got[sub]!.push(m.i);
    if (m.t > 0) this.latencies.push(now() - m.t);
  }
  /** Subscribers that have every index below `count`. */
  complete(count: number): number {
    return this.got.filter((g) => new Set(g).size >= count).length;
  }
  async drained(count: number): Promise<void> {
    const deadline = Date.now() + DRAIN_MS;
    while (this.complete(count) < SUBSCRIBERS && Date.now() < deadline) await sleep(5);
  }
  lost(count: number): number {
    return this.got.reduce((sum, g) => sum + count - new Set(g.filter((i) => i < count)).size, 0);
  }
  duplicated(): number {
    return this.got.reduce((sum, g) => sum + g.length - new Set(g).size, 0);
  }
}

/** One topic on one side: a producer's sends and the subscribers that receive them. */
interface Topic {
  publish(m: Message): void;
  /** Cuts subscriber `sub`'s connection; it resumes `CUT_MS` later. */
  cut(sub: number): void;
  /** Redis bytes per retained message of this topic. */
  redisBytesPerMessage(): Promise<number>;
  close(): Promise<void>;
}

interface Side {
  label: string;
  pids: number[];
  open(receipts: Receipts): Promise<Topic>;
  /** Closes the producer's connection. */
  end(): void;
}

/* ---- Switchboard ---- */

async function http(base: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

function v1ws(base: string): WebSocket {
  return new WebSocket(`${base.replace(/^http/, "ws")}/v1/ws`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
    perMessageDeflate: false,
  });
}

interface V1Frame {
  op: string;
  code?: string;
  message?: string;
  event?: { seq: number; name?: string; data?: Message };
  events?: Array<{ seq: number; name?: string; data?: Message }>;
}

export async function switchboardSide(nodes: ChildNode[], redis: RedisClient): Promise<Side> {
  const [owner, ...others] = nodes.map((n) => n.url) as [string, ...string[]];
  // One producer connection for the whole bench, as a producer that streams events would keep.
  const producer = v1ws(owner);
  const errors: string[] = [];
  producer.on("message", (raw) => {
    const f = JSON.parse(raw.toString()) as V1Frame;
    if (f.op === "error") errors.push(`${f.code}: ${f.message}`);
  });
  await new Promise((resolve, reject) => producer.once("open", resolve).once("error", reject));
  let ref = 0;
  return {
    label: "Switchboard",
    end: () => producer.terminate(),
    pids: nodes.map((n) => n.child.pid!),
    async open(receipts) {
      const { id } = (await http(owner, "POST", "/v1/sessions", { kind: "stream" })) as { id: string };
      const subscribers = Array.from({ length: SUBSCRIBERS }, (_, sub) => {
        const base = others[sub % others.length]!;
        const state = { ws: undefined as WebSocket | undefined, since: 0 };
        let ready!: () => void;
        const subscribed = new Promise<void>((resolve) => (ready = resolve));
        const connect = () => {
          const ws = v1ws(base);
          state.ws = ws;
          const onEvent = (e: { seq: number; name?: string; data?: Message }) => {
            state.since = e.seq;
            if (e.name === "m" && e.data) receipts.received(sub, e.data);
          };
          ws.on("message", (raw) => {
            const f = JSON.parse(raw.toString()) as V1Frame;
            if (f.op === "event") onEvent(f.event!);
            else if (f.op === "events") for (const e of f.events!) onEvent(e);
            else if (f.op === "hello") ws.send(JSON.stringify({ op: "subscribe", session: id, since: state.since }));
            else if (f.op === "subscribed") ready();
            else if (f.op === "error") errors.push(`subscriber: ${f.code}: ${f.message}`);
          });
          ws.on("error", (error) => errors.push(`subscriber: ${error.message}`));
        };
        connect();
        return { state, subscribed, connect };
      });
      await Promise.all(subscribers.map((s) => s.subscribed));
      return {
        publish(m) {
          const events = [{ type: "m", data: m }];
          producer.send(JSON.stringify({ op: "append", session: id, events, ref: ++ref }));
        },
        cut(sub) {
          const s = subscribers[sub]!;
          s.state.ws!.terminate();
          setTimeout(s.connect, CUT_MS);
        },
        async redisBytesPerMessage() {
          const keys = await redis.keys(`*{${id}}*`);
          const bytes = await Promise.all(keys.map((k) => redis.call("MEMORY", "USAGE", k, "SAMPLES", "0")));
          const { head } = (await http(owner, "GET", `/v1/sessions/${id}`)) as { head: number };
          return bytes.reduce((sum: number, b) => sum + Number(b), 0) / head;
        },
        async close() {
          for (const s of subscribers) s.state.ws?.terminate();
          await http(owner, "DELETE", `/v1/sessions/${id}?purge=1&force=true`);
          if (errors.length > 0) throw new Error(`Switchboard errors: ${errors.slice(0, 3).join("; ")}`);
        },
      };
    },
  };
}

/* ---- socket.io ---- */

/** A bench/cluster-peers-*.ts node in a child process, once it listens. */
export async function scriptNode(script: string, redisUrl: string): Promise<{ url: string; child: ChildProcess }> {
  const [node, js] = compiledCommand(script);
  const child = spawn(node!, [js!, redisUrl], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`${script} exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

async function connected(socket: SioSocket): Promise<void> {
  if (socket.connected) return;
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
}

export async function socketIoSide(
  nodes: Array<{ url: string; child: ChildProcess }>,
  redis: RedisClient,
): Promise<Side> {
  const [owner, ...others] = nodes.map((n) => n.url) as [string, ...string[]];
  const producer = sioClient(owner, { transports: ["websocket"], auth: { role: "pub" } });
  await connected(producer);
  return {
    label: "socket.io",
    end: () => producer.disconnect(),
    pids: nodes.map((n) => n.child.pid!),
    async open(receipts) {
      const subscribers = Array.from({ length: SUBSCRIBERS }, (_, sub) => {
        const socket = sioClient(others[sub % others.length]!, {
          transports: ["websocket"],
          auth: { role: "sub" },
          forceNew: true,
          // A cut connection comes back CUT_MS later, as Switchboard's subscribers do.
          reconnectionDelay: CUT_MS,
          reconnectionDelayMax: CUT_MS,
          randomizationFactor: 0,
        });
        socket.on("m", (m: Message) => receipts.received(sub, m));
        return socket;
      });
      await Promise.all(subscribers.map(connected));
      return {
        publish(m) {
          producer.emit("pub", m, () => undefined);
        },
        cut(sub) {
          // The transport closes under the socket: the server keeps its state for recovery.
          subscribers[sub]!.io.engine.close();
        },
        async redisBytesPerMessage() {
          const bytes = Number(await redis.call("MEMORY", "USAGE", "socket.io", "SAMPLES", "0"));
          return bytes / (await redis.xlen("socket.io"));
        },
        async close() {
          for (const s of subscribers) s.disconnect();
        },
      };
    },
  };
}

/* ---- the floor: XADD, XREAD BLOCK, WebSocket (bench/cluster-peers-floor.ts) ---- */

function floorWs(base: string, query: string): WebSocket {
  return new WebSocket(`${base.replace(/^http/, "ws")}/?${query}`, { perMessageDeflate: false });
}

const opened = (ws: WebSocket) => new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));

export async function floorSide(nodes: Array<{ url: string; child: ChildProcess }>, redis: RedisClient): Promise<Side> {
  const [owner, ...others] = nodes.map((n) => n.url) as [string, ...string[]];
  const producer = floorWs(owner, "role=pub");
  await opened(producer);
  return {
    label: "floor",
    end: () => producer.terminate(),
    pids: nodes.map((n) => n.child.pid!),
    async open(receipts) {
      const subscribers = Array.from({ length: SUBSCRIBERS }, (_, sub) => {
        const base = others[sub % others.length]!;
        const state = { ws: undefined as WebSocket | undefined, last: "" };
        const connect = () => {
          const ws = floorWs(base, state.last ? `role=sub&since=${state.last}` : "role=sub");
          state.ws = ws;
          ws.on("message", (raw) => {
            const text = raw.toString();
            const space = text.indexOf(" ");
            state.last = text.slice(0, space);
            receipts.received(sub, JSON.parse(text.slice(space + 1)) as Message);
          });
          return opened(ws);
        };
        return { state, connect, ready: connect() };
      });
      await Promise.all(subscribers.map((s) => s.ready));
      return {
        publish(m) {
          producer.send(JSON.stringify(m));
        },
        cut(sub) {
          const s = subscribers[sub]!;
          s.state.ws!.terminate();
          setTimeout(() => void s.connect(), CUT_MS);
        },
        async redisBytesPerMessage() {
          const bytes = Number(await redis.call("MEMORY", "USAGE", "floor", "SAMPLES", "0"));
          return bytes / (await redis.xlen("floor"));
        },
        async close() {
          for (const s of subscribers) s.state.ws?.terminate();
        },
      };
    },
  };
}

/* ---- runs ---- */

/** Sends `count` messages, each at its due time at `rate` a second; `at(ms)` runs once `ms` in. */
export async function paced(topic: Topic, count: number, at?: { ms: number; run: () => void }): Promise<void> {
  const started = now();
  let fired = false;
  for (let sent = 0; sent < count;) {
    const elapsed = now() - started;
    if (at && !fired && elapsed >= at.ms) {
      fired = true;
      at.run();
    }
    const due = Math.min(count, Math.floor((elapsed / 1000) * RATE) + 1);
    for (; sent < due; sent++) topic.publish({ i: sent, t: started + (sent / RATE) * 1000 });
    await sleep(1);
  }
}

interface RoundResult {
  throughput: number;
  p50: number;
  p99: number;
  /** Node CPU ms per 1,000 deliveries in the paced run; Redis's beside it. */
  cpu: number;
  redisCpu: number;
  lost: number;
  duplicated: number;
  bytesPerMessage: number;
  complete: boolean;
}

/** Throughput: messages back to back until every subscriber has them all. */
async function burstPhase(side: Side): Promise<Pick<RoundResult, "throughput" | "complete">> {
  const burst = new Receipts();
  const topic = await side.open(burst);
  const t0 = now();
  for (let i = 0; i < BURST_MESSAGES; i++) topic.publish({ i, t: 0 });
  await burst.drained(BURST_MESSAGES);
  const throughput = (BURST_MESSAGES / (now() - t0)) * 1000;
  await topic.close();
  return { throughput, complete: burst.complete(BURST_MESSAGES) === SUBSCRIBERS };
}

/** Latency and CPU at RATE. */
async function pacedPhase(
  side: Side,
  redisPid: number,
): Promise<Pick<RoundResult, "p50" | "p99" | "cpu" | "redisCpu" | "bytesPerMessage" | "complete">> {
  const count = Math.round((RATE * PACED_MS) / 1000);
  const live = new Receipts();
  const topic = await side.open(live);
  const cpu0 = cpuOf(side.pids);
  const redis0 = cpuMs(redisPid);
  await paced(topic, count);
  await live.drained(count);
  const deliveries = live.latencies.length / 1000;
  const cpu = (cpuOf(side.pids) - cpu0) / deliveries;
  const redisCpu = (cpuMs(redisPid) - redis0) / deliveries;
  const bytesPerMessage = await topic.redisBytesPerMessage();
  await topic.close();
  live.latencies.sort((a, b) => a - b);
  return {
    p50: percentile(live.latencies, 50),
    p99: percentile(live.latencies, 99),
    cpu,
    redisCpu,
    bytesPerMessage,
    complete: live.complete(count) === SUBSCRIBERS,
  };
}

/** Resume: every subscriber cut for CUT_MS, CUT_AT_MS into a paced run. */
async function cutPhase(side: Side): Promise<Pick<RoundResult, "lost" | "duplicated">> {
  const count = Math.round((RATE * PACED_MS) / 1000);
  const resumed = new Receipts();
  const topic = await side.open(resumed);
  await paced(topic, count, {
    ms: CUT_AT_MS,
    run: () => {
      for (let sub = 0; sub < SUBSCRIBERS; sub++) topic.cut(sub);
    },
  });
  await resumed.drained(count);
  await topic.close();
  return { lost: resumed.lost(count), duplicated: resumed.duplicated() };
}

/**
 * One round of every side, phase by phase: each side's burst, then each side's paced run, then
 * each side's cut, in `order`. The sides' runs of one measure follow each other within seconds,
 * so the machine's swings (minutes long on a shared 2-core host) weigh on them alike.
 */
async function round(sides: readonly Side[], order: readonly number[], redisPid: number): Promise<RoundResult[]> {
  const bursts = new Map<number, Awaited<ReturnType<typeof burstPhase>>>();
  const paces = new Map<number, Awaited<ReturnType<typeof pacedPhase>>>();
  const cuts = new Map<number, Awaited<ReturnType<typeof cutPhase>>>();
  for (const k of order) bursts.set(k, await burstPhase(sides[k]!));
  for (const k of order) paces.set(k, await pacedPhase(sides[k]!, redisPid));
  for (const k of order) cuts.set(k, await cutPhase(sides[k]!));
  return sides.map((_, k) => {
    const [burst, pace, cut] = [bursts.get(k)!, paces.get(k)!, cuts.get(k)!];
    return { ...burst, ...pace, ...cut, complete: burst.complete && pace.complete };
  });
}

export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-cluster-peers-"));
  const loadAtStart = loadavg()[0]!;
  const server = await redisServer(dir);
  const redis = await connectRedis([server.url]);
  const processes: ChildProcess[] = [server.child];
  const sides: Side[] = [];
  try {
    const sbNodes: ChildNode[] = [];
    for (const name of ["n1", "n2", "n3"]) sbNodes.push(await childNode(dir, name, server.url));
    const sioNodes = [];
    for (let i = 0; i < 3; i++) sioNodes.push(await scriptNode("bench/cluster-peers-sio.ts", server.url));
    const floorNodes = [];
    for (let i = 0; i < 3; i++) floorNodes.push(await scriptNode("bench/cluster-peers-floor.ts", server.url));
    processes.push(...[...sbNodes, ...sioNodes, ...floorNodes].map((n) => n.child));

    // Idle: both clusters up, no client, after start-up settles.
    await sleep(IDLE_WARMUP_MS);
    const pids = { sb: sbNodes.map((n) => n.child.pid!), sio: sioNodes.map((n) => n.child.pid!) };
    const idle0 = new Map([...pids.sb, ...pids.sio].map((pid) => [pid, cpuMs(pid)]));
    await sleep(IDLE_MS);
    const idleShare = (pid: number) => (cpuMs(pid) - idle0.get(pid)!) / IDLE_MS;
    const idle = { sb: pids.sb.map(idleShare), sio: pids.sio.map(idleShare) };

    sides.push(await switchboardSide(sbNodes, redis));
    sides.push(await socketIoSide(sioNodes, redis));
    sides.push(await floorSide(floorNodes, redis));
    // One warm-up round (JIT, connections), not counted.
    await round(sides, [0, 1, 2], server.child.pid!);
    const byRound: RoundResult[][] = [[], [], []];
    for (let r = 0; r < ROUNDS; r++) {
      // Who goes first turns each round.
      const order = sides.map((_, j) => (j + r) % sides.length);
      const results = await round(sides, order, server.child.pid!);
      results.forEach((result, k) => {
        byRound[k]!.push(result);
        process.stderr.write(`bench: cluster-peers ${sides[k]!.label} round ${r + 1}: ${JSON.stringify(result)}\n`);
      });
    }
    const results = { sb: byRound[0]!, sio: byRound[1]!, floor: byRound[2]! };

    const ratio = (pick: (r: RoundResult) => number) =>
      median(results.sb.map((r, i) => pick(r) / pick(results.sio[i]!)));
    const med = (runs: RoundResult[], pick: (r: RoundResult) => number) => median(runs.map(pick));
    const row = (
      measure: string,
      pick: (r: RoundResult) => number,
      unit: string,
      digits: number,
      goal?: { text: string; ok: (ratio: number) => boolean },
    ): BenchRow => {
      const x = ratio(pick);
      return {
        measure,
        ours: `${fmt(med(results.sb, pick), digits)}${unit}`,
        baseline: `${fmt(med(results.sio, pick), digits)}${unit} (socket.io)`,
        ratio: `${fmt(x, 2)}×`,
        ...(goal ? { goal: goal.text, met: goal.ok(x) } : {}),
      };
    };
    const sum = (runs: RoundResult[], pick: (r: RoundResult) => number) => runs.reduce((s, r) => s + pick(r), 0);
    const exact = sum(results.sb, (r) => r.lost + r.duplicated) === 0;
    const idleBusiest = { sb: Math.max(...idle.sb), sio: Math.max(...idle.sio) };
    const pct = (s: number) => `${fmt(s * 100, 2)}%`;
    const complete = [...results.sb, ...results.sio].every((r) => r.complete);
    const rows: BenchRow[] = [
      row("throughput to all 20 subscribers", (r) => r.throughput, " msg/s", 0, { text: "≥ 1.0×", ok: (x) => x >= 1 }),
      row(`latency p50 at ${RATE} msg/s`, (r) => r.p50, " ms", 2),
      row(`latency p99 at ${RATE} msg/s`, (r) => r.p99, " ms", 2, { text: "≤ 1.2×", ok: (x) => x <= 1.2 }),
      row("node CPU per 1,000 deliveries (3 nodes)", (r) => r.cpu, " ms", 1, { text: "≤ 1.0×", ok: (x) => x <= 1 }),
      {
        measure: `lost / duplicated after a ${CUT_MS / 1000} s cut of every subscriber, all rounds`,
        ours: `${sum(results.sb, (r) => r.lost)} / ${sum(results.sb, (r) => r.duplicated)}`,
        baseline: `${sum(results.sio, (r) => r.lost)} / ${sum(results.sio, (r) => r.duplicated)} (socket.io)`,
        goal: "0 / 0",
        met: exact,
      },
      {
        measure: "idle CPU, busiest of 3 nodes (share of one core)",
        ours: pct(idleBusiest.sb),
        baseline: `${pct(idleBusiest.sio)} (socket.io)`,
        ratio: `${fmt(idleBusiest.sb / idleBusiest.sio, 2)}×`,
        goal: "≤ 2×",
        met: idleBusiest.sb <= 2 * idleBusiest.sio,
      },
      row("Redis memory per retained message", (r) => r.bytesPerMessage, " B", 0),
    ];
    const runs = (runs: RoundResult[], pick: (r: RoundResult) => number, digits: number) =>
      runs.map((r) => fmt(pick(r), digits)).join(", ");
    const both = (name: string, pick: (r: RoundResult) => number, digits: number) =>
      `${name}: Switchboard ${runs(results.sb, pick, digits)}; socket.io ${runs(results.sio, pick, digits)}.`;
    return {
      title: "Cluster delivery against socket.io",
      rows,
      tables: [
        [
          "| medians | Switchboard | socket.io | floor | Switchboard ÷ floor |",
          "| --- | --- | --- | --- | --- |",
          ...(
            [
              ["throughput (msg/s)", (r: RoundResult) => r.throughput, 0],
              [`latency p50 at ${RATE} msg/s (ms)`, (r: RoundResult) => r.p50, 2],
              [`latency p99 at ${RATE} msg/s (ms)`, (r: RoundResult) => r.p99, 2],
              ["node CPU per 1,000 deliveries (ms)", (r: RoundResult) => r.cpu, 1],
              ["redis-server CPU per 1,000 deliveries (ms)", (r: RoundResult) => r.redisCpu, 1],
            ] as const
          ).map(
            ([name, pick, digits]) =>
              `| ${name} | ${fmt(med(results.sb, pick), digits)} | ${fmt(med(results.sio, pick), digits)} | ${fmt(med(results.floor, pick), digits)} | ${fmt(median(results.sb.map((r, i) => pick(r) / pick(results.floor[i]!))), 2)}× |`,
          ),
        ].join("\n"),
      ],
      method: [
        `\`npm run bench -- cluster-peers\`: one redis-server (AOF off) for both; three \`switchboard serve --redis\` nodes and three socket.io 4.8 nodes (\`@socket.io/redis-streams-adapter\`, connection state recovery on, WebSocket only), each a child process on JavaScript compiled once per run (esbuild, bench/compiled.ts), not under \`--import tsx\`.`,
        `A producer on the first node (Switchboard: one \`append\` frame per message on \`/v1/ws\` to a stream session; socket.io: one \`emit\` with an ack, broadcast to a room); ${SUBSCRIBERS} subscribers, half on each other node, all in this process.`,
        `Per round and side: ${fmt(BURST_MESSAGES)} messages back to back (throughput: until all subscribers have all); ${fmt((RATE * PACED_MS) / 1000)} at ${RATE}/s (latency from each message's due time; node CPU from /proc schedstat over the run and its drain); the same paced run with every subscriber's connection cut ${CUT_AT_MS / 1000} s in, back ${CUT_MS / 1000} s later on the same node (Switchboard: \`subscribe\` since the last seq; socket.io: its own reconnect and recovery).`,
        "The floor: three plain Node processes doing the least a Redis-backed fan-out does (the producer's messages each one `XADD` to one stream; each node reads it with `XREAD BLOCK` and sends each entry to its subscribers; a resume is an `XRANGE` after the last id, not exact at the boundary).",
        `${ROUNDS} rounds after one warm-up round; a round runs phase by phase (every side's burst, then every side's paced run, then every side's cut), the side that goes first turning, so that the sides' runs of one measure are seconds apart; ratios are medians of per-round ratios. Idle: ${IDLE_MS / 1000} s with no client, after ${IDLE_WARMUP_MS / 1000} s of start-up. Redis memory: \`MEMORY USAGE\` of the topic's keys ÷ its messages (socket.io trims its stream to ~10,000).`,
      ],
      notes: [
        `Load average (1 min) at the start and the end: ${fmt(loadAtStart, 1)} and ${fmt(loadavg()[0]!, 1)} on ${cpus().length} cores.${complete ? "" : " Some run did not deliver every message within the drain: see the runs."}`,
        both("Throughput runs (messages/s)", (r) => r.throughput, 0),
        both("Latency p50/p99 (ms)", (r) => r.p50, 2) + " " + both("p99", (r) => r.p99, 2),
        both("Node CPU per 1,000 deliveries (ms)", (r) => r.cpu, 1) + " " + both("redis-server", (r) => r.redisCpu, 1),
        both("Lost", (r) => r.lost, 0) + " " + both("Duplicated", (r) => r.duplicated, 0),
        `Floor runs: throughput ${runs(results.floor, (r) => r.throughput, 0)} msg/s; p50 ${runs(results.floor, (r) => r.p50, 2)} ms, p99 ${runs(results.floor, (r) => r.p99, 2)} ms; node CPU per 1,000 deliveries ${runs(results.floor, (r) => r.cpu, 1)} ms; lost ${runs(results.floor, (r) => r.lost, 0)}, duplicated ${runs(results.floor, (r) => r.duplicated, 0)}.`,
        `Idle, each node: Switchboard ${idle.sb.map(pct).join(", ")}; socket.io ${idle.sio.map(pct).join(", ")}.`,
      ],
    };
  } finally {
    for (const side of sides) side.end();
    redis.disconnect();
    for (const p of processes) p.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}
