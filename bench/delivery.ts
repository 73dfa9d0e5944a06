/**
 * Real-time delivery benchmarks: PTY throughput to WebSocket viewers, keystroke echo
 * round trip, fan-out against a bare `ws` broadcast loop, a slow client among 100, and memory
 * per idle connection and per idle PTY session. Every figure and its baseline are measured in
 * one run. The gateway (and the baselines) run in this process; the WebSocket clients run in a
 * child process (this same file, forked), so they do not share the gateway's event loop.
 *
 * Reproduce: `npm run bench -- delivery` (prints this section), or `npm run bench`.
 * Everything listens on 127.0.0.1 only.
 */
import { isUtf8 } from "node:buffer";
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { PerformanceObserver, constants as perfConstants } from "node:perf_hooks";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawn as spawnRawPty } from "node-pty";
import WebSocket, { WebSocketServer } from "ws";
import { DEFAULT_LIMITS, parseConfig } from "../src/server/config/config.js";
import { CATCHUP_BATCH_BYTES } from "../src/server/ws/feed.js";
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/ops/logger.js";
import { jsonTextFrame, jsonTextFrameJs, jsonTextNative } from "../src/log/json-text.js";
import { readBinaryOutput } from "../src/protocol/index.js";
import type { TerminalOutputMode } from "../src/protocol/index.js";
import type { Session } from "../src/sessions/session.js";
import { FLOOD_PACE_MS, INTERACTIVE_MS, setFloodReader } from "../src/sessions/pty-master.js";
import { appendExternalEvent } from "../src/sessions/stream-session.js";
import { Outbox } from "../src/server/ws/ws-common.js";
import { measureRawPty, PTY_BENCH_BYTES, PTY_BENCH_COMMAND } from "./pty.js";
import { renderStandalone } from "./report.js";
import { fmt, median, percentile } from "./stats.js";
import type { BenchRow, BenchSection } from "./types.js";

const CHILD_ENV = "SWITCHBOARD_DELIVERY_BENCH_CHILD";
const TOKEN = "delivery-bench-token-0123456789abcdef";

/**
 * PTY throughput: rounds per side (medians), and their goals. Nine: on this shared
 * 2-core machine single runs of the same code range from 0.5 to 1.0 of raw, and medians of
 * five moved by ±0.08 between full runs.
 */
const PTY_ROUNDS = 9;
const GOAL_PTY_ONE = 0.9;
const GOAL_PTY_FOUR = 0.75;
/** Keystroke echo: samples per condition (after a warm-up), and the goals. */
const ECHO_SAMPLES = 300;
const ECHO_WARMUP = 20;
/**
 * Echo rounds (each: raw, idle, flooded, raw flooded), reported as the median of the rounds' percentiles:
 * the p99 of one round of 300 is its third-worst sample, and on this shared machine one round's flooded
 * p99 ranged from 5.7 to 14.4 ms for the same code.
 */
const ECHO_ROUNDS = 3;
/** Milliseconds between an echo and the next keystroke: 100 keystrokes a second, faster than anyone types. */
const ECHO_GAP_MS = 10;
const GOAL_ECHO_P50_MS = 1;
const GOAL_ECHO_P99_MS = 5;
const GOAL_ECHO_FLOOD_P99_MS = 10;
/** Fan-out: 1 KB events at 10k/s to 500 clients. */
const FANOUT_CLIENTS = 500;
const FANOUT_RATE = 10_000;
const FANOUT_EVENT_BYTES = 1024;
/** How long the producer runs at that rate. Short: neither side can carry 5 M deliveries/s on a small machine and a bare loop queues without bound. */
const FANOUT_MS = 200;
/** A second, sustainable load to read latency at: same clients and event size, lower rate. */
const FANOUT_SUSTAINED_RATE = 100;
const FANOUT_SUSTAINED_MS = 3000;
/** Sustained runs per side, alternating: single runs of a latency tail vary several-fold on a shared machine. */
const FANOUT_SUSTAINED_PAIRS = 5;
/** Pause between the fan-out phases (sustained, saturated) and before the slow-client runs. */
const SETTLE_BETWEEN_PHASES_MS = 1000;
const GOAL_FANOUT_RATIO = 0.9;
const GOAL_FANOUT_P99_MS = 50;
/**
 * Slow client among 100: 64 KiB events at 16/s for 10 s — 10 MiB per client, more than a stalled
 * socket's kernel buffers (~4 MB on loopback) and the 4 MiB queue budget hold, so the stalled
 * client really overflows into catch-up.
 */
const SLOW_CLIENTS = 100;
const SLOW_RATE = 16;
const SLOW_EVENT_BYTES = 64 * 1024;
const SLOW_MS = 10_000;
/** Runs with and without the slow client, alternating; the figures are medians. */
const SLOW_PAIRS = 3;
const GOAL_SLOW_P99_SLACK = 0.1;
const GOAL_SLOW_RSS_MB = 32;
/** Idle memory: connections (each subscribed to one idle session) and PTY sessions (`cat`). */
const IDLE_CONNECTIONS = 1000;
const IDLE_PTYS = 50;
const IDLE_PTY_WARMUP = 20;
/** Any one step that takes longer than this is broken, not slow. */
const STEP_TIMEOUT_MS = 120_000;

const now = (): number => performance.timeOrigin + performance.now();
/** Fan-out runs start with this long of the same load, not counted, so both sides are measured warm. */
const WARMUP_MS = 500;
/** The `t` of a warm-up event: the clients skip it. */
const WARMUP_T = 0;

/* ------------------------------------------------------------------ the client process */

type ChildCommand =
  | { op: "pty"; url: string; clients: number }
  | { op: "echo"; url: string; samples: number; warmup: number }
  | { op: "raw-echo"; samples: number }
  | { op: "drain"; url: string }
  | { op: "mux"; url: string; session: string | null; clients: number; slow: number; expect: number }
  | { op: "stop" }
  | { op: "resume-slow" }
  | { op: "idle"; url: string; session: string; clients: number }
  | { op: "release" };

type ChildReport =
  | { op: "pty"; bytes: number[]; doneAt: number[] }
  | { op: "echo"; rtts: number[] }
  | { op: "raw-echo"; rtts: number[] }
  | { op: "ready" }
  | { op: "mux"; delivered: number; latencies: number[]; lastAt: number; slowDelivered: number }
  | { op: "slow-done"; delivered: number }
  | { op: "released" }
  | { op: "error"; message: string };

