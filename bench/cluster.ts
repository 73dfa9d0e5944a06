/**
 * Cluster mode on Redis (docs/cluster.md), each figure beside its baseline in the same run:
 * appends through the shared log beside bare pipelined XADDs on the same Redis; a resume of missed
 * events on a node that copies the session beside the same resume on its owner; a PTY flood to a
 * viewer on another node beside a viewer of a single node (and raw node-pty); fan-out from three
 * nodes beside one node; Redis memory per MB of retained output. Redis is a redis-server this
 * module starts (AOF off: the figures are the gateway's cost, not the disk's).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocket } from "ws";
import { connectRedis } from "../src/cluster/redis-client.js";
import { RedisLog } from "../src/cluster/redis-log.js";
import type { StoredEntry } from "../src/log/store.js";
import type { RedisClient } from "../src/cluster/redis-client.js";
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { parseConfig } from "../src/server/config/config.js";
import { createLogger } from "../src/server/ops/logger.js";
import { SessionFeed } from "../src/server/ws/feed.js";
import type { SessionLog } from "../src/log/session-log.js";
import { RemoteSession } from "../src/sessions/remote-session.js";
import { readBinaryOutput } from "../src/protocol/index.js";
import type { BenchSection } from "./types.js";
import { compiledCommand } from "./compiled.js";
import { measureRawPty, PTY_BENCH_BYTES, PTY_BENCH_COMMAND } from "./pty.js";
import { fmt, median, met, percentile, sideBySide } from "./stats.js";
import { listeningUrl } from "./proc.js";

const APPEND_EVENTS = 20_000;
const RESUME_EVENTS = 100_000;
const PAYLOAD = "x".repeat(1024 - 80); // ~1 KB serialized events
const ROUNDS = 3;
const PTY_ROUNDS = 3;
/** Fan-out: clients per node, events per second, how long (after a warm-up of the same load). */
const FANOUT_CLIENTS_PER_NODE = 150;
const FANOUT_RATE = 100;
const FANOUT_MS = 5000;
const FANOUT_WARMUP_MS = 1000;
const FANOUT_ROUNDS = 3;
const TOKEN = "bench-token-0123456789abcdef";
// Input frames unbounded by rate: the keystroke bursts (10 frames at once, back to back) measure
// forwarding, not `limits.inputFramesPerSecond` (500 a second per connection).
const CONFIG = {
  limits: { connectionsPerToken: 5000, sessionsPerToken: 200, sessions: 500, inputFramesPerSecond: 100_000 },
};
/** One step (a flood, a fan-out run, a node catching up) that takes longer than this is broken, not slow. */
const STEP_TIMEOUT_MS = 120_000;

const now = (): number => performance.timeOrigin + performance.now();
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export async function redisServer(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("Ready to accept connections")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`redis-server exited (${code})`)));
  });
  return { url: `redis://127.0.0.1:${port}`, child };
}

/** A gateway in this process (the append and resume rows read its log directly). */
async function node(dir: string, url: string | undefined, name: string): Promise<Gateway> {
  return startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir: join(dir, name),
    token: TOKEN,
    logger: createLogger({ level: "silent" }),
    watchConfig: false,
    config: parseConfig(CONFIG),
    ...(url !== undefined ? { cluster: { redis: [url], nodeId: name } } : {}),
  });
}

/** `switchboard serve` in a child process, as a node is run; `redis` undefined: a single node. */
export interface ChildNode {
  url: string;
  child: ChildProcess;
}

/** A `switchboard serve` node compiled from `checkout` (this one by default), once it listens. */
export async function childNode(
  dir: string,
  name: string,
  redis: string | undefined,
  checkout?: string,
): Promise<ChildNode> {
  const config = join(dir, `${name}.json`);
  writeFileSync(config, JSON.stringify(CONFIG));
  const [node, main] = compiledCommand("src/cli/main.ts", checkout);
  const args = [main!, "serve", "--token", TOKEN, "--host", "127.0.0.1"];
  args.push("--port", "0", "--data-dir", join(dir, name), "--config", config);
  if (redis) args.push("--redis", redis, "--node-id", name);
  const child = spawn(node!, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const url = await listeningUrl(child, name, () => stderr);
  // A node that dies during the run says why (the bench kills them with SIGKILL at the end).
  child.on("exit", (code, signal) => {
    if (signal !== "SIGKILL") process.stderr.write(`bench: node ${name} exited (${code ?? signal}): ${stderr}\n`);
  });
  return { url, child };
}

async function http(base: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  }).catch((error: Error) => {
    throw new Error(`${method} ${base}${path}: ${error.message} (${String(error.cause)})`);
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/** Waits until `base` lists session `id` (a node copies a session shortly after its owner creates it). */
async function known(base: string, id: string): Promise<void> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    const res = await fetch(`${base}/v1/sessions/${id}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    await res.arrayBuffer();
    if (res.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${base} never listed session ${id}`);
    await sleep(5);
  }
}

