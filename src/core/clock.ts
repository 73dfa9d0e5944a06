/**
 * Time as a dependency. Where timing is logic (throttles, leases, TTLs) code takes a Clock,
 * so tests drive it with `ManualClock` and a 5-minute lease takes milliseconds to test.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch: for timestamps people read and that outlive the process. */
  now(): number;
  /**
   * Milliseconds from an arbitrary start that never go back: for durations and deadlines within
   * the process. The wall clock steps when it is set (NTP, a VM resumed, `date -s`); a wait
   * computed from it held a session's output back for as long as the clock went back.
   */
  monotonic(): number;
  /** Runs `fn` after `ms` milliseconds. Timers from `systemClock` are unref()ed where possible. */
  setTimeout(fn: () => void, ms: number): Timer;
}

/**
 * The longest delay `setTimeout` takes (2^31 - 1 ms, about 24.8 days): Node sets a longer one to
 * 1 ms with a TimeoutOverflowWarning, so a lease of `control.autoReleaseAfterMs: 3000000000`
 * re-armed its timer every millisecond. Longer delays are waited out in steps of at most this.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(fn, ms) {
    let handle: ReturnType<typeof setTimeout>;
    const arm = (due: number, delay: number): void => {
      handle = setTimeout(() => {
        const left = due - Date.now();
        if (left > 0 && delay === MAX_TIMEOUT_MS) arm(due, Math.min(left, MAX_TIMEOUT_MS));
        else fn();
      }, delay);
      // Housekeeping timers must not keep the process alive.
      (handle as { unref?: () => void }).unref?.();
    };
    arm(Date.now() + ms, Math.min(ms, MAX_TIMEOUT_MS));
    return { cancel: () => clearTimeout(handle) };
  },
};

/**
 * Milliseconds from now to the next multiple of `periodMs` on `clock`'s monotonic time, at least
 * a tenth of the period away. Timers of one process armed this way fire in the same turn when
 * their periods divide one another: an idle node's periodic calls share its wake-ups.
 */
export function untilAligned(clock: Clock, periodMs: number): number {
  const left = periodMs - (Math.floor(clock.monotonic()) % periodMs);
  // A timer that fired a hair before its multiple would otherwise arm again for that multiple.
  return left < periodMs / 10 ? left + periodMs : left;
}

/** A clock that moves only when told to. Timers fire in due order during `advance`. */
export class ManualClock implements Clock {
  private current: number;
  private nextId = 0;
  private readonly timers = new Map<number, { due: number; fn: () => void }>();

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  monotonic(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const id = this.nextId++;
    this.timers.set(id, { due: this.current + Math.max(0, ms), fn });
    return { cancel: () => this.timers.delete(id) };
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order (timers set by timers included). */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let nextId: number | undefined;
      let nextDue = Infinity;
      for (const [id, t] of this.timers) {
        if (t.due <= target && (t.due < nextDue || (t.due === nextDue && id < (nextId ?? Infinity)))) {
          nextDue = t.due;
          nextId = id;
        }
      }
      if (nextId === undefined) break;
      const timer = this.timers.get(nextId)!;
      this.timers.delete(nextId);
      this.current = Math.max(this.current, timer.due);
      timer.fn();
    }
    this.current = target;
  }

  /**
   * Moves time forward by `ms` at once, as a machine waking from sleep sees it: each timer due by
   * then fires once, in order, and the timers they set count from the new time. For a jump of
   * days, where {@link advance} would run a periodic timer once per period: a week of a 5 s check
   * is 120,960 runs, seconds in which the event loop serves nothing.
   */
  jump(ms: number): void {
    this.current += ms;
    this.advance(0);
  }

  /** Number of timers not yet fired or cancelled. */
  get pending(): number {
    return this.timers.size;
  }
}