/** What one client process does; it answers over IPC. */
function runChild(): void {
  // The parent is gone (or done): so are we, whatever sockets are still open.
  process.on("disconnect", () => process.exit(0));
  const sockets = new Set<WebSocket>();
  const report = (r: ChildReport) => process.send!(r);
  const open = (url: string): WebSocket => {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${TOKEN}` }, perMessageDeflate: false });
    sockets.add(ws);
    ws.on("close", () => sockets.delete(ws));
    ws.on("error", (error) => report({ op: "error", message: error.message }));
    return ws;
  };
  let resumeSlow: (() => void) | undefined;
  let stop: (() => void) | undefined;

  process.on("message", (cmd: ChildCommand) => {
    switch (cmd.op) {
      case "pty": {
        const bytes = new Array<number>(cmd.clients).fill(0);
        const doneAt = new Array<number>(cmd.clients).fill(0);
        let done = 0;
        for (let i = 0; i < cmd.clients; i++) {
          open(cmd.url).on("message", (raw: Buffer, isBinary) => {
            if (isBinary) {
              // ?output=binary: replay and stdout arrive as bytes behind a 9-byte header.
              bytes[i]! += readBinaryOutput(raw)!.bytes.length;
              return;
            }
            const f = JSON.parse(raw.toString()) as { type: string; data?: string; enc?: string };
            if (f.type === "replay" || f.type === "stdout")
              bytes[i]! += Buffer.byteLength(f.data!, f.enc === "base64" ? "base64" : "utf8");
            else if (f.type === "exit") {
              doneAt[i] = now();
              if (++done === cmd.clients) report({ op: "pty", bytes, doneAt });
            }
          });
        }
        return;
      }
      case "echo": {
        const ws = open(cmd.url);
        const rtts: number[] = [];
        let sentAt = 0;
        let waiting = false;
        const next = () => {
          if (rtts.length >= cmd.samples + cmd.warmup) {
            report({ op: "echo", rtts: rtts.slice(cmd.warmup) });
            return;
          }
          waiting = true;
          sentAt = performance.now();
          ws.send(JSON.stringify({ type: "stdin", data: "x" }));
        };
        ws.on("message", (raw) => {
          const f = JSON.parse(raw.toString()) as { type: string; data?: string };
          if (f.type === "connected") next();
          else if (f.type === "stdout" && waiting && f.data!.includes("x")) {
            waiting = false;
            rtts.push(performance.now() - sentAt);
            // A pause between keystrokes (still faster than anyone types), no pipelining.
            setTimeout(next, ECHO_GAP_MS);
          }
        });
        return;
      }
      case "raw-echo":
        void rawEcho(cmd.samples).then(
          (rtts) => report({ op: "raw-echo", rtts }),
          (error: unknown) => report({ op: "error", message: String(error) }),
        );
        return;
      case "drain": {
        open(cmd.url).on("message", (raw) => JSON.parse(raw.toString()));
        report({ op: "ready" });
        return;
      }
      case "mux": {
        const counts = new Array<number>(cmd.clients).fill(0);
        const latencies: number[] = [];
        let complete = 0;
        let subscribed = 0;
        let lastAt = 0;
        let finished = false;
        const fast = cmd.clients - cmd.slow;
        const finish = () => {
          if (finished) return;
          finished = true;
          const delivered = counts.slice(cmd.slow).reduce((a, b) => a + b, 0);
          const slowDelivered = counts.slice(0, cmd.slow).reduce((a, b) => a + b, 0);
          report({ op: "mux", delivered, latencies, lastAt, slowDelivered });
        };
        for (let i = 0; i < cmd.clients; i++) {
          const slow = i < cmd.slow;
          const ws = open(cmd.url);
          const onEvent = (e: { data: { t: number } }) => {
            if (e.data.t === WARMUP_T) return;
            const t = now();
            counts[i]!++;
            if (!slow) {
              latencies.push(t - e.data.t);
              lastAt = t;
              if (counts[i] === cmd.expect && ++complete === fast) finish();
            } else if (counts[i] === cmd.expect) {
              report({ op: "slow-done", delivered: counts[i]! });
            }
          };
          ws.on("message", (raw) => {
            const f = JSON.parse(raw.toString()) as {
              op: string;
              event?: { data: { t: number } };
              events?: Array<{ data: { t: number } }>;
            };
            if (f.op === "event") onEvent(f.event!);
            else if (f.op === "events") for (const e of f.events!) onEvent(e);
            else if (f.op === "hello") ws.send(JSON.stringify({ op: "subscribe", session: cmd.session, since: 0 }));
            else if (f.op === "subscribed" || f.op === "bare-hello") {
              if (slow) {
                const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
                socket.pause();
                resumeSlow = () => socket.resume();
              }
              if (++subscribed === cmd.clients) report({ op: "ready" });
            }
          });
        }
        // The parent says when the producer is done; whatever has not arrived 10 s later is reported as missing.
        stop = () => setTimeout(finish, 10_000).unref();
        return;
      }
      case "stop":
        stop?.();
        stop = undefined;
        return;
      case "resume-slow":
        resumeSlow?.();
        return;
      case "idle": {
        let subscribed = 0;
        for (let i = 0; i < cmd.clients; i++) {
          const ws = open(cmd.url);
          ws.on("message", (raw) => {
            const f = JSON.parse(raw.toString()) as { op: string };
            if (f.op === "hello") ws.send(JSON.stringify({ op: "subscribe", session: cmd.session, since: 0 }));
            else if (f.op === "subscribed" && ++subscribed === cmd.clients) report({ op: "ready" });
          });
        }
        return;
      }
      case "release": {
        for (const ws of sockets) ws.terminate();
        report({ op: "released" });
        return;
      }
    }
  });
}

/* ------------------------------------------------------------------ the parent side */

/** The forked client process, spoken to over IPC. */
class Clients {
  private readonly child: ChildProcess;
  private readonly inbox: ChildReport[] = [];
  private waiter: (() => void) | undefined;
  readonly errors: string[] = [];

  constructor() {
    this.child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, [CHILD_ENV]: "1" },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.child.on("message", (m: ChildReport) => {
      if (m.op === "error") this.errors.push(m.message);
      else this.inbox.push(m);
      this.waiter?.();
    });
  }

  send(cmd: ChildCommand): void {
    this.child.send(cmd);
  }

  /** The next report with this op (reports are queued in arrival order). */
  async next<O extends ChildReport["op"]>(op: O, ms = STEP_TIMEOUT_MS): Promise<Extract<ChildReport, { op: O }>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.inbox.findIndex((r) => r.op === op);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as Extract<ChildReport, { op: O }>;
      if (Date.now() > deadline)
        throw new Error(`bench clients: no ${op} report in ${ms} ms (errors: ${this.errors.slice(0, 3).join("; ")})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async release(): Promise<void> {
    this.send({ op: "release" });
    await this.next("released");
  }

  close(): void {
    this.child.kill();
  }
}

interface Running {
  gw: Gateway;
  dir: string;
  close(): Promise<void>;
}

async function gateway(): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-delivery-"));
  const gw = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir: dir,
    token: TOKEN,
    config: parseConfig({ limits: { connectionsPerToken: 5000, sessionsPerToken: 200, sessions: 500 } }),
    logger: createLogger({ level: "silent" }),
  });
  return {
    gw,
    dir,
    async close() {
      await gw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function createSession(gw: Gateway, body: Record<string, unknown>): Promise<{ id: string; pid: number }> {
  const res = await fetch(`${gw.url}/v1/sessions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`create session: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; pid: number };
}

async function deleteSession(gw: Gateway, id: string): Promise<void> {
  await fetch(`${gw.url}/v1/sessions/${id}`, { method: "DELETE", headers: { Authorization: `Bearer ${TOKEN}` } });
}

/** How many bytes of output a session has logged so far. */
async function outputBytesOf(gw: Gateway, id: string): Promise<number> {
  const res = await fetch(`${gw.url}/v1/sessions/${id}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  if (res.status !== 200) throw new Error(`get session: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { outputBytes: number }).outputBytes;
}

const wsBase = (gw: Gateway): string => gw.url.replace(/^http/, "ws");
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/* ---- PTY throughput ---- */

/**
 * One run and the baseline's run next to it (raw node-pty reading the same command, just before
 * or just after: the order alternates by round). The machine's speed drifts by ±20% within
 * minutes (other tenants of its host), so each run is compared with its own neighbour, and a
 * row's ratio is the median of its pairs' ratios.
 */
interface Paired {
  mbps: number;
  raw: number;
}

interface PtyResult {
  /** The session alone, no viewer: spawn until its `exit` is in the log (what the log layer costs). */
  alone: Paired[];
  /** Viewers with JSON output (the protocol's default) and with `?output=binary`. */
  one: Record<TerminalOutputMode, Paired[]>;
  fourEach: Record<TerminalOutputMode, Paired[]>;
  /** 1 viewer (JSON) with every master read on the event loop: what the reader thread adds. */
  oneLoop: Paired[];
  /** Full (mark-compact) GCs of this process (the gateway's) per run, by what the run was. */
  majorGcs: Record<"alone" | "one.json" | "one.binary" | "four.json" | "four.binary", number[]>;
  complete: boolean;
}

/** `run` (MB/s) beside a raw node-pty read of the same command: first in odd rounds, last in even ones. */
async function paired(round: number, run: () => Promise<number>): Promise<Paired> {
  const rawRun = async (): Promise<number> => {
    const raw = await measureRawPty(PTY_BENCH_COMMAND);
    return mbps(raw.bytes, raw.ms);
  };
  // Each run starts without the other's garbage (node-pty's reads allocate a buffer each, and
  // a full GC they set off would land in the gateway's run).
  const clean = <T>(fn: () => Promise<T>): Promise<T> => {
    gc();
    return fn();
  };
  if (round % 2 === 0) {
    const raw = await clean(rawRun);
    return { raw, mbps: await clean(run) };
  }
  const ours = await clean(run);
  return { mbps: ours, raw: await clean(rawRun) };
}

/** Runs `fn`, counting this process's full (mark-compact) GCs meanwhile. */
async function countingMajorGcs<T>(fn: () => Promise<T>): Promise<{ value: T; majors: number }> {
  let majors = 0;
  // Entries are delivered after the fact, also to an observer made after the GC: those of GCs
  // before `fn` started (in the raw read before it, say) are not this run's. Counting them made
  // the GC row 1 for every kind of run once each run had a raw read next to it.
  const started = performance.now();
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      if (
        e.startTime >= started &&
        (e as unknown as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR
      )
        majors++;
  });
  observer.observe({ entryTypes: ["gc"] });
  try {
    const value = await fn();
    // GC entries are delivered after the fact.
    await new Promise((r) => setImmediate(r));
    return { value, majors };
  } finally {
    observer.disconnect();
  }
}

/** 50 MiB through a PTY session to `clients` /ws/session viewers: MB/s per viewer from spawn to its `exit` frame. */
async function ptyToViewers(
  gw: Gateway,
  clients: Clients,
  n: number,
  output: TerminalOutputMode,
): Promise<{ each: number[]; complete: boolean }> {
  const started = now();
  const { id } = await createSession(gw, { command: PTY_BENCH_COMMAND, pty: true });
  clients.send({ op: "pty", url: `${wsBase(gw)}/ws/session/${id}?since=0&output=${output}`, clients: n });
  const r = await clients.next("pty");
  return {
    each: r.doneAt.map((t, i) => mbps(r.bytes[i]!, t - started)),
    complete: r.bytes.every((b) => b === PTY_BENCH_BYTES),
  };
}

async function ptyThroughput(clients: Clients): Promise<PtyResult> {
  const out: PtyResult = {
    alone: [],
    one: { json: [], binary: [] },
    fourEach: { json: [], binary: [] },
    oneLoop: [],
    majorGcs: { alone: [], "one.json": [], "one.binary": [], "four.json": [], "four.binary": [] },
    complete: true,
  };
  for (let round = 0; round < PTY_ROUNDS; round++) {
    const g = await gateway();
    try {
      // One read first: the first run of a process is slower (code not yet optimized).
      if (round === 0) await measureRawPty(PTY_BENCH_COMMAND);
      // A run's full GCs are counted without its raw pair's (node-pty's reads allocate a buffer each).
      const counted = async (gcs: number[], run: () => Promise<number>): Promise<number> => {
        const { value, majors } = await countingMajorGcs(run);
        gcs.push(majors);
        return value;
      };
      const alone = await paired(round, () =>
        counted(out.majorGcs.alone, async () => {
          const started = now();
          const { id } = await createSession(g.gw, { command: PTY_BENCH_COMMAND, pty: true });
          await g.gw.core.sessions.get(id)!.ended();
          return mbps(g.gw.core.sessions.get(id)!.log.outputBytes, now() - started);
        }),
      );
      out.alone.push(alone);
      const viewers = async (n: number, output: TerminalOutputMode): Promise<number[]> => {
        const r = await ptyToViewers(g.gw, clients, n, output);
        out.complete &&= r.complete;
        return r.each;
      };
      // The reference without the reader thread: first in odd rounds, last in even ones.
      const loopReference = async (): Promise<void> => {
        setFloodReader("loop");
        try {
          out.oneLoop.push(await paired(round, async () => (await viewers(1, "json"))[0]!));
        } finally {
          setFloodReader("thread");
        }
      };
      if (round % 2 === 1) await loopReference();
      // JSON and binary output take turns going first.
      const modes: TerminalOutputMode[] = round % 2 === 0 ? ["json", "binary"] : ["binary", "json"];
      for (const output of modes) {
        const one = await paired(round, () =>
          counted(out.majorGcs[`one.${output}`], async () => (await viewers(1, output))[0]!),
        );
        out.one[output].push(one);
        const four = await paired(round, () =>
          counted(out.majorGcs[`four.${output}`], async () => Math.min(...(await viewers(4, output)))),
        );
        out.fourEach[output].push(four);
      }
      if (round % 2 === 0) await loopReference();
      await clients.release();
    } finally {
      await g.close();
    }
  }
  return out;
}

/* ---- keystroke echo ---- */

/** `cat` in a node-pty terminal of its own, as the echo baselines type into it. */
const rawCat = () =>
  spawnRawPty("cat", [], {
    name: "xterm-256color",
    cols: 80,
    rows: 24,
    cwd: process.cwd(),
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
  });

/** The baseline: a keystroke written straight to a node-pty `cat` until its echo is read. */
async function rawEcho(samples: number): Promise<number[]> {
  const term = rawCat();
  try {
    const rtts: number[] = [];
    for (let i = 0; i < samples + ECHO_WARMUP; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const d = term.onData((s) => {
          if (!s.includes("x")) return;
          d.dispose();
          resolve();
        });
        term.write("x");
      });
      rtts.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, ECHO_GAP_MS));
    }
    return rtts.slice(ECHO_WARMUP);
  } finally {
    term.kill();
  }
}

