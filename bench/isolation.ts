/**
 * Isolation under attack: while one token attacks, another client's `/healthz` latency and
 * keystroke echo (a PTY `cat` over `/ws/session`) are sampled and the gateway's RSS is watched.
 * The attacks ({@link ATTACKS}): a viewer opens its whole connection limit on `/v1/ws`,
 * subscribes each from `since: 0` to a session holding 256 MiB, stops reading, then closes them
 * all; a viewer downloads that session's `transcript?format=text` again and again as fast as it
 * reads; an operator floods its own PTY with 100,000 one-byte stdin frames; an operator runs six
 * PTY sessions printing hostile escape sequences. The baseline is the same probe over the same
 * time with no attack, in the same run and gateway. The gateway, the probe and the
 * attacker each run in a child process (this file, forked), so none shares another's event loop
 * and the gateway's RSS is its own. Everything listens on 127.0.0.1 only.
 *
 * Reproduce: `npm run bench -- isolation` (prints this section), or `npm run bench`.
 */
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { DEFAULT_LIMITS, parseConfig } from "../src/server/config/config.js";
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/ops/logger.js";
import type { Session } from "../src/sessions/session.js";
import { fmt, met, percentile } from "./stats.js";
import type { BenchSection } from "./types.js";

const CHILD_ENV = "SWITCHBOARD_ISOLATION_BENCH_CHILD";
const ADMIN = "isolation-bench-admin-0123456789abcdef";
const VIEWER = "isolation-bench-viewer-0123456789abcdef";
const ATTACKER = "isolation-bench-attacker-0123456789abcdef";

/** The attacks, each in a phase of its own, in this order (the escape sequences' sessions stay to the end). */
const ATTACKS = ["catch-up", "export", "stdin", "escapes"] as const;
type Attack = (typeof ATTACKS)[number];
/** The stdin flood: one-byte frames, sent as fast as the socket takes them. */
const STDIN_FRAMES = 100_000;
/**
 * The hostile PTY sessions: each prints its escape sequences (about 30 MiB, or what the name
 * says), then sleeps. Run as `node -e HOSTILE_PROGRAM kind`.
 */
const HOSTILE_KINDS = ["titles", "osc-27mb", "sixel-4mb", "rep-ich", "window-ops", "decrqm"] as const;
const HOSTILE_PROGRAM = String.raw`
const kind = process.argv[1];
const MB = 1 << 20;
const t = "t".repeat(MB);
const units = {
  "titles": [30, () => "\x1b]2;" + t + "\x07"],
  "osc-27mb": [29, (i) => (i === 0 ? "\x1b]0;" : i === 28 ? "\x07" : t)],
  "sixel-4mb": [1, () => "\x1bPq" + "#0;2;0;0;0#0!100~-".repeat((4 * MB) / 18) + "\x1b\\"],
  "rep-ich": [30, () => "x\x1b[80b\x1b[999@".repeat(MB / 12)],
  "window-ops": [30, () => "\x1b[8;1000;1000t\x1b[4;10000;10000t\x1b[14t".repeat(MB / 38)],
  "decrqm": [30, () => "\x1b[?1$p\x1b[?2026$p\x1b[20$p".repeat(MB / 26)],
};
const [count, unit] = units[kind];
let i = 0;
const next = () => {
  while (i < count) if (!process.stdout.write(unit(i++))) return void process.stdout.once("drain", next);
  setInterval(() => undefined, 1 << 30);
};
next();
`;

