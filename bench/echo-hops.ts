import { spawn } from "node:child_process";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { Worker } from "node:worker_threads";
import type { ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { spawn as spawnRawPty } from "node-pty";
import * as wsModule from "ws";
import { WebSocketServer } from "ws";
import type { WebSocket } from "ws";
import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import { OutputCoalescer } from "../src/core/output-coalescer.js";
import { LOG_INPUT_LINGER_MS } from "../src/log/commit-limits.js";
import {
  HolderFrameReader,
  ackFrame,
  helloFrame,
  inputCommitFrame,
  inputNowFrame,
} from "../src/sessions/holder-protocol.js";
import { Holders, holderBinary } from "../src/sessions/holders.js";
import { BINARY_OUTPUT_HEADER_BYTES, writeBinaryOutputHeader } from "../src/protocol/index.js";
import { SessionLog } from "../src/log/session-log.js";
import { TerminalSession } from "../src/sessions/terminal-session.js";
import { startGateway } from "../src/server/gateway.js";
import { WsConnection } from "../src/server/ws/connection.js";
import { Outbox } from "../src/server/ws/ws-common.js";
import { createLogger } from "../src/server/ops/logger.js";
import { fmt, median, percentile } from "./stats.js";
import { listeningUrl } from "./proc.js";
import { bundledCommand } from "./compiled.js";
import { INTERRUPT_BUDGET_ENV } from "../src/system/jit-budget.js";
import type { BenchRow, BenchSection } from "./types.js";

/** ws's frame parser: exported by ws, not typed by @types/ws. */
const Receiver = (wsModule as unknown as { Receiver: { prototype: { _write: () => void } } }).Receiver;

/**
 * Keystroke echo hop by hop: a key typed over `/ws/session` into a PTY `cat` until its echo
 * frame arrives, timed at each step of the way (the gateway runs in this process, its client on
 * a thread of its own), with holders off and on, beside a raw node-pty `cat` typed into in the
 * same run (the floor) and, when it is installed, ttyd (`TTYD`, or `ttyd` on PATH; see
 * bench/ttyd-build.sh) serving `cat` to the same client. The hops are timed by wrapping the
 * functions each step calls: nothing in the gateway is changed for it. Each round also reads the
 * CPU a key costs the server (ttyd's process; the gateway's, with its holder), which a loaded
 * machine's scheduling does not swing as it swings the latency.
 */

/** Keystrokes per round after the warm-up, and the pause between them (100 a second). */
const ECHO_SAMPLES = 300;
/**
 * Keys typed before the measured ones (`SWITCHBOARD_ECHO_WARMUP`), each as soon as the one before
 * was echoed: a fresh gateway's path runs in V8's baseline tier for its first few thousand keys
 * (docs/benchmarks.md, "A fresh gateway's keys run unoptimised"); 5,000 measure one that has run.
 */
const ECHO_WARMUP = Number(process.env["SWITCHBOARD_ECHO_WARMUP"] ?? 30);
/**
 * Keys typed before the measured ones on the running pair (`proc` and `ttyd-warm`,
 * `SWITCHBOARD_ECHO_WARM_KEYS`): a gateway that has run a while, its key's path optimised by V8 as
 * after a few minutes of typing, against ttyd given as many (its client warms up alike).
 */
const WARM_KEYS = Number(process.env["SWITCHBOARD_ECHO_WARM_KEYS"] ?? 3000);
const ECHO_GAP_MS = 10;
/** The budget `proc-budget` asks the gateway for (SWITCHBOARD_V8_INTERRUPT_BUDGET; V8's own is 67,584). */
const QUICK_BUDGET = "8192";
/** The sides measured after {@link WARM_KEYS} keys: compared with ttyd after as many, not with the floor. */
const WARMED: readonly string[] = ["ttyd-warm", "proc", "proc-budget"];
/** Rounds; each runs every side once, the order turning from round to round. */
const ROUNDS = Number(process.env["SWITCHBOARD_BENCH_ROUNDS"] ?? 5);
const TOKEN = "bench-echo-hops-token-0123456789abcdef";
/** Goals: echo p50 at most ttyd's in the same run, or (without ttyd) at most this × the raw node-pty floor (ttyd's own ratio to it here). */
const GOAL_TTYD_RATIO = 1.0;
const GOAL_FLOOR_RATIO = 2.8;
/** How long ttyd may take to say its port. */
const TTYD_START_MS = 10_000;

/**
 * How the client speaks to the gateway and the bare Node server (`SWITCHBOARD_ECHO_WIRE`):
 * `binary` (the default) as `switchboard attach` and the SDK's TerminalClient do — a key as a
 * binary message, output with `?output=binary` — or `json`: `stdin` and `stdout` JSON frames.
 * ttyd's client speaks ttyd's binary protocol either way.
 */
type Wire = "ttyd" | "binary" | "json";
const WIRE: Exclude<Wire, "ttyd"> = process.env["SWITCHBOARD_ECHO_WIRE"] === "json" ? "json" : "binary";

/** The sides to run (`SWITCHBOARD_ECHO_SIDES=off,on`, say, while working on the gateway); all by default. */
const ONLY_SIDES = process.env["SWITCHBOARD_ECHO_SIDES"]?.split(",");

/** The steps, in order; each hop is from the one before to it. */
const STEPS = [
  "typed",
  "arrived",
  "decoded",
  "steered",
  "read",
  "coalesced",
  "committed",
  "published",
  "sent",
  "received",
] as const;
type Step = (typeof STEPS)[number];
/**
 * The steps of a held session's key: its echo is sent to `/ws/session` as it is appended, before
 * its commit (docs/architecture.md, "Output shown before its commit"), which is off the path.
 */
const EARLY_STEPS: readonly Step[] = STEPS.filter((step) => step !== "committed" && step !== "published");
const stepsOf = (held: boolean): readonly Step[] => (held ? EARLY_STEPS : STEPS);
/** The bare held server's steps: no coalescer, its echo frame built and sent as the holder's frame is read. */
const HELD_STEPS: readonly Step[] = EARLY_STEPS.filter((step) => step !== "coalesced");
const HOP_WHAT: Record<Exclude<Step, "typed">, string> = {
  arrived: "typed → arrived (the client encodes the frame and writes it; loopback to the gateway's WebSocket receiver)",
  decoded: "arrived → decoded (WebSocket frame decoded and handed to the connection's frame handler)",
  steered: "decoded → steered (the frame's parse and checks, up to TerminalSession.write)",
  read: "steered → read (input appended, PTY write — held: its commit and the holder's hops — the echo, the read reaches the event loop)",
  coalesced: "read → coalesced (OutputCoalescer hands the piece to the log: appended)",
  committed: "coalesced → committed (group commit: durable)",
  published: "committed → published (given to the log's listeners)",
  sent: "published → sent (frame encoded, queued and written to the socket; holders on: coalesced → sent, before its commit)",
  received: "sent → received (loopback, and the client's WebSocket decode)",
};

type Side = "floor" | "ttyd" | "node" | "durable" | "held" | "off" | "on" | "ttyd-warm" | "proc" | "proc-budget";
const SIDE_NAME: Record<Side, string> = {
  floor: "raw node-pty `cat` (floor)",
  ttyd: "ttyd `cat`",
  node: "bare Node server (ws + node-pty `cat`)",
  durable: "bare Node server + a SQLite commit of each key with its echo",
  held: "bare Node server + a holder (`cat` under the session's holder; key and echo committed after the echo)",
  off: "Switchboard, holders off",
  on: "Switchboard, holders on",
  "ttyd-warm": `ttyd \`cat\` after ${WARM_KEYS.toLocaleString("en-US")} keys`,
  proc: `Switchboard as \`serve\` runs it (holders on) after ${WARM_KEYS.toLocaleString("en-US")} keys`,
  "proc-budget": `the same with \`${INTERRUPT_BUDGET_ENV}=${QUICK_BUDGET}\``,
};

/** Timestamps of the key in flight: the first time each step is seen after it was typed. */
let marks: Partial<Record<Step, number>> | undefined;
const mark = (step: Step) => {
  if (marks !== undefined && marks[step] === undefined) marks[step] = performance.now();
};

/** Wraps `name` of `proto` to mark `step` before it runs (only while `when` says). */
function tap<T extends object>(
  proto: T,
  name: keyof T & string,
  step: Step,
  when: (...args: never[]) => boolean = () => true,
): () => void {
  const original = proto[name] as unknown as (...args: unknown[]) => unknown;
  (proto as Record<string, unknown>)[name] = function (this: unknown, ...args: unknown[]) {
    if ((when as (...a: unknown[]) => boolean)(...args)) mark(step);
    return original.apply(this, args);
  };
  return () => void ((proto as Record<string, unknown>)[name] = original);
}

/** Types ECHO_WARMUP + ECHO_SAMPLES keys with `type`, each once the one before was echoed. */
async function typeKeys(type: (echoed: () => void) => void): Promise<number[]> {
  const rtts: number[] = [];
  for (let i = 0; i < ECHO_SAMPLES + ECHO_WARMUP; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => type(resolve));
    if (i >= ECHO_WARMUP) rtts.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, i < ECHO_WARMUP ? 0 : ECHO_GAP_MS));
  }
  return rtts;
}

