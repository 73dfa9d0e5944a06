import { TerminalClient } from "../client/node.js";
import type { GatewayTarget, TerminalExit } from "../client/node.js";
import { EchoSkip } from "./input-echo.js";
import { Scanner } from "./output-scanner.js";
import { decodePage } from "./output-text.js";
import type { ScanMatch } from "./output-scanner.js";
import { reportWhileWaiting } from "./tool.js";
import type { ProgressSink } from "./tool.js";
import { InternalError } from "../protocol/errors.js";

/** Without a pattern, the wait returns once output has been quiet this long after it started… */
export const OUTPUT_QUIET_MS = 150;
/** …or this long after the first new byte, whichever comes first: a burst is returned whole, a stream is not waited out. */
export const OUTPUT_SETTLE_MAX_MS = 1000;
/**
 * The timeout does not end a wait before the gateway has replayed the output that already
 * exists after `since` (`timeout_ms: 0` is "look at what is there now"), but neither does a
 * gateway that never finishes the replay hold the call longer than the timeout plus this.
 */
export const REPLAY_GRACE_MS = 5_000;

/**
 * Why a wait returned. `disconnected`: the connection to the gateway dropped (it stopped or
 * restarted); the wait does not sit out a reconnect backoff, it says so at once.
 */
export type WaitReason = "matched" | "output" | "exited" | "timeout" | "cancelled" | "disconnected";

export interface WaitOptions {
  target: GatewayTarget;
  id: string;
  /** The output bytes already seen; undefined: from the end of the output now. */
  since: number | undefined;
  /** A line typed into a PTY: output up to the line break after its echo is skipped (after_input). */
  afterEcho?: string;
  /** Return when the new output matches; undefined: on any new output. */
  pattern: RegExp | undefined;
  timeoutMs: number;
  /** At most this many of the latest bytes are kept to return. */
  maxBytes: number;
  /** Match the text as the process wrote it, escape sequences and all. */
  raw: boolean;
  signal: AbortSignal;
  /** Told every few seconds how the wait goes, when the MCP client asked for progress. */
  progress?: ProgressSink;
}

export interface WaitResult {
  reason: WaitReason;
  /** Where the wait started: `since`, or the end of the output at the time. */
  start: number;
  /** The byte offset of `bytes[0]` (after `start` when more arrived than is kept). */
  from: number;
  /** The latest output that arrived, at most `maxBytes` (with a match: up to the end of the line it ends on). */
  bytes: Uint8Array;
  /** The byte offset after the last byte that arrived. */
  end: number;
  /** What the pattern matched, and where. */
  match?: ScanMatch;
  exit?: TerminalExit;
  /** Output retention dropped before this viewer read it. */
  dropped: number;
  /** Whether the gateway had replayed all the output that existed after `start` (false: it returned before that). */
  replayed: boolean;
  /** With `afterEcho`: whether the echo was seen (`start` is then after it). */
  echoSeen?: boolean;
}

/**
 * Follows a terminal session's output live (the SDK's TerminalClient: replay from `since`, then
 * live, exactly once) until the new output matches `pattern` (or, without one, until some new
 * output has arrived and paused), the session exits, the time is up, the connection to the
 * gateway drops or the call is cancelled.
 */
