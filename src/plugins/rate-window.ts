import type { Clock } from "../core/clock.js";

/**
 * A fixed one-second window counter: `take()` is true for the first `perSecond` takes of each
 * window. Bounds a plugin's runtime calls and log lines; cheap enough for every frame.
 */
export class RateWindow {
  private windowStart = Number.NEGATIVE_INFINITY;
  private count = 0;
  /** Takes refused in the current window. */
  refused = 0;

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock,
  ) {}

  /**
   * Counts one take. When a new window starts, `onNewWindow` hears how many takes the last
   * one refused (if any).
   */
  take(onNewWindow?: (refusedBefore: number) => void): boolean {
    const now = this.clock.monotonic();
    if (now - this.windowStart >= 1000) {
      if (this.refused > 0) onNewWindow?.(this.refused);
      this.windowStart = now;
      this.count = 0;
      this.refused = 0;
    }
    if (++this.count <= this.perSecond) return true;
    this.refused++;
    return false;
  }
}
