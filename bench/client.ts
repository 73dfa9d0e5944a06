/**
 * SDK and CLI benchmarks:
 * - SDK resume: a client following a stream session loses its connection, 100,000 events are
 *   appended meanwhile (POST /v1/sessions/:id/events, batches of 1000), the connection comes
 *   back; measured from the reconnect's `hello` to the last missed event handed to the
 *   subscription's callback. Baseline: a bare `ws` client that subscribes from the same seq and
 *   parses the same frames, nothing else. Both clients run in a child process (this file,
 *   forked), so they do not share the gateway's event loop.
 * - CLI attach keystroke round trip: `switchboard attach` runs in a PTY (node-pty), attached to
 *   a PTY session running `cat`; a key written to the attach PTY until its echo is read back
 *   from it (the echo comes from the session's own terminal, through the gateway and attach).
 *   Baseline: the same key written straight to a local node-pty `cat`.
 *
 * Reproduce: `npm run bench -- client`. Everything listens on 127.0.0.1 only.
 */
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect as netConnect } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawn as spawnPty } from "node-pty";
import type { IPty } from "node-pty";
import { pino } from "pino";
import WebSocket from "ws";
import { HttpClient, TerminalClient, connect } from "../src/client/node.js";
import { OUTPUT_COALESCE_MS } from "../src/core/output-coalescer.js";
import { startGateway } from "../src/server/gateway.js";
import { fmt, median, percentile } from "./stats.js";
import type { BenchRow, BenchSection } from "./types.js";

const CHILD_ENV = "SWITCHBOARD_CLIENT_BENCH_CHILD";
const TOKEN = "client-bench-token-0123456789abcdef";
const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Events missed while disconnected, appended in batches of the gateway's per-call maximum. */
const MISSED_EVENTS = 100_000;
const APPEND_BATCH = 1000;
/** Disconnect rounds, each with its baseline (medians). */
const ROUNDS = 4;
/** Pause after the appends before the connection comes back. */
const SETTLE_MS = 300;
/** The SDK's bookkeeping (dedupe, filters, callbacks) may cost at most this share of a bare client's rate. */
const GOAL_RESUME_RATIO = 0.8;
/** Keystrokes measured (after a warm-up), with a typing-like pause between them. */
const KEY_SAMPLES = 300;
const KEY_WARMUP = 20;
const KEY_PAUSE_MS = 5;
/** cat's line in canonical mode is bounded (4096): Enter every so many keys, unmeasured. */
const KEYS_PER_LINE = 50;
const GOAL_KEY_P50_MS = 5;
const GOAL_KEY_P99_MS = 15;
/** Any one step that takes longer than this is broken, not slow. */
const STEP_TIMEOUT_MS = 60_000;

/* ------------------------------------------------------------------ the client process */

type ChildCommand =
  | { op: "follow"; url: string; session: string }
  | { op: "raw"; url: string; session: string; since: number; until: number }
  | { op: "echo"; url: string; session: string }
  | { op: "stop" };
type ChildReport =
  | { op: "following"; lastSeq: number }
  | { op: "disconnected" }
  | { op: "resumed"; ms: number; events: number; duplicates: number; gaps: number }
  | { op: "raw"; ms: number; events: number }
  | { op: "echo"; rtts: number[] }
  | { op: "error"; message: string };

function runChild(): void {
  const report = (r: ChildReport) => process.send!(r);
  let stop: (() => void) | undefined;
  process.on("message", (cmd: ChildCommand) => {
    switch (cmd.op) {
      case "follow":
        void follow(cmd, report).then(
          (s) => (stop = s),
          (error: Error) => report({ op: "error", message: error.message }),
        );
        return;
      case "raw":
        rawCatchUp(cmd, report);
        return;
      case "echo":
        void sdkEcho(cmd).then(
          (rtts) => report({ op: "echo", rtts }),
          (error: Error) => report({ op: "error", message: error.message }),
        );
        return;
      case "stop":
        stop?.();
        process.disconnect();
        return;
    }
  });
}