/**
 * The floor of the echo over a WebSocket: a bare `ws` server in this process that writes each
 * `stdin` frame to a node-pty `cat` and sends each read of it back as a `stdout` frame, with no
 * checks, no log and no fan-out. The same client measures it as it measures the gateway.
 */
async function bareEchoServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once("listening", resolve));
  wss.on("connection", (ws) => {
    const term = rawCat();
    let offset = 0;
    term.onData((data) => {
      ws.send(JSON.stringify({ type: "stdout", offset, data }));
      offset += Buffer.byteLength(data);
    });
    ws.on("message", (raw) => term.write((JSON.parse(raw.toString()) as { data: string }).data));
    ws.on("close", () => term.kill());
    ws.send(JSON.stringify({ type: "connected" }));
  });
  const { port } = wss.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      })),
  };
}

interface EchoResult {
  idle: number[];
  /** The same client against {@link bareEchoServer}, just before or after `idle` (alternating by round). */
  bare: number[];
  flood: number[];
  raw: number[];
  /** The baseline under the same flood: node-pty `cat` typed into from the client process. */
  rawFlood: number[];
  /** Full GCs of the gateway's process during the flooded echo run, and how long it ran (s). */
  floodMajorGcs: number;
  floodSeconds: number;
  /** The flood's own output rate (MB/s) while the keystrokes were typed (paced: FLOOD_PACE_MS), and while nobody typed into the gateway. */
  floodTypedMBps: number;
  floodUntypedMBps: number;
}

