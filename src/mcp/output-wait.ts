import { TerminalClient } from "../client/node.js";
import type { GatewayTarget, TerminalExit } from "../client/node.js";
import { plainText } from "./output-text.js";
import { BoundedPattern } from "./pattern-match.js";
import { reportWhileWaiting } from "./tool.js";
import type { ProgressSink } from "./tool.js";

/** A pattern is looked for in at most this many of the latest characters of output (a bound on memory and on matching time). */
export const MATCH_WINDOW_CHARS = 64 * 1024;
/** Without a pattern, the wait returns once output has been quiet this long after it started… */
export const OUTPUT_QUIET_MS = 150;
/** …or this long after the first new byte, whichever comes first: a burst is returned whole, a stream is not waited out. */
export const OUTPUT_SETTLE_MAX_MS = 1000;

/** Why a wait returned. */
export type WaitReason = "matched" | "output" | "exited" | "timeout" | "cancelled";

export interface WaitOptions {
  target: GatewayTarget;
  id: string;
  /** The output bytes already seen; undefined: from the end of the output now. */
  since: number | undefined;
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
  /** The latest output that arrived, at most `maxBytes`. */
  bytes: Uint8Array;
  /** The byte offset after the last byte that arrived. */
  end: number;
  /** What the pattern matched. */
  match?: string;
  exit?: TerminalExit;
  /** Output retention dropped before this viewer read it. */
  dropped: number;
}

/**
 * Follows a terminal session's output live (the SDK's TerminalClient: replay from `since`, then
 * live, exactly once) until the new output matches `pattern` (or, without one, until some new
 * output has arrived and paused), the session exits, the time is up or the call is cancelled.
 */
export function waitForOutput(options: WaitOptions): Promise<WaitResult> {
  const term = new TerminalClient({
    ...options.target,
    session: options.id,
    ...(options.since !== undefined ? { since: options.since } : {}),
  });
  const tail = new TailBuffer(options.maxBytes);
  const scanner = options.pattern !== undefined ? new Scanner(options.pattern, options.raw) : undefined;
  let start = options.since;
  let dropped = 0;
  let arrived = 0;
  const stopReporting = reportWhileWaiting(options.progress, options.timeoutMs, () => {
    const what = arrived === 0 ? "no new output yet" : `${arrived} bytes of new output`;
    return options.pattern !== undefined ? `${what}, no match for /${options.pattern.source}/ yet` : what;
  });
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const later = (ms: number, fn: () => void) => timers.add(setTimeout(fn, ms));
  let onAbort: () => void = () => undefined;

  const waiting = new Promise<WaitResult>((resolve, reject) => {
    let settled = false;
    const finish = (reason: WaitReason, extra: { match?: string; exit?: TerminalExit } = {}) => {
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
        ...extra,
      });
    };
    term.on("connected", ({ offset }) => {
      start ??= offset;
    });
    term.on("gap", ({ from, to }) => {
      dropped += to - from;
    });
    let settling = false;
    let quiet: ReturnType<typeof setTimeout> | undefined;
    term.on("data", ({ bytes, offset }) => {
      start ??= offset;
      arrived += bytes.length;
      tail.push(offset, bytes);
      if (scanner !== undefined) {
        let match: string | undefined;
        try {
          match = scanner.push(bytes);
        } catch (error) {
          settled = true;
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        if (match !== undefined) finish("matched", { match });
        return;
      }
      // Any output will do: wait for the rest of the burst, but not for a stream to stop.
      if (!settling) {
        settling = true;
        later(OUTPUT_SETTLE_MAX_MS, () => finish("output"));
      }
      if (quiet !== undefined) {
        clearTimeout(quiet);
        timers.delete(quiet);
      }
      quiet = setTimeout(() => finish("output"), OUTPUT_QUIET_MS);
      timers.add(quiet);
    });
    term.done.then(
      (exit) => finish("exited", { exit }),
      (error: unknown) => {
        if (settled) return;
        settled = true;
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
    later(options.timeoutMs, () => finish("timeout"));
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

/** Looks for a pattern in the latest output, decoded as it streams. */
class Scanner {
  private readonly decoder = new TextDecoder("utf-8");
  private window = "";
  private readonly pattern: BoundedPattern;

  constructor(
    pattern: RegExp,
    private readonly raw: boolean,
  ) {
    this.pattern = new BoundedPattern(pattern);
  }

  /** Takes the next bytes; returns what matched once the pattern matches. Throws PatternTooSlow. */
  push(bytes: Uint8Array): string | undefined {
    this.window += this.decoder.decode(bytes, { stream: true });
    if (this.window.length > MATCH_WINDOW_CHARS) this.window = this.window.slice(-MATCH_WINDOW_CHARS);
    return this.pattern.exec(this.raw ? this.window : plainText(this.window));
  }
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