/** The attacked session's log: 256 MiB of output in 64 KiB pieces (the size the issue reported). */
const LOG_BYTES = 256 * 1024 * 1024;
const PIECE_BYTES = 64 * 1024;
/** The attacker's connections: its token's whole limit. */
const ATTACK_CONNECTIONS = DEFAULT_LIMITS.connectionsPerToken;
/** How long the attacker holds its connections without reading, then how long the probe goes on after it closed them. */
const STALL_MS = 10_000;
const AFTER_CLOSE_MS = 5_000;
/** Bounds on the attacker's connect and close steps (the bench stops by itself). */
const STEP_TIMEOUT_MS = 60_000;
/** The probe sends a `/healthz` request and a keystroke this often (each waits for its answer first). */
const PROBE_GAP_MS = 20;
const GOAL_P99_MS = 50;
/**
 * The gateway's RSS may grow by at most this much under the attack: the per-token share of
 * catch-up memory (`CATCHUP_TOKEN_BYTES`, src/server/ws/feed.ts) plus room for 256 connections'
 * own state and the frames in flight.
 */
const RSS_GROWTH_BOUND_MIB = 256;

interface ProbeResult {
  healthz: number[];
  echo: number[];
  /** `/healthz` requests that failed (connection reset or refused). */
  failed: number;
}

/* ---- child processes ---- */

type ChildMessage =
  | { op: "ready" }
  | { op: "gateway"; url: string; big: string; echo: string }
  | { op: "lag"; p99: number; max: number }
  | { op: "probe"; result: ProbeResult }
  /** The attack is under way; `subscribed`: how much of it (connections, sessions, frames). */
  | { op: "stalled"; subscribed: number }
  /** The attack stopped; `closed`: what it counted (connections closed, MiB downloaded, frames refused). */
  | { op: "closed"; closed: number };

if (process.env[CHILD_ENV] === "probe") runProbe();
if (process.env[CHILD_ENV] === "attack") runAttack(process.env["ATTACK"] as Attack);
if (process.env[CHILD_ENV] === "fill") void runGateway(true);
if (process.env[CHILD_ENV] === "gateway") void runGateway(false);

function send(message: ChildMessage): void {
  process.send!(message);
}

/** Samples `/healthz` and keystroke echo until told to stop. */
function runProbe(): void {
  const url = process.env["URL"]!;
  const session = process.env["SESSION"]!;
  const result: ProbeResult = { healthz: [], echo: [], failed: 0 };
  let running = true;
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws/session/${session}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  let waiting: (() => void) | undefined;
  ws.on("message", (data) => {
    const f = JSON.parse(String(data)) as { type?: string; data?: string };
    if (f.type === "stdout" && f.data?.includes("x")) waiting?.();
  });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const healthz = async () => {
    while (running) {
      const t = performance.now();
      // An unanswered request counts with the time until it failed.
      await fetch(`${url}/healthz`)
        .then((r) => r.text())
        .catch(() => result.failed++);
      result.healthz.push(performance.now() - t);
      await sleep(PROBE_GAP_MS);
    }
  };
  const echo = async () => {
    while (running) {
      const t = performance.now();
      // An echo that does not come counts with the time waited for it (a frozen gateway).
      await new Promise<void>((resolve) => {
        waiting = resolve;
        setTimeout(resolve, STEP_TIMEOUT_MS / 4).unref();
        ws.send(JSON.stringify({ type: "stdin", data: "x" }));
      });
      result.echo.push(performance.now() - t);
      await sleep(PROBE_GAP_MS);
    }
  };
  let loops: Promise<unknown> | undefined;
  ws.once("open", () => send({ op: "ready" }));
  process.on("message", (m: { op: string }) => {
    if (m.op === "start") loops = Promise.all([healthz(), echo()]);
    if (m.op === "stop") {
      running = false;
      void loops!.then(() => {
        send({ op: "probe", result });
        ws.close();
        process.exit(0);
      });
    }
  });
}

function runAttack(attack: Attack): void {
  switch (attack) {
    case "catch-up":
      return attackCatchUp();
    case "export":
      return attackExport();
    case "stdin":
      return void attackStdin();
    case "escapes":
      return void attackEscapes();
  }
}

/** Runs on "close" from the parent: what the attack counted goes back in its "closed". */
function onClose(stop: () => number | Promise<number>): void {
  process.on("message", (m: { op: string }) => {
    if (m.op !== "close") return;
    void Promise.resolve(stop()).then((closed) => {
      send({ op: "closed", closed });
      process.exit(0);
    });
  });
}

