import { mkdtempSync, rmSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn as spawnRawPty } from "node-pty";
import WebSocket from "ws";
import { OutputCoalescer } from "../src/core/output-coalescer.js";
import { SessionLog } from "../src/log/session-log.js";
import { startGateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/ops/logger.js";
import { fmt, median, percentile } from "./stats.js";
import type { BenchSection } from "./types.js";

/**
 * Keystroke echo hop by hop: a key typed over `/ws/session` into a PTY `cat` until its echo
 * frame arrives, timed at each step of the way in one process (the gateway's own, in-process),
 * beside a raw node-pty `cat` typed into in the same run (the floor). The hops are timed by
 * wrapping the functions each step calls: nothing in the gateway is changed for it.
 */

/** Keystrokes per round after the warm-up, and the pause between them (100 a second). */
const ECHO_SAMPLES = 300;
const ECHO_WARMUP = 30;
const ECHO_GAP_MS = 10;
const ROUNDS = 3;
const TOKEN = "bench-echo-hops-token-0123456789abcdef";

/** The steps, in order; each hop is from the one before to it. */
const STEPS = ["typed", "read", "coalesced", "committed", "published", "sent", "received"] as const;
type Step = (typeof STEPS)[number];
const HOP_WHAT: Record<Exclude<Step, "typed">, string> = {
  read: "typed → read (WebSocket in, PTY write, the line discipline's echo, the reader thread's read reaches the event loop)",
  coalesced: "read → coalesced (OutputCoalescer hands the piece to the log: appended)",
  committed: "coalesced → committed (group commit by the writer thread: durable)",
  published: "committed → published (given to the log's listeners)",
  sent: "published → sent (frame encoded, queued and written to the socket)",
  received: "sent → received (loopback, and the client's WebSocket decode)",
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

async function gatewayRound(): Promise<Record<Step, number>[]> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-echo-hops-"));
  const gw = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir: dir,
    token: TOKEN,
    logger: createLogger({ level: "silent" }),
  });
  const untap = [
    tap(OutputCoalescer.prototype, "push", "read"),
    tap(SessionLog.prototype, "appendOutputBytes", "coalesced"),
    tap(SessionLog.prototype, "markDurable", "committed", () => marks?.coalesced !== undefined),
    tap(Socket.prototype, "write", "sent", () => marks?.published !== undefined),
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
      .log.subscribe((entry) => entry.type === "output" && mark("published"), { background: true });
    const ws = new WebSocket(`${gw.url.replace("http", "ws")}/ws/session/${id}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    let echoed: (() => void) | undefined;
    ws.on("message", (raw) => {
      const frame = JSON.parse(String(raw)) as { type: string; data?: string };
      if (frame.type === "stdout" && frame.data?.includes("x")) {
        mark("received");
        echoed?.();
      }
    });
    const samples: Record<Step, number>[] = [];
    for (let i = 0; i < ECHO_SAMPLES + ECHO_WARMUP; i++) {
      const done = new Promise<void>((resolve) => (echoed = resolve));
      marks = { typed: performance.now() };
      ws.send(JSON.stringify({ type: "stdin", data: "x" }));
      await done;
      const m = marks;
      marks = undefined;
      if (i >= ECHO_WARMUP && STEPS.every((s) => m[s] !== undefined)) samples.push(m as Record<Step, number>);
      await new Promise((r) => setTimeout(r, ECHO_GAP_MS));
    }
    ws.close();
    return samples;
  } finally {
    for (const u of untap) u();
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The floor: a key written straight to a node-pty `cat` in this process until its echo is read. */
async function rawRound(): Promise<number[]> {
  const term = spawnRawPty("cat", [], {
    name: "xterm-256color",
    cols: 80,
    rows: 24,
    cwd: process.cwd(),
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
  });
  try {
    const rtts: number[] = [];
    for (let i = 0; i < ECHO_SAMPLES + ECHO_WARMUP; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const d = term.onData((s) => {
          if (!s.includes("x")) return;
          d.dispose();
          resolve();
        });
        term.write("x");
      });
      if (i >= ECHO_WARMUP) rtts.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, ECHO_GAP_MS));
    }
    return rtts;
  } finally {
    term.kill();
  }
}

const p50 = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

export async function run(): Promise<BenchSection> {
  const hops = new Map<string, number[]>();
  const totals: number[] = [];
  const raws: number[] = [];
  const notes: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    raws.push(p50(await rawRound()));
    const samples = await gatewayRound();
    for (let s = 1; s < STEPS.length; s++) {
      const step = STEPS[s]!;
      const hop = samples.map((m) => m[step] - m[STEPS[s - 1]!]);
      hops.set(step, [...(hops.get(step) ?? []), p50(hop)]);
    }
    totals.push(p50(samples.map((m) => m.received - m.typed)));
    notes.push(
      `round ${round + 1}: ${samples.length} keys, total p50 ${fmt(totals[round]!, 3)} ms, raw node-pty p50 ${fmt(raws[round]!, 3)} ms`,
    );
  }
  const rows = [...hops].map(([step, values]) => ({
    measure: HOP_WHAT[step as Exclude<Step, "typed">],
    ours: `${fmt(median(values), 3)} ms`,
  }));
  rows.push({
    measure: "keystroke echo, typed → received, p50 (median of the rounds)",
    ours: `${fmt(median(totals), 3)} ms`,
    baseline: `raw node-pty \`cat\` ${fmt(median(raws), 3)} ms`,
    ratio: fmt(median(totals) / median(raws), 2),
  } as (typeof rows)[number]);
  return {
    title: "Keystroke echo, hop by hop",
    rows,
    method: [
      `A key over \`/ws/session\` into a PTY \`cat\` until its \`stdout\` frame, ${ECHO_SAMPLES} keys ${ECHO_GAP_MS} ms apart after ${ECHO_WARMUP} of warm-up, ${ROUNDS} rounds alternating with the floor (a raw node-pty \`cat\` typed into in this process); each hop's p50 is the median of the rounds'.`,
      "Gateway and client share the process and its clock; each step is timed by wrapping the function it calls (OutputCoalescer.push, SessionLog.appendOutputBytes and markDurable, a log listener, the socket's write, the client's message). The hops do not add up to the total: each is a p50 of its own.",
    ],
    notes,
  };
}
