import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import headless from "@xterm/headless";
import WebSocket from "ws";
import { systemClock } from "../src/core/clock.js";
import { EventLog, SqliteEventStore } from "../src/log/index.js";
import type { SessionLog } from "../src/log/session-log.js";
import { CheckpointStore } from "../src/screen/checkpoint-store.js";
import { SCREEN_FEED_MS, ScreenService } from "../src/screen/screen-service.js";
import { parseConfig } from "../src/server/config/config.js";
import { startGateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/ops/logger.js";
import type { Session } from "../src/sessions/session.js";
import { PTY_BENCH_BYTES, PTY_BENCH_COMMAND } from "./pty.js";
import { fmt, met, percentile, sideBySide } from "./stats.js";
import type { BenchSection } from "./types.js";

/**
 * Time to the first correct screen: a session that printed SIZE bytes (coloured lines, then a
 * full-screen frame), opened by a new viewer. Screen path: GET .../screen's work
 * (ScreenService.screen), warm (the screen thread was fed the output as it was appended) and
 * cold (a new gateway: the emulator restored from the checkpoint the quiet sweep saved). Today's
 * replay path: every byte read from the log and written into a fresh xterm.
 */

const COLS = 120;
const ROWS = 40;
const CHUNK = 64 * 1024;
/** The goal: the first correct screen within 100 ms at p99, whatever the session printed. */
const GOAL_MS = 100;
const SCREEN_ROUNDS = 9;
/** A viewer of another size than the PTY's: its screen is drawn by an emulator restored from the checkpoint. */
const VIEWER = { cols: 80, rows: 24 } as const;
const { Terminal } = headless;

/** SIZE bytes of coloured numbered lines, then a TUI frame on the alternate screen. */
function* outputOf(size: number): Generator<Buffer> {
  let n = 0;
  let written = 0;
  while (written < size) {
    let text = "";
    while (text.length < CHUNK) text += `\x1b[3${n % 8}mline ${n++} of the session's output, coloured\x1b[0m\r\n`;
    const chunk = Buffer.from(text);
    written += chunk.length;
    yield chunk;
  }
  yield Buffer.from(`\x1b[?1049h\x1b[2J\x1b[1;1H\x1b[7m editor \x1b[0m\x1b[20;30Hthe last frame after ${n} lines`);
}

async function append(events: EventLog, log: SessionLog, chunks: Iterable<Buffer>): Promise<void> {
  for (const chunk of chunks) {
    log.appendOutputBytes("stdout", chunk, false);
    const room = log.backlog.room();
    if (room !== undefined) {
      events.flush();
      await room;
    }
  }
  events.flush();
  await log.backlog.caughtUp();
}

function textOf(term: InstanceType<typeof Terminal>): string {
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let y = 0; y < ROWS; y++)
    lines.push(
      buffer
        .getLine(buffer.viewportY + y)!
        .translateToString(true)
        .trimEnd(),
    );
  while (lines.at(-1) === "") lines.pop();
  return lines.join("\n");
}

/** Today's replay: every retained byte from the log into a fresh xterm, then its screen. */
async function replay(log: SessionLog): Promise<{ ms: number; text: string }> {
  const started = performance.now();
  const term = new Terminal({ cols: COLS, rows: ROWS, scrollback: 1000, allowProposedApi: true });
  let offset = 0;
  while (offset < log.outputBytes) {
    for (const slice of log.readOutput(offset)) {
      term.write(slice.bytes);
      offset = slice.offset + slice.bytes.length;
    }
    // xterm drops writes beyond 50 MB pending: wait for each page (as a viewer's socket would).
    await new Promise<void>((resolve) => term.write("", resolve));
  }
  const text = textOf(term);
  term.dispose();
  return { ms: performance.now() - started, text };
}