async function createAs(token: string, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${process.env["URL"]!}/v1/sessions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`create session: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** Downloads the big session's transcript as text, again and again, reading as fast as it comes. */
function attackExport(): void {
  const url = `${process.env["URL"]!}/v1/sessions/${process.env["SESSION"]!}/transcript?format=text`;
  let running = true;
  let bytes = 0;
  const loop = (async () => {
    while (running) {
      const res = await fetch(url, { headers: { authorization: `Bearer ${VIEWER}` } });
      const reader = res.body!.getReader();
      for (let read = await reader.read(); !read.done; read = await reader.read()) {
        bytes += read.value.byteLength;
        if (!running) {
          await reader.cancel();
          break;
        }
      }
    }
  })();
  send({ op: "stalled", subscribed: 1 });
  onClose(async () => {
    running = false;
    await loop.catch(() => undefined);
    return Math.round(bytes / 2 ** 20);
  });
}

/** Sends STDIN_FRAMES one-byte frames to a PTY `cat` of its own; counts the frames refused. */
async function attackStdin(): Promise<void> {
  const id = await createAs(ATTACKER, { command: ["cat"], pty: true });
  const ws = new WebSocket(`${process.env["URL"]!.replace(/^http/, "ws")}/ws/session/${id}`, {
    headers: { authorization: `Bearer ${ATTACKER}` },
  });
  let refused = 0;
  ws.on("message", (data) => {
    if ((JSON.parse(String(data)) as { code?: string }).code === "RATE_LIMITED") refused++;
  });
  await new Promise((resolve) => ws.once("open", resolve));
  send({ op: "stalled", subscribed: STDIN_FRAMES });
  for (let i = 0; i < STDIN_FRAMES; i++) {
    ws.send('{"type":"stdin","data":"x"}');
    // Handed to the socket in batches, so the frames go out as fast as it takes them.
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  onClose(() => {
    ws.close();
    return refused;
  });
}

/**
 * Starts the hostile PTY sessions (HOSTILE_KINDS); they print, then sleep until the gateway
 * ends. It asks for each one's screen in turn meanwhile, so the screen thread parses all of it
 * within the phase (a screen is answered once what the log held is parsed).
 */
async function attackEscapes(): Promise<void> {
  const ids = await Promise.all(
    HOSTILE_KINDS.map((kind) => createAs(ATTACKER, { command: ["node", "-e", HOSTILE_PROGRAM, kind], pty: true })),
  );
  send({ op: "stalled", subscribed: ids.length });
  const stop = new AbortController();
  let screens = 0;
  const loop = (async () => {
    while (!stop.signal.aborted) {
      for (const id of ids) {
        const res = await fetch(`${process.env["URL"]!}/v1/sessions/${id}/screen`, {
          headers: { authorization: `Bearer ${ATTACKER}` },
          signal: stop.signal,
        });
        await res.text();
        screens++;
      }
    }
  })();
  onClose(async () => {
    // A screen still being parsed is not waited for.
    stop.abort();
    await loop.catch(() => undefined);
    return screens;
  });
}

/** Opens the viewer's connections, subscribes each from 0, stops reading; on "close", closes them. */
function attackCatchUp(): void {
  const url = process.env["URL"]!.replace(/^http/, "ws");
  const session = process.env["SESSION"]!;
  const sockets: WebSocket[] = [];
  let subscribed = 0;
  for (let i = 0; i < ATTACK_CONNECTIONS; i++) {
    const ws = new WebSocket(`${url}/v1/ws`, { headers: { authorization: `Bearer ${VIEWER}` } });
    ws.on("error", () => undefined);
    ws.once("open", () => ws.send(JSON.stringify({ op: "subscribe", session, since: 0 })));
    const onMessage = (data: WebSocket.RawData) => {
      const frame = JSON.parse(String(data)) as { op: string; message?: string };
      if (frame.op === "error") throw new Error(`subscribe refused: ${frame.message}`);
      if (frame.op !== "subscribed") return;
      ws.off("message", onMessage);
      // Stops reading: what the gateway sends piles up in the kernel, then in the gateway.
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      if (++subscribed === ATTACK_CONNECTIONS) send({ op: "stalled", subscribed });
    };
    ws.on("message", onMessage);
    sockets.push(ws);
  }
  // A gateway that cannot keep up (the code before the fix) is attacked with what subscribed by then.
  setTimeout(() => {
    if (subscribed < ATTACK_CONNECTIONS) send({ op: "stalled", subscribed });
  }, STEP_TIMEOUT_MS / 2).unref();
  process.on("message", (m: { op: string }) => {
    if (m.op !== "close") return;
    let closed = 0;
    const done = () => {
      send({ op: "closed", closed });
      process.exit(0);
    };
    for (const ws of sockets) {
      ws.once("close", () => {
        if (++closed === sockets.length) done();
      });
      // A close frame, then reading again: the gateway's writes complete while its socket is closing.
      ws.close();
      (ws as unknown as { _socket: { resume(): void } | null })._socket?.resume();
    }
    setTimeout(done, STEP_TIMEOUT_MS).unref();
  });
}

/**
 * The gateway on DATA_DIR. `fill`: creates the attacked session, writes its log, stops. Else:
 * serves that log and a PTY `cat` for the probe until the parent ends it. Each is a process of
 * its own, so that the gateway's RSS is its own and not the filling's.
 */
async function runGateway(fillIt: boolean): Promise<void> {
  const gw = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir: process.env["DATA_DIR"]!,
    token: ADMIN,
    config: parseConfig({
      auth: {
        tokens: [
          { name: "admin", token: ADMIN, role: "admin" },
          { name: "viewer", token: VIEWER, role: "viewer", sessions: ["*"] },
          { name: "attacker", token: ATTACKER, role: "operator" },
        ],
      },
    }),
    logger: createLogger({ level: "silent" }),
  });
  if (fillIt) {
    const big = await createSession(gw, { kind: "stream" });
    await fill(gw, big);
    await gw.close();
    send({ op: "gateway", url: "", big, echo: "" });
    process.exit(0);
  }
  const big = gw.core.sessions.list().find((s) => s.record.kind === "stream")!.id;
  const echo = await createSession(gw, { command: ["cat"], pty: true });
  // How long the gateway's event loop was held, per phase.
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  process.on("message", (m: { op: string }) => {
    if (m.op === "lag-reset") lag.reset();
    if (m.op === "lag") send({ op: "lag", p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 });
  });
  gc();
  send({ op: "gateway", url: gw.url, big, echo });
}

/* ---- the parent ---- */

function child(role: "probe" | "attack" | "fill" | "gateway", env: Record<string, string>): ChildProcess {
  return fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, ...env, [CHILD_ENV]: role },
    execArgv: ["--expose-gc", "--import", "tsx"],
  });
}

/** The resident set of process `pid`, in bytes (Linux). */
function rssOf(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) * 1024;
}

function next<T extends ChildMessage["op"]>(proc: ChildProcess, op: T): Promise<Extract<ChildMessage, { op: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${op} from the child in ${STEP_TIMEOUT_MS} ms`)),
      STEP_TIMEOUT_MS,
    );
    const onMessage = (m: ChildMessage) => {
      if (m.op !== op) return;
      clearTimeout(timer);
      proc.off("message", onMessage);
      resolve(m as Extract<ChildMessage, { op: T }>);
    };
    proc.on("message", onMessage);
  });
}

