/**
 * Cluster: a copy storm (docs/benchmarks.md). Node a owns SESSIONS PTY sessions of SESSION_BYTES
 * each; one `/v1/ws` connection on node b, which owns none of them, subscribes to them all with
 * `since: 0` (node b copies their logs from Redis in pages and streams them), while a `cat` PTY
 * session node b owns is typed into every 20 ms (`/ws/session`) and its echo is timed. Beside it,
 * in alternating rounds, the floor (bench/cluster-copy-storm-floor.ts): one bare Node process
 * that streams the same Redis streams to the same viewer and serves a raw node-pty `cat`.
 * COPY_STORM_SESSIONS, COPY_STORM_MIB and COPY_STORM_ROUNDS change the sizes;
 * COPY_STORM_NODE_FLAGS adds Node flags to node b (e.g. `--cpu-prof --cpu-prof-dir=DIR`).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { WebSocket } from "ws";
import { redisServer } from "./cluster.js";
import { compiledCommand } from "./compiled.js";
import type { BenchRow, BenchSection } from "./types.js";
import { fmt, median, percentile } from "./stats.js";
import { cpuMs, listeningUrl } from "./proc.js";

const SESSIONS = Number(process.env["COPY_STORM_SESSIONS"] ?? 16);
const SESSION_BYTES = Number(process.env["COPY_STORM_MIB"] ?? 10) * 2 ** 20;
/** Rounds of each side; each round runs both, who goes first alternating. */
const ROUNDS = Math.max(2, Number(process.env["COPY_STORM_ROUNDS"] ?? 5));
const NODE_FLAGS = (process.env["COPY_STORM_NODE_FLAGS"] ?? "").split(" ").filter((f) => f !== "");
/** Waits grow with a larger storm (16 × 10 MiB: 1). */
const SCALE = Math.max(1, (SESSIONS * SESSION_BYTES) / (160 * 2 ** 20));
/** The echo before the storm, for its own figure. */
const CALM_MS = 3_000;
const ECHO_EVERY_MS = 20;
/** The acceptance goal for the echo during the storm, on a quiet machine. */
const ECHO_P99_GOAL_MS = 50;
/** A step that takes longer than these is broken, not slow. */
const START_TIMEOUT_MS = 30_000;
const PRINT_TIMEOUT_MS = 90_000 * SCALE;
const STORM_TIMEOUT_MS = 120_000 * SCALE;
const TOKEN = "bench-token-0123456789abcdef";
const CONFIG = { limits: { connectionsPerToken: 5000, sessionsPerToken: 200, sessions: 500 } };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or an error naming `what` once `ms` passed. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Prints SESSION_BYTES of `<session>:<n>|` records (no newline: a PTY passes them as they are),
 * then stays until its terminal goes, so no run leaves it behind.
 */
const PRINTER = `
const [id, total] = [process.argv[1], Number(process.argv[2])];
let out = "", n = 0;
while (out.length < total) out += id + ":" + n++ + "|";
out = out.slice(0, total);
let at = 0;
const next = () => {
  while (at < out.length) if (!process.stdout.write(out.slice(at, (at += 65536)))) return void process.stdout.once("drain", next);
  process.stdin.on("data", () => undefined).on("close", () => process.exit()).on("error", () => process.exit());
};
next();
`;

function expected(index: number): string {
  let out = "";
  for (let n = 0; out.length < SESSION_BYTES; n++) out += `s${index}:${n}|`;
  return out.slice(0, SESSION_BYTES);
}

/**
 * The keystroke echo prober, on a worker thread of its own: the bench's main thread parses every
 * frame of the storm, and the probe measures the server's echo, not how long the bench took to
 * look at it. One `k` every 20 ms after the last echo; `{type:"stdout"}` frames carry the echo.
 * Beside it, a `GET /healthz` of the same server every 20 ms after the last answer.
 */