function logOf(gw: Gateway, id: string): SessionLog {
  return gw.core.sessions.get(id)!.log;
}

/* ---- append ---- */

/**
 * Events/s appended to a stream session's log on its owner, until Redis and the replica have them
 * all (published). The session's first event is published before the clock starts: a session is
 * claimed in Redis once, when it is new, not per event (a terminal's output comes after it started).
 */
async function appendThroughGateway(gw: Gateway): Promise<number> {
  const session = gw.core.sessions.createStream({ id: "token:bench", name: "bench" }, undefined);
  session.log.append({ type: "custom", name: "bench", data: "first" });
  await session.log.whenPublished();
  const t0 = performance.now();
  for (let i = 0; i < APPEND_EVENTS; i++) {
    session.log.append({ type: "custom", name: "bench", data: PAYLOAD });
    // As a producer held back by the backlog would (see StoreBacklog.room).
    const room = session.log.backlog.room();
    if (room) await room;
  }
  await session.log.whenPublished();
  return (APPEND_EVENTS / (performance.now() - t0)) * 1000;
}

/** Baseline: the same events as bare XADDs with explicit ids, pipelined 1000 at a time. */
async function bareXadd(redis: RedisClient, round: number): Promise<number> {
  const key = `bench:{raw${round}}:log`;
  const t0 = performance.now();
  for (let i = 0; i < APPEND_EVENTS; i += 1000) {
    const pipeline = redis.pipeline();
    for (let j = i; j < Math.min(APPEND_EVENTS, i + 1000); j++)
      pipeline.xadd(
        key,
        `${j + 1}-0`,
        "t",
        "custom",
        "j",
        JSON.stringify({ seq: j + 1, ts: 0, type: "custom", name: "bench", data: PAYLOAD }),
      );
    await pipeline.exec();
  }
  const rate = (APPEND_EVENTS / (performance.now() - t0)) * 1000;
  await redis.del(key);
  return rate;
}

/**
 * Floor: the bare pipelined XADDs with the same events committed to a SQLite file beside them in
 * this process, each pipeline's rows while Redis applies it: what the owner does at the least.
 */
async function bareXaddAndSqlite(redis: RedisClient, db: Database.Database, round: number): Promise<number> {
  const key = `bench:{rawsql${round}}:log`;
  const insert = db.prepare("INSERT INTO events (session, seq, type, json) VALUES (?, ?, ?, ?)");
  const commit = db.transaction((rows: string[], from: number) => {
    for (let k = 0; k < rows.length; k++) insert.run(key, from + k, "custom", rows[k]);
  });
  const t0 = performance.now();
  for (let i = 0; i < APPEND_EVENTS; i += 1000) {
    const pipeline = redis.pipeline();
    const rows: string[] = [];
    for (let j = i; j < Math.min(APPEND_EVENTS, i + 1000); j++) {
      const json = JSON.stringify({ seq: j + 1, ts: 0, type: "custom", name: "bench", data: PAYLOAD });
      rows.push(json);
      pipeline.xadd(key, `${j + 1}-0`, "t", "custom", "j", json);
    }
    const applied = pipeline.exec();
    commit(rows, i + 1);
    await applied;
  }
  const rate = (APPEND_EVENTS / (performance.now() - t0)) * 1000;
  await redis.del(key);
  db.prepare("DELETE FROM events WHERE session = ?").run(key);
  return rate;
}

/** After each append run, the bench waits this long (untimed) so the copying nodes finish before the next run. */
const APPEND_SETTLE_MS = 1000;

/** CPU ms used by this process (the owner), Redis and the copying nodes. */
interface CpuSplit {
  self: number;
  redis: number;
  copies: number;
}

function cpuSplit(redisPid: number, copierPids: readonly number[]): CpuSplit {
  const usage = process.cpuUsage();
  return {
    self: (usage.user + usage.system) / 1000,
    redis: cpuMs(redisPid) ?? Number.NaN,
    copies: copierPids.reduce((sum, pid) => sum + (cpuMs(pid) ?? Number.NaN), 0),
  };
}