async function createSession(gw: Gateway, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${gw.url}/v1/sessions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`create session: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** Writes LOG_BYTES of output into a stream session's log and waits for it to be on disk. */
async function fill(gw: Gateway, id: string): Promise<void> {
  const log = (gw.core.sessions.get(id) as Session).log;
  const piece = "0123456789abcdef".repeat(PIECE_BYTES / 16);
  for (let n = 0; n < LOG_BYTES / PIECE_BYTES; n++) {
    log.appendOutput("stdout", piece);
    while (log.backlog.bytes > 8 * PIECE_BYTES * 16) await new Promise((r) => setTimeout(r, 5));
  }
  while (log.backlog.bytes > 0) await new Promise((r) => setTimeout(r, 10));
}

interface Phase {
  probe: ProbeResult;
  rssBefore: number;
  rssPeak: number;
  rssAfter: number;
  subscribed: number;
  closed: number;
  /** The gateway's event-loop delay over the phase, ms. */
  lag: { p99: number; max: number };
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** One probe over the attack's time, with `attack` or without any (baseline). */
async function phase(gw: Served, attack: Attack | undefined): Promise<Phase> {
  const probe = child("probe", { URL: gw.url, SESSION: gw.echo });
  await next(probe, "ready");
  const rssBefore = rssOf(gw.pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, rssOf(gw.pid));
  }, 50);
  gw.process.send({ op: "lag-reset" });
  probe.send({ op: "start" });
  let subscribed = 0;
  let closed = 0;
  try {
    if (attack !== undefined) {
      const attacker = child("attack", { URL: gw.url, SESSION: gw.big, ATTACK: attack });
      subscribed = (await next(attacker, "stalled")).subscribed;
      await new Promise((r) => setTimeout(r, STALL_MS));
      attacker.send({ op: "close" });
      closed = (await next(attacker, "closed")).closed;
    } else {
      await new Promise((r) => setTimeout(r, STALL_MS + 1000));
    }
    await new Promise((r) => setTimeout(r, AFTER_CLOSE_MS));
  } catch (error) {
    clearInterval(sampler);
    throw error;
  } finally {
    probe.send({ op: "stop" });
  }
  const { result } = await next(probe, "probe").finally(() => clearInterval(sampler));
  gw.process.send({ op: "lag" });
  const lag = await next(gw.process, "lag");
  return { probe: result, rssBefore, rssPeak, rssAfter: rssOf(gw.pid), subscribed, closed, lag };
}

interface Served {
  url: string;
  big: string;
  echo: string;
  pid: number;
  process: ChildProcess;
}

export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-isolation-"));
  let gateway: ChildProcess | undefined;
  try {
    const filler = child("fill", { DATA_DIR: dir });
    await next(filler, "gateway");
    await new Promise((r) => filler.once("exit", r));
    gateway = child("gateway", { DATA_DIR: dir });
    const served = { ...(await next(gateway, "gateway")), pid: gateway.pid!, process: gateway };
    const baseline = await phase(served, undefined);
    const attacked: Array<[Attack, Phase]> = [];
    for (const attack of only()) attacked.push([attack, await phase(served, attack)]);
    return section(baseline, attacked);
  } finally {
    gateway?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `ISOLATION_ATTACKS=export,stdin` runs only those attacks (all by default). */
function only(): Attack[] {
  const named = process.env["ISOLATION_ATTACKS"]?.split(",");
  return ATTACKS.filter((a) => named === undefined || named.includes(a));
}

const MiB = 1024 * 1024;

/** What each attack is, for its table's note. */
function method(attack: Attack, p: Phase): string {
  switch (attack) {
    case "catch-up":
      return `a viewer token opens ${p.subscribed} of its ${ATTACK_CONNECTIONS} \`/v1/ws\` connections' limit, each subscribes with \`since: 0\` to a stream session holding ${LOG_BYTES / MiB} MiB of output and stops reading; ${STALL_MS / 1000} s later it closes all of them (${p.closed} closed) and reads again, so the gateway's writes complete while its sockets are closing.`;
    case "export":
      return `a viewer token downloads \`GET /v1/sessions/:id/transcript?format=text\` of that ${LOG_BYTES / MiB} MiB session again and again for ${STALL_MS / 1000} s, reading as fast as it comes (${p.closed} MiB read).`;
    case "stdin":
      return `an operator token sends ${STDIN_FRAMES.toLocaleString("en-US")} one-byte \`stdin\` frames to a PTY \`cat\` of its own over \`/ws/session\` as fast as its socket takes them (${p.closed.toLocaleString("en-US")} refused with \`RATE_LIMITED\`).`;
    case "escapes":
      return `an operator token starts ${p.subscribed} PTY sessions that print hostile escape sequences: ${HOSTILE_KINDS.join(", ")} (about 30 MiB each unless named), and asks for their screens in turn meanwhile (${p.closed} screens answered).`;
  }
}

