import { LOG_INPUT_LINGER_MS } from "./commit-limits.js";

/** Most entries a log leaves for later: a fast typist's keys are appended in batches of at most this many. */
export const DEFERRED_APPENDS_MAX = 32;

/**
 * The entries whose seq a log took and whose append waits (SessionLog.appendSoon), in seq order:
 * `flush` does them LOG_INPUT_LINGER_MS after the first was queued, or at once past
 * {@link DEFERRED_APPENDS_MAX}, unless the log did it before (test/log/append-soon.test.ts).
 */
export class DeferredAppends<T> {
  private entries: T[] = [];
  private timer: NodeJS.Timeout | undefined;

  /** `onError`: what `flush` threw from the timer (the store closed as the gateway stops). */
  constructor(
    private readonly flush: () => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  get size(): number {
    return this.entries.length;
  }

  push(entry: T): void {
    this.entries.push(entry);
    if (this.entries.length >= DEFERRED_APPENDS_MAX) this.flush();
    else if (this.entries.length > 1) return;
    else if (this.timer !== undefined) this.timer.refresh();
    else {
      this.timer = setTimeout(() => {
        try {
          this.flush();
        } catch (error) {
          this.onError(error);
        }
      }, LOG_INPUT_LINGER_MS);
      this.timer.unref();
    }
  }

  /** Everything queued, oldest first; the queue is empty after. */
  take(): T[] {
    const entries = this.entries;
    this.entries = [];
    return entries;
  }
}