/** Medians of CPU splits, per 1,000 appended events. */
function cpuNote(runs: readonly CpuSplit[]): string {
  const per = (pick: (c: CpuSplit) => number) => fmt(median(runs.map(pick)) / (APPEND_EVENTS / 1000), 1);
  return `${per((c) => c.self)} / ${per((c) => c.redis)} / ${per((c) => c.copies)}`;
}

/** CPU milliseconds (user + system, every thread) a process has used so far; undefined where /proc is not. */
function cpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    // Not Linux: the CPU note is left out.
    return undefined;
  }
}

/** Floor: the append script alone, the same events 1,000 to a call, as the store sends them. */
async function scriptAlone(log: RedisLog, round: number): Promise<number> {
  const id = `script-${round}`;
  const { epoch } = await log.claim(id, "bench");
  const t0 = performance.now();
  for (let i = 0; i < APPEND_EVENTS; i += 1000) {
    const entries: StoredEntry[] = [];
    for (let seq = i + 1; seq <= Math.min(APPEND_EVENTS, i + 1000); seq++) {
      const json = JSON.stringify({ seq, ts: 0, type: "custom", name: "bench", data: PAYLOAD });
      entries.push({ seq, type: "custom", json, size: json.length });
    }
    const head = entries.at(-1)!.seq;
    await log.append(id, epoch, { entries, position: { head, first: 1, outputBytes: 0, retainedBytes: 0 } });
  }
  const rate = (APPEND_EVENTS / (performance.now() - t0)) * 1000;
  await log.delete(id);
  return rate;
}

/* ---- resume ---- */

/** Events/s replayed from seq 0 through a feed (as a resuming viewer's) of `log`. */
function resume(log: SessionLog): number {
  let delivered = 0;
  const t0 = performance.now();
  const feed = new SessionFeed(
    log,
    0,
    { queuedBytes: 0, deliver: (entries) => (delivered += entries.length), trimmed: () => undefined },
    { budgetBytes: Number.MAX_SAFE_INTEGER },
  );
  feed.pump();
  feed.close();
  if (delivered < RESUME_EVENTS) throw new Error(`resume delivered ${delivered} of ${RESUME_EVENTS}`);
  return (delivered / (performance.now() - t0)) * 1000;
}

/* ---- PTY flood to a viewer ---- */

/**
 * 50 MiB through a PTY session created on `owner`, to one binary /ws/session viewer on `viewer`
 * (connected once that node lists the session; it replays from 0): MB/s from the create request
 * to the viewer's `exit` frame, and whether every byte arrived.
 */
/** Error frames PTY viewers were sent (none expected), for the notes. */
const errors: string[] = [];

async function ptyFlood(owner: string, viewer: string): Promise<{ mbps: number; complete: boolean }> {
  const started = now();
  const { id } = (await http(owner, "POST", "/v1/sessions", { command: PTY_BENCH_COMMAND, pty: true })) as {
    id: string;
  };
  if (viewer !== owner) await known(viewer, id);
  const ws = new WebSocket(`${viewer.replace(/^http/, "ws")}/ws/session/${id}?since=0&output=binary`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
    perMessageDeflate: false,
  });
  let bytes = 0;
  const doneAt = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`PTY flood: ${bytes} bytes after ${STEP_TIMEOUT_MS} ms`)),
      STEP_TIMEOUT_MS,
    );
    ws.on("error", reject);
    ws.on("message", (raw: Buffer, isBinary) => {
      if (isBinary) {
        bytes += readBinaryOutput(raw)!.bytes.length;
        return;
      }
      const f = JSON.parse(raw.toString()) as { type: string; message?: string };
      if (f.type === "exit") {
        clearTimeout(timer);
        resolve(now());
      } else if (f.type === "error") errors.push(`${viewer === owner ? "owner" : "other node"}: ${f.message}`);
    });
  });
  ws.terminate();
  await http(owner, "DELETE", `/v1/sessions/${id}?purge=1`).catch(() => undefined);
  return { mbps: mbps(bytes, doneAt - started), complete: bytes === PTY_BENCH_BYTES };
}

/** The PTY floor's two processes (bench/cluster-floor-pty.ts): A runs the command into Redis, B reads it out to `ws`. */
interface FloorPty {
  writer: ChildProcess;
  reader: ChildProcess;
  ws: WebSocket;
}