/** A key's echo is given up on after this long (the round fails). */
const ECHO_TIMEOUT_MS = 10_000;

/**
 * The client, on a thread of its own as a browser is apart from the gateway (and from ttyd):
 * types the keys over `url` and answers each key's `[typed, received]` on the clock all threads
 * share (`performance.timeOrigin + performance.now()`, ms).
 */
const CLIENT = `
const { parentPort, workerData } = require("node:worker_threads");
const WebSocket = require("ws");
const { url, protocols, headers, wire, keys, warmup, gapMs, timeoutMs } = workerData;
const ttyd = wire === "ttyd";
const now = () => performance.timeOrigin + performance.now();
const ws = new WebSocket(url, protocols, { headers });
let echoed;
ws.on("error", (e) => parentPort.postMessage({ error: e.message }));
ws.on("message", (raw, isBinary) => {
  const echo =
    wire === "ttyd" ? raw[0] === 0x30 && raw.includes(0x78, 1)
    : wire === "binary" ? isBinary && raw[0] === 1 && raw.includes(0x78, 9)
    : /"type":"stdout"/.test(raw) && JSON.parse(raw.toString()).data.includes("x");
  if (echo) echoed && echoed(now());
});
const cpu = () => { try { return Number(require("node:fs").readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]); } catch { return NaN; } };
ws.once("open", async () => {
  // ttyd starts the command once the client says its size.
  if (ttyd) ws.send(Buffer.from(JSON.stringify({ AuthToken: "", columns: 80, rows: 24 })));
  const out = [];
  let cpuFrom = 0;
  for (let i = 0; i < keys; i++) {
    if (i === warmup) { cpuFrom = cpu(); parentPort.postMessage({ measuring: true }); }
    let typed = 0;
    const received = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(-1), timeoutMs);
      echoed = (t) => { clearTimeout(timer); resolve(t); };
      typed = now();
      ws.send(wire === "ttyd" ? Buffer.from("0x") : wire === "binary" ? Buffer.from("x") : JSON.stringify({ type: "stdin", data: "x" }));
    });
    if (received < 0) { parentPort.postMessage({ error: "key " + i + " was not echoed within " + timeoutMs + " ms" }); return; }
    out.push([typed, received]);
    await new Promise((r) => setTimeout(r, i < warmup ? 0 : gapMs));
  }
  const cpuNs = cpu() - cpuFrom;
  parentPort.postMessage({ last: true });
  ws.close();
  parentPort.postMessage({ keys: out, cpuNs });
});
`;

/**
 * The gateway's threads, by what runs on them: each worker thread is named as it is created (a
 * Worker's constructor starts its thread before it returns, so the thread that appears during it
 * is its own). Threads there before the gateway started are V8's (compiles, GC) and the loader's;
 * other threads that appear later are libuv's pool.
 */
type ThreadRole =
  | "main thread (event loop)"
  | "log writer thread"
  | "search indexer thread"
  | "search query thread"
  | "screen thread"
  | "V8's threads (GC, compiles) and tsx's loader"
  | "libuv's pool and other threads"
  | "holder process (holders on)";