const PROBE = `
const { parentPort, workerData } = require("node:worker_threads");
const WebSocket = require("ws");
const ws = new WebSocket(workerData.url, { headers: { authorization: "Bearer " + workerData.token } });
let echoed;
let running = true;
parentPort.on("message", () => (running = false));
ws.on("error", (e) => parentPort.postMessage({ error: e.message }));
ws.on("message", (raw) => {
  const f = JSON.parse(raw.toString());
  if (f.type === "stdout" && f.data && f.data.includes("k")) echoed && echoed();
});
const health = new URL(workerData.url);
health.protocol = "http:";
health.pathname = "/healthz";
health.search = "";
let checking;
ws.once("open", async () => {
  checking = (async () => {
    while (running) {
      const t = performance.now();
      await fetch(health, { signal: AbortSignal.timeout(10000) }).then((r) => r.arrayBuffer(), () => undefined);
      parentPort.postMessage({ health: performance.now() - t });
      await new Promise((r) => setTimeout(r, ${ECHO_EVERY_MS}));
    }
  })();
  parentPort.postMessage({ open: true });
  while (running) {
    const t = performance.now();
    await new Promise((resolve) => {
      echoed = resolve;
      setTimeout(resolve, 10000).unref();
      ws.send(JSON.stringify({ type: "stdin", data: "k" }));
    });
    parentPort.postMessage({ latency: performance.now() - t });
    await new Promise((r) => setTimeout(r, ${ECHO_EVERY_MS}));
  }
  ws.terminate();
  await checking;
  parentPort.postMessage({ stopped: true });
});
`;

interface Probe {
  latencies: number[];
  /** `GET /healthz` round trips. */
  healths: number[];
  stop: () => Promise<void>;
}

async function echoProbe(url: string): Promise<Probe> {
  const worker = new Worker(PROBE, { eval: true, workerData: { url, token: TOKEN } });
  const latencies: number[] = [];
  const healths: number[] = [];
  let stopped: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (stopped = resolve));
  const open = new Promise<void>((resolve, reject) => {
    worker.on("message", (m: { open?: true; latency?: number; health?: number; stopped?: true; error?: string }) => {
      if (m.open) resolve();
      if (m.error) reject(new Error(`echo probe: ${m.error}`));
      if (m.latency !== undefined) latencies.push(m.latency);
      if (m.health !== undefined) healths.push(m.health);
      if (m.stopped) stopped();
    });
    worker.once("error", reject);
  });
  await within(open, START_TIMEOUT_MS, "echo probe").catch(async (error: Error) => {
    await worker.terminate();
    throw error;
  });
  return {
    latencies,
    healths,
    stop: async () => {
      worker.postMessage("stop");
      await within(done, 15_000, "echo probe stop").catch(() => undefined);
      await worker.terminate();
    },
  };
}

/* ---- /proc ---- */

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
}

/** The main thread's run time and its time runnable but waiting for a core, ms. */
function mainThreadMs(pid: number): { ran: number; waited: number } {
  const [ran, waited] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ");
  return { ran: Number(ran) / 1e6, waited: Number(waited) / 1e6 };
}

/* ---- the two sides ---- */

/** What a round measures: a server with an echo endpoint and a way to start the storm on it. */
interface Target {
  pid: number;
  echoUrl: string;
  /** Opens the viewer and resolves once every session's bytes came; then what each session's were. */
  storm: (problems: string[]) => Promise<() => string[]>;
  close: () => Promise<void>;
}