function section(baseline: Phase, attacked: Array<[Attack, Phase]>): BenchSection {
  const p99 = (xs: number[]) =>
    percentile(
      [...xs].sort((a, b) => a - b),
      99,
    );
  const max = (xs: number[]) => Math.max(...xs);
  const row = (measure: string, ours: number, base: number, goal: string, ok: boolean | undefined, unit = "ms") =>
    `| ${measure} | ${fmt(ours, 1)} ${unit} | ${fmt(base, 1)} ${unit} | ${base > 0 ? (ours / base).toFixed(2) : "–"} | ${goal} | ${ok === undefined ? "–" : met(ok)} |`;
  const growth = (p: Phase) => (p.rssPeak - p.rssBefore) / MiB;
  const kept = (p: Phase) => (p.rssAfter - p.rssBefore) / MiB;
  const table = (attack: Attack, p: Phase) => {
    const hz = p99(p.probe.healthz);
    const ec = p99(p.probe.echo);
    return [
      `Attack: ${method(attack, p)}`,
      "",
      "| measure | Switchboard (attacked) | baseline (no attack) | ratio | goal | met |",
      "| --- | --- | --- | --- | --- | --- |",
      row("`/healthz` p99", hz, p99(baseline.probe.healthz), `≤ ${GOAL_P99_MS} ms`, hz <= GOAL_P99_MS),
      row("`/healthz` worst", max(p.probe.healthz), max(baseline.probe.healthz), "–", undefined),
      row("keystroke echo p99", ec, p99(baseline.probe.echo), `≤ ${GOAL_P99_MS} ms`, ec <= GOAL_P99_MS),
      row("keystroke echo worst", max(p.probe.echo), max(baseline.probe.echo), "–", undefined),
      row(
        "gateway RSS growth (peak)",
        growth(p),
        growth(baseline),
        `≤ ${RSS_GROWTH_BOUND_MIB} MiB`,
        growth(p) <= RSS_GROWTH_BOUND_MIB,
        "MiB",
      ),
      row("gateway RSS kept after the attack", kept(p), kept(baseline), "–", undefined, "MiB"),
      row("gateway event-loop delay p99", p.lag.p99, baseline.lag.p99, "–", undefined),
      row("gateway event-loop delay worst", p.lag.max, baseline.lag.max, "–", undefined),
      "",
      `Samples: ${p.probe.healthz.length} \`/healthz\` and ${p.probe.echo.length} echoes, ${p.probe.failed} \`/healthz\` failed (baseline ${baseline.probe.healthz.length} and ${baseline.probe.echo.length}, ${baseline.probe.failed} failed).`,
    ].join("\n");
  };
  const markdown = [
    ...attacked.map(([attack, p]) => `### ${attack}\n\n${table(attack, p)}\n`),
    `Method: in each phase another process sends \`GET /healthz\` and a keystroke to \`cat\` in a PTY over \`/ws/session\` (the admin token), each ${PROBE_GAP_MS} ms after its previous answer, while the attack runs and until ${AFTER_CLOSE_MS / 1000} s after it stopped; the attack runs ${STALL_MS / 1000} s.`,
    "The baseline is the same probe for the same time without an attack, in the same run and gateway; the phases run one after the other in the order above.",
    "The gateway runs in a process of its own, started on the filled data directory after the filling; its RSS is read from /proc every 50 ms, from before the phase to its peak, and at the end.",
  ].join("\n");
  return { title: "Isolation under attack", markdown };
}