async function keystrokeEcho(clients: Clients, round: number): Promise<EchoResult> {
  const g = await gateway();
  const floor = await bareEchoServer();
  const flooder = new Clients();
  const echo = async (url: string): Promise<number[]> => {
    clients.send({ op: "echo", url, samples: ECHO_SAMPLES, warmup: ECHO_WARMUP });
    return (await clients.next("echo")).rtts;
  };
  try {
    const raw = await rawEcho(ECHO_SAMPLES);
    const cat = await createSession(g.gw, { command: ["cat"], pty: true });
    const echoUrl = `${wsBase(g.gw)}/ws/session/${cat.id}`;
    // Who goes first alternates by round: the machine's speed drifts within minutes.
    let idle: number[];
    let bare: number[];
    if (round % 2 === 0) {
      idle = await echo(echoUrl);
      bare = await echo(floor.url);
    } else {
      bare = await echo(floor.url);
      idle = await echo(echoUrl);
    }
    await floor.close();
    // Another session floods output, watched by a viewer in another process.
    const flood = await createSession(g.gw, { command: ["yes"], pty: true });
    flooder.send({ op: "drain", url: `${wsBase(g.gw)}/ws/session/${flood.id}` });
    await flooder.next("ready");
    await new Promise((r) => setTimeout(r, 200));
    const floodStarted = now();
    const floodBytesBefore = await outputBytesOf(g.gw, flood.id);
    const { value: flooded, majors: floodMajorGcs } = await countingMajorGcs(() => echo(echoUrl));
    const floodSeconds = (now() - floodStarted) / 1000;
    const floodTypedMBps = mbps((await outputBytesOf(g.gw, flood.id)) - floodBytesBefore, floodSeconds * 1000);
    // The same keystrokes straight into a local PTY, from the client process, while the flood goes on:
    // what this machine gives any echo under that load, without a gateway in the path. Nobody types
    // into the gateway meanwhile: once INTERACTIVE_MS have passed, the flood's rate is its unpaced one.
    clients.send({ op: "raw-echo", samples: ECHO_SAMPLES });
    await new Promise((r) => setTimeout(r, INTERACTIVE_MS));
    const untypedFrom = { at: now(), bytes: await outputBytesOf(g.gw, flood.id) };
    const rawFlood = (await clients.next("raw-echo")).rtts;
    const floodUntypedMBps = mbps((await outputBytesOf(g.gw, flood.id)) - untypedFrom.bytes, now() - untypedFrom.at);
    await deleteSession(g.gw, flood.id);
    await clients.release();
    return { idle, bare, flood: flooded, raw, rawFlood, floodMajorGcs, floodSeconds, floodTypedMBps, floodUntypedMBps };
  } finally {
    flooder.close();
    await floor.close();
    await g.close();
  }
}

/* ---- fan-out ---- */

/**
 * Calls `emit` `rate` times a second for `ms`, in small batches on a timer; resolves when done.
 * Each call gets the time the event was due at that rate: latency is measured from there, so a
 * producer held up by its own sending (a bare loop sends synchronously) does not hide the
 * delay (coordinated omission).
 */