/** A session record as the screen service reads it. */
function sessionOf(log: SessionLog, running: boolean): Session & { record: { state: string; endedAt: number | null } } {
  return {
    id: log.sessionId,
    removed: false,
    onRemoved: () => () => undefined,
    log,
    record: {
      kind: "terminal",
      pty: true,
      cols: COLS,
      rows: ROWS,
      state: running ? "running" : "exited",
      endedAt: running ? null : Date.now(),
    },
  } as unknown as Session & { record: { state: string; endedAt: number | null } };
}

async function timed(rounds: number, once: () => Promise<string>): Promise<{ ms: number[]; text: string }> {
  const ms: number[] = [];
  let text = "";
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    text = await once();
    ms.push(performance.now() - started);
  }
  return { ms: ms.sort((a, b) => a - b), text };
}

async function measure(size: number, replayRounds: number) {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-screen-"));
  try {
    // Every byte kept (the default keeps 256 MiB a session), so that the replay sees all of them.
    const events = new EventLog({
      store: new SqliteEventStore(join(dir, "log.db")),
      clock: systemClock,
      retention: { maxEvents: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER },
    });
    const log = events.create("s");
    const session = sessionOf(log, true);
    const checkpoints = join(dir, "screens.db");
    // The gateway's service: fed every SCREEN_FEED_MS while the output is appended.
    const live = new ScreenService({
      checkpoints: new CheckpointStore(checkpoints),
      clock: systemClock,
      sessions: () => [session],
    });
    const started = performance.now();
    await append(events, log, outputOf(size));
    const appendMs = performance.now() - started;
    // The thread parses behind the producer; the first request waits for it to catch up.
    const caughtUpAt = performance.now();
    await live.screen(session, { format: "text" });
    const catchUpMs = performance.now() - caughtUpAt;
    const warm = await timed(SCREEN_ROUNDS, async () => (await live.screen(session, { format: "text" })).screen);
    const warmViewer = (await live.screen(session, { format: "text", ...VIEWER })).screen;
    // The session ends; the sweep checkpoints its screen, which a new gateway starts from.
    session.record.state = "exited";
    session.record.endedAt = Date.now();
    await live.sweep([session]);
    live.close();
    const cold: { ms: number[]; text: string } = { ms: [], text: "" };
    const restored: { ms: number[]; text: string } = { ms: [], text: "" };
    for (let i = 0; i < SCREEN_ROUNDS; i++) {
      for (const [into, view] of [
        [cold, { format: "text" }],
        [restored, { format: "text", ...VIEWER }],
      ] as const) {
        // A new gateway's service: its thread starts with the gateway, before any request.
        const service = new ScreenService({
          checkpoints: new CheckpointStore(checkpoints),
          clock: systemClock,
          sessions: () => [session],
        });
        await service.ready();
        const r = await timed(1, async () => (await service.screen(session, view)).screen);
        into.ms.push(...r.ms);
        into.text = r.text;
        service.close();
      }
    }
    cold.ms.sort((a, b) => a - b);
    restored.ms.sort((a, b) => a - b);
    const replayMs: number[] = [];
    let replayText = "";
    for (let i = 0; i < replayRounds; i++) {
      const r = await replay(log);
      replayMs.push(r.ms);
      replayText = r.text;
    }
    if (warm.text !== replayText || cold.text !== replayText) throw new Error(`the screens differ at ${size} bytes`);
    if (restored.text !== warmViewer)
      throw new Error(`the ${VIEWER.cols}×${VIEWER.rows} screens differ at ${size} bytes`);
    events.close();
    return {
      bytes: log.outputBytes,
      appendMs,
      catchUpMs,
      warmMs: warm.ms,
      coldMs: cold.ms,
      restoredMs: restored.ms,
      replayMs: replayMs.sort((a, b) => a - b),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sessions held idle, each with a shell prompt on screen, for the memory row. */
const IDLE_SESSIONS = 200;

/** The screen thread's heap per live emulator holding a shell prompt (SCREEN_SCROLLBACK_LINES' bound, little used). */
async function idleMemory(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-screen-idle-"));
  try {
    const events = new EventLog({ store: new SqliteEventStore(join(dir, "log.db")), clock: systemClock });
    const service = new ScreenService({
      checkpoints: new CheckpointStore(join(dir, "screens.db")),
      clock: systemClock,
    });
    const before = await service.memory();
    for (let i = 0; i < IDLE_SESSIONS; i++) {
      const log = events.create(`p${i}`);
      log.appendOutputBytes("stdout", Buffer.from("\x1b[1;32muser@host\x1b[0m:\x1b[1;34m~/project\x1b[0m$ "), false);
      events.flush();
      await log.backlog.caughtUp();
      await service.screen(sessionOf(log, true), { format: "text" });
    }
    const after = await service.memory();
    if (after.emulators !== IDLE_SESSIONS) throw new Error(`${after.emulators} emulators live, not ${IDLE_SESSIONS}`);
    service.close();
    events.close();
    return (after.heapUsed - before.heapUsed) / IDLE_SESSIONS;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The goal: PTY → log → one viewer with the screen thread on, at least 0.95× the throughput with it off. */
const FLOOD_GOAL_RATIO = 0.95;
const FLOOD_ROUNDS = 7;
const TOKEN = "screen-bench-token-0123456789abcdef";

/** One 50 MiB PTY session through a real gateway to one /ws/session viewer: MB/s from create to its `exit` frame. */

async function floodOnce(screen: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-screen-flood-"));
  const gw = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir: dir,
    token: TOKEN,
    config: parseConfig({}),
    logger: createLogger({ level: "silent" }),
  });
  // Off: the gateway's screen service closed, so nothing is fed or parsed.
  if (!screen) gw.core.screens.close();
  // On: its thread up (loaded with the gateway, not during the measured run).
  else await gw.core.screens.ready();
  try {
    const started = performance.now();
    const res = await fetch(`${gw.url}/v1/sessions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ command: PTY_BENCH_COMMAND, pty: true }),
    });
    if (res.status !== 201) throw new Error(`create session: ${res.status} ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    const bytes = await new Promise<number>((resolve, reject) => {
      let n = 0;
      const ws = new WebSocket(`${gw.url.replace(/^http/, "ws")}/ws/session/${id}?since=0`, {
        headers: { Authorization: `Bearer ${TOKEN}` },
        perMessageDeflate: false,
      });
      ws.on("error", reject);
      ws.on("message", (raw: Buffer) => {
        const f = JSON.parse(raw.toString()) as { type: string; data?: string; enc?: string };
        if (f.type === "replay" || f.type === "stdout")
          n += Buffer.byteLength(f.data!, f.enc === "base64" ? "base64" : "utf8");
        else if (f.type === "exit") {
          ws.close();
          resolve(n);
        }
      });
    });
    if (bytes !== PTY_BENCH_BYTES) throw new Error(`the viewer got ${bytes} bytes, not ${PTY_BENCH_BYTES}`);
    return bytes / 1e6 / ((performance.now() - started) / 1000);
  } finally {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** PTY 50 MiB → log → one viewer, MB/s, with the gateway's screen service off and on (side by side). */
export async function flood(): Promise<{ off: number; on: number; ratio: number }> {
  // One run first: the first run of a process is slower (code not yet optimized).
  await floodOnce(false);
  const r = await sideBySide(
    FLOOD_ROUNDS,
    () => floodOnce(false),
    () => floodOnce(true),
  );
  return { off: r.baseline, on: r.subject, ratio: r.ratio };
}

/** Sizes measured, with the replay runs each (a replay of 1 GB takes minutes: one). */
const SIZES: ReadonlyArray<readonly [number, number]> = [
  [1e6, SCREEN_ROUNDS],
  [100e6, 1],
  [1e9, 1],
];

export async function run(): Promise<BenchSection> {
  const rows: string[] = [];
  const feeds: string[] = [];
  const benchStarted = performance.now();
  for (const [size, replayRounds] of SIZES) {
    const m = await measure(size, replayRounds);
    process.stderr.write(
      `bench: screen ${size / 1e6} MB done at ${fmt((performance.now() - benchStarted) / 1000)} s\n`,
    );
    const warm99 = percentile(m.warmMs, 99);
    const cold99 = percentile(m.coldMs, 99);
    const replay50 = percentile(m.replayMs, 50);
    rows.push(
      `| ${fmt(m.bytes / 1e6)} MB | ${fmt(percentile(m.warmMs, 50), 1)} / ${fmt(warm99, 1)} ms | ${fmt(percentile(m.coldMs, 50), 1)} / ${fmt(cold99, 1)} ms | ${fmt(percentile(m.restoredMs, 50))} / ${fmt(percentile(m.restoredMs, 99))} ms | ${fmt(replay50)} ms (${m.replayMs.length} run${m.replayMs.length > 1 ? "s" : ""}) | ${fmt(replay50 / Math.max(warm99, cold99), 0)}× | ≤ ${GOAL_MS} ms p99: ${met(Math.max(warm99, cold99) <= GOAL_MS)} |`,
    );
    feeds.push(
      `${fmt(m.bytes / 1e6)} MB appended in ${fmt(m.appendMs / 1000, 1)} s; the thread had parsed it ${fmt(m.catchUpMs / 1000, 1)} s later`,
    );
  }
  const sizesSeconds = (performance.now() - benchStarted) / 1000;
  const memory = await idleMemory();
  const f = await flood();
  const [load1, load5] = loadavg();
  const markdown = [
    "Time from a new viewer's request to the correct screen of a 120×40 PTY session that printed",
    "coloured lines and then drew a full-screen frame (`ScreenService.screen`, the work of",
    "`GET /v1/sessions/:id/screen`), " +
      `${SCREEN_ROUNDS} rounds each. Warm: the gateway's screen thread was handed the output`,
    `every ${SCREEN_FEED_MS} ms as it was appended. Cold: a new gateway, answering from the checkpoint the`,
    "quiet sweep saved when the session ended (its screen at the PTY's size, read, not parsed).",
    `Cold restore: the same for a ${VIEWER.cols}×${VIEWER.rows} viewer, whose screen the thread draws from an emulator`,
    "restored from that checkpoint (1,000 lines of scrollback parsed). Replay: what `attach` did",
    "before the screen, every byte read from the log into a fresh xterm. The warm, cold and replay",
    "screens are checked equal, and the cold restore to the warm one at its size. One process, same log.",
    "",
    "| printed | warm p50 / p99 | cold p50 / p99 | cold restore p50 / p99 | replay p50 | replay ÷ slower screen p99 | goal (warm, cold) |",
    "| ------- | -------------- | -------------- | ---------------------- | ---------- | -------------------------- | ----------------- |",
    ...rows,
    "",
    `The producer appends as fast as the log takes it, faster than xterm parses: ${feeds.join("; ")}.`,
    `These rows took ${fmt(sizesSeconds)} s.`,
    "",
    `Screen thread heap per idle session (${IDLE_SESSIONS} live emulators, 120×40, a coloured shell prompt each): ${fmt(memory / 1024)} KiB.`,
    "",
    `PTY ${fmt(PTY_BENCH_BYTES / 2 ** 20)} MiB → log → one \`/ws/session\` viewer through a gateway, its screen service off (closed) / on, medians of ${FLOOD_ROUNDS} alternating rounds (load average ${fmt(load1!, 2)} / ${fmt(load5!, 2)} at the end):`,
    "",
    "| off | on | on ÷ off | goal |",
    "| --- | -- | -------- | ---- |",
    `| ${fmt(f.off)} MB/s | ${fmt(f.on)} MB/s | ${fmt(f.ratio, 2)}× | ≥ ${FLOOD_GOAL_RATIO}×: ${met(f.ratio >= FLOOD_GOAL_RATIO)} |`,
  ].join("\n");
  return { title: "Screen state", markdown };
}
