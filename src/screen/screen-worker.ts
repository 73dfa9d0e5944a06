import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { parentPort } from "node:worker_threads";
import { ScreenEmulator } from "./screen-emulator.js";
import type { ViewOptions } from "./screen-emulator.js";
import { SCREEN_THREAD_NICE } from "./screen-thread.js";
import type { ThreadReply, ThreadRequest } from "./screen-thread.js";

/**
 * The screen thread's side (see screen-thread.ts): one emulator per session, fed in the order
 * messages arrive; each reply goes out once everything sent before it is parsed.
 */
const port = parentPort!;
/** A run of output shorter than this is written as it is: it holds few lines to skip. */
const FLOOD_MIN_BYTES = 64 * 1024;
lowerPriority();
const emulators = new Map<string, ScreenEmulator>();
let chain: Promise<void> = Promise.resolve();

port.on("message", (message: ThreadRequest) => {
  chain = chain.then(
    () => handle(message),
    () => handle(message),
  );
});

async function handle(m: ThreadRequest): Promise<void> {
  switch (m.t) {
    case "open": {
      emulators.get(m.id)?.dispose();
      const emulator =
        m.state === undefined
          ? new ScreenEmulator(m.cols, m.rows)
          : await ScreenEmulator.restore(m.state, m.cols, m.rows);
      emulators.set(m.id, emulator);
      return;
    }
    case "feed": {
      const emulator = emulators.get(m.id);
      if (emulator === undefined) return;
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
          await emulator.settled();
          emulator.resize(piece.cols, piece.rows);
        }
      }
      await emulator.settled();
      reply({ t: "fed", id: m.id, bytes: m.bytes.length });
      return;
    }
    case "view": {
      const emulator = emulators.get(m.id);
      if (emulator === undefined) return reply({ t: "view", req: m.req, error: `no screen for ${m.id}` });
      await emulator.settled();
      return reply({ t: "view", req: m.req, view: emulator.view(m.view as ViewOptions) });
    }
    case "checkpoint": {
      const emulator = emulators.get(m.id);
      if (emulator === undefined) return reply({ t: "checkpoint", req: m.req, error: `no screen for ${m.id}` });
      await emulator.settled();
      // Taken only where the parser is between sequences; else the caller tries at a later one.
      if (!emulator.atBoundary) return reply({ t: "checkpoint", req: m.req, cols: emulator.cols, rows: emulator.rows });
      const state = emulator.checkpoint();
      const views = { text: emulator.view({ format: "text" }), ansi: emulator.view({ format: "ansi" }) };
      return reply({ t: "checkpoint", req: m.req, state, views, cols: emulator.cols, rows: emulator.rows });
    }
    case "drop":
      emulators.get(m.id)?.dispose();
      emulators.delete(m.id);
      return;
    case "memory":
      // Exposed by --expose-gc (the benches): the figure is then what stays live.
      (globalThis as { gc?: () => void }).gc?.();
      return reply({ t: "memory", req: m.req, heapUsed: process.memoryUsage().heapUsed, emulators: emulators.size });
  }
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

function reply(r: ThreadReply): void {
  port.postMessage(r);
}