const THREAD_ROLES: readonly ThreadRole[] = [
  "main thread (event loop)",
  "log writer thread",
  "search indexer thread",
  "search query thread",
  "screen thread",
  "V8's threads (GC, compiles) and tsx's loader",
  "libuv's pool and other threads",
  "holder process (holders on)",
];
/** The role of each thread of this process a Worker started (the bench's client: "client"). */
const workerRoles = new Map<string, ThreadRole | "client">();
const ownTids = () => readdirSync("/proc/self/task");

function roleOfWorker(script: unknown, options: { workerData?: { role?: string } } | undefined): ThreadRole | "client" {
  const text = String(script);
  if (text.includes("sqlite-writer")) return "log writer thread";
  if (text.includes("search-worker"))
    return options?.workerData?.role === "query" ? "search query thread" : "search indexer thread";
  if (text.includes("screen-worker")) return "screen thread";
  if (text === CLIENT) return "client";
  return "libuv's pool and other threads";
}

/** Names every worker thread started from now on (node:worker_threads' Worker, wrapped). */
function nameWorkerThreads(): void {
  const threads = createRequire(import.meta.url)("node:worker_threads") as { Worker: typeof Worker };
  const Original = threads.Worker;
  if ((Original as { named?: true }).named) return;
  threads.Worker = class extends Original {
    static named = true;
    constructor(script: string | URL, options?: ConstructorParameters<typeof Worker>[1]) {
      const before = new Set(ownTids());
      super(script, options);
      for (const tid of ownTids()) if (!before.has(tid)) workerRoles.set(tid, roleOfWorker(script, options));
    }
  } as typeof Worker;
  syncBuiltinESMExports();
}

/** On-CPU ns of each thread of this process (by tid) and of the processes in `others` (by "pid:"), Linux only. */
function cpuByThread(others: readonly number[]): Map<string, number> {
  const out = new Map<string, number>();
  const read = (file: string) => Number(readFileSync(file, "utf8").split(" ")[0]);
  try {
    for (const tid of ownTids()) out.set(tid, read(`/proc/self/task/${tid}/schedstat`));
    for (const pid of others)
      for (const tid of readdirSync(`/proc/${pid}/task`))
        out.set(`${pid}:${tid}`, (out.get(`${pid}:${tid}`) ?? 0) + read(`/proc/${pid}/task/${tid}/schedstat`));
  } catch {
    // Not Linux, or a thread ended between the listing and its read: what was read stands.
  }
  return out;
}

/** The CPU per key (µs) of each role, from two readings of cpuByThread over `keys` keys. */
function cpuByRole(
  from: Map<string, number>,
  to: Map<string, number>,
  keys: number,
  startup: ReadonlySet<string>,
): Map<ThreadRole, number> {
  const out = new Map<ThreadRole, number>(THREAD_ROLES.map((r) => [r, 0]));
  for (const [tid, ns] of to) {
    const role: ThreadRole | "client" = tid.includes(":")
      ? "holder process (holders on)"
      : tid === String(process.pid)
        ? "main thread (event loop)"
        : (workerRoles.get(tid) ??
          (startup.has(tid) ? "V8's threads (GC, compiles) and tsx's loader" : "libuv's pool and other threads"));
    if (role === "client") continue;
    out.set(role, out.get(role)! + (ns - (from.get(tid) ?? 0)) / 1000 / keys);
  }
  return out;
}

/**
 * On-CPU time of the processes in `pids` (every thread; Linux's schedstat, ns), NaN where it
 * cannot be read (another OS).
 */
function cpuNs(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      // Not Linux, or the process ended: no figure.
      return NaN;
    }
    for (const tid of tids) {
      try {
        sum += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // A thread that ended since the listing (a round gave NaN for ttyd): its time is not counted.
      }
    }
  }
  return sum;
}

/**
 * Runs the client against `url`; every key's `[typed, received]`, the warm-up's included, and
 * the CPU the server's processes (`serverPids`, less the client's own thread when this process is
 * one of them) took per key after the warm-up (µs).
 */
async function typeFromThread(o: {
  url: string;
  wire: Wire;
  headers?: Record<string, string>;
  serverPids: () => number[];
  /** Threads of this process there before the gateway started (see cpuByRole). */
  startup?: ReadonlySet<string>;
  /** Keys before the measured ones; ECHO_WARMUP unless said. */
  warmup?: number;
}): Promise<{ keys: [number, number][]; cpuUsPerKey: number; byRole: Map<ThreadRole, number> }> {
  const warmup = o.warmup ?? ECHO_WARMUP;
  const worker = new Worker(CLIENT, {
    eval: true,
    workerData: {
      url: o.url,
      protocols: o.wire === "ttyd" ? ["tty"] : [],
      headers: o.headers ?? {},
      wire: o.wire,
      keys: ECHO_SAMPLES + warmup,
      warmup,
      gapMs: ECHO_GAP_MS,
      timeoutMs: ECHO_TIMEOUT_MS,
    },
  });
  try {
    let from = NaN;
    let to = NaN;
    const others = () => o.serverPids().filter((pid) => pid !== process.pid);
    let threadsFrom = new Map<string, number>();
    let threadsTo = new Map<string, number>();
    const keys = await new Promise<[number, number][]>((resolve, reject) => {
      worker.on(
        "message",
        (m: { keys?: [number, number][]; error?: string; measuring?: true; last?: true; cpuNs?: number }) => {
          if (m.error !== undefined) reject(new Error(`echo client: ${m.error}`));
          if (m.measuring) {
            from = cpuNs(o.serverPids());
            threadsFrom = cpuByThread(others());
          }
          if (m.last) {
            to = cpuNs(o.serverPids());
            threadsTo = cpuByThread(others());
          }
          if (m.keys !== undefined) {
            const own = o.serverPids().includes(process.pid) ? (m.cpuNs ?? NaN) : 0;
            to -= own;
            resolve(m.keys);
          }
        },
      );
      worker.once("error", reject);
    });
    const byRole = cpuByRole(threadsFrom, threadsTo, ECHO_SAMPLES, o.startup ?? new Set());
    return { keys, cpuUsPerKey: (to - from) / 1000 / ECHO_SAMPLES, byRole };
  } finally {
    await worker.terminate();
  }
}