/** Spawns a bench/cluster-floor-pty.ts process and resolves with the first stdout line matching `ready`. */
async function floorChild(
  args: readonly string[],
  ready: RegExp,
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const [node, script] = compiledCommand("bench/cluster-floor-pty.ts");
  const child = spawn(node!, [script!, ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    let out = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        child.stdout!.off("data", onData);
        resolve(m);
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`cluster-floor-pty ${args[0]} exited (${code})`)));
  });
  return { child, match };
}

/** Resolves when `child` next prints a "done" line. */
function saysDone(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    let out = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      if (!out.includes("done\n")) return;
      child.stdout!.off("data", onData);
      resolve();
    };
    child.stdout!.on("data", onData);
  });
}

async function startFloorPty(redisUrl: string): Promise<FloorPty> {
  const { child: writer } = await floorChild(["write", redisUrl, JSON.stringify(PTY_BENCH_COMMAND)], /ready\n/);
  const { child: reader, match } = await floorChild(["read", redisUrl], /listening (\d+)\n/);
  const ws = new WebSocket(`ws://127.0.0.1:${match[1]}`, { perMessageDeflate: false });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  return { writer, reader, ws };
}

/**
 * The same flood through bare Redis between two processes: MB/s from asking A to run the command
 * (B already waiting on the stream) to the last byte at the client, and whether every byte arrived.
 */
async function floorFlood(floor: FloorPty, key: string, redis: RedisClient): Promise<{ mbps: number; bytes: number }> {
  let bytes = 0;
  let lastAt: number;
  // A says "done" once every chunk and the end entry are in Redis; B sends "end" after the last chunk.
  let ended: () => void = () => undefined;
  const finished = Promise.all([saysDone(floor.writer), new Promise<void>((resolve) => (ended = resolve))]);
  const onMessage = (raw: Buffer, isBinary: boolean) => {
    if (!isBinary) return ended();
    bytes += raw.length;
    lastAt = now();
  };
  floor.ws.on("message", onMessage);
  floor.reader.stdin!.write(`${key}\n`);
  const started = now();
  lastAt = started;
  floor.writer.stdin!.write(`${key}\n`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`PTY floor: ${bytes} bytes after ${STEP_TIMEOUT_MS} ms`)),
      STEP_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([finished, timeout]);
  } finally {
    clearTimeout(timer);
    floor.ws.off("message", onMessage);
  }
  await redis.del(key);
  return { mbps: mbps(bytes, lastAt - started), bytes };
}

/* ---- fan-out ---- */

interface FanoutRun {
  p50: number;
  p99: number;
  delivered: number;
  expected: number;
}

/**
 * A stream session created on `urls[0]`; FANOUT_CLIENTS_PER_NODE /v1/ws clients subscribed on each
 * node of `urls`; FANOUT_RATE events/s posted to the owner, each carrying when it was due. Latency:
 * due time to arrival at each client. Every delivery is counted.
 */
async function fanout(urls: readonly string[]): Promise<FanoutRun> {
  const owner = urls[0]!;
  const { id } = (await http(owner, "POST", "/v1/sessions", { kind: "stream" })) as { id: string };
  for (const url of urls) await known(url, id);
  const latencies: number[] = [];
  let delivered = 0;
  let measuring = false;
  const sockets: WebSocket[] = [];
  let subscribed = 0;
  const clients = urls.length * FANOUT_CLIENTS_PER_NODE;
  const ready = new Promise<void>((resolve, reject) => {
    for (const url of urls)
      for (let i = 0; i < FANOUT_CLIENTS_PER_NODE; i++) {
        const ws = new WebSocket(`${url.replace(/^http/, "ws")}/v1/ws`, {
          headers: { Authorization: `Bearer ${TOKEN}` },
          perMessageDeflate: false,
        });
        sockets.push(ws);
        ws.on("error", reject);
        const onEvent = (e: { data?: { t?: number } }) => {
          const t = e.data?.t;
          if (!measuring || t === undefined || t === 0) return;
          latencies.push(now() - t);
          delivered++;
        };
        ws.on("message", (raw) => {
          const f = JSON.parse(raw.toString()) as {
            op: string;
            event?: { data?: { t?: number } };
            events?: Array<{ data?: { t?: number } }>;
          };
          if (f.op === "event") onEvent(f.event!);
          else if (f.op === "events") for (const e of f.events!) onEvent(e);
          else if (f.op === "hello") ws.send(JSON.stringify({ op: "subscribe", session: id, since: 0 }));
          else if (f.op === "subscribed" && ++subscribed === clients) resolve();
        });
      }
  });
  try {
    await ready;
    const post = (t: number) => http(owner, "POST", `/v1/sessions/${id}/events`, { type: "tick", data: { t } });
    const paced = async (ms: number, emit: (dueAt: number) => Promise<unknown>): Promise<void> => {
      const started = now();
      const total = Math.round((FANOUT_RATE * ms) / 1000);
      const pending: Array<Promise<unknown>> = [];
      for (let sent = 0; sent < total;) {
        const due = Math.min(total, Math.floor(((now() - started) / 1000) * FANOUT_RATE) + 1);
        for (; sent < due; sent++) pending.push(emit(started + (sent / FANOUT_RATE) * 1000).catch((e: Error) => e));
        await sleep(1);
      }
      const failed = (await Promise.all(pending)).find((r) => r instanceof Error);
      if (failed) throw failed;
    };
    await paced(FANOUT_WARMUP_MS, () => post(0));
    await sleep(200);
    measuring = true;
    await paced(FANOUT_MS, post);
    const expected = Math.round((FANOUT_RATE * FANOUT_MS) / 1000) * clients;
    const deadline = Date.now() + 10_000;
    while (delivered < expected && Date.now() < deadline) await sleep(20);
    latencies.sort((a, b) => a - b);
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), delivered, expected };
  } finally {
    for (const ws of sockets) ws.terminate();
    await http(owner, "DELETE", `/v1/sessions/${id}?purge=1`).catch(() => undefined);
  }
}

