import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { ScreenEmulator } from "./screen-emulator.js";
import type { ViewOptions } from "./screen-emulator.js";
import { SCREEN_THREAD_NICE } from "./screen-thread.js";
import type { ThreadReply, ThreadRequest, ThreadData } from "./screen-thread.js";

/**
 * The screen thread's side (see screen-thread.ts): one emulator per session. Each emulator's
 * messages are handled in the order they arrive, each reply once everything sent to it before is
 * parsed; different emulators' parsing takes turns (src/screen/parse-budget.ts), so one session's
 * backlog does not hold another's screen. A memory request waits for everything sent before it.
 */
const port = parentPort!;
/** A run of output shorter than this is written as it is: it holds few lines to skip. */
const FLOOD_MIN_BYTES = 64 * 1024;
lowerPriority();
const { parsing } = workerData as ThreadData;
const emulators = new Map<string, ScreenEmulator>();
/** Each emulator's tag, written to `parsing` while it works: the one blamed when something throws or the thread stops. */
const tags = new Map<string, number>();
/** Per emulator, its last message's handling: the next one follows it. */
const chains = new Map<string, Promise<void>>();
type FeedRequest = Extract<ThreadRequest, { t: "feed" }>;
/**
 * Per emulator, the feeds that came while it was busy and not begun yet: parsed as one, so that a
 * flood's backlog is one run and more of it is skipped (each run parses its last screenfuls;
 * docs/benchmarks.md, "Screen: Ctrl-C during a flood, in the web UI"). Any other message for the
 * emulator closes the batch: a view shows no more than was fed before it.
 */
const batches = new Map<string, FeedRequest[]>();
/**
 * Emulators whose output threw in xterm, with what it threw: disposed and never fed again (the
 * gateway quarantines the session), so the same input cannot fail the thread again. Each has a
 * wake for whatever awaited its parsing.
 */
const broken = new Map<string, string>();
const breakers = new Map<string, () => void>();

// An error thrown while an emulator parses (xterm writes outside any caller's stack) breaks that
// emulator only; one no emulator was at work for ends the thread (the gateway starts another).
process.on("uncaughtException", breakParsing);
process.on("unhandledRejection", breakParsing);

port.on("message", (message: ThreadRequest) => {
  if (message.t === "memory") {
    void Promise.allSettled(chains.values()).then(() => handle(message));
    return;
  }
  if (message.t !== "feed") {
    batches.delete(message.id);
    chain(message.id, () => handle(message));
    return;
  }
  const waiting = batches.get(message.id);
  if (waiting !== undefined) {
    waiting.push(message);
    return;
  }
  const batch = [message];
  batches.set(message.id, batch);
  chain(message.id, () => {
    if (batches.get(message.id) === batch) batches.delete(message.id);
    return handle(joined(batch));
  });
});

/** Runs `work` after everything before it for emulator `id`. */
function chain(id: string, work: () => Promise<void>): void {
  const next = (chains.get(id) ?? Promise.resolve()).then(work, work);
  chains.set(id, next);
  // The chain goes once its last message is handled (a dropped emulator gets no more).
  void next.finally(() => {
    if (chains.get(id) === next) chains.delete(id);
  });
}

/** Feeds to one emulator, in order, as one. */
function joined(feeds: FeedRequest[]): FeedRequest {
  if (feeds.length === 1) return feeds[0]!;
  const bytes = Buffer.concat(feeds.map((f) => f.bytes));
  return { t: "feed", id: feeds[0]!.id, bytes, pieces: feeds.flatMap((f) => f.pieces) };
}