export function waitForOutput(options: WaitOptions): Promise<WaitResult> {
  const term = new TerminalClient({
    ...options.target,
    session: options.id,
    ...(options.since !== undefined ? { since: options.since } : {}),
  });
  const tail = new TailBuffer(options.maxBytes);
  let scanner: Scanner | undefined;
  let start = options.since;
  let dropped = 0;
  let arrived = 0;
  let replayed = false;
  const echo = options.afterEcho !== undefined ? new EchoSkip(options.afterEcho) : undefined;
  let echoSeen = false;
  const stopReporting = reportWhileWaiting(options.progress, options.timeoutMs, () => {
    const what = arrived === 0 ? "no new output yet" : `${arrived} bytes of new output`;
    return options.pattern !== undefined ? `${what}, no match for /${options.pattern.source}/ yet` : what;
  });
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const later = (ms: number, fn: () => void) => timers.add(setTimeout(fn, ms));
  let onAbort: () => void = () => undefined;

  const waiting = new Promise<WaitResult>((resolve, reject) => {
    let settled = false;
    const finish = (reason: WaitReason, extra: { match?: ScanMatch; exit?: TerminalExit } = {}) => {
      if (settled) return;
      settled = true;
      const begin = start ?? term.offset ?? 0;
      resolve({
        reason,
        start: begin,
        from: tail.size > 0 ? tail.from : (tail.end ?? begin),
        bytes: tail.bytes(),
        end: tail.end ?? begin,
        dropped,
        replayed,
        ...(echo !== undefined ? { echoSeen } : {}),
        ...extra,
      });
    };
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      reject(error instanceof Error ? error : new InternalError(String(error)));
    };
    // Without a pattern, output that came is the answer, also when the time ran out first…
    // …but not when all of it is the start of an escape sequence or a character: the answer
    // would leave it for later (next before it), and a wait from there would return at once.
    const showable = () => tail.size > 0 && decodePage(tail.bytes(), false).used > 0;
    const timeUp = () => finish(options.pattern === undefined && showable() ? "output" : "timeout");
    let timedOut = false;
    term.on("connected", ({ offset }) => {
      start ??= offset;
      // The replay of what existed is in: from now on the timeout may end the wait.
      replayed = true;
      // A turn later: an ended session's exit frame comes right behind `connected`.
      if (timedOut) later(0, timeUp);
    });
    term.on("state", ({ state }) => {
      if (state === "reconnecting") finish("disconnected");
    });
    term.on("gap", ({ from, to }) => {
      dropped += to - from;
    });
    let settling = false;
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const settle = () => {
      if (showable()) finish("output");
      else settling = false;
    };
    term.on("data", (frame) => {
      let { bytes, offset } = frame;
      if (echo !== undefined && !echoSeen) {
        const after = echo.push(offset, bytes);
        if (after === undefined) return;
        // The response starts here: what the wait shows and matches, and where it says it started.
        echoSeen = true;
        start = after;
        bytes = bytes.subarray(after - offset);
        offset = after;
        if (bytes.length === 0) return;
      }
      start ??= offset;
      arrived += bytes.length;
      if (options.pattern !== undefined) {
        scanner ??= new Scanner(options.pattern, options.raw, offset);
        let found: ScanMatch | undefined;
        try {
          found = scanner.push(offset, bytes);
        } catch (error) {
          fail(error);
          return;
        }
        // With a match, the output up to the end of its line is the answer: what came after it in the same frame is next time's.
        tail.push(offset, found !== undefined ? bytes.subarray(0, found.end - offset) : bytes);
        if (found !== undefined) finish("matched", { match: found });
        return;
      }
      tail.push(offset, bytes);
      // Any output will do: wait for the rest of the burst, but not for a stream to stop.
      if (!settling) {
        settling = true;
        later(OUTPUT_SETTLE_MAX_MS, settle);
      }
      if (quiet !== undefined) {
        clearTimeout(quiet);
        timers.delete(quiet);
      }
      quiet = setTimeout(settle, OUTPUT_QUIET_MS);
      timers.add(quiet);
    });
    term.done.then((exit) => finish("exited", { exit }), fail);
    later(options.timeoutMs, () => {
      if (replayed) return timeUp();
      timedOut = true;
      later(REPLAY_GRACE_MS, timeUp);
    });
    onAbort = () => finish("cancelled");
    if (options.signal.aborted) finish("cancelled");
    else options.signal.addEventListener("abort", onAbort, { once: true });
  });
  return waiting.finally(() => {
    stopReporting();
    options.signal.removeEventListener("abort", onAbort);
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    term.close();
  });
}

/** The latest `max` bytes of a stream of chunks, with the offset of the first one kept. */
class TailBuffer {
  private chunks: { offset: number; bytes: Uint8Array }[] = [];
  size = 0;

  constructor(private readonly max: number) {}

  get from(): number {
    return this.chunks[0]?.offset ?? 0;
  }

  get end(): number | undefined {
    const last = this.chunks[this.chunks.length - 1];
    return last === undefined ? undefined : last.offset + last.bytes.length;
  }

  push(offset: number, bytes: Uint8Array): void {
    this.chunks.push({ offset, bytes });
    this.size += bytes.length;
    while (this.size > this.max) {
      const first = this.chunks[0]!;
      const excess = this.size - this.max;
      if (first.bytes.length <= excess) {
        this.chunks.shift();
        this.size -= first.bytes.length;
      } else {
        this.chunks[0] = { offset: first.offset + excess, bytes: first.bytes.subarray(excess) };
        this.size -= excess;
      }
    }
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk.bytes, at);
      at += chunk.bytes.length;
    }
    return out;
  }
}