/** `performance.now()` of this thread on the clock the client's thread shares. */
const shared = (t: number) => performance.timeOrigin + t;

/** Each measured key's time at every one of `steps`, from the client's `[typed, received]` and the server's marks. */
function samplesOf(
  keys: [number, number][],
  seen: Partial<Record<Step, number>>[],
  steps: readonly Step[],
): Record<Step, number>[] {
  const samples: Record<Step, number>[] = [];
  keys.forEach(([typed, received], i) => {
    const m = seen[i];
    if (i < ECHO_WARMUP || m === undefined) return;
    const at: Partial<Record<Step, number>> = { typed, received };
    for (const step of STEPS) if (m[step] !== undefined) at[step] = shared(m[step]);
    if (steps.every((s) => at[s] !== undefined)) samples.push(at as Record<Step, number>);
  });
  // A step no longer reached (a wrapped function renamed) would leave every key without a total.
  if (samples.length === 0) {
    const missing = steps.filter((step) => seen.every((m) => m[step] === undefined));
    throw new Error(
      `no key passed every step; never seen: ${missing.join(", ") || "(each seen, never all in one key)"}`,
    );
  }
  return samples;
}

async function gatewayRound(
  holders: boolean,
): Promise<{ samples: Record<Step, number>[]; cpuUsPerKey: number; byRole: Map<ThreadRole, number> }> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-echo-hops-"));
  nameWorkerThreads();
  const startup = new Set(ownTids());
  const gw = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir: dir,
    token: TOKEN,
    holders,
    logger: createLogger({ level: "silent" }),
  });
  // The gateway's steps of each key, in order: a key starts when its frame's bytes arrive.
  const seen: Partial<Record<Step, number>>[] = [];
  const untap = [
    tap(Receiver.prototype, "_write", "arrived", () => {
      if (marks === undefined) seen.push((marks = {}));
      return true;
    }),
    tap(WsConnection.prototype as unknown as { receive: () => void }, "receive", "decoded"),
    tap(TerminalSession.prototype, "write", "steered"),
    tap(OutputCoalescer.prototype, "push", "read"),
    tap(SessionLog.prototype, "appendOutputBytes", "coalesced"),
    tap(SessionLog.prototype, "markDurable", "committed", () => marks?.coalesced !== undefined),
    tap(Outbox.prototype as unknown as { write: () => void }, "write", "sent", () => {
      if (marks?.[holders ? "coalesced" : "published"] === undefined || marks.sent !== undefined) return false;
      // The key's last step here: the next bytes to arrive are the next key's.
      queueMicrotask(() => (marks = undefined));
      return true;
    }),
  ];
  try {
    const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    const created = await fetch(`${gw.url}/v1/sessions`, {
      method: "POST",
      headers,
      body: JSON.stringify({ command: ["cat"], pty: true }),
    });
    const { id } = (await created.json()) as { id: string };
    gw.core.sessions
      .get(id)!
      .log.subscribe((entry) => entry.type === "output" && marks?.coalesced !== undefined && mark("published"), {
        background: true,
      });
    // The gateway's process and, held, the session's holder (not `cat`).
    const record = gw.core.sessions.get(id)!.record;
    const { keys, cpuUsPerKey, byRole } = await typeFromThread({
      url: `${gw.url.replace("http", "ws")}/ws/session/${id}${WIRE === "binary" ? "?output=binary" : ""}`,
      wire: WIRE,
      startup,
      headers: { authorization: `Bearer ${TOKEN}` },
      serverPids: () => [process.pid, ...(record.holder ? [record.holder.pid] : [])],
    });
    return { samples: samplesOf(keys, seen, stepsOf(holders)), cpuUsPerKey, byRole };
  } finally {
    marks = undefined;
    // Undone last first: two of them could wrap the same function.
    for (const u of untap.reverse()) u();
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `cat` on a node-pty terminal of this process: what the floor and the bare servers type into. */
function rawCat(): ReturnType<typeof spawnRawPty> {
  return spawnRawPty("cat", [], {
    name: "xterm-256color",
    cols: 80,
    rows: 24,
    cwd: process.cwd(),
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
  });
}

/** The floor: a key written straight to a node-pty `cat` in this process until its echo is read. */
async function rawRound(): Promise<number[]> {
  const term = rawCat();
  try {
    return await typeKeys((resolve) => {
      const d = term.onData((s) => {
        if (!s.includes("x")) return;
        d.dispose();
        resolve();
      });
      term.write("x");
    });
  } finally {
    term.kill();
  }
}

/**
 * What any Node gateway pays at least: a `ws` server in this process writing each `stdin` frame
 * to a node-pty `cat` and sending each read as a `stdout` frame (the gateway's JSON), nothing
 * else. `durable`: each key and its echo are also rows committed to SQLite (WAL, synchronous
 * NORMAL, as the log) in one transaction before the echo is sent — the least a server pays that
 * shows only what a restart keeps (the gateway with holders off commits a key's input with its
 * echo in the same way).
 */
async function bareNodeRound(durable: boolean): Promise<{ rtts: number[]; cpuUsPerKey: number }> {
  const dir = durable ? mkdtempSync(join(tmpdir(), "sb-bench-echo-bare-")) : undefined;
  const db = dir === undefined ? undefined : new Database(join(dir, "log.db"));
  db?.pragma("journal_mode = WAL");
  db?.pragma("synchronous = NORMAL");
  db?.exec("CREATE TABLE events (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, data BLOB NOT NULL)");
  const insert = db?.prepare("INSERT INTO events (type, data) VALUES (?, ?)");
  /** Keys not committed yet: they go with the next echo's commit. */
  const keys: string[] = [];
  const commit = db?.transaction((echo: string) => {
    for (const key of keys.splice(0)) insert!.run("input", key);
    insert!.run("output", echo);
  });
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => wss.once("listening", resolve));
  const term = rawCat();
  let offset = 0;
  wss.on("connection", (ws) => {
    const reading = term.onData((data) => {
      commit?.(data);
      if (WIRE === "binary") {
        const bytes = Buffer.from(data);
        const frame = Buffer.allocUnsafe(BINARY_OUTPUT_HEADER_BYTES + bytes.length);
        writeBinaryOutputHeader(frame, "stdout", offset);
        bytes.copy(frame, BINARY_OUTPUT_HEADER_BYTES);
        ws.send(frame);
      } else ws.send(`{"type":"stdout","offset":${offset},"data":${JSON.stringify(data)}}`);
      offset += Buffer.byteLength(data);
    });
    ws.on("message", (raw: Buffer, isBinary: boolean) => {
      let data: string;
      if (isBinary) data = raw.toString();
      else {
        const frame = JSON.parse(raw.toString()) as { type?: string; data?: unknown };
        if (frame.type !== "stdin" || typeof frame.data !== "string") return;
        data = frame.data;
      }
      if (commit !== undefined) keys.push(data);
      term.write(data);
    });
    ws.once("close", () => reading.dispose());
  });
  try {
    const { keys, cpuUsPerKey } = await typeFromThread({
      url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`,
      wire: WIRE,
      serverPids: () => [process.pid],
    });
    return { rtts: keys.slice(ECHO_WARMUP).map(([typed, received]) => received - typed), cpuUsPerKey };
  } finally {
    term.kill();
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
    db?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The floor of a held session's echo: a bare `ws` server whose `cat` runs under a session holder
 * (native/holder.c), as the gateway's do with holders on, and nothing else of the gateway. A key
 * goes to the holder as INPUT_NOW (written at once, its record kept); its echo is sent as it
 * arrives, and after it — once the key and echo are committed to SQLite, with the same linger as
 * the gateway's (LOG_INPUT_LINGER_MS) — the holder is told the commit and the output acknowledged.
 */
async function heldNodeRound(): Promise<{ rtts: number[]; cpuUsPerKey: number; samples: Record<Step, number>[] }> {
  const binary = holderBinary();
  if (binary === null) throw new Error("the holder binary is not built: npm run build");
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-echo-held-"));
  const db = new Database(join(dir, "log.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec("CREATE TABLE events (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, data BLOB NOT NULL)");
  const insert = db.prepare("INSERT INTO events (seq, type, data) VALUES (?, ?, ?)");
  const queued: Array<[number, string, Uint8Array]> = [];
  const holders = new Holders({ dataDir: dir, binary, onStop: "end" });
  const launched = await holders.launch("bench", {
    command: ["cat"],
    cwd: process.cwd(),
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", TERM: "xterm-256color" },
    pty: true,
    cols: 80,
    rows: 24,
    drainTimeoutMs: 1000,
  });
  const socket = connect(holders.socketPath("bench"));
  socket.setNoDelay?.(true);
  let seq = 0;
  let acked = 0;
  let viewer: WebSocket | undefined;
  let linger: NodeJS.Timeout | undefined;
  const commitLater = () => {
    linger ??= setTimeout(() => {
      linger = undefined;
      db.transaction(() => {
        for (const row of queued.splice(0)) insert.run(...row);
      })();
      socket.write(Buffer.concat([inputCommitFrame(seq), ackFrame(acked)]));
    }, LOG_INPUT_LINGER_MS);
  };
  const greeted = new Promise<void>((resolve, reject) => {
    const reader = new HolderFrameReader((f) => {
      if (f.type === "hello") {
        socket.write(helloFrame(0, 0));
        resolve();
      } else if (f.type === "output") {
        mark("read");
        const frame = Buffer.allocUnsafe(BINARY_OUTPUT_HEADER_BYTES + f.bytes.length);
        writeBinaryOutputHeader(frame, "stdout", f.offset);
        frame.set(f.bytes, BINARY_OUTPUT_HEADER_BYTES);
        if (marks?.read !== undefined && marks.sent === undefined) {
          mark("sent");
          queueMicrotask(() => (marks = undefined));
        }
        viewer?.send(frame);
        queued.push([++seq, "output", frame.subarray(BINARY_OUTPUT_HEADER_BYTES)]);
        acked = f.offset + f.bytes.length;
        commitLater();
      }
    });
    socket.on("data", (chunk) => reader.push(chunk));
    socket.once("error", reject);
  });
  await greeted;
  const actor = Buffer.from(JSON.stringify({ name: "bench", role: "admin" }));
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => wss.once("listening", resolve));
  wss.on("connection", (ws) => {
    viewer = ws;
    ws.on("message", (raw: Buffer, isBinary: boolean) => {
      mark("decoded");
      let data: Buffer = raw;
      if (!isBinary) {
        const frame = JSON.parse(raw.toString()) as { type?: string; data?: unknown };
        if (frame.type !== "stdin" || typeof frame.data !== "string") return;
        data = Buffer.from(frame.data);
      }
      mark("steered");
      socket.write(inputNowFrame(++seq, actor, data));
      queued.push([seq, "input", data]);
    });
  });
  // Each key's steps, as the gateway's are taken (gatewayRound): a key starts when its frame's bytes arrive.
  const seen: Partial<Record<Step, number>>[] = [];
  const untap = tap(Receiver.prototype, "_write", "arrived", () => {
    if (marks === undefined) seen.push((marks = {}));
    return true;
  });
  try {
    const { keys, cpuUsPerKey } = await typeFromThread({
      url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`,
      wire: WIRE,
      serverPids: () => [process.pid, launched.holderPid],
    });
    return {
      rtts: keys.slice(ECHO_WARMUP).map(([typed, received]) => received - typed),
      cpuUsPerKey,
      samples: samplesOf(keys, seen, HELD_STEPS),
    };
  } finally {
    marks = undefined;
    untap();
    if (linger !== undefined) clearTimeout(linger);
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
    socket.destroy();
    for (const pid of [launched.childPid, launched.holderPid]) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The gateway as its own process, as `npm start` runs it (src/ bundled as `npm run build` ships
 * it), holders on, nothing wrapped, measured after {@link WARM_KEYS} keys: a running gateway,
 * against ttyd after as many (`ttyd-warm`). Its CPU per key is the gateway's process only (not its
 * holder's).
 */
async function procRound(extraEnv: Record<string, string> = {}): Promise<{ rtts: number[]; cpuUsPerKey: number }> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-echo-proc-"));
  const [node, main] = bundledCommand("src/cli/main.ts");
  const child = spawn(node!, [main!, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dir], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    stdio: ["ignore", "pipe", "ignore"],
    env: {
      ...process.env,
      SWITCHBOARD_TOKEN: TOKEN,
      SWITCHBOARD_HOLDERS: "on",
      SWITCHBOARD_LOG_LEVEL: "silent",
      ...extraEnv,
    },
  });
  try {
    const url = await listeningUrl(child, "proc");
    const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    const created = await fetch(`${url}/v1/sessions`, {
      method: "POST",
      headers,
      body: JSON.stringify({ command: ["cat"], pty: true }),
    });
    const { id } = (await created.json()) as { id: string };
    const { keys, cpuUsPerKey } = await typeFromThread({
      url: `${url.replace("http", "ws")}/ws/session/${id}${WIRE === "binary" ? "?output=binary" : ""}`,
      wire: WIRE,
      headers: { authorization: `Bearer ${TOKEN}` },
      serverPids: () => [child.pid!],
      warmup: WARM_KEYS,
    });
    await fetch(`${url}/v1/sessions/${id}`, { method: "DELETE", headers }).catch(() => undefined);
    return { rtts: keys.slice(WARM_KEYS).map(([typed, received]) => received - typed), cpuUsPerKey };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ttyd's binary: `TTYD`, else `ttyd` on PATH; undefined when neither is there. */
function findTtyd(): string | undefined {
  const candidates = [
    process.env["TTYD"],
    ...(process.env["PATH"] ?? "").split(delimiter).map((dir) => join(dir, "ttyd")),
  ];
  for (const file of candidates) {
    if (file === undefined || file === "") continue;
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not there (or not executable): the next candidate.
    }
  }
  return undefined;
}

/** ttyd serving `cat` on 127.0.0.1 (a port of its choosing), once it says its port. */
function startTtyd(file: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(file, ["-p", "0", "-i", "lo", "-W", "cat"], { stdio: ["ignore", "ignore", "pipe"] });
  return new Promise((resolve, reject) => {
    let said = "";
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`ttyd did not say its port within ${TTYD_START_MS} ms: ${said.slice(-500)}`));
    }, TTYD_START_MS);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      said += chunk.toString();
      const port = /Listening on port: (\d+)/.exec(said)?.[1];
      if (port === undefined) return;
      clearTimeout(timer);
      child.stderr!.removeAllListeners("data");
      child.stderr!.resume();
      resolve({ child, port: Number(port) });
    });
  });
}

