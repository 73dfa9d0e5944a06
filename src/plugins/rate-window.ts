import type { Clock } from "../core/clock.js";

/** Length of a {@link RateWindow}'s window. */
export const RATE_WINDOW_MS = 1000;

/**
 * A fixed one-second window counter: `take()` is true for the first `perSecond` takes of each
 * window. Bounds a plugin's runtime calls and log lines; cheap enough for every frame.
 */
export class RateWindow {
  private windowStart = Number.NEGATIVE_INFINITY;
  private count = 0;
  /** Takes refused and not yet reported (see {@link takeRefused}). */
  private refused = 0;

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock,
  ) {}

  /**
   * Counts one take. When a new window starts, `onNewWindow` hears how many takes were refused
   * and not yet reported (if any).
   */
  take(onNewWindow?: (refusedBefore: number) => void): boolean {
    const now = this.clock.monotonic();
    if (now - this.windowStart >= RATE_WINDOW_MS) {
      const refused = this.takeRefused();
      if (refused > 0) onNewWindow?.(refused);
      this.windowStart = now;
      this.count = 0;
    }
    if (++this.count <= this.perSecond) return true;
    this.refused++;
    return false;
  }

  /** Milliseconds until the current window ends (0 once it has). */
  msLeft(): number {
    return Math.max(0, this.windowStart + RATE_WINDOW_MS - this.clock.monotonic());
  }

  /** How many takes were refused since the last report, which this is: the count starts again. */
  takeRefused(): number {
    const refused = this.refused;
    this.refused = 0;
    return refused;
  }
}