/** The SDK side: follows the session, and times each resume after the parent cut the connection. */
async function follow(cmd: { url: string; session: string }, report: (r: ChildReport) => void): Promise<() => void> {
  const client = await connect({ url: cmd.url, token: TOKEN, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
  let last = 0;
  let duplicates = 0;
  let gaps = 0;
  let resumedAt = 0;
  let target = Number.POSITIVE_INFINITY;
  let outage = false;
  client.on("state", ({ state }) => {
    if (state === "reconnecting" && !outage) {
      outage = true;
      report({ op: "disconnected" });
    } else if (state === "open" && outage) {
      resumedAt = performance.now();
      target = last + MISSED_EVENTS;
    }
  });
  const sub = client.subscribe(cmd.session, { since: 0 }, (event) => {
    if (event.seq <= last) duplicates++;
    else if (event.seq !== last + 1) gaps++;
    last = event.seq;
    if (last === 1) report({ op: "following", lastSeq: last });
    if (outage && last === target) {
      outage = false;
      report({ op: "resumed", ms: performance.now() - resumedAt, events: MISSED_EVENTS, duplicates, gaps });
    }
  });
  await sub.ready;
  return () => client.close();
}

/** The baseline: a bare ws client, subscribe from `since`, parse every frame, count to `until`. */
function rawCatchUp(
  cmd: { url: string; session: string; since: number; until: number },
  report: (r: ChildReport) => void,
): void {
  const ws = new WebSocket(`${cmd.url.replace(/^http/, "ws")}/v1/ws`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
    perMessageDeflate: false,
  });
  let t0 = 0;
  let count = 0;
  ws.on("message", (raw) => {
    const f = JSON.parse(raw.toString()) as { op: string; event?: { seq: number }; events?: Array<{ seq: number }> };
    if (f.op === "hello") {
      t0 = performance.now();
      ws.send(JSON.stringify({ op: "subscribe", session: cmd.session, since: cmd.since }));
      return;
    }
    const events = f.op === "event" ? [f.event!] : f.op === "events" ? f.events! : [];
    for (const e of events) {
      count++;
      if (e.seq === cmd.until) {
        report({ op: "raw", ms: performance.now() - t0, events: count });
        ws.close();
      }
    }
  });
  ws.on("error", (error) => report({ op: "error", message: error.message }));
}

/** The SDK's terminal client alone (no CLI, no local PTY): key written, echo received. */
async function sdkEcho(cmd: { url: string; session: string }): Promise<number[]> {
  const term = new TerminalClient({ url: cmd.url, token: TOKEN, session: cmd.session, control: "acquire" });
  try {
    await new Promise<void>((resolve) => term.on("connected", () => resolve()));
    const decoder = new TextDecoder();
    const rtts: number[] = [];
    for (let i = 0; i < KEY_SAMPLES + KEY_WARMUP; i++) {
      const enter = i > 0 && i % KEYS_PER_LINE === 0;
      const key = enter ? "\r" : String.fromCharCode(0x61 + (i % 26));
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const off = term.on("data", ({ bytes }) => {
          if (!decoder.decode(bytes).includes(enter ? "\n" : key)) return;
          off();
          resolve();
        });
        term.write(key);
      });
      if (!enter) rtts.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, KEY_PAUSE_MS));
    }
    return rtts.slice(KEY_WARMUP).sort((a, b) => a - b);
  } finally {
    term.close();
  }
}

if (process.env[CHILD_ENV] === "1") runChild();

/* ------------------------------------------------------------------ the parent */

/** A TCP proxy the parent can cut (and keep down) to disconnect the child's client. */
class Proxy {
  down = false;
  private readonly pairs = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: number): Promise<Proxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const proxy = new Proxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on("connection", (client) => {
      if (proxy.down) {
        client.destroy();
        return;
      }
      const upstream = netConnect(target, "127.0.0.1");
      proxy.pairs.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        proxy.pairs.delete(client);
        proxy.pairs.delete(upstream);
      };
      for (const s of [client, upstream]) s.on("error", drop).on("close", drop);
      client.pipe(upstream).pipe(client);
    });
    return proxy;
  }

  cut(): void {
    for (const s of this.pairs) s.destroy();
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

class Child {
  private readonly proc: ChildProcess;
  private readonly queue: ChildReport[] = [];
  private waiter: ((r: ChildReport) => void) | undefined;

  constructor() {
    this.proc = fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, [CHILD_ENV]: "1" },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.proc.on("message", (r: ChildReport) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(r);
      } else this.queue.push(r);
    });
  }

  send(cmd: ChildCommand): void {
    this.proc.send(cmd);
  }

  async next<K extends ChildReport["op"]>(op: K): Promise<Extract<ChildReport, { op: K }>> {
    const r =
      this.queue.shift() ??
      (await withTimeout(new Promise<ChildReport>((resolve) => (this.waiter = resolve)), `child report ${op}`));
    if (r.op === "error") throw new Error(`client process: ${r.message}`);
    if (r.op !== op) throw new Error(`client process: expected ${op}, got ${r.op}`);
    return r as Extract<ChildReport, { op: K }>;
  }

  async stop(): Promise<void> {
    if (!this.proc.connected) return;
    const exited = new Promise<void>((resolve) => this.proc.once("exit", () => resolve()));
    this.send({ op: "stop" });
    await withTimeout(exited, "client process exit");
  }
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface ResumeResult {
  sdk: number[];
  raw: number[];
}