/** ttyd's protocol: a JSON hello starts `cat`; input is "0" + bytes, output "0" + bytes (binary). */
async function ttydRound(file: string, warmup = ECHO_WARMUP): Promise<{ rtts: number[]; cpuUsPerKey: number }> {
  const { child, port } = await startTtyd(file);
  try {
    const { keys, cpuUsPerKey } = await typeFromThread({
      url: `ws://127.0.0.1:${port}/ws`,
      wire: "ttyd",
      serverPids: () => [child.pid!],
      warmup,
    });
    return { rtts: keys.slice(warmup).map(([typed, received]) => received - typed), cpuUsPerKey };
  } finally {
    child.kill();
  }
}

/**
 * What a small piece of the path costs run in a loop, and run once every `gapMs` as a key is:
 * `JSON.parse` of a `stdin` frame's bytes (µs, p50). The gap leaves caches and TLB cold, so a
 * key's cost follows what its path touches more than what it runs.
 */
async function coldParse(gapMs: number, times: number): Promise<number> {
  const frame = Buffer.from('{"type":"stdin","data":"x"}');
  const parse = () => (JSON.parse(frame.toString()) as { type: string }).type === "stdin";
  const took: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    parse();
    took.push((performance.now() - started) * 1000);
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  return p50(took);
}