async function http(base: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(START_TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

interface ChildNode {
  url: string;
  child: ChildProcess;
}

/** `switchboard serve --redis` on compiled JavaScript, terminal sessions without holders. */
async function startNode(dir: string, name: string, redis: string, flags: string[] = []): Promise<ChildNode> {
  const config = join(dir, `${name}.json`);
  writeFileSync(config, JSON.stringify(CONFIG));
  const [node, main] = compiledCommand("src/cli/main.ts");
  const args = [...flags, main!, "serve", "--token", TOKEN, "--host", "127.0.0.1", "--port", "0"];
  args.push("--data-dir", join(dir, name), "--config", config, "--holders", "off");
  args.push("--redis", redis, "--node-id", name);
  const child = spawn(node!, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const url = await within(
    listeningUrl(child, name, () => stderr),
    START_TIMEOUT_MS,
    `node ${name}`,
  ).catch((error: Error) => {
    child.kill("SIGKILL");
    throw error;
  });
  return { url, child };
}

/** Ends `child`: `signal` first, SIGKILL if it is still there after 15 s. */
async function stop(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  await within(exited, 15_000, "stop").catch(() => child.kill("SIGKILL"));
}

/** Waits until `base` lists every id of `ids` with all its output (a node lists what Redis holds). */
async function listed(base: string, ids: string[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const { sessions } = (await http(base, "GET", "/v1/sessions")) as {
      sessions: Array<{ id: string; outputBytes: number }>;
    };
    if (ids.every((id) => sessions.find((s) => s.id === id)?.outputBytes === SESSION_BYTES)) return;
    if (Date.now() > deadline) throw new Error(`${base} did not list every session's ${SESSION_BYTES} bytes`);
    await sleep(100);
  }
}

/** Node b, new for the round (so its replica holds none of the sessions), and a `cat` session it owns. */
async function switchboard(dir: string, redis: string, ids: string[], round: number): Promise<Target> {
  const b = await startNode(dir, `b${round}`, redis, NODE_FLAGS);
  try {
    await listed(b.url, ids, START_TIMEOUT_MS);
    const cat = (await http(b.url, "POST", "/v1/sessions", { kind: "terminal", command: ["cat"] })) as { id: string };
    return {
      pid: b.child.pid!,
      echoUrl: `${b.url.replace("http", "ws")}/ws/session/${cat.id}`,
      storm: (problems) => switchboardViewer(b.url, ids, problems),
      close: async () => {
        await http(b.url, "DELETE", `/v1/sessions/${cat.id}`).catch(() => undefined);
        // SIGTERM: a node stopped so gives its lease back, and `--cpu-prof` writes its profile.
        await stop(b.child, "SIGTERM");
      },
    };
  } catch (error) {
    await stop(b.child);
    throw error;
  }
}

/** The viewer on node b: one `/v1/ws` connection, every session from seq 1, each seq once and in order. */
function switchboardViewer(base: string, ids: string[], problems: string[]): Promise<() => string[]> {
  const chunks = ids.map((): string[] => []);
  const sizes = ids.map(() => 0);
  const nextSeq = ids.map(() => 1);
  const index = new Map(ids.map((id, i) => [id, i]));
  const ws = new WebSocket(`${base.replace("http", "ws")}/v1/ws`, { headers: { authorization: `Bearer ${TOKEN}` } });
  type Event = { seq: number; type: string; data?: string };
  return new Promise<() => string[]>((resolve, reject) => {
    const take = (session: string, e: Event) => {
      const i = index.get(session);
      if (i === undefined) return void problems.push(`an event of session ${session}`);
      if (e.seq !== nextSeq[i]) problems.push(`${session}: seq ${e.seq}, expected ${nextSeq[i]}`);
      nextSeq[i] = e.seq + 1;
      if (e.type === "output" && e.data !== undefined) {
        chunks[i]!.push(e.data);
        sizes[i]! += e.data.length;
        if (sizes.every((n) => n >= SESSION_BYTES)) {
          ws.terminate();
          resolve(() => chunks.map((c) => c.join("")));
        }
      }
    };
    ws.on("message", (raw: Buffer) => {
      const f = JSON.parse(raw.toString()) as { op: string; session: string; event?: Event; events?: Event[] };
      if (f.op === "hello") for (const id of ids) ws.send(JSON.stringify({ op: "subscribe", session: id, since: 0 }));
      else if (f.op === "event") take(f.session, f.event!);
      else if (f.op === "events") for (const e of f.events!) take(f.session, e);
      else if (f.op === "error") problems.push(raw.toString());
    });
    ws.on("error", reject);
  });
}

/** The floor process, new for the round, on the same Redis. */
async function floor(redis: string, ids: string[]): Promise<Target> {
  const [node, script] = compiledCommand("bench/cluster-copy-storm-floor.ts");
  const child = spawn(node!, [script!, redis], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const listening = new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`floor exited (${code}): ${stderr}`)));
  });
  const port = await within(listening, START_TIMEOUT_MS, "floor").catch(async (error: Error) => {
    await stop(child);
    throw error;
  });
  const base = `ws://127.0.0.1:${port}`;
  return {
    pid: child.pid!,
    echoUrl: `${base}/pty`,
    storm: () => floorViewer(base, ids),
    close: () => stop(child),
  };
}

