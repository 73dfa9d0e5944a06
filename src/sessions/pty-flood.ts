// When a PTY master counts as flooding and where its floods are read: the thresholds, the
// process-wide reader mode, and the typing that keeps floods on the event loop. Apart from
// pty-master.ts, which reads one master by these rules.
import { readerThread } from "./pty-reader-thread.js";

/** A master that gives this much output without a pause longer than FLOOD_GAP_MS moves to the reader thread. */
export const FLOOD_BYTES = 256 * 1024;
export const FLOOD_GAP_MS = 5;
/**
 * A read this big found the terminal's buffer (nearly) full (a read gives at most 4095 bytes), so
 * a gap before it of up to FLOOD_STALL_MS was the gateway's, not the flood's: on a busy machine
 * floods were otherwise never recognised (test/sessions/pty-master.test.ts, the held event loop).
 */
export const FULL_READ_BYTES = 3072;
export const FLOOD_STALL_MS = 50;
/** A master on the reader thread that gives no output for this long comes back to the event loop. */
export const QUIET_MS = 100;
/**
 * For this long after input was written to any PTY, floods are read on the event loop (masters on the thread
 * come back within QUIET_MS): see `noteInput`.
 */
export const INTERACTIVE_MS = 1000;
/**
 * While anyone types (`noteInput`), a flooding master rests this long after each read: the flood
 * runs at ~3 MB/s instead of ~8 and the keystrokes' hops get the cores (echo p99 about halved;
 * bench/README.md "Keystroke echo"). Nobody typing, a flood is not paced.
 */
export const FLOOD_PACE_MS = 1;

export type MasterReaderMode = "loop" | "thread";

/**
 * Where flooding masters are read: "thread" (the default, where the addon is built) or
 * "loop" (always the event loop: `SWITCHBOARD_PTY_READER=loop`, or this function, for the
 * benchmarks and tests that compare the two). Applies to masters opened afterwards.
 */
let floodReader: MasterReaderMode = process.env.SWITCHBOARD_PTY_READER === "loop" ? "loop" : "thread";

export function setFloodReader(mode: MasterReaderMode): void {
  floodReader = mode;
}

/** Where a master opened now would be read once it floods ("thread" only where the addon is built). */
export function floodReaderMode(): MasterReaderMode {
  return floodReader === "thread" && readerThread() !== null ? "thread" : "loop";
}

/** When input was last written to a PTY (performance.now()); -Infinity before any. */
let lastInputAt = -Infinity;

/**
 * Someone typed (or an agent wrote) into a terminal. While that goes on, floods are read on
 * the event loop, not the thread: their pace then stays tied to the gateway's own, which
 * leaves the machine's time for the keystroke's round trip (a flood on the thread raised the
 * echo's p99 in another session: docs/benchmarks.md); interactive work comes first.
 */
export function noteInput(): void {
  lastInputAt = performance.now();
}

/** Forgets the last input, as if nobody had typed for INTERACTIVE_MS (for tests, like setFloodReader). */
export function forgetInput(): void {
  lastInputAt = -Infinity;
}

/** Whether input was written to a PTY within INTERACTIVE_MS of `now`. */
export const typing = (now: number): boolean => now - lastInputAt < INTERACTIVE_MS;

/**
 * How often masters moved to the reader thread and back, and how often a flooding master rested
 * for FLOOD_PACE_MS while someone typed, since the process started (tests and benchmarks).
 */
export const masterMoves = { toThread: 0, toLoop: 0, paced: 0 };