const p50 = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

export async function run(): Promise<BenchSection> {
  const ttyd = findTtyd();
  const sides = (
    ttyd === undefined
      ? (["floor", "node", "durable", "held", "off", "on"] as Side[])
      : (["floor", "ttyd", "node", "durable", "held", "off", "on", "ttyd-warm", "proc", "proc-budget"] as Side[])
  ).filter((s) => ONLY_SIDES === undefined || ONLY_SIDES.includes(s));
  const all: Side[] = ["floor", "ttyd", "node", "durable", "held", "off", "on", "ttyd-warm", "proc", "proc-budget"];
  const totals = new Map<Side, number[]>(all.map((s) => [s, []]));
  /** The server's CPU per key, each round (µs): ttyd's process, the gateway's (and its holder's). */
  const cpu = new Map<Side, number[]>(all.map((s) => [s, []]));
  const hops = { off: new Map<Step, number[]>(), on: new Map<Step, number[]>(), held: new Map<Step, number[]>() };
  /** Each hop's p50 this round (from the step before it in `steps`), kept per hop. */
  const addHops = (into: Map<Step, number[]>, steps: readonly Step[], samples: Record<Step, number>[]) => {
    for (let s = 1; s < steps.length; s++) {
      const step = steps[s]!;
      const hop = samples.map((m) => m[step] - m[steps[s - 1]!]);
      into.set(step, [...(into.get(step) ?? []), p50(hop)]);
    }
  };
  /** Each round's CPU per key by thread (µs), per gateway side. */
  const threads = { off: new Map<ThreadRole, number[]>(), on: new Map<ThreadRole, number[]>() };
  const notes: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // The order turns each round so that no side always follows the same one.
    const order = sides.map((_, i) => sides[(i + round) % sides.length]!);
    for (const side of order) {
      if (side === "floor") totals.get(side)!.push(p50(await rawRound()));
      else if (side === "ttyd" || side === "ttyd-warm") {
        const { rtts, cpuUsPerKey } = await ttydRound(ttyd!, side === "ttyd" ? ECHO_WARMUP : WARM_KEYS);
        totals.get(side)!.push(p50(rtts));
        cpu.get(side)!.push(cpuUsPerKey);
      } else if (side === "proc" || side === "proc-budget") {
        const { rtts, cpuUsPerKey } = await procRound(side === "proc" ? {} : { [INTERRUPT_BUDGET_ENV]: QUICK_BUDGET });
        totals.get(side)!.push(p50(rtts));
        cpu.get(side)!.push(cpuUsPerKey);
      } else if (side === "held") {
        const { rtts, cpuUsPerKey, samples } = await heldNodeRound();
        totals.get(side)!.push(p50(rtts));
        cpu.get(side)!.push(cpuUsPerKey);
        addHops(hops.held, HELD_STEPS, samples);
      } else if (side === "node" || side === "durable") {
        const { rtts, cpuUsPerKey } = await bareNodeRound(side === "durable");
        totals.get(side)!.push(p50(rtts));
        cpu.get(side)!.push(cpuUsPerKey);
      } else {
        const { samples, cpuUsPerKey, byRole } = await gatewayRound(side === "on");
        cpu.get(side)!.push(cpuUsPerKey);
        for (const [role, us] of byRole) threads[side].set(role, [...(threads[side].get(role) ?? []), us]);
        addHops(hops[side], stepsOf(side === "on"), samples);
        totals.get(side)!.push(p50(samples.map((m) => m.received - m.typed)));
      }
    }
    notes.push(
      `round ${round + 1} (${order.join(", ")}, load ${loadavg()[0]!.toFixed(1)}): p50 ${sides.map((s) => `${s} ${fmt(totals.get(s)![round]!, 3)}`).join(", ")} ms; server CPU per key ${sides
        .filter((s) => s !== "floor")
        .map((s) => `${s} ${fmt(cpu.get(s)![round]!, 0)}`)
        .join(", ")} µs`,
    );
  }
  const mid = (side: Side) => median(totals.get(side)!);
  // Ratios are medians of the per-round ratios (each pair seconds apart).
  const ratio = (side: Side, to: Side) => median(totals.get(side)!.map((v, i) => v / totals.get(to)![i]!));
  const ran = (side: Side) => totals.get(side)!.length > 0;
  // Each side against ttyd (when it is there) and against the floor: the goal is met by either.
  const rows: BenchRow[] = [];
  // A running gateway against ttyd after as many keys: what someone typing into it sees once it
  // has run a while; the rows after it are a fresh gateway's first keys (V8 has not optimised
  // their path yet: docs/benchmarks.md, "A fresh gateway's keys run unoptimised").
  if (ran("proc") && ran("ttyd-warm"))
    rows.push({
      measure: `keystroke echo p50, typed → received, a running gateway (holders on, after ${WARM_KEYS.toLocaleString("en-US")} keys)`,
      ours: `${fmt(mid("proc"), 3)} ms`,
      baseline: `${SIDE_NAME["ttyd-warm"]} ${fmt(mid("ttyd-warm"), 3)} ms`,
      ratio: fmt(ratio("proc", "ttyd-warm"), 2),
      goal: `≤ ${GOAL_TTYD_RATIO} × ttyd`,
      met: ratio("proc", "ttyd-warm") <= GOAL_TTYD_RATIO,
    });
  // The same gateway asking V8 to optimise sooner: what quickenOptimisation (src/system/jit-budget.ts) gains.
  if (ran("proc-budget") && ran("ttyd-warm"))
    rows.push({
      measure: `the same, with \`${INTERRUPT_BUDGET_ENV}=${QUICK_BUDGET}\` (V8 optimises sooner)`,
      ours: `${fmt(mid("proc-budget"), 3)} ms`,
      baseline: `${SIDE_NAME["ttyd-warm"]} ${fmt(mid("ttyd-warm"), 3)} ms`,
      ratio: fmt(ratio("proc-budget", "ttyd-warm"), 2),
    });
  for (const side of ["off", "on"] as const) {
    const what = `keystroke echo p50, typed → received, ${side === "on" ? "holders on" : "holders off"}, a fresh gateway (after ${ECHO_WARMUP} keys)`;
    const toTtyd = ttyd === undefined ? undefined : ratio(side, "ttyd");
    const toFloor = ratio(side, "floor");
    const met = (toTtyd !== undefined && toTtyd <= GOAL_TTYD_RATIO) || toFloor <= GOAL_FLOOR_RATIO;
    if (toTtyd !== undefined)
      rows.push({
        measure: what,
        ours: `${fmt(mid(side), 3)} ms`,
        baseline: `${SIDE_NAME.ttyd} ${fmt(mid("ttyd"), 3)} ms`,
        ratio: fmt(toTtyd, 2),
        goal: `≤ ${GOAL_TTYD_RATIO} × ttyd, or the floor's goal`,
        met,
      });
    rows.push({
      measure: `${what}, ÷ the floor`,
      ours: `${fmt(mid(side), 3)} ms`,
      baseline: `${SIDE_NAME.floor} ${fmt(mid("floor"), 3)} ms`,
      ratio: fmt(toFloor, 2),
      goal: `≤ ${GOAL_FLOOR_RATIO} × floor${ttyd === undefined ? "" : ", or ttyd's goal"}`,
      met,
    });
  }
  if (ttyd !== undefined)
    rows.push({
      measure: "(reference) ttyd ÷ the floor",
      ours: "",
      baseline: `floor ${fmt(mid("floor"), 3)} ms`,
      ratio: fmt(ratio("ttyd", "floor"), 2),
    });
  // What a Node server pays at least, with and without the commits the log's promise needs, and
  // with a holder (what holders on must pay: its hops, and the commit after the echo).
  for (const side of ["node", "durable", "held"] as const) {
    if (!ran(side)) continue;
    if (ttyd !== undefined && ran("ttyd"))
      rows.push({
        measure: `(reference) ${SIDE_NAME[side]} ÷ ttyd`,
        ours: `${fmt(mid(side), 3)} ms`,
        baseline: `${SIDE_NAME.ttyd} ${fmt(mid("ttyd"), 3)} ms`,
        ratio: fmt(ratio(side, "ttyd"), 2),
      });
    for (const gateway of side === "held" ? (["on"] as const) : (["off", "on"] as const))
      if (ran(gateway))
        rows.push({
          measure: `(reference) ${SIDE_NAME[gateway]} ÷ ${SIDE_NAME[side]}`,
          ours: `${fmt(mid(gateway), 3)} ms`,
          baseline: `${fmt(mid(side), 3)} ms`,
          ratio: fmt(ratio(gateway, side), 2),
        });
  }
  const hopCell = (v: number[] | undefined) => (v === undefined ? "– (after sent)" : `${fmt(median(v), 3)} ms`);
  // The bare held server beside the gateway's held path: what the gateway's own steps add.
  const heldCell = (step: Step) =>
    !ran("held") ? "–" : step === "coalesced" ? "– (no coalescer)" : hopCell(hops.held.get(step));
  const hopTable = [
    `| hop, p50 (median of the rounds) | holders off | holders on | ${SIDE_NAME.held} |`,
    "| --- | --- | --- | --- |",
    ...STEPS.slice(1).map(
      (step) =>
        `| ${HOP_WHAT[step as Exclude<Step, "typed">]} | ${hopCell(hops.off.get(step))} | ${hopCell(hops.on.get(step))} | ${heldCell(step)} |`,
    ),
    `| typed → received (the total) | ${fmt(mid("off"), 3)} ms | ${fmt(mid("on"), 3)} ms | ${ran("held") ? `${fmt(mid("held"), 3)} ms` : "–"} |`,
  ].join("\n");
  const perThread = (side: "off" | "on", role: ThreadRole) => {
    const v = threads[side].get(role) ?? [];
    return v.length === 0 ? "–" : `${fmt(median(v), 0)} µs`;
  };
  const threadTable = [
    "| server CPU per key, by thread (median of the rounds; Linux schedstat) | holders off | holders on |",
    "| --- | --- | --- |",
    ...THREAD_ROLES.map((role) => `| ${role} | ${perThread("off", role)} | ${perThread("on", role)} |`),
  ].join("\n");
  const sideTable = [
    `| p50 (median of ${ROUNDS} rounds) | ${sides.map((s) => SIDE_NAME[s]).join(" | ")} |`,
    `| --- | ${sides.map(() => "---").join(" | ")} |`,
    `| echo | ${sides.map((s) => `${fmt(mid(s), 3)} ms`).join(" | ")} |`,
    `| server CPU per key (median of the rounds; Linux schedstat) | ${sides.map((s) => (cpu.get(s)!.length === 0 ? "–" : `${fmt(median(cpu.get(s)!), 0)} µs`)).join(" | ")} |`,
    `| ÷ floor (median of per-round ratios) | ${sides.map((s) => (WARMED.includes(s) ? "–" : fmt(ratio(s, "floor"), 2))).join(" | ")} |`,
    ...(ttyd === undefined
      ? []
      : [
          `| ÷ ttyd (median of per-round ratios; after ${WARM_KEYS.toLocaleString("en-US")} keys: ÷ ttyd after as many) | ${sides.map((s) => fmt(ratio(s, WARMED.includes(s) ? "ttyd-warm" : "ttyd"), 2)).join(" | ")} |`,
        ]),
  ].join("\n");
  const coldTable = [
    "| `JSON.parse` of a `stdin` frame (28 bytes), p50 | µs |",
    "| --- | --- |",
    `| in a loop (100,000 times) | ${fmt(await coldParse(0, 100_000), 2)} |`,
    `| once every 1 ms (200 times) | ${fmt(await coldParse(1, 200), 1)} |`,
    `| once every 10 ms, as the bench's keys (200 times) | ${fmt(await coldParse(ECHO_GAP_MS, 200), 1)} |`,
  ].join("\n");
  return {
    title: "Keystroke echo, hop by hop",
    rows,
    tables: [sideTable, hopTable, threadTable, coldTable],
    method: [
      `A key over \`/ws/session\` into a PTY \`cat\` until its echo, ${WIRE === "binary" ? "as `switchboard attach` sends and reads them (a binary message each way: `?output=binary`, binary input)" : "as JSON frames (`stdin`, `stdout`; `SWITCHBOARD_ECHO_WIRE=json`)"}, ${ECHO_SAMPLES} keys ${ECHO_GAP_MS} ms apart after ${ECHO_WARMUP} of warm-up; ${ROUNDS} rounds, each running every side once (the order turning): the floor (a raw node-pty \`cat\` typed into in this process), ${ttyd === undefined ? "no ttyd (neither `TTYD` nor `ttyd` on PATH: the goal is then the floor's ratio)" : "ttyd (`-W cat`, the same client, its protocol's `0` + bytes)"}, a bare Node server in this process (\`ws\` + node-pty \`cat\`, the gateway's \`stdout\` frame, nothing else) without and with a SQLite commit (WAL, synchronous NORMAL) of each key and its echo, in one transaction before the echo is sent (as the gateway with holders off commits them), a bare Node server whose \`cat\` runs under a session holder (\`held\`: each key sent as INPUT_NOW, its echo sent as it comes, key and echo committed ${LOG_INPUT_LINGER_MS} ms later and the holder told, as the gateway with holders on does), the gateway with holders off and on${ttyd === undefined ? "" : `, and the running pair: ttyd and the gateway as \`npm start\` runs it (a process of its own, src/ bundled as \`npm run build\` ships it, holders on, nothing wrapped), each measured after ${WARM_KEYS.toLocaleString("en-US")} keys of warm-up (\`SWITCHBOARD_ECHO_WARM_KEYS\`)`}. Compared with: ${ttyd === undefined ? "the floor" : "ttyd and the floor (the goal is met by either); the running gateway with ttyd after as many keys"}.`,
      "The client (the same for ttyd and the gateway) runs on a thread of its own, as a browser is apart from the gateway; all threads read one clock. Each step is timed by wrapping the function it calls (ws's receiver, the connection's frame handler, TerminalSession.write, OutputCoalescer.push, SessionLog.appendOutputBytes and markDurable, a log listener, the socket's write, the client's message). The hops do not add up to the total: each is a p50 of its own.",
      "Server CPU per key: the on-CPU time (Linux `/proc/<pid>/task/*/schedstat`) of ttyd's process, or of the gateway's (every thread, less the client's own; held, with the session's holder), over the keys after the warm-up ÷ their count; `cat` is not counted on either side.",
      "By thread: the same reading per thread of the gateway's process (`/proc/self/task/<tid>/schedstat`). Each worker thread is named as it starts (node:worker_threads' Worker wrapped: the thread that appears while its constructor runs is its own); threads there before the gateway started are V8's (GC, compiles) and tsx's loader. The bench's own wrappers run on the main thread, a few % of it. `SWITCHBOARD_ECHO_SIDES=off,on` runs only the sides named.",
    ],
    notes,
  };
}