/** The viewer on the floor: one connection, every stream's pages as they come. */
function floorViewer(base: string, ids: string[]): Promise<() => string[]> {
  const chunks = ids.map((): Buffer[] => []);
  const sizes = ids.map(() => 0);
  const ws = new WebSocket(`${base}/copy`);
  return new Promise<() => string[]>((resolve, reject) => {
    ws.on("open", () => ws.send(JSON.stringify(ids.map((id) => `sb:{${id}}:log`))));
    ws.on("message", (raw: Buffer, binary: boolean) => {
      if (!binary) return;
      const i = raw.readUInt16BE(0);
      chunks[i]!.push(raw.subarray(2));
      sizes[i]! += raw.length - 2;
      if (sizes.every((n) => n >= SESSION_BYTES)) {
        ws.terminate();
        resolve(() => chunks.map((c) => Buffer.concat(c).toString()));
      }
    });
    ws.on("error", reject);
  });
}

/* ---- a round ---- */

interface Round {
  side: "switchboard" | "floor";
  calm: number[];
  echo: number[];
  /** `GET /healthz` round trips during the storm. */
  health: number[];
  rssGrowthMb: number;
  copyMs: number;
  cpuMs: number;
  /** redis-server's CPU and the bench process's (the viewer and the prober) over the storm. */
  redisCpuMs: number;
  viewerCpuMs: number;
  mainRanMs: number;
  mainWaitedMs: number;
  intact: boolean;
  problems: string[];
  load: number;
}

const ownCpuMs = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

async function measure(side: Round["side"], target: Target, redisPid: number): Promise<Round> {
  const load = loadavg()[0]!;
  const probe = await echoProbe(target.echoUrl);
  let sampler: NodeJS.Timeout | undefined;
  try {
    await sleep(CALM_MS);
    const calm = probe.latencies.length;
    const calmHealth = probe.healths.length;
    const baseline = rssMb(target.pid);
    let peak = baseline;
    sampler = setInterval(() => (peak = Math.max(peak, rssMb(target.pid))), 50);
    const cpuBefore = [cpuMs(target.pid), cpuMs(redisPid), ownCpuMs()] as const;
    const threadBefore = mainThreadMs(target.pid);
    const problems: string[] = [];
    const started = performance.now();
    const contents = await within(target.storm(problems), STORM_TIMEOUT_MS, `${side} storm`);
    const copyMs = performance.now() - started;
    clearInterval(sampler);
    peak = Math.max(peak, rssMb(target.pid));
    const cpu = [cpuMs(target.pid), cpuMs(redisPid), ownCpuMs()].map((x, i) => x - cpuBefore[i]!);
    const thread = mainThreadMs(target.pid);
    const latencies = [...probe.latencies];
    const healths = probe.healths.slice(calmHealth);
    await probe.stop();
    const intact = contents().every((c, i) => c === expected(i));
    const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);
    return {
      side,
      calm: sorted(latencies.slice(0, calm)),
      echo: sorted(latencies.slice(calm)),
      health: sorted(healths),
      rssGrowthMb: peak - baseline,
      copyMs,
      cpuMs: cpu[0]!,
      redisCpuMs: cpu[1]!,
      viewerCpuMs: cpu[2]!,
      mainRanMs: thread.ran - threadBefore.ran,
      mainWaitedMs: thread.waited - threadBefore.waited,
      intact,
      problems,
      load,
    };
  } finally {
    clearInterval(sampler);
    await probe.stop();
  }
}

async function round(side: Round["side"], start: () => Promise<Target>, redisPid: number): Promise<Round> {
  process.stderr.write(`bench: cluster-copy-storm: ${side} ...\n`);
  const target = await start();
  try {
    const r = await measure(side, target, redisPid);
    const p = (q: number) => fmt(percentile(r.echo, q), 1);
    process.stderr.write(
      `bench: cluster-copy-storm: ${side}: echo p50 ${p(50)} p99 ${p(99)} max ${p(100)} ms (${r.echo.length}; p99 before ${fmt(percentile(r.calm, 99), 1)}), RSS +${fmt(r.rssGrowthMb)} MB, copied in ${fmt(r.copyMs)} ms, CPU ${fmt(r.cpuMs)} ms (redis ${fmt(r.redisCpuMs)}, viewer ${fmt(r.viewerCpuMs)}), main ran ${fmt(r.mainRanMs)} waited ${fmt(r.mainWaitedMs)} ms, intact ${r.intact}, load ${fmt(r.load, 2)}\n`,
    );
    return r;
  } finally {
    await target.close();
  }
}