async function measureResume(url: string, http: HttpClient): Promise<ResumeResult> {
  const port = Number(new URL(url).port);
  // The SDK's path is cut and kept down; the baseline's is a twin that stays up.
  const proxy = await Proxy.start(port);
  const twin = await Proxy.start(port);
  const child = new Child();
  try {
    const session = await http.createSession({ kind: "stream", name: "resume-bench" });
    await http.appendEvents(session.id, { type: "tick", data: { i: 0 } });
    child.send({ op: "follow", url: proxy.url, session: session.id });
    await child.next("following");
    const batch = Array.from({ length: APPEND_BATCH }, (_, i) => ({ type: "tick", data: { i, pad: "x".repeat(64) } }));
    const sdk: number[] = [];
    const raw: number[] = [];
    const baseline = async (since: number) => {
      child.send({ op: "raw", url: twin.url, session: session.id, since, until: since + MISSED_EVENTS });
      raw.push((await child.next("raw")).ms);
    };
    for (let round = 0; round < ROUNDS; round++) {
      const before = (await http.getSession(session.id)).head;
      proxy.down = true;
      proxy.cut();
      await child.next("disconnected");
      for (let n = 0; n < MISSED_EVENTS; n += APPEND_BATCH) await http.appendEvents(session.id, batch);
      // Let the log's group commit settle before either side reads.
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      // Alternate which side reads first, so neither always gets the warmer log.
      if (round % 2 === 1) await baseline(before);
      proxy.down = false;
      const resumed = await child.next("resumed");
      if (resumed.duplicates !== 0 || resumed.gaps !== 0) {
        throw new Error(`resume delivered ${resumed.duplicates} duplicates and ${resumed.gaps} gaps`);
      }
      sdk.push(resumed.ms);
      if (round % 2 === 0) await baseline(before);
    }
    await http.deleteSession(session.id);
    return { sdk, raw };
  } finally {
    await child.stop();
    await proxy.close();
    await twin.close();
  }
}

/** Writes `key` to `term` and resolves with the ms until `expect` shows up in its output. */
function roundTrip(term: IPty, key: string, expect: string): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve) => {
      let seen = "";
      const t0 = performance.now();
      const d = term.onData((s) => {
        seen += s;
        if (!seen.includes(expect)) return;
        d.dispose();
        resolve(performance.now() - t0);
      });
      term.write(key);
    }),
    "keystroke echo",
  );
}

/** Writes `key`; true when it is echoed within `ms`. */
function echoedWithin(term: IPty, key: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      d.dispose();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), ms);
    const d = term.onData((text) => {
      if (text.includes(key)) finish(true);
    });
    term.write(key);
  });
}

async function typeSamples(term: IPty): Promise<number[]> {
  const rtts: number[] = [];
  for (let i = 0; i < KEY_SAMPLES + KEY_WARMUP; i++) {
    if (i > 0 && i % KEYS_PER_LINE === 0) await roundTrip(term, "\r", "\n");
    // A letter that differs from the previous one, so an old echo is never taken for a new one.
    const key = String.fromCharCode(0x61 + (i % 26));
    rtts.push(await roundTrip(term, key, key));
    await new Promise((r) => setTimeout(r, KEY_PAUSE_MS));
  }
  return rtts.slice(KEY_WARMUP).sort((a, b) => a - b);
}

