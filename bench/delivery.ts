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
import { DEFAULT_LIMITS, parseConfig } from "../src/server/config.js";
import { CATCHUP_BATCH_BYTES } from "../src/server/feed.js";
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/logger.js";
import { jsonTextFrame, jsonTextFrameJs, jsonTextNative } from "../src/log/json-text.js";
import { readBinaryOutput } from "../src/protocol/index.js";
import type { TerminalOutputMode } from "../src/protocol/index.js";
import type { Session } from "../src/sessions/session.js";
import { FLOOD_PACE_MS, INTERACTIVE_MS, setFloodReader } from "../src/sessions/pty-master.js";
import { appendExternalEvent } from "../src/sessions/stream-session.js";
import { Outbox } from "../src/server/ws-common.js";
import { measureRawPty, PTY_BENCH_BYTES, PTY_BENCH_COMMAND } from "./pty.js";
import { fmt, median, met, percentile } from "./stats.js";
import type { BenchSection } from "./types.js";

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
  const fanRatio = r.ours.perSecond / r.bare.perSecond;
  const fanRatioSustained = r.oursSustained.perSecond / r.bareSustained.perSecond;
  const p99With = median(r.slow.p99With);
  const p99Without = median(r.slow.p99Without);
  const slowP99Ratio = p99With / p99Without;
  const rssGrowth = median(r.slow.rssWith);
  const rows = [
    `| PTY 50 MiB → 1 viewer (/ws/session) | ${fmt(one.ours)} MB/s | raw node-pty ${fmt(one.raw)} MB/s | ${one.ratio.toFixed(2)} | ≥ ${GOAL_PTY_ONE} | ${met(one.ratio >= GOAL_PTY_ONE)} |`,
    `| (for reference) PTY 50 MiB → the log, no viewer | ${fmt(alone.ours)} MB/s | raw node-pty ${fmt(alone.raw)} MB/s | ${alone.ratio.toFixed(2)} | | |`,
    `| (for reference) PTY 50 MiB → 1 viewer, every PTY read on the event loop (\`SWITCHBOARD_PTY_READER=loop\`) | ${fmt(oneLoop.ours)} MB/s | raw node-pty ${fmt(oneLoop.raw)} MB/s | ${oneLoop.ratio.toFixed(2)} | | |`,
    `| PTY 50 MiB → 4 viewers, slowest each | ${fmt(four.ours)} MB/s | raw node-pty ${fmt(four.raw)} MB/s | ${four.ratio.toFixed(2)} | ≥ ${GOAL_PTY_FOUR} | ${met(four.ratio >= GOAL_PTY_FOUR)} |`,
    `| PTY 50 MiB → 1 viewer, binary output (\`?output=binary\`) | ${fmt(oneBinary.ours)} MB/s | raw node-pty ${fmt(oneBinary.raw)} MB/s | ${oneBinary.ratio.toFixed(2)} | ≥ ${GOAL_PTY_ONE} | ${met(oneBinary.ratio >= GOAL_PTY_ONE)} |`,
    `| PTY 50 MiB → 4 viewers, binary output, slowest each | ${fmt(fourBinary.ours)} MB/s | raw node-pty ${fmt(fourBinary.raw)} MB/s | ${fourBinary.ratio.toFixed(2)} | ≥ ${GOAL_PTY_FOUR} | ${met(fourBinary.ratio >= GOAL_PTY_FOUR)} |`,
    `| (for reference) full GCs in the gateway's process per 50 MiB run (medians): no viewer / 1 viewer JSON / binary / 4 viewers JSON / binary | ${(["alone", "one.json", "one.binary", "four.json", "four.binary"] as const).map((k) => fmt(median(r.pty.majorGcs[k]))).join(" / ")} | | | | |`,
    ...r.frames.map(
      (f) =>
        `| (for reference) a JSON \`stdout\` frame of 64 KiB: ${f.output} | ${fmt(f.native, 1)} µs | in JS (latin1, \`JSON.stringify\`) ${fmt(f.js, 1)} µs | ${(f.native / f.js).toFixed(2)} | | |`,
    ),
    `| keystroke echo, idle, p50 (median of ${ECHO_ROUNDS} rounds) | ${ms(echoAt("idle", 50))} | bare \`ws\` + node-pty server ${ms(echoAt("bare", 50))}; raw node-pty ${ms(echoAt("raw", 50))} | ${(echoAt("idle", 50) / echoAt("bare", 50)).toFixed(2)} | ≤ ${GOAL_ECHO_P50_MS} ms | ${met(echoAt("idle", 50) <= GOAL_ECHO_P50_MS)} |`,
    `| keystroke echo, idle, p99 | ${ms(echoAt("idle", 99))} | bare \`ws\` + node-pty server ${ms(echoAt("bare", 99))}; raw node-pty ${ms(echoAt("raw", 99))} | ${(echoAt("idle", 99) / echoAt("bare", 99)).toFixed(2)} | ≤ ${GOAL_ECHO_P99_MS} ms | ${met(echoAt("idle", 99) <= GOAL_ECHO_P99_MS)} |`,
    `| keystroke echo, other session flooding, p99 | ${ms(echoAt("flood", 99))} (p50 ${ms(echoAt("flood", 50))}) | raw node-pty in the client process, same flood: ${ms(echoAt("rawFlood", 99))} (p50 ${ms(echoAt("rawFlood", 50))}) | | ≤ ${GOAL_ECHO_FLOOD_P99_MS} ms | ${met(echoAt("flood", 99) <= GOAL_ECHO_FLOOD_P99_MS)} |`,
    `| (for reference) the flooding session's output rate while the keystrokes are typed (paced, \`FLOOD_PACE_MS\`) | ${fmt(e.typedMBps, 1)} MB/s | while nobody types into the gateway ${fmt(e.untypedMBps, 1)} MB/s | ${(e.typedMBps / e.untypedMBps).toFixed(2)} | | |`,
    `| (for reference) full GCs in the gateway's process during each round's flooded echo run (\`yes\` read on the event loop, 1 JSON viewer) | ${e.floodMajorGcs.map((n) => fmt(n)).join(", ")} in ${fmt(e.floodSeconds, 1)} s each | | | | |`,
    `| fan-out ${FANOUT_CLIENTS} clients, 1 KB at ${fmt(FANOUT_RATE)}/s, deliveries/s | ${fmt(r.ours.perSecond)} | bare ws loop ${fmt(r.bare.perSecond)} | ${fanRatio.toFixed(2)} | ≥ ${GOAL_FANOUT_RATIO} | ${met(fanRatio >= GOAL_FANOUT_RATIO)} |`,
    `| fan-out at ${fmt(FANOUT_RATE)}/s, p99 delivery latency | ${ms(r.ours.p99)} | bare ws loop ${ms(r.bare.p99)} | | ≤ ${GOAL_FANOUT_P99_MS} ms | ${met(r.ours.p99 <= GOAL_FANOUT_P99_MS)} |`,
    `| fan-out ${FANOUT_CLIENTS} clients at ${fmt(FANOUT_SUSTAINED_RATE)}/s, deliveries/s | ${fmt(r.oursSustained.perSecond)} | bare ws loop ${fmt(r.bareSustained.perSecond)} | ${fanRatioSustained.toFixed(2)} | ≥ ${GOAL_FANOUT_RATIO} | ${met(fanRatioSustained >= GOAL_FANOUT_RATIO)} |`,
    `| fan-out at ${fmt(FANOUT_SUSTAINED_RATE)}/s, p99 delivery latency | ${ms(r.oursSustained.p99)} | bare ws loop ${ms(r.bareSustained.p99)} | | ≤ ${GOAL_FANOUT_P99_MS} ms | ${met(r.oursSustained.p99 <= GOAL_FANOUT_P99_MS)} |`,
    `| slow client among ${SLOW_CLIENTS}: fast clients' p99 | ${ms(p99With)} | without it ${ms(p99Without)} | ${slowP99Ratio.toFixed(2)} | ≤ ${1 + GOAL_SLOW_P99_SLACK} | ${met(slowP99Ratio <= 1 + GOAL_SLOW_P99_SLACK)} |`,
    `| slow client among ${SLOW_CLIENTS}: gateway RSS growth | ${fmt(rssGrowth, 1)} MiB | without it ${fmt(median(r.slow.rssWithout), 1)} MiB | | ≤ ${GOAL_SLOW_RSS_MB} MiB | ${met(rssGrowth <= GOAL_SLOW_RSS_MB)} |`,
    `| slow client among ${SLOW_CLIENTS}: most queued for one connection | ${fmt(r.slow.queuedOne / 2 ** 20, 2)} MiB | budget ${fmt(DEFAULT_LIMITS.queueBytes / 2 ** 20)} MiB | | ≤ budget + one catch-up batch | ${met(r.slow.queuedOne <= DEFAULT_LIMITS.queueBytes + CATCHUP_BATCH_BYTES + SLOW_EVENT_BYTES)} |`,
    `| slow client among ${SLOW_CLIENTS}: most queued for all connections together | ${fmt(r.slow.queuedTotal / 2 ** 20, 2)} MiB | without it ${fmt(r.slow.queuedTotalWithout / 2 ** 20, 2)} MiB | | | |`,
    `| memory per idle connection (subscribed) | heap+external ${kib(r.idle.perConnection.heap)}, RSS ${rssKib(r.idle.perConnection.rss)} | | | | |`,
    `| memory per idle PTY session (\`cat\`) | gateway heap+external ${kib(r.idle.perPty.heap)}, gateway RSS ${rssKib(r.idle.perPty.rss)}; the process itself ${kib(r.idle.perPty.childRss)} RSS | | | | |`,
  ];
  const pairs = (v: Paired[]) => v.map((p) => `${fmt(p.mbps)}/${fmt(p.raw)}`).join(", ");
  return {
    title: "Real-time delivery",
    markdown: [
      "The gateway runs in the benchmark process with a fresh data dir (SQLite log, default limits except connections per token);",
      "the WebSocket clients run in a child process (they parse every frame, as real clients do); all on 127.0.0.1.",
      `The machine was shared: its 1-minute load average was ${r.load[0].toFixed(1)} when this section started and ${r.load[1].toFixed(1)} when it ended, on ${cpus().length} cores, so absolute figures (and single runs) vary a lot from run to run.`,
      "",
      "| measure | Switchboard | baseline | ratio | goal | |",
      "|---|---|---|---|---|---|",
      ...rows,
      "",
      `- **PTY throughput**: \`${PTY_BENCH_COMMAND.join(" ")}\` (${fmt(PTY_BENCH_BYTES / 2 ** 20)} MiB) in a PTY session, from spawn until each viewer has the \`exit\` frame (it connects with \`?since=0\`, so nothing is missed), against node-pty reading the same command raw in this process (bench/pty.ts). ${PTY_ROUNDS} rounds. Each run is paired with a raw node-pty read of the same command just before or just after it (the order alternates by round), and a row's ratio is the median of its pairs' ratios: this machine's speed drifts by ±20% within minutes (other tenants of its host: raw alone gave 72–100 MB/s in 10 reads in a row), so each run is compared with its neighbour rather than with a baseline read up to a minute apart (until this run, one raw read per round stood for the round's six runs, and a ratio was the ratio of medians). The MB/s columns are the medians of the runs and of their raw pairs. Runs, as Switchboard/raw MB/s: no viewer ${pairs(r.pty.alone)}; 1 viewer ${pairs(r.pty.one.json)}; 4 viewers (slowest) ${pairs(r.pty.fourEach.json)}; with binary output 1 viewer ${pairs(r.pty.one.binary)}, 4 viewers (slowest) ${pairs(r.pty.fourEach.binary)}; 1 viewer with every PTY read on the event loop ${pairs(r.pty.oneLoop)} (JSON and binary take turns going first). Every byte arrived: ${r.pty.complete ? "yes" : "**no**"}. Switchboard's path also writes the 50 MiB to the log (its output files, rows in SQLite), so it is bounded by the PTY → log figure of the section above; on top of it, each viewer costs the event loop a JSON-escaped frame and a socket write per event, and its client process (parsing 50 MiB of JSON) runs on the same 2 cores as the producer — the PTY section's sensitivity table shows what that does to a PTY producer. Binary output (\`?output=binary\`, what the SDK's TerminalClient and \`switchboard attach\` use) takes JSON out of the path. Output pieces, and the frames viewers get of them, reuse their memory (src/core/buffer-pool.ts): a binary frame of a 64 KiB piece is the piece itself with its header written in the room left in front of it, a JSON frame of one is written in a reused buffer, and a piece's buffer goes back once the log and every viewer are done with it. Before, every piece and every frame was a fresh 64 KiB buffer, and V8 starts full GCs by how much such memory is allocated: 5–12 per run (the GC row shows what is left); measured before that change, 5 alternating pairs of processes of one round each (\`.bench-tmp/knob.ts\`, ratios to one raw read per process, so some above 1): 1 viewer binary 1.08 → 1.25, JSON 0.89 → 1.13, 4 viewers binary 0.78 → 0.91 (medians). With JSON, the gateway builds each frame from the bytes (once for all the viewers that get the same event; a viewer that lags gets its own, with several events in it) in native code, native/json_text.c (src/log/json-text.ts; the "JSON frame" rows give its cost against the fastest route in JS on Node 20, which it replaced: 1 viewer 0.70 → 0.73 of raw in 16 alternating rounds, 11 of them better; 4 viewers 0.47 → 0.55 in 8, 6 of them better, once a lagging viewer's batch was escaped piece by piece instead of copied into one buffer first — before that the event loop's CPU per run fell 840 → 470 ms but V8's GC helper threads rose 340 → 660 ms), and each viewer parses it (decoding and \`JSON.parse\` of a 64 KiB frame, as the clients here do, cost 45 µs for the flood's output and 100 µs for \`ls --color\` lines); the binary rows show what is left without it — the log, the socket writes and the viewers' processes on the same 2 cores. A master that floods (256 KiB without a 5 ms pause) is read on a native reader thread (native/pty_reader.c, src/sessions/pty-master.ts) instead of the event loop, so the producer no longer waits while the event loop works on the previous output; it queues up to 1 MiB per master, enough to ride out the event loop's GC pauses (with 256 KiB, ~4 ms of a flood, PTY → log was 0.72–0.83 of raw against 0.88–0.99 in alternating rounds); it wakes the event loop once a master has a full piece (64 KiB) queued, or 1 ms after the first bytes it has not told it of, not at every read of ~4 KiB: the event loop's thread slept and woke 650–740 times per 50 MiB to one viewer instead of 4,100–4,600, but throughput did not change beyond the noise (8 alternating pairs of processes: 1 viewer binary 0.87 → 0.86 of raw, JSON 1.00 → 0.97, medians; the gateway's CPU per run 825 → 810 and 770 → 730 ms). What bounds a PTY flood here is latency, not CPU: a PTY passes at most ~4 KiB per read, so every ~4 KiB the producer waits for the reader to wake, and on this virtual machine with both cores busy a wake-up waits for a core: the reader thread spent ~350 ms per 50 MiB run waiting in the run queue, ~25 µs per wake-up (\`/proc/self/task/TID/schedstat\`), while the gateway's threads together used ~800 ms of CPU in a run of ~800 ms on 2 cores (giving the reader thread nice −15 halved its wait, but the other threads then waited longer, and spinning 40 µs for the next read before sleeping caught almost none); the reference row reads every master on the event loop, as before that thread (in 6 alternating rounds with the data dir on tmpfs: 1 viewer 0.51 → 0.74, binary 0.57 → 0.73, 4 viewers binary 0.54 → 0.62). A flood goes back to the event loop after 100 ms of quiet, and at once while anyone types into a PTY: a flood on the thread takes more of the 2 cores, and the keystroke echo below under a flood went from 15 to 25 ms at p99 (p50 3.3 → 1.7 ms) until that rule; with it, 14.5 ms either way. The GC row after the echo rows counts the gateway's full GCs during the flooded echo run: \`yes\`, read on the event loop while someone types, gives pieces well under 64 KiB (~25 KiB, ~6 MB/s with one JSON viewer); before pieces and frames of every size reused memory (buffer-pool.ts, \`BufferPools\`), each such piece was a fresh buffer the log's hot ring kept past V8's young generation, and it was 4–6 full GCs in ~4.8 s (measured the same way, before that change). The 10,000/s fan-out row is throughput at saturation (5,000,000 deliveries/s offered); its latency is queueing, and the bare loop queues longer.`,
      `- **Keystroke echo**: \`{"type":"stdin","data":"x"}\` over /ws/session to \`cat\` in a PTY until the \`stdout\` frame with the echo arrives, ${ECHO_SAMPLES} keystrokes, each ${ECHO_GAP_MS} ms after the previous echo; the flood is \`yes\` in another PTY session with a viewer in another process. Baselines: a bare \`ws\` server in this process that writes each \`stdin\` frame to a node-pty \`cat\` and sends each read back as a \`stdout\` frame, measured by the same client just before or after the gateway (the order alternates by round) — the floor of any gateway over a WebSocket on this machine, without checks, log or fan-out, whose ratio is the idle rows' ratio column; node-pty write → onData in this process (idle); and the same from the client process while the flood goes on (no gateway in the path: what this machine gives any echo under that load). ${ECHO_ROUNDS} rounds, each of all five; a row gives the median of the rounds' percentiles. Rounds (ms): idle p50 ${roundsMs("idle", 50)}, p99 ${roundsMs("idle", 99)}; bare server p50 ${roundsMs("bare", 50)}; flooded p50 ${roundsMs("flood", 50)}, p99 ${roundsMs("flood", 99)}; raw flooded p99 ${roundsMs("rawFlood", 99)}. Where the flood's time goes (measured while investigating, timestamps taken in the client and in the gateway): each of the path's three hops — client → gateway, gateway → \`cat\` → gateway, gateway → client — has a p99 of 4–8 ms under an unpaced flood, and so has the gateway's commit of the echo (it found the log's write lock taken by the flood's batch 4 times in 300: it is the gateway's thread waiting for a core, mid-commit, not the lock), while the gateway's own work per keystroke is about 0.15 ms at p50; \`yes\`, the kernel's PTY work (kworker threads), the gateway and the flood's viewer, which parses every frame, together keep the 2 cores busy, so every process wakeup may wait for a core, and the gateway's path has three wakeups where the baseline has one. So while anyone types into a PTY, a flooding session is paced: after each read of its master (~4 KiB) the gateway reads it again only ${FLOOD_PACE_MS} ms later (src/sessions/pty-master.ts, \`FLOOD_PACE_MS\`), which slows the flood itself (its rate row above: the program blocks on its full terminal) and with it all the work it caused; measured in 3 alternating rounds each way, flooded echo p99 13.0, 10.1, 14.4 ms unpaced against 8.4, 6.4, 5.7 ms paced, p50 3.2, 2.8, 2.4 against 1.6, 1.5, 1.5 ms; a rest of 2 ms gave no better echo (p99 9.3, 7.7, 8.1 ms) for a flood of 1.8 MB/s against 3.0. A flood nobody types beside runs unpaced, and on the reader thread. Since the echo is delivered only once it is committed to the log (a crash cannot then lose or renumber what a viewer saw; docs/protocol.md), its path includes that commit: made on the event loop for small writes (about 0.05 ms; the keystroke's \`input\` event waits up to 2 ms to share it), and under the flood whenever the writer thread is not holding the write lock — otherwise after the flood's batch in commit. Measured against the code before that change, alternating runs on this machine: idle p50 +0.16–0.27 ms, flood p99 18–23 ms against 12–14 ms. Idle, the whole path runs with cold caches: this machine is a virtual machine whose idle vCPU halts at once, and work after a 10 ms pause is many times slower than warm (measured: \`JSON.parse\` of the 30-byte frame 24 µs instead of 0.6, the first syscall 25–35 µs instead of 2, the echo's two-row commit — 8 syscalls, 6 of them locks on the WAL index — 117–145 µs instead of 15–21); per stage (p50, timestamps in client and gateway): client → gateway 280–370 µs, frame check 37 (a hand check of keystroke frames; the zod union took 87), PTY round trip 150–220, commit 117–145, frame and socket write ~140, gateway → client 150–170. Measured again on 2026-11-23 (timestamps added to a build for the purpose, not kept): a bare \`ws\` server that answers each stdin frame with a stdout frame, with the same client and pauses, takes 0.45–0.48 ms at p50 — the two network hops and the JSON at both ends, before any PTY or log; the gateway's own steps on the idle path each take 10–130 µs cold (p50s, timestamps in the gateway: frame check 25, steering checks 40, the PTY write 45, reading the echo into an event 63, queueing it 38, the commit 126, publishing 37, the frame 72, the socket write 64), about 0.5 ms in all, with no one step to remove; the PTY round trip is ~0.19 ms. Tried and not kept: a fast path for small frames (\`JSON.stringify\` instead of the native writer into a pooled buffer: no difference beyond the noise) and committing the keystroke's \`input\` event at once to warm the commit path (not faster: idle p50 0.98–1.59 ms in 4 rounds, alternating with the input waiting for the echo's commit as it does, whose last two rounds gave 0.96 and 1.12). So the idle p50 sits at the goal: 0.77–1.65 ms across the day's runs of the same code (with the host's other tenants), the median of this run's rounds above it.`,
      `- **Fan-out**: a stream session gets 1 KB \`custom\` events appended in this process at the given rate; every client is subscribed over /v1/ws. Baseline: a bare \`ws\` server in this process whose loop sends each event's frame (same JSON) to every client. Deliveries/s = events received by all clients ÷ time from the first append to the last receipt; latency = receipt − the time the event was due at the offered rate (so a producer slowed by its own sending does not hide queueing). At ${fmt(FANOUT_RATE)}/s the producer runs ${FANOUT_MS} ms (${fmt((FANOUT_RATE * FANOUT_MS) / 1000)} events, ${fmt((FANOUT_RATE * FANOUT_MS * FANOUT_CLIENTS) / 1000)} deliveries): neither side can carry ${fmt(FANOUT_RATE * FANOUT_CLIENTS)} deliveries/s on this machine, so this is throughput at saturation and its latency is queueing. At ${fmt(FANOUT_SUSTAINED_RATE)}/s for ${FANOUT_SUSTAINED_MS / 1000} s (${fmt(FANOUT_SUSTAINED_RATE * FANOUT_CLIENTS)} deliveries/s offered) the load is closer to what this machine carries; the best possible figure there is the offered rate; ${FANOUT_SUSTAINED_PAIRS} runs per side, alternating (who goes first too), medians; p99 runs (ms): Switchboard ${r.oursSustained.p99s.map((v) => fmt(v)).join(", ")}, bare loop ${r.bareSustained.p99s.map((v) => fmt(v)).join(", ")}. These sustained runs come first, before the saturated ones, so their latency is not that of processes still collecting the garbage a saturation left, and after a forced GC once the echo runs are done (without it, right after the echo runs' flood, one full run gave p99 medians of 70 ms against the bare loop's 22: runs 70, 313, 57, 45, 86 against 25, 38, 15, 19, 22; with it, in the next run, 38 against 16). Where their latency goes (measured while investigating, timestamps in the gateway; \`.bench-tmp/fanout-trace.ts\`): the commit of an event takes ~0.2 ms (p50), its fan-out to the 500 sockets ~6 ms (the bare loop's: ~6 ms), of which one write per delivery (~12 µs, the kernel's loopback TCP) is most. Until 2026-11-22 it was 7–8 ms: each delivery went through \`ws.send\`, which frames the message again for every connection (a header buffer, a corked pair of writes, one \`writev\`); a small event's frame is now encoded as a whole WebSocket message once and written to each socket as one buffer (src/server/wire-frame.ts), which in 9 alternating runs each way took the fan-out of an event 7.2 → 6.0 ms (median) and the p99 33.6 → 16.9 ms (medians). The p99 comes from a cascade on the 2 busy cores (the clients' process parses 50,000 frames/s beside the gateway): a late timer tick appends 2–5 events at once, their fan-outs follow one another (30–50 ms), and the next events are late in turn. Tried and not kept: delivering each tick's live events together at its end, one frame per connection for several events (p50 6 → 9–14 ms, the gateway's GC time per run 20 → 90–130 ms), and holding live events while a connection's previous write is in flight (p99 24–37 ms against 17–82 ms before, within the noise). Both runs of each side start with ${WARMUP_MS} ms of the same load, not counted. All deliveries arrived: ${[r.ours, r.bare, r.oursSustained, r.bareSustained].every((x) => x.complete) ? "yes" : "**no**"}.`,
      `- **Slow client**: ${SLOW_CLIENTS} clients on /v1/ws, ${fmt(SLOW_EVENT_BYTES / 1024)} KiB events at ${SLOW_RATE}/s for ${SLOW_MS / 1000} s (${fmt((SLOW_EVENT_BYTES * SLOW_RATE * SLOW_MS) / 1000 / 2 ** 20)} MiB per client), after a warm-up run; ${SLOW_PAIRS} runs without and ${SLOW_PAIRS} with one client that stops reading (its socket paused) from the start and is resumed after the run — it then received every event — alternating; medians. p99 runs (ms): without ${r.slow.p99Without.map((v) => fmt(v)).join(", ")}; with ${r.slow.p99With.map((v) => fmt(v)).join(", ")}. RSS growth = the gateway process's peak RSS during a run minus its RSS at the start (after GC), sampled every 20 ms; it mostly shows V8's heap high-water mark, so the outboxes' own count of queued bytes is given too.`,
      `- **Idle memory**: ${IDLE_CONNECTIONS} /v1/ws connections each subscribed to an idle stream session, and ${IDLE_PTYS} PTY sessions running \`cat\`, each of which has echoed one line (as a shell prints its prompt), counted after ${IDLE_PTY_WARMUP} such sessions (kept running) so that code compiled once is not counted; the difference in the gateway process's heap+external and RSS after GC, divided by the count (RSS moves in pages and with the allocator's caches, so heap+external is the steadier figure). A session that has printed keeps a 4 KiB output buffer (it grows to 64 KiB while a burst lasts and is given back after; a session that never printed holds none); the rest is the session's objects, its process's handles and a copy of its environment; RSS counts only the pages output has touched.`,
    ].join("\n"),
  };
}

if (process.env[CHILD_ENV] === "1") runChild();
else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const section = await run();
  process.stdout.write(`## ${section.title}\n\n${section.markdown}\n`);
}