/* ---- the section ---- */

const ms = (x: number) => `${fmt(x, 1)} ms`;
const mb = (x: number) => `${x >= 0 ? "+" : ""}${fmt(x, 0)} MB`;
const seconds = (x: number) => `${fmt(x / 1000, 1)} s`;

/** A row: each side's median over its rounds, and the median of each round's ratio to its neighbour. */
function row(measure: string, pairs: Array<[Round, Round]>, pick: (r: Round) => number, unit: (x: number) => string) {
  const ours = median(pairs.map(([s]) => pick(s)));
  const base = median(pairs.map(([, f]) => pick(f)));
  const ratio = median(pairs.map(([s, f]) => pick(s) / pick(f)));
  return { measure, ours: unit(ours), baseline: unit(base), ratio: fmt(ratio, 2) } satisfies BenchRow;
}

export async function run(): Promise<BenchSection> {
  const loadStart = loadavg();
  const startedAt = new Date();
  process.stderr.write(`bench: cluster-copy-storm: load average ${loadStart.map((x) => fmt(x, 2)).join(" ")}\n`);
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-copy-storm-"));
  const children: ChildProcess[] = [];
  const pairs: Array<[Round, Round]> = [];
  try {
    const server = await redisServer(dir);
    children.push(server.child);
    const a = await startNode(dir, "a", server.url);
    children.push(a.child);
    const ids: string[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const res = await http(a.url, "POST", "/v1/sessions", {
        kind: "terminal",
        command: [process.execPath, "-e", PRINTER, `s${i}`, String(SESSION_BYTES)],
      });
      ids.push(res["id"] as string);
    }
    // Every byte in Redis before any round: node a's own list shows what it appended.
    await listed(a.url, ids, PRINT_TIMEOUT_MS);
    for (let i = 0; i < ROUNDS; i++) {
      const ours = () => round("switchboard", () => switchboard(dir, server.url, ids, i), server.child.pid!);
      const base = () => round("floor", () => floor(server.url, ids), server.child.pid!);
      if (i % 2 === 0) {
        const s = await ours();
        pairs.push([s, await base()]);
      } else {
        const f = await base();
        pairs.push([await ours(), f]);
      }
    }
  } finally {
    for (const child of children.reverse()) await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
  const loadEnd = loadavg();
  process.stderr.write(`bench: cluster-copy-storm: load average ${loadEnd.map((x) => fmt(x, 2)).join(" ")}\n`);
  const p = (q: number) => (r: Round) => percentile(r.echo, q);
  const calmP99 = (r: Round) => percentile(r.calm, 99);
  const load = (l: number[]) => l.map((x) => fmt(x, 2)).join(" ");
  // A storm gives tens of echoes (the floor's fewer), so a round's p99 is its worst: the echo rows
  // pool each side's samples over its rounds.
  const pooled = (side: 0 | 1, pick: (r: Round) => number[], q: number) =>
    percentile(
      pairs.flatMap((pair) => pick(pair[side])).sort((x, y) => x - y),
      q,
    );
  const pooledRow = (measure: string, pick: (r: Round) => number[], q: number): BenchRow => {
    const [ours, base] = [pooled(0, pick, q), pooled(1, pick, q)];
    return { measure, ours: ms(ours), baseline: ms(base), ratio: fmt(ours / base, 2) };
  };
  const echoP99 = pooled(0, (r) => r.echo, 99);
  const healthP99 = pooled(0, (r) => r.health, 99);
  const rows: BenchRow[] = [
    {
      ...pooledRow("keystroke echo p99 during the storm", (r) => r.echo, 99),
      goal: `≤ ${ECHO_P99_GOAL_MS} ms (quiet machine)`,
      met: echoP99 <= ECHO_P99_GOAL_MS,
    },
    pooledRow("keystroke echo p50 during the storm", (r) => r.echo, 50),
    pooledRow("keystroke echo worst during the storm", (r) => r.echo, 100),
    pooledRow("keystroke echo p99 before the storm", (r) => r.calm, 99),
    {
      ...pooledRow("`GET /healthz` p99 during the storm", (r) => r.health, 99),
      goal: `≤ ${ECHO_P99_GOAL_MS} ms (quiet machine)`,
      met: healthP99 <= ECHO_P99_GOAL_MS,
    },
    {
      ...row("copying process RSS growth (peak)", pairs, (r) => r.rssGrowthMb, mb),
      goal: "≤ 256 MiB",
      met: Math.max(...pairs.map(([s]) => s.rssGrowthMb)) <= 256 * 1.048576,
    },
    row("all copied in", pairs, (r) => r.copyMs, seconds),
    row("copying process CPU over the storm (all threads)", pairs, (r) => r.cpuMs, seconds),
    row("its main thread waiting for a core", pairs, (r) => r.mainWaitedMs, seconds),
    row("redis-server CPU over the storm", pairs, (r) => r.redisCpuMs, seconds),
    row("viewer and prober CPU over the storm (the bench process)", pairs, (r) => r.viewerCpuMs, seconds),
  ];
  const all = pairs.flat();
  const intact = all.every((r) => r.intact && r.problems.length === 0);
  rows.push({
    measure: "every byte once, in order",
    ours: pairs.every(([s]) => s.intact && s.problems.length === 0) ? "yes" : "**no**",
    baseline: pairs.every(([, f]) => f.intact) ? "yes" : "**no**",
    met: intact,
  });
  const line = (r: Round, i: number) =>
    `| ${i + 1} | ${r.side} | ${fmt(r.load, 1)} | ${ms(p(50)(r))} | ${ms(p(99)(r))} | ${ms(r.echo.at(-1) ?? NaN)} | ${r.echo.length} | ${ms(calmP99(r))} | ${mb(r.rssGrowthMb)} | ${seconds(r.copyMs)} | ${seconds(r.cpuMs)} | ${seconds(r.redisCpuMs)} | ${seconds(r.viewerCpuMs)} | ${seconds(r.mainRanMs)} / ${seconds(r.mainWaitedMs)} |`;
  const table = [
    "| round | side | load | echo p50 | echo p99 | echo worst | samples | p99 before | RSS growth | copied in | CPU | redis CPU | viewer CPU | main thread ran / waited |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...pairs.flatMap(([s, f], i) => [line(s, i), line(f, i)]),
  ].join("\n");
  return {
    title: "Cluster: a copy storm",
    rows,
    tables: [table],
    method: [
      `\`npm run bench -- cluster-copy-storm\`: ${SESSIONS} PTY sessions of ${SESSION_BYTES / 2 ** 20} MiB on node a (\`switchboard serve --redis\`, compiled), written to one redis-server (AOF off) once; ${ROUNDS} rounds of each side, alternating who goes first.`,
      "Switchboard: a new node b each round; one `/v1/ws` connection there subscribes to every session with `since: 0`; a `cat` session node b owns is typed into every 20 ms over `/ws/session`.",
      "Floor: one bare Node process (bench/cluster-copy-storm-floor.ts: ioredis, ws, node-pty) that reads the same streams (`sb:{<id>}:log`) in XRANGE pages of about 1 MiB, two at once, sends each page as one binary message, and serves a raw node-pty `cat` over a second WebSocket.",
      "The echo is probed from a worker thread of the bench (round trip of one `k`); the viewer reads in the bench's main thread as fast as it can (Switchboard's frames are JSON, the floor's binary) and checks every byte. Echo rows pool each side's samples over its rounds; the other rows are medians of rounds, the ratio the median of each round's. RSS from /proc every 50 ms; CPU and the main thread's wait for a core from schedstat.",
      `Load average at the start ${load(loadStart)}, at the end ${load(loadEnd)} (1, 5, 15 min) on ${startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC.`,
    ],
    notes: all.map(
      (r) =>
        `${r.side}: echo during the storm p90 ${ms(p(90)(r))}, ${r.echo.filter((x) => x > ECHO_P99_GOAL_MS).length} of ${r.echo.length} over ${ECHO_P99_GOAL_MS} ms; before it p50 ${ms(percentile(r.calm, 50))} (${r.calm.length})${r.problems.length > 0 ? `; problems: ${r.problems.slice(0, 5).join("; ")}` : ""}.`,
    ),
  };
}