/* ---- Redis memory ---- */

async function usedMemory(redis: RedisClient): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info("memory"))![1]);
}

/** Redis bytes per MB of PTY output retained: INFO memory before and after a 50 MiB flood on `owner`. */
async function redisBytesPerMb(redis: RedisClient, owner: string): Promise<number> {
  const before = await usedMemory(redis);
  const { id } = (await http(owner, "POST", "/v1/sessions", { command: PTY_BENCH_COMMAND, pty: true })) as {
    id: string;
  };
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (((await http(owner, "GET", `/v1/sessions/${id}`)) as { state: string }).state === "running") {
    if (Date.now() > deadline) throw new Error("the PTY flood did not end");
    await sleep(100);
  }
  const after = await usedMemory(redis);
  await http(owner, "DELETE", `/v1/sessions/${id}?purge=1`);
  return (after - before) / (PTY_BENCH_BYTES / 2 ** 20);
}

export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-cluster-"));
  const loadAtStart = loadavg()[0]!;
  const server = await redisServer(dir);
  const redis = await connectRedis([server.url]);
  const children: ChildNode[] = [];
  const inProcess: Gateway[] = [];
  let floorPty: FloorPty | undefined;
  try {
    // Three nodes as processes, and a single node (no Redis) for the single-node figures.
    for (const name of ["c1", "c2", "c3"]) children.push(await childNode(dir, name, server.url));
    const single = await childNode(dir, "single", undefined);
    children.push(single);
    const [c1, c2, c3] = children.map((c) => c.url) as [string, string, string];

    // Append: the owner in this process (its log is read directly); the child nodes copy the session.
    const a = await node(dir, server.url, "a");
    inProcess.push(a);
    let round = 0;
    // CPU of each side's runs, counted until a settle after each (the copies finish meanwhile).
    const copiers = children.slice(0, 3).map((c) => c.child.pid!);
    const cpu = { bare: [] as CpuSplit[], gateway: [] as CpuSplit[] };
    const counted = async (into: CpuSplit[], fn: () => Promise<number>): Promise<number> => {
      const before = cpuSplit(server.child.pid!, copiers);
      const rate = await fn();
      await sleep(APPEND_SETTLE_MS);
      const after = cpuSplit(server.child.pid!, copiers);
      into.push({
        self: after.self - before.self,
        redis: after.redis - before.redis,
        copies: after.copies - before.copies,
      });
      return rate;
    };
    const append = await sideBySide(
      ROUNDS,
      () => counted(cpu.bare, () => bareXadd(redis, round++)),
      () => counted(cpu.gateway, () => appendThroughGateway(a)),
    );
    // The floor of the owner's work as a whole, beside the same gateway runs.
    const db = new Database(join(dir, "floor.db"));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec("CREATE TABLE events (session TEXT, seq INTEGER, type TEXT, json TEXT, PRIMARY KEY (session, seq))");
    const floor = await sideBySide(
      ROUNDS,
      () => bareXaddAndSqlite(redis, db, round++),
      () => appendThroughGateway(a),
    );
    db.close();
    // The floors: each half of the owner's work alone, beside the same baseline.
    const script = await sideBySide(
      ROUNDS,
      () => bareXadd(redis, round++),
      () => scriptAlone(new RedisLog(redis, "bench-floor:"), round),
    );
    const solo = await node(dir, undefined, "solo");
    inProcess.push(solo);
    const sqlite = await sideBySide(
      ROUNDS,
      () => bareXadd(redis, round++),
      () => appendThroughGateway(solo),
    );

    process.stderr.write(
      `bench: cluster append ${append.ratio.toFixed(2)}x (floor ${floor.ratio.toFixed(2)}x), runs ${append.subjectRuns.map((x) => fmt(x)).join(", ")} / ${append.baselineRuns.map((x) => fmt(x)).join(", ")}; cpu ${cpuNote(cpu.gateway)} against ${cpuNote(cpu.bare)}\n`,
    );
    // Resume: another node in this process too, to replay both replicas the same way.
    const b = await node(dir, server.url, "b");
    inProcess.push(b);
    const session = a.core.sessions.createStream({ id: "token:bench", name: "bench" }, undefined);
    for (let i = 0; i < RESUME_EVENTS; i++) {
      session.log.append({ type: "custom", name: "bench", data: PAYLOAD });
      const room = session.log.backlog.room();
      if (room) await room;
    }
    await session.log.whenPublished();
    const head = session.log.head;
    // b copies the session once asked for it (a request, as a resuming viewer's would be).
    while (b.core.sessions.get(session.id)?.log.head !== head) {
      const copy = b.core.sessions.get(session.id);
      if (copy instanceof RemoteSession) await copy.reach(head);
      else await sleep(100);
    }
    const resumed = await sideBySide(
      ROUNDS,
      () => resume(logOf(a, session.id)),
      () => resume(logOf(b, session.id)),
    );
    for (const gw of inProcess.splice(0)) await gw.close();

    // PTY floods: raw node-pty, a single node's viewer, the owner's viewer, another node's viewer.
    await measureRawPty(PTY_BENCH_COMMAND); // warm-up
    // The floor: the same flood through bare Redis between two processes, in turn with the others.
    floorPty = await startFloorPty(server.url);
    const floorOf = floorPty;
    let floorRound = 0;
    const pty = {
      raw: [] as number[],
      single: [] as number[],
      owner: [] as number[],
      other: [] as number[],
      floor: [] as number[],
    };
    const floorBytes: number[] = [];
    let ptyComplete = true;
    for (let r = 0; r < PTY_ROUNDS; r++) {
      const runs: Array<[number[], () => Promise<number>]> = [
        [
          pty.raw,
          async () => {
            const m = await measureRawPty(PTY_BENCH_COMMAND);
            return mbps(m.bytes, m.ms);
          },
        ],
        [
          pty.floor,
          async () => {
            const f = await floorFlood(floorOf, `bench:{floor-pty-${floorRound++}}:out`, redis);
            floorBytes.push(f.bytes);
            return f.mbps;
          },
        ],
        ...(
          [
            [pty.single, single.url, single.url],
            [pty.owner, c1, c1],
            [pty.other, c1, c2],
          ] as const
        ).map(
          ([into, owner, viewer]) =>
            [
              into,
              async () => {
                const f = await ptyFlood(owner, viewer);
                ptyComplete &&= f.complete;
                return f.mbps;
              },
            ] as [number[], () => Promise<number>],
        ),
      ];
      // The order turns each round, so drift and warm-up do not favour one side.
      for (let i = 0; i < runs.length; i++) {
        const [into, fn] = runs[(i + r) % runs.length]!;
        into.push(await fn());
      }
    }
    const ptyRatio = median(pty.other.map((x, i) => x / pty.single[i]!));
    const floorRatio = median(pty.floor.map((x, i) => x / pty.single[i]!));
    const otherToFloor = median(pty.other.map((x, i) => x / pty.floor[i]!));

    // Fan-out: three nodes beside one node with all the clients.
    const fan = { three: [] as FanoutRun[], one: [] as FanoutRun[] };
    // A run that fails (a post refused under load) is reported in its row; the other rows stand.
    let fanFailed: string | undefined;
    try {
      for (let r = 0; r < FANOUT_ROUNDS; r++) {
        if (r % 2 === 0) {
          fan.three.push(await fanout([c1, c2, c3]));
          fan.one.push(await fanout([single.url, single.url, single.url]));
        } else {
          fan.one.push(await fanout([single.url, single.url, single.url]));
          fan.three.push(await fanout([c1, c2, c3]));
        }
      }
    } catch (error) {
      fanFailed = (error as Error).message;
    }
    const fanP99 = median(fan.three.map((f) => f.p99));
    const fanOneP99 = median(fan.one.map((f) => f.p99));
    const fanComplete = fan.three.every((f) => f.delivered === f.expected);

    const memory = await redisBytesPerMb(redis, c1);

    const rows = [
      `| append of 1 KB events through the shared log (owner: Lua append + replica) vs bare pipelined XADD | ${fmt(append.subject)}/s | ${fmt(append.baseline)}/s | ${fmt(append.ratio, 2)}× | ≥ 0.8× | ${met(append.ratio >= 0.8)} |`,
      `| (floor) the same events through the shared log vs bare pipelined XADD with a SQLite commit of the same events beside it, one process | ${fmt(floor.subject)}/s | ${fmt(floor.baseline)}/s | ${fmt(floor.ratio, 2)}× | | |`,
      `| (floor) the append script alone, 1,000 events a call, vs bare pipelined XADD | ${fmt(script.subject)}/s | ${fmt(script.baseline)}/s | ${fmt(script.ratio, 2)}× | | |`,
      `| (floor) the same events to a single node's log (SQLite, no Redis) vs bare pipelined XADD | ${fmt(sqlite.subject)}/s | ${fmt(sqlite.baseline)}/s | ${fmt(sqlite.ratio, 2)}× | | |`,
      `| resume of ${fmt(RESUME_EVENTS)} missed events on another node vs on the owner | ${fmt(resumed.subject)}/s | ${fmt(resumed.baseline)}/s | ${fmt(resumed.ratio, 2)}× | ≥ 0.8× | ${met(resumed.ratio >= 0.8)} |`,
      `| PTY 50 MiB to a viewer on another node vs a single node's viewer | ${fmt(median(pty.other))} MB/s | ${fmt(median(pty.single))} MB/s | ${fmt(ptyRatio, 2)}× | ≥ 0.7× | ${met(ptyRatio >= 0.7 && ptyComplete)} |`,
      `| (floor) the same flood through bare Redis between two processes (node-pty → pipelined XADD; XREAD BLOCK → WebSocket) vs a single node's viewer | ${fmt(median(pty.floor))} MB/s | ${fmt(median(pty.single))} MB/s | ${fmt(floorRatio, 2)}× | | |`,
      `| (floor) the flood to a viewer on another node vs the same flood through bare Redis | ${fmt(median(pty.other))} MB/s | ${fmt(median(pty.floor))} MB/s | ${fmt(otherToFloor, 2)}× | | |`,
      `| (reference) the same flood to a viewer on the owner node; raw node-pty | ${fmt(median(pty.owner))} MB/s | ${fmt(median(pty.raw))} MB/s | | | |`,
      `| fan-out 3 nodes × ${FANOUT_CLIENTS_PER_NODE} clients on one session at ${FANOUT_RATE} events/s, p99 (baseline: ${3 * FANOUT_CLIENTS_PER_NODE} clients on a single node) | ${fanFailed === undefined ? `${fmt(fanP99, 1)} ms` : `failed: ${fanFailed}`} | ${fmt(fanOneP99, 1)} ms | | ≤ 50 ms, every delivery | ${met(fanFailed === undefined && fanP99 <= 50 && fanComplete)} |`,
      `| Redis memory per MB of retained PTY output | ${fmt(memory / 2 ** 20, 2)} MB | | | | |`,
    ];
    return {
      title: "Cluster",
      markdown: [
        "| measure | Switchboard | baseline | ratio | goal | met |",
        "| --- | --- | --- | --- | --- | --- |",
        ...rows,
        "",
        `Method (\`npm run bench -- cluster\`): one redis-server (AOF off); three nodes and a single node (no Redis) as`,
        `\`switchboard serve\` child processes. Append: ${fmt(APPEND_EVENTS)} ~1 KB events on a stream session whose owner runs`,
        "in this process (its first event published before the clock starts), until all are published (acknowledged by the",
        "append script, committed to the replica), beside the same events as bare XADDs pipelined 1,000 at a time; the three",
        "other nodes copy nothing of it (nobody there wants the session: they read its meta and newest entries per notification),",
        `and each run is followed by ${APPEND_SETTLE_MS / 1000} s (untimed) in which they finish. The floor runs`,
        "commit each pipeline's 1,000 events to a SQLite file (WAL, synchronous NORMAL) while Redis applies it. Resume:",
        "100,000 events replayed through a SessionFeed",
        `from seq 0 on another node (which copied the session once asked for it) beside the owner (both in this process, both`,
        `read their replica). PTY: ${PTY_BENCH_BYTES / 2 ** 20} MiB`,
        "(`head -c … /dev/zero | tr`) from the create request to a binary `/ws/session` viewer's `exit`, in turn with raw",
        "node-pty. The PTY floor: one process runs the same command in raw node-pty and appends each chunk read to a Redis",
        "stream (`XADD key * o <chunk>`, binary, pipelined, up to 4 calls in flight), another reads it (`XREAD BLOCK`) and",
        "sends each chunk to a WebSocket client in this process; MB/s from asking for the run to the last byte at the client.",
        `Fan-out: ${FANOUT_RATE} events/s for ${FANOUT_MS / 1000} s posted to the owner, latency from each event's due time to`,
        `arrival at each /v1/ws client (clients in this process). Medians of ${ROUNDS} rounds (ratios: of per-round ratios).`,
      ].join("\n"),
      notes: [
        `Load average (1 min) at the start and the end: ${fmt(loadAtStart, 1)} and ${fmt(loadavg()[0]!, 1)} on ${cpus().length} cores (the machine is shared: every process here competes with them).`,
        `Append runs (events/s), Switchboard: ${append.subjectRuns.map((x) => fmt(x)).join(", ")}; bare XADD: ${append.baselineRuns.map((x) => fmt(x)).join(", ")}.`,
        `Append floor runs (events/s): through the shared log ${floor.subjectRuns.map((x) => fmt(x)).join(", ")}; bare XADD with SQLite beside it ${floor.baselineRuns.map((x) => fmt(x)).join(", ")}.`,
        `Append CPU per 1,000 events, median ms (owner process / redis-server / the three copying nodes): through the shared log ${cpuNote(cpu.gateway)}; bare XADD ${cpuNote(cpu.bare)}.`,
        `Append floors (events/s): the script alone ${script.subjectRuns.map((x) => fmt(x)).join(", ")}; a single node's log ${sqlite.subjectRuns.map((x) => fmt(x)).join(", ")}. Resume runs: another node ${resumed.subjectRuns.map((x) => fmt(x)).join(", ")}; the owner ${resumed.baselineRuns.map((x) => fmt(x)).join(", ")}.`,
        `PTY runs (MB/s): another node ${pty.other.map((x) => fmt(x)).join(", ")}; single node ${pty.single.map((x) => fmt(x)).join(", ")}; owner ${pty.owner.map((x) => fmt(x)).join(", ")}; raw ${pty.raw.map((x) => fmt(x)).join(", ")}. Every byte arrived: ${ptyComplete ? "yes" : "no"}.${errors.length > 0 ? ` Error frames: ${errors.join("; ")}.` : ""}`,
        `PTY floor runs (MB/s), through bare Redis between two processes: ${pty.floor.map((x) => fmt(x)).join(", ")}; ratio to the single node per round ${pty.floor.map((x, i) => fmt(x / pty.single[i]!, 2)).join(", ")}; another node ÷ floor per round ${pty.other.map((x, i) => fmt(x / pty.floor[i]!, 2)).join(", ")}. Bytes that arrived of ${fmt(PTY_BENCH_BYTES)}: ${floorBytes.map((x) => fmt(x)).join(", ")} (raw node-pty may lose the tail after its exit).`,
        `Fan-out runs, p50/p99 (ms): three nodes ${fan.three.map((f) => `${fmt(f.p50, 1)}/${fmt(f.p99, 1)}`).join(", ")}; single node ${fan.one.map((f) => `${fmt(f.p50, 1)}/${fmt(f.p99, 1)}`).join(", ")}. Deliveries: ${fan.three.map((f) => `${fmt(f.delivered)} of ${fmt(f.expected)}`).join(", ")} (three nodes); ${fan.one.map((f) => `${fmt(f.delivered)} of ${fmt(f.expected)}`).join(", ")} (single).`,
      ],
    };
  } finally {
    for (const gw of inProcess) await gw.close();
    for (const c of children) c.child.kill("SIGKILL");
    if (floorPty) {
      floorPty.ws.terminate();
      for (const c of [floorPty.writer, floorPty.reader]) c.kill("SIGKILL");
    }
    redis.disconnect();
    server.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}