async function measureKeystrokes(
  url: string,
  http: HttpClient,
): Promise<{ attach: number[]; sdk: number[]; raw: number[] }> {
  const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", LANG: "C.UTF-8" };
  const child = new Child();
  let sdk: number[];
  const plain = await http.createSession({ command: ["cat"], pty: true, env });
  try {
    child.send({ op: "echo", url, session: plain.id });
    sdk = (await child.next("echo")).rtts;
  } finally {
    await child.stop();
    await http.deleteSession(plain.id);
  }
  const local = spawnPty("cat", [], { name: "xterm-256color", cols: 80, rows: 24, cwd: REPO, env });
  let raw: number[];
  try {
    raw = await typeSamples(local);
  } finally {
    local.kill();
  }
  const session = await http.createSession({ command: ["cat"], pty: true, env });
  const attach = spawnPty(
    process.execPath,
    ["--import", "tsx", join(REPO, "src", "cli", "main.ts"), "attach", "--", session.id],
    {
      name: "xterm-256color",
      cols: 80,
      rows: 24,
      cwd: REPO,
      env: { ...env, SWITCHBOARD_URL: url, SWITCHBOARD_TOKEN: TOKEN },
    },
  );
  try {
    // Attach clears the screen once its terminal is in raw mode (no local echo any more);
    // from then on, ready once a key makes it through the gateway and back.
    await withTimeout(
      new Promise<void>((resolve) => {
        let seen = "";
        const d = attach.onData((text) => {
          seen += text;
          if (!seen.includes("\x1b[2J")) return;
          d.dispose();
          resolve();
        });
      }),
      "attach start",
    );
    await withTimeout(
      (async () => {
        while (!(await echoedWithin(attach, "z", 500))) {
          // Not connected yet (the key was dropped): try again.
        }
      })(),
      "attach ready",
    );
    await roundTrip(attach, "\r", "\n");
    const rtts = await typeSamples(attach);
    attach.write("\x1d"); // Ctrl-]: detach
    return { attach: rtts, sdk, raw };
  } finally {
    attach.kill();
    await http.deleteSession(session.id);
  }
}

export async function run(): Promise<BenchSection> {
  const dataDir = mkdtempSync(join(tmpdir(), "sb-bench-client-"));
  const gw = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    token: TOKEN,
    logger: pino({ level: "silent" }),
  });
  const http = new HttpClient({ url: gw.url, token: TOKEN });
  try {
    // The SDK's own connection works (fail early and clearly if not).
    (await connect({ url: gw.url, token: TOKEN })).close();
    const resume = await measureResume(gw.url, http);
    const keys = await measureKeystrokes(gw.url, http);
    const sdkRate = (MISSED_EVENTS / median(resume.sdk)) * 1000;
    const rawRate = (MISSED_EVENTS / median(resume.raw)) * 1000;
    const ms = (v: number) => `${fmt(v, 2)} ms`;
    const p = (xs: number[], q: number) => percentile(xs, q);
    const keyRow = (q: number, goalMs: number): BenchRow => ({
      measure: `CLI attach keystroke round trip, p${q}`,
      ours: ms(p(keys.attach, q)),
      baseline: `SDK \`TerminalClient\` alone: ${ms(p(keys.sdk, q))}; local node-pty \`cat\`: ${ms(p(keys.raw, q))}`,
      ratio: (p(keys.attach, q) / p(keys.sdk, q)).toFixed(2),
      goal: `≤ ${goalMs} ms`,
      met: p(keys.attach, q) <= goalMs,
    });
    const rows: BenchRow[] = [
      {
        measure: `SDK resume after a disconnect, ${fmt(MISSED_EVENTS)} events missed`,
        ours: `${fmt(sdkRate)} events/s (${fmt(median(resume.sdk))} ms)`,
        baseline: `bare \`ws\` client: ${fmt(rawRate)} events/s`,
        ratio: (sdkRate / rawRate).toFixed(2),
        goal: `ratio ≥ ${GOAL_RESUME_RATIO}`,
        met: sdkRate / rawRate >= GOAL_RESUME_RATIO,
      },
      keyRow(50, GOAL_KEY_P50_MS),
      keyRow(99, GOAL_KEY_P99_MS),
    ];
    return {
      title: "SDK and CLI",
      rows,
      method: [
        `**Resume**: a client following a stream session loses its connection (a proxy cut), ${fmt(MISSED_EVENTS)} events of ~130 bytes are appended in batches of ${fmt(APPEND_BATCH)}, the connection comes back; timed from the reconnect's \`hello\` to the last missed event handed to the callback, in a client process; no event lost or repeated (checked). Baseline: a bare \`ws\` client subscribing from the same seq through an identical proxy, parsing the same frames; the two take turns; medians of ${ROUNDS} rounds.`,
        `**Keystroke**: \`switchboard attach\` (from its sources, tsx) in a node-pty terminal, attached to a PTY \`cat\` session; ${KEY_SAMPLES} keys after ${KEY_WARMUP} of warm-up, ${KEY_PAUSE_MS} ms apart, each timed from the write to the attach terminal until its echo is read back. Baselines: the SDK's \`TerminalClient\` typing into another \`cat\` session (the ratio is attach ÷ this), and a local node-pty \`cat\`.`,
        `The gateway holds output up to ${OUTPUT_COALESCE_MS} ms before it becomes an event (\`OUTPUT_COALESCE_MS\`): the floor of both gateway round trips. The goals are this benchmark's own: the SDK should cost little over the bare protocol, and typing through attach should feel local.`,
      ],
    };
  } finally {
    await gw.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