async function handle(m: ThreadRequest): Promise<void> {
  switch (m.t) {
    case "open": {
      emulators.get(m.id)?.dispose();
      tags.set(m.id, m.tag);
      const options = { onParse: () => (parsing[0] = m.tag) };
      const emulator =
        m.state === undefined
          ? new ScreenEmulator(m.cols, m.rows, options)
          : await ScreenEmulator.restore(m.state, m.cols, m.rows, options);
      emulators.set(m.id, emulator);
      return;
    }
    case "feed": {
      const emulator = emulators.get(m.id);
      if (emulator === undefined || broken.has(m.id)) return;
      // Output entries between two resizes are one run of bytes: a flood's run is written past
      // what cannot show (ScreenEmulator.writeFlood).
      let at = 0;
      let run = 0;
      for (const piece of [...m.pieces, undefined]) {
        if (typeof piece === "number") {
          run += piece;
          continue;
        }
        const bytes = m.bytes.subarray(at, at + run);
        if (run >= FLOOD_MIN_BYTES) await emulator.writeFlood(bytes);
        else if (run > 0) emulator.write(bytes);
        at += run;
        run = 0;
        if (piece !== undefined) {
          // Output before a resize is parsed at the old size, as the PTY drew it.
          if (!(await parsed(m.id, emulator))) return;
          emulator.resize(piece.cols, piece.rows);
        }
      }
      if (!(await parsed(m.id, emulator))) return;
      reply({ t: "fed", id: m.id, bytes: m.bytes.length });
      return;
    }
    case "view": {
      const emulator = emulators.get(m.id);
      if (emulator === undefined || !(await parsed(m.id, emulator))) {
        return reply({ t: "view", req: m.req, error: broken.get(m.id) ?? `no screen for ${m.id}` });
      }
      const view = whileWorking(m.id, () => emulator.view(m.view as ViewOptions));
      return reply({ t: "view", req: m.req, view });
    }
    case "checkpoint": {
      const emulator = emulators.get(m.id);
      if (emulator === undefined || !(await parsed(m.id, emulator))) {
        return reply({ t: "checkpoint", req: m.req, error: broken.get(m.id) ?? `no screen for ${m.id}` });
      }
      // Taken only where the parser is between sequences; else the caller tries at a later one.
      if (!emulator.atBoundary) return reply({ t: "checkpoint", req: m.req, cols: emulator.cols, rows: emulator.rows });
      const { state, views } = whileWorking(m.id, () => ({
        state: emulator.checkpoint(),
        views: { text: emulator.view({ format: "text" }), ansi: emulator.view({ format: "ansi" }) },
      }));
      return reply({ t: "checkpoint", req: m.req, state, views, cols: emulator.cols, rows: emulator.rows });
    }
    case "drop":
      emulators.get(m.id)?.dispose();
      emulators.delete(m.id);
      tags.delete(m.id);
      broken.delete(m.id);
      return;
    case "memory":
      // Exposed by --expose-gc (the benches): the figure is then what stays live.
      (globalThis as { gc?: () => void }).gc?.();
      return reply({ t: "memory", req: m.req, heapUsed: process.memoryUsage().heapUsed, emulators: emulators.size });
  }
}

/** Whether everything written to emulator `id` so far is parsed: false once its output broke it. */
async function parsed(id: string, emulator: ScreenEmulator): Promise<boolean> {
  if (!broken.has(id)) {
    await new Promise<void>((resolve) => {
      breakers.set(id, resolve);
      emulator.settled().then(resolve, resolve);
    });
    breakers.delete(id);
  }
  return !broken.has(id);
}

/**
 * Breaks the emulator at work when `error` was thrown (`parsing` names it): it is disposed, the
 * gateway told, and whatever awaited it woken. Ends the thread when no emulator was at work.
 */
function breakParsing(error: unknown): void {
  const tag = parsing[0];
  const id = [...tags].find(([, t]) => t === tag)?.[0];
  if (id === undefined || broken.has(id)) throw error;
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  broken.set(id, reason);
  batches.delete(id);
  const emulator = emulators.get(id);
  emulators.delete(id);
  try {
    emulator?.dispose();
  } catch {
    // A terminal broken mid-write may not dispose cleanly: it is unreachable either way.
  }
  reply({ t: "broken", id, reason });
  breakers.get(id)?.();
}

/**
 * Parsing takes only CPU the output path leaves (SCREEN_THREAD_NICE): on Linux a thread has its
 * own nice value, set through its thread id. Elsewhere the thread runs at the process's priority.
 */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isInteger(tid)) setPriority(tid, SCREEN_THREAD_NICE);
  } catch {
    // Not Linux, or not permitted: the screen then competes with the output path at equal weight.
  }
}

/**
 * Runs `draw` with the emulator `id` named as the one at work (drawing a view or a checkpoint
 * takes memory too), then names again the one that was: another emulator's parse goes on between
 * its slices, and a thread that stops in it blames that one, not the last screen drawn
 * (test/screen/screen-isolation.test.ts, "answers another session's screen asked all along…").
 * A draw that throws leaves `id` named: breakParsing blames it.
 */
function whileWorking<T>(id: string, draw: () => T): T {
  const before = parsing[0]!;
  parsing[0] = tags.get(id) ?? 0;
  const drawn = draw();
  parsing[0] = before;
  return drawn;
}

function reply(r: ThreadReply): void {
  port.postMessage(r);
}
