import type { Clock, Timer } from "./clock.js";

/**
 * A periodic task that runs only while it has work, so that an idle gateway sleeps
 * (docs/operations.md, "An idle gateway"). {@link wake} (something happened: a session, a
 * connection, an append) arms it; after each run it is armed again while `busy()` says so or it
 * was woken during the period just ended, and otherwise sleeps until the next wake. So the last
 * wake is always followed by at least one run a whole period later.
 *
 * @example
 * const pings = new WorkTimer({ clock, everyMs: 15_000, run: sweep, busy: () => live.size > 0 });
 * pings.wake(); // a connection opened
 */
export class WorkTimer {
  private timer: Timer | undefined;
  private woken = false;
  private closed = false;

  constructor(
    private readonly options: {
      clock: Clock;
      /** The period; read at each arming (a reload may change it). */
      everyMs: number | (() => number);
      /** One run; a promise is waited for before the next period starts. */
      run: () => void | Promise<void>;
      /** Whether to go on without a wake (default: never). */
      busy?: () => boolean;
      /** Called when it goes to sleep. */
      onSleep?: () => void;
    },
  ) {}

  get armed(): boolean {
    return this.timer !== undefined;
  }

  /** Arms the task unless it is armed already (then the period under way counts as woken). */
  wake(): void {
    if (this.closed) return;
    if (this.timer !== undefined) this.woken = true;
    else this.arm(true);
  }

  /** Stops it for good. Idempotent. */
  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** `byWake`: the period starts with a wake, so one more follows the run whatever `busy` says. */
  private arm(byWake: boolean): void {
    const o = this.options;
    this.woken = byWake;
    const every = typeof o.everyMs === "number" ? o.everyMs : o.everyMs();
    this.timer = o.clock.setTimeout(() => {
      const next = (): void => {
        this.timer = undefined;
        if (this.closed) return;
        if (this.woken || o.busy?.() === true) this.arm(false);
        else o.onSleep?.();
      };
      const ran = o.run();
      if (ran instanceof Promise) void ran.finally(next);
      else next();
    }, every);
  }
}