async function paced(rate: number, ms: number, emit: (seq: number, dueAt: number) => void): Promise<void> {
  const started = now();
  const total = Math.round((rate * ms) / 1000);
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((now() - started) / 1000) * rate) + 1);
    while (sent < due) {
      sent++;
      emit(sent, started + ((sent - 1) / rate) * 1000);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

const pad = (bytes: number): string => "p".repeat(bytes - 120);

interface FanoutRun {
  deliveries: number;
  perSecond: number;
  p50: number;
  p99: number;
  complete: boolean;
}

/** Medians over runs (each figure on its own), every run's p99 kept for the report. */
function medianRun(runs: readonly FanoutRun[]): FanoutRun & { p99s: number[] } {
  return {
    deliveries: median(runs.map((r) => r.deliveries)),
    perSecond: median(runs.map((r) => r.perSecond)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    complete: runs.every((r) => r.complete),
    p99s: runs.map((r) => r.p99),
  };
}

function fanoutRun(r: Extract<ChildReport, { op: "mux" }>, startedAt: number, expected: number): FanoutRun {
  const sorted = r.latencies.sort((a, b) => a - b);
  return {
    deliveries: r.delivered,
    perSecond: r.delivered / ((r.lastAt - startedAt) / 1000),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    complete: r.delivered === expected,
  };
}

/** Through the gateway: events appended to a stream session, each client subscribed over /v1/ws. */
async function fanoutGateway(
  clients: Clients,
  n: number,
  rate: number,
  ms: number,
  bytes: number,
  slow = 0,
  rss?: number[],
  probe?: { sample(): void },
): Promise<FanoutRun> {
  const g = await gateway();
  try {
    const { id } = await createSession(g.gw, { kind: "stream" });
    const session = g.gw.core.sessions.get(id) as Session;
    const expect = Math.round((rate * ms) / 1000);
    clients.send({ op: "mux", url: `${wsBase(g.gw)}/v1/ws`, session: id, clients: n, slow, expect });
    await clients.next("ready");
    const filler = pad(bytes);
    const emit = (t: number) => appendExternalEvent(session, { type: "bench", data: { t, pad: filler } });
    await paced(rate, WARMUP_MS, () => emit(WARMUP_T));
    await new Promise((r) => setTimeout(r, 200));
    gc();
    const sampler = rss ? sampleRss(rss, probe) : undefined;
    const startedAt = now();
    await paced(rate, ms, (_seq, dueAt) => emit(dueAt));
    clients.send({ op: "stop" });
    const r = await clients.next("mux");
    sampler?.stop();
    if (slow > 0) {
      clients.send({ op: "resume-slow" });
      const s = await clients.next("slow-done");
      if (s.delivered !== expect) throw new Error(`the slow client got ${s.delivered} of ${expect} events`);
    }
    await clients.release();
    return fanoutRun(r, startedAt, expect * (n - slow));
  } finally {
    await g.close();
  }
}

/** The baseline: a bare `ws` server whose loop sends each event's frame to every client. */
async function fanoutBare(clients: Clients, n: number, rate: number, ms: number, bytes: number): Promise<FanoutRun> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  try {
    const sockets: WebSocket[] = [];
    wss.on("connection", (ws) => {
      sockets.push(ws);
      ws.send(JSON.stringify({ op: "bare-hello" }));
    });
    const expect = Math.round((rate * ms) / 1000);
    clients.send({
      op: "mux",
      url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`,
      session: null,
      clients: n,
      slow: 0,
      expect,
    });
    await clients.next("ready");
    const filler = pad(bytes);
    let seq = 0;
    const emit = (t: number) => {
      // The same frame the gateway sends for one event, built once per event.
      const event = JSON.stringify({
        seq: ++seq,
        ts: Date.now(),
        type: "custom",
        name: "bench",
        data: { t, pad: filler },
      });
      const frame = `{"op":"event","session":"bare","event":${event}}`;
      for (const ws of sockets) ws.send(frame);
    };
    await paced(rate, WARMUP_MS, () => emit(WARMUP_T));
    await new Promise((r) => setTimeout(r, 200));
    const startedAt = now();
    await paced(rate, ms, (_seq, dueAt) => emit(dueAt));
    clients.send({ op: "stop" });
    const r = await clients.next("mux");
    await clients.release();
    return fanoutRun(r, startedAt, expect * n);
  } finally {
    for (const ws of wss.clients) ws.terminate();
    await new Promise((r) => wss.close(r));
  }
}

/**
 * Watches the gateway's outboxes (it runs in this process) as they count themselves: held
 * events + bytes handed to `ws.send` whose write has not completed. `maxOne` is the most any
 * one connection had queued; `maxTotal` the most all of them had together (sampled).
 */
function probeOutboxes(): { maxOne(): number; maxTotal(): number; sample(): void; restore(): void } {
  type Probed = { queuedBytes: number };
  const seen = new Set<Probed>();
  let maxOne = 0;
  let maxTotal = 0;
  const proto = Outbox.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = new Map<string, (...args: unknown[]) => unknown>();
  for (const name of ["deliver", "sendControl"]) {
    const original = proto[name]!;
    originals.set(name, original);
    proto[name] = function (this: Probed, ...args: unknown[]) {
      const result = original.apply(this, args);
      seen.add(this);
      maxOne = Math.max(maxOne, this.queuedBytes);
      return result;
    };
  }
  return {
    maxOne: () => maxOne,
    maxTotal: () => maxTotal,
    sample: () => {
      let total = 0;
      for (const o of seen) total += o.queuedBytes;
      maxTotal = Math.max(maxTotal, total);
    },
    restore: () => {
      for (const [name, original] of originals) proto[name] = original;
      seen.clear();
    },
  };
}

/** Samples this process's RSS (and the outboxes, when probed) every 20 ms until stopped. */
function sampleRss(into: number[], probe?: { sample(): void }): { stop(): void } {
  into.push(process.memoryUsage().rss);
  const timer = setInterval(() => {
    into.push(process.memoryUsage().rss);
    probe?.sample();
  }, 20);
  return { stop: () => clearInterval(timer) };
}

/* ---- slow client ---- */

interface SlowResult {
  p99Without: number[];
  p99With: number[];
  /** RSS growth per run, MiB. */
  rssWithout: number[];
  rssWith: number[];
  queuedOne: number;
  queuedTotal: number;
  queuedTotalWithout: number;
}

async function slowClient(clients: Clients): Promise<SlowResult> {
  const out: SlowResult = {
    p99Without: [],
    p99With: [],
    rssWithout: [],
    rssWith: [],
    queuedOne: 0,
    queuedTotal: 0,
    queuedTotalWithout: 0,
  };
  // A warm-up run first: the process's first run grows the heap whatever the clients do.
  await fanoutGateway(clients, SLOW_CLIENTS, SLOW_RATE, SLOW_MS / 4, SLOW_EVENT_BYTES);
  for (let pair = 0; pair < SLOW_PAIRS; pair++) {
    for (const slow of pair % 2 === 0 ? [0, 1] : [1, 0]) {
      const rss: number[] = [];
      const probe = probeOutboxes();
      let run: FanoutRun;
      try {
        run = await fanoutGateway(clients, SLOW_CLIENTS, SLOW_RATE, SLOW_MS, SLOW_EVENT_BYTES, slow, rss, probe);
      } finally {
        probe.restore();
      }
      if (!run.complete) throw new Error("a fast client missed events in the slow-client run");
      const growth = (Math.max(...rss) - rss[0]!) / 2 ** 20;
      if (slow > 0) {
        out.p99With.push(run.p99);
        out.rssWith.push(growth);
        out.queuedOne = Math.max(out.queuedOne, probe.maxOne());
        out.queuedTotal = Math.max(out.queuedTotal, probe.maxTotal());
      } else {
        out.p99Without.push(run.p99);
        out.rssWithout.push(growth);
        out.queuedTotalWithout = Math.max(out.queuedTotalWithout, probe.maxTotal());
      }
    }
  }
  return out;
}

/* ---- idle memory ---- */

interface IdleResult {
  perConnection: { heap: number; rss: number };
  perPty: { heap: number; rss: number; childRss: number };
}

/** The gateway process's memory as counted below (see {@link grownBy}). */
interface Memory {
  heap: number;
  external: number;
  arrayBuffers: number;
}

function memory(): Memory {
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

/**
 * Growth of V8's heap + Node's `external` + shared memory since `before`. Node's `external`
 * counts ArrayBuffers but not SharedArrayBuffers, which only `arrayBuffers` counts (sessions
 * kept output in shared memory once; kept so a change back shows): what `arrayBuffers` grew beyond `external`
 * is taken as shared (a slight undercount when other external memory grows at the same time).
 */
function grownBy(before: Memory): number {
  const now = memory();
  const external = now.external - before.external;
  return now.heap - before.heap + external + Math.max(0, now.arrayBuffers - before.arrayBuffers - external);
}

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
}

function vmRss(pid: number): number {
  const kb = /^VmRSS:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return kb === undefined ? NaN : Number(kb) * 1024;
}

async function idleMemory(clients: Clients): Promise<IdleResult> {
  const g = await gateway();
  try {
    const { id } = await createSession(g.gw, { kind: "stream" });
    // Warm up the code paths once so their one-time allocations are not counted.
    clients.send({ op: "idle", url: `${wsBase(g.gw)}/v1/ws`, session: id, clients: 20 });
    await clients.next("ready");
    await clients.release();
    await settle();
    const heap0 = memory();
    const rss0 = process.memoryUsage().rss;
    clients.send({ op: "idle", url: `${wsBase(g.gw)}/v1/ws`, session: id, clients: IDLE_CONNECTIONS });
    await clients.next("ready");
    await settle();
    const perConnection = {
      heap: grownBy(heap0) / IDLE_CONNECTIONS,
      rss: (process.memoryUsage().rss - rss0) / IDLE_CONNECTIONS,
    };
    await clients.release();

    const startIdlePty = async (): Promise<{ id: string; pid: number }> => {
      const s = await createSession(g.gw, { command: ["cat"], pty: true });
      // One line echoed, as a shell prints its prompt: the session's output buffer is in use.
      const res = await fetch(`${g.gw.url}/v1/sessions/${s.id}/input`, {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
        body: JSON.stringify({ data: "ready\n" }),
      });
      if (!res.ok) throw new Error(`input: ${res.status} ${await res.text()}`);
      return s;
    };
    // Warm-up, as above: the first PTY sessions load and compile code that every later one
    // shares; they stay, so that what is counted is what one more session costs.
    const warm: string[] = [];
    for (let i = 0; i < IDLE_PTY_WARMUP; i++) warm.push((await startIdlePty()).id);
    await new Promise((r) => setTimeout(r, 300));
    await settle();
    const heap1 = memory();
    const rss1 = process.memoryUsage().rss;
    const pids: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < IDLE_PTYS; i++) {
      const s = await startIdlePty();
      pids.push(s.pid);
      ids.push(s.id);
    }
    await new Promise((r) => setTimeout(r, 300));
    await settle();
    const perPty = {
      heap: grownBy(heap1) / IDLE_PTYS,
      rss: (process.memoryUsage().rss - rss1) / IDLE_PTYS,
      childRss: median(pids.map(vmRss)),
    };
    for (const s of [...warm, ...ids]) await deleteSession(g.gw, s);
    return { perConnection, perPty };
  } finally {
    await g.close();
  }
}

/* ---- JSON frames of terminal output ---- */

/** 64 KiB of output of three kinds, and how many frames of each are timed per batch. */
const FRAME_BYTES = 64 * 1024;
const FRAME_BATCH = 400;
const FRAME_BATCHES = 7;
/** The longest prefix of `line` repeated that is at most FRAME_BYTES and valid UTF-8 (whole characters). */
function framePiece(line: string): Buffer {
  const all = Buffer.from(line.repeat(Math.ceil(FRAME_BYTES / Buffer.byteLength(line))));
  let end = FRAME_BYTES;
  while (!isUtf8(all.subarray(0, end))) end--;
  return all.subarray(0, end);
}
const FRAME_OUTPUTS: ReadonlyArray<readonly [string, Buffer]> = [
  ["a flood of one character (the PTY rows' output)", framePiece("a")],
  [
    "`ls --color` lines (escape sequences, CR LF)",
    framePiece("\x1b[0m\x1b[01;34mnode_modules\x1b[0m  package.json  README.md\r\n"),
  ],
  ["a TUI's UTF-8 box drawing", framePiece("│ ✓ done ─── héllo ──── │\r\n")],
];

interface FrameCost {
  output: string;
  /** µs per frame: medians of the batches. */
  native: number;
  js: number;
}

/** µs per JSON `stdout` frame of 64 KiB, built by the addon and by the JS route, batches alternating. */
function jsonFrameCosts(): FrameCost[] {
  const head = '{"type":"stdout","offset":123456789,"data":';
  return FRAME_OUTPUTS.map(([output, bytes]) => {
    if (!jsonTextFrame(head, bytes, "}").equals(jsonTextFrameJs(head, bytes, "}")))
      throw new Error(`frame bench: the two routes differ for ${output}`);
    const time = (build: typeof jsonTextFrameJs): number => {
      let sink = 0;
      const started = now();
      for (let i = 0; i < FRAME_BATCH; i++) sink += build(head, bytes, "}").length;
      if (sink === 0) throw new Error("unreachable");
      return ((now() - started) * 1000) / FRAME_BATCH;
    };
    time(jsonTextFrame);
    time(jsonTextFrameJs);
    const native: number[] = [];
    const js: number[] = [];
    for (let b = 0; b < FRAME_BATCHES; b++) {
      if (b % 2 === 0) {
        native.push(time(jsonTextFrame));
        js.push(time(jsonTextFrameJs));
      } else {
        js.push(time(jsonTextFrameJs));
        native.push(time(jsonTextFrame));
      }
    }
    return { output, native: median(native), js: median(js) };
  });
}

/* ---- the section ---- */

const ms = (v: number): string => `${v.toFixed(2)} ms`;
const kib = (bytes: number): string => `${fmt(bytes / 1024, 1)} KiB`;
/** RSS growth per item: it can come out below zero when a GC gives pages back meanwhile, which says nothing per item. */
const rssKib = (bytes: number): string =>
  bytes >= 0 ? kib(bytes) : `below page noise (RSS fell by ${kib(-bytes)} each)`;

export async function run(): Promise<BenchSection> {
  const loadBefore = loadavg()[0]!;
  const clients = new Clients();
  try {
    const pty = await ptyThroughput(clients);
    const frames = jsonTextNative() ? jsonFrameCosts() : [];
    const echo: EchoResult[] = [];
    for (let i = 0; i < ECHO_ROUNDS; i++) echo.push(await keystrokeEcho(clients, i));
    // The sustained runs first: latency at a load this machine carries, measured in processes
    // that have not just been saturated (after the saturated runs both processes spend seconds
    // collecting what queued up, and a p99 taken then measured that: 27-118 ms against 16-47 ms
    // for the same runs alone).
    // And after the echo runs' flood has been collected, as every later phase is.
    await settle();
    await new Promise((r) => setTimeout(r, SETTLE_BETWEEN_PHASES_MS));
    const bareSustainedRuns: FanoutRun[] = [];
    const oursSustainedRuns: FanoutRun[] = [];
    for (let i = 0; i < FANOUT_SUSTAINED_PAIRS; i++) {
      const args = [clients, FANOUT_CLIENTS, FANOUT_SUSTAINED_RATE, FANOUT_SUSTAINED_MS, FANOUT_EVENT_BYTES] as const;
      // Who goes first alternates too.
      if (i % 2 === 0) {
        bareSustainedRuns.push(await fanoutBare(...args));
        oursSustainedRuns.push(await fanoutGateway(...args));
      } else {
        oursSustainedRuns.push(await fanoutGateway(...args));
        bareSustainedRuns.push(await fanoutBare(...args));
      }
    }
    const bareSustained = medianRun(bareSustainedRuns);
    const oursSustained = medianRun(oursSustainedRuns);
    await settle();
    await new Promise((r) => setTimeout(r, SETTLE_BETWEEN_PHASES_MS));
    const bare = await fanoutBare(clients, FANOUT_CLIENTS, FANOUT_RATE, FANOUT_MS, FANOUT_EVENT_BYTES);
    const ours = await fanoutGateway(clients, FANOUT_CLIENTS, FANOUT_RATE, FANOUT_MS, FANOUT_EVENT_BYTES);
    // The saturated runs leave both processes with garbage to collect: let it go before the slow-client runs.
    await settle();
    await new Promise((r) => setTimeout(r, SETTLE_BETWEEN_PHASES_MS));
    const slow = await slowClient(clients);
    const idle = await idleMemory(clients);
    if (clients.errors.length > 0) throw new Error(`client errors: ${clients.errors.slice(0, 3).join("; ")}`);
    return report({
      load: [loadBefore, loadavg()[0]!],
      pty,
      frames,
      echo,
      bare,
      ours,
      bareSustained,
      oursSustained,
      slow,
      idle,
    });
  } finally {
    clients.close();
  }
}

/** A row of the PTY table: medians of the runs and of their raw pairs, and the median of the pairs' ratios. */
function pairedRow(runs: Paired[]): { ours: number; raw: number; ratio: number } {
  return {
    ours: median(runs.map((p) => p.mbps)),
    raw: median(runs.map((p) => p.raw)),
    ratio: median(runs.map((p) => p.mbps / p.raw)),
  };
}

function report(r: {
  load: readonly [number, number];
  pty: PtyResult;
  frames: FrameCost[];
  echo: EchoResult[];
  bare: FanoutRun;
  ours: FanoutRun;
  bareSustained: FanoutRun & { p99s: number[] };
  oursSustained: FanoutRun & { p99s: number[] };
  slow: SlowResult;
  idle: IdleResult;
}): BenchSection {
  const alone = pairedRow(r.pty.alone);
  const one = pairedRow(r.pty.one.json);
  const four = pairedRow(r.pty.fourEach.json);
  const oneBinary = pairedRow(r.pty.one.binary);
  const fourBinary = pairedRow(r.pty.fourEach.binary);
  const oneLoop = pairedRow(r.pty.oneLoop);
  const sorted = (v: number[]) => [...v].sort((a, b) => a - b);
  type EchoKey = "idle" | "bare" | "flood" | "raw" | "rawFlood";
  /** Per round, the percentile `p` of one measure; and their median. */
  const rounds = (key: EchoKey, p: number): number[] => r.echo.map((round) => percentile(sorted(round[key]), p));
  const echoAt = (key: EchoKey, p: number): number => median(rounds(key, p));
  const roundsMs = (key: EchoKey, p: number): string =>
    rounds(key, p)
      .map((v) => v.toFixed(2))
      .join(", ");
  const e = {
    floodMajorGcs: r.echo.map((round) => round.floodMajorGcs),
    floodSeconds: median(r.echo.map((round) => round.floodSeconds)),
    typedMBps: median(r.echo.map((round) => round.floodTypedMBps)),
    untypedMBps: median(r.echo.map((round) => round.floodUntypedMBps)),
  };
  const p99With = median(r.slow.p99With);
  const p99Without = median(r.slow.p99Without);
  const slowP99Ratio = p99With / p99Without;
  const rssGrowth = median(r.slow.rssWith);
  /** Deliveries/s and p99 latency of one fan-out rate, against the bare loop. */
  const fanoutRows = (what: string, rate: number, ours: FanoutRun, bare: FanoutRun): BenchRow[] => [
    {
      measure: `fan-out ${what}, deliveries/s`,
      ours: fmt(ours.perSecond),
      baseline: `bare ws loop ${fmt(bare.perSecond)}`,
      ratio: (ours.perSecond / bare.perSecond).toFixed(2),
      goal: `≥ ${GOAL_FANOUT_RATIO}`,
      met: ours.perSecond / bare.perSecond >= GOAL_FANOUT_RATIO,
    },
    {
      measure: `fan-out at ${fmt(rate)}/s, p99 delivery latency`,
      ours: ms(ours.p99),
      baseline: `bare ws loop ${ms(bare.p99)}`,
      goal: `≤ ${GOAL_FANOUT_P99_MS} ms`,
      met: ours.p99 <= GOAL_FANOUT_P99_MS,
    },
  ];
  const rows: BenchRow[] = [
    {
      measure: `PTY 50 MiB → 1 viewer (/ws/session)`,
      ours: `${fmt(one.ours)} MB/s`,
      baseline: `raw node-pty ${fmt(one.raw)} MB/s`,
      ratio: one.ratio.toFixed(2),
      goal: `≥ ${GOAL_PTY_ONE}`,
      met: one.ratio >= GOAL_PTY_ONE,
    },
    {
      measure: `(for reference) PTY 50 MiB → the log, no viewer`,
      ours: `${fmt(alone.ours)} MB/s`,
      baseline: `raw node-pty ${fmt(alone.raw)} MB/s`,
      ratio: alone.ratio.toFixed(2),
    },
    {
      measure: `(for reference) PTY 50 MiB → 1 viewer, every PTY read on the event loop (\`SWITCHBOARD_PTY_READER=loop\`)`,
      ours: `${fmt(oneLoop.ours)} MB/s`,
      baseline: `raw node-pty ${fmt(oneLoop.raw)} MB/s`,
      ratio: oneLoop.ratio.toFixed(2),
    },
    {
      measure: `PTY 50 MiB → 4 viewers, slowest each`,
      ours: `${fmt(four.ours)} MB/s`,
      baseline: `raw node-pty ${fmt(four.raw)} MB/s`,
      ratio: four.ratio.toFixed(2),
      goal: `≥ ${GOAL_PTY_FOUR}`,
      met: four.ratio >= GOAL_PTY_FOUR,
    },
    {
      measure: `PTY 50 MiB → 1 viewer, binary output (\`?output=binary\`)`,
      ours: `${fmt(oneBinary.ours)} MB/s`,
      baseline: `raw node-pty ${fmt(oneBinary.raw)} MB/s`,
      ratio: oneBinary.ratio.toFixed(2),
      goal: `≥ ${GOAL_PTY_ONE}`,
      met: oneBinary.ratio >= GOAL_PTY_ONE,
    },
    {
      measure: `PTY 50 MiB → 4 viewers, binary output, slowest each`,
      ours: `${fmt(fourBinary.ours)} MB/s`,
      baseline: `raw node-pty ${fmt(fourBinary.raw)} MB/s`,
      ratio: fourBinary.ratio.toFixed(2),
      goal: `≥ ${GOAL_PTY_FOUR}`,
      met: fourBinary.ratio >= GOAL_PTY_FOUR,
    },
    {
      measure: `(for reference) full GCs in the gateway's process per 50 MiB run (medians): no viewer / 1 viewer JSON / binary / 4 viewers JSON / binary`,
      ours: `${(["alone", "one.json", "one.binary", "four.json", "four.binary"] as const).map((k) => fmt(median(r.pty.majorGcs[k]))).join(" / ")}`,
    },
    ...r.frames.map((f): BenchRow => ({
      measure: `(for reference) a JSON \`stdout\` frame of 64 KiB: ${f.output}`,
      ours: `${fmt(f.native, 1)} µs`,
      baseline: `in JS (latin1, \`JSON.stringify\`) ${fmt(f.js, 1)} µs`,
      ratio: (f.native / f.js).toFixed(2),
    })),
    {
      measure: `keystroke echo, idle, p50 (median of ${ECHO_ROUNDS} rounds)`,
      ours: `${ms(echoAt("idle", 50))}`,
      baseline: `bare \`ws\` + node-pty server ${ms(echoAt("bare", 50))}; raw node-pty ${ms(echoAt("raw", 50))}`,
      ratio: (echoAt("idle", 50) / echoAt("bare", 50)).toFixed(2),
      goal: `≤ ${GOAL_ECHO_P50_MS} ms`,
      met: echoAt("idle", 50) <= GOAL_ECHO_P50_MS,
    },
    {
      measure: `keystroke echo, idle, p99`,
      ours: `${ms(echoAt("idle", 99))}`,
      baseline: `bare \`ws\` + node-pty server ${ms(echoAt("bare", 99))}; raw node-pty ${ms(echoAt("raw", 99))}`,
      ratio: (echoAt("idle", 99) / echoAt("bare", 99)).toFixed(2),
      goal: `≤ ${GOAL_ECHO_P99_MS} ms`,
      met: echoAt("idle", 99) <= GOAL_ECHO_P99_MS,
    },
    {
      measure: `keystroke echo, other session flooding, p99`,
      ours: `${ms(echoAt("flood", 99))} (p50 ${ms(echoAt("flood", 50))})`,
      baseline: `raw node-pty in the client process, same flood: ${ms(echoAt("rawFlood", 99))} (p50 ${ms(echoAt("rawFlood", 50))})`,
      goal: `≤ ${GOAL_ECHO_FLOOD_P99_MS} ms`,
      met: echoAt("flood", 99) <= GOAL_ECHO_FLOOD_P99_MS,
    },
    {
      measure: `(for reference) the flooding session's output rate while the keystrokes are typed (paced, \`FLOOD_PACE_MS\`)`,
      ours: `${fmt(e.typedMBps, 1)} MB/s`,
      baseline: `while nobody types into the gateway ${fmt(e.untypedMBps, 1)} MB/s`,
      ratio: (e.typedMBps / e.untypedMBps).toFixed(2),
    },
    {
      measure: `(for reference) full GCs in the gateway's process during each round's flooded echo run (\`yes\` read on the event loop, 1 JSON viewer)`,
      ours: `${e.floodMajorGcs.map((n) => fmt(n)).join(", ")} in ${fmt(e.floodSeconds, 1)} s each`,
    },
    ...fanoutRows(`${FANOUT_CLIENTS} clients, 1 KB at ${fmt(FANOUT_RATE)}/s`, FANOUT_RATE, r.ours, r.bare),
    ...fanoutRows(
      `${FANOUT_CLIENTS} clients at ${fmt(FANOUT_SUSTAINED_RATE)}/s`,
      FANOUT_SUSTAINED_RATE,
      r.oursSustained,
      r.bareSustained,
    ),
    {
      measure: `slow client among ${SLOW_CLIENTS}: fast clients' p99`,
      ours: `${ms(p99With)}`,
      baseline: `without it ${ms(p99Without)}`,
      ratio: slowP99Ratio.toFixed(2),
      goal: `≤ ${1 + GOAL_SLOW_P99_SLACK}`,
      met: slowP99Ratio <= 1 + GOAL_SLOW_P99_SLACK,
    },
    {
      measure: `slow client among ${SLOW_CLIENTS}: gateway RSS growth`,
      ours: `${fmt(rssGrowth, 1)} MiB`,
      baseline: `without it ${fmt(median(r.slow.rssWithout), 1)} MiB`,
      goal: `≤ ${GOAL_SLOW_RSS_MB} MiB`,
      met: rssGrowth <= GOAL_SLOW_RSS_MB,
    },
    {
      measure: `slow client among ${SLOW_CLIENTS}: most queued for one connection`,
      ours: `${fmt(r.slow.queuedOne / 2 ** 20, 2)} MiB`,
      baseline: `budget ${fmt(DEFAULT_LIMITS.queueBytes / 2 ** 20)} MiB`,
      goal: `≤ budget + one catch-up batch`,
      met: r.slow.queuedOne <= DEFAULT_LIMITS.queueBytes + CATCHUP_BATCH_BYTES + SLOW_EVENT_BYTES,
    },
    {
      measure: `slow client among ${SLOW_CLIENTS}: most queued for all connections together`,
      ours: `${fmt(r.slow.queuedTotal / 2 ** 20, 2)} MiB`,
      baseline: `without it ${fmt(r.slow.queuedTotalWithout / 2 ** 20, 2)} MiB`,
    },
    {
      measure: `memory per idle connection (subscribed)`,
      ours: `heap+external ${kib(r.idle.perConnection.heap)}, RSS ${rssKib(r.idle.perConnection.rss)}`,
    },
    {
      measure: `memory per idle PTY session (\`cat\`)`,
      ours: `gateway heap+external ${kib(r.idle.perPty.heap)}, gateway RSS ${rssKib(r.idle.perPty.rss)}; the process itself ${kib(r.idle.perPty.childRss)} RSS`,
    },
  ];
  const pairs = (v: Paired[]) => v.map((p) => `${fmt(p.mbps)}/${fmt(p.raw)}`).join(", ");
  const allDelivered = [r.ours, r.bare, r.oursSustained, r.bareSustained].every((x) => x.complete);
  return {
    title: "Real-time delivery",
    rows,
    method: [
      `Gateway in the benchmark process (fresh data dir, default limits but connections per token); WebSocket clients in a child process that parses every frame; all on 127.0.0.1. Load average ${r.load[0].toFixed(1)} at the start, ${r.load[1].toFixed(1)} at the end, on ${cpus().length} cores.`,
      `**PTY**: \`${PTY_BENCH_COMMAND.join(" ")}\` (${fmt(PTY_BENCH_BYTES / 2 ** 20)} MiB) from spawn until each viewer (\`?since=0\`) has \`exit\`; ${PTY_ROUNDS} rounds, each run paired with a raw node-pty read just before or after it; a ratio is the median of the pairs' ratios.`,
      `**Echo**: \`{"type":"stdin","data":"x"}\` over /ws/session to \`cat\` in a PTY until its echo frame, ${ECHO_SAMPLES} keys ${ECHO_GAP_MS} ms apart, ${ECHO_ROUNDS} rounds (medians of the rounds' percentiles); the flood is \`yes\` in another session with a viewer. Floor: a bare \`ws\` + node-pty server, same client. While anyone types, a flooding session is read every ${FLOOD_PACE_MS} ms (\`FLOOD_PACE_MS\`).`,
      `**Fan-out**: 1 KB \`custom\` events appended to a stream session, ${FANOUT_CLIENTS} /v1/ws subscribers; baseline a bare \`ws\` loop sending the same frames. Latency = receipt − the time the event was due. ${fmt(FANOUT_RATE)}/s is saturation (throughput; its latency is queueing); ${fmt(FANOUT_SUSTAINED_RATE)}/s for ${FANOUT_SUSTAINED_MS / 1000} s is sustained, ${FANOUT_SUSTAINED_PAIRS} alternating runs per side.`,
      `**Slow client**: ${SLOW_CLIENTS} clients, ${fmt(SLOW_EVENT_BYTES / 1024)} KiB events at ${SLOW_RATE}/s for ${SLOW_MS / 1000} s; ${SLOW_PAIRS} runs without and with one client whose socket is paused, alternating. RSS growth: peak minus start (after GC).`,
      `**Idle memory**: ${IDLE_CONNECTIONS} subscribed /v1/ws connections and ${IDLE_PTYS} PTY \`cat\` sessions (after ${IDLE_PTY_WARMUP} warm-up ones), heap+external and RSS after GC, per item.`,
    ],
    notes: [
      `PTY runs, Switchboard/raw MB/s: no viewer ${pairs(r.pty.alone)}; 1 viewer ${pairs(r.pty.one.json)}; 4 viewers (slowest) ${pairs(r.pty.fourEach.json)}; binary 1 viewer ${pairs(r.pty.one.binary)}; binary 4 viewers (slowest) ${pairs(r.pty.fourEach.binary)}; every read on the event loop ${pairs(r.pty.oneLoop)}. Every byte arrived: ${r.pty.complete ? "yes" : "**no**"}.`,
      `Echo rounds (ms): idle p50 ${roundsMs("idle", 50)}, p99 ${roundsMs("idle", 99)}; bare server p50 ${roundsMs("bare", 50)}; flooded p50 ${roundsMs("flood", 50)}, p99 ${roundsMs("flood", 99)}; raw flooded p99 ${roundsMs("rawFlood", 99)}.`,
      `Fan-out at ${fmt(FANOUT_SUSTAINED_RATE)}/s, p99 runs (ms): Switchboard ${r.oursSustained.p99s.map((v) => fmt(v)).join(", ")}; bare loop ${r.bareSustained.p99s.map((v) => fmt(v)).join(", ")}. All deliveries arrived: ${allDelivered ? "yes" : "**no**"}.`,
      `Slow client, fast clients' p99 runs (ms): without ${r.slow.p99Without.map((v) => fmt(v)).join(", ")}; with ${r.slow.p99With.map((v) => fmt(v)).join(", ")}.`,
    ],
  };
}

if (process.env[CHILD_ENV] === "1") runChild();
else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(renderStandalone(await run()));
}
