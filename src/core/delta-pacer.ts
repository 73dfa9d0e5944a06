import type { Clock, Timer } from "./clock.js";

/**
 * Default pacing of agent text: at most one `chat.delta` per this many milliseconds per run
 * (docs/architecture.md, guarantee 5; configurable as `deltaThrottleMs`).
 */
export const DEFAULT_DELTA_THROTTLE_MS = 50;

/** Why a chunk of text left the pacer: the throttle let it through, or someone flushed. */
export type DeltaEmitReason = "paced" | "flush";

export interface DeltaPacerOptions {
  clock: Clock;
  /** Minimum time between two paced emissions (default {@link DEFAULT_DELTA_THROTTLE_MS}). */
  throttleMs?: number;
  /** Receives coalesced text. Never called with an empty string. */
  emit: (text: string, reason: DeltaEmitReason) => void;
}

/**
 * At most one delta of a run's text per throttle window, leading edge: text leaves at once when
 * the window is open, else as one piece at its end. `flush()` bypasses the throttle (a throttled
 * flush loses answers' tails) and runs before tools and the end (docs/architecture.md, guarantee 5).
 * @example
 * const pacer = new DeltaPacer({ clock, emit: (text) => log.append({ type: "chat.delta", runId, text }) });
 * pacer.push("Hel"); pacer.push("lo"); // "Hel" now, "lo" within 50 ms, or at once on pacer.flush()
 */
export class DeltaPacer {
  private readonly clock: Clock;
  private readonly throttleMs: number;
  private readonly emitFn: (text: string, reason: DeltaEmitReason) => void;
  private buffer: string[] = [];
  private lastEmitAt = Number.NEGATIVE_INFINITY;
  private timer: Timer | undefined;
  private disposed = false;

  constructor(options: DeltaPacerOptions) {
    this.clock = options.clock;
    this.throttleMs = Math.max(0, options.throttleMs ?? DEFAULT_DELTA_THROTTLE_MS);
    this.emitFn = options.emit;
  }

  /** Adds text. It leaves now if the window is open, else when the window ends (or at the next flush). */
  push(text: string): void {
    if (this.disposed || text === "") return;
    this.buffer.push(text);
    if (this.timer === undefined) this.schedule();
  }

  /** Emits everything buffered immediately, bypassing the throttle. A no-op when nothing is buffered. */
  flush(): void {
    this.cancelTimer();
    this.emit("flush");
  }

  /** Whether text is waiting for its window. */
  get pending(): boolean {
    return this.buffer.length > 0;
  }

  /** Cancels the timer and drops anything buffered. Flush first to keep it. Idempotent. */
  dispose(): void {
    this.disposed = true;
    this.cancelTimer();
    this.buffer = [];
  }

  private schedule(): void {
    const wait = this.lastEmitAt + this.throttleMs - this.clock.monotonic();
    if (wait <= 0) {
      this.emit("paced");
      return;
    }
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      // Re-check instead of trusting the timer: a real timer may fire a millisecond early,
      // and an early paced emission would break the one-per-window bound.
      if (this.buffer.length > 0) this.schedule();
    }, wait);
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private emit(reason: DeltaEmitReason): void {
    if (this.buffer.length === 0) return;
    let text = this.buffer.join("");
    this.buffer = [];
    // A paced piece never ends between the two halves of a surrogate pair (an emoji sent in two
    // chunks): each delta is JSON of its own, and a lone surrogate in it is refused by strict
    // parsers. The high half waits for the next piece; a flush lets it go as it is.
    if (reason === "paced" && isHighSurrogate(text.charCodeAt(text.length - 1))) {
      this.buffer.push(text.slice(-1));
      text = text.slice(0, -1);
      if (text === "") return;
    }
    this.lastEmitAt = this.clock.monotonic();
    this.emitFn(text, reason);
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
