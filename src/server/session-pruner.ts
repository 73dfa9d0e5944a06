import { systemClock } from "../core/clock.js";
import { WorkTimer } from "../core/work-timer.js";
import type { Actor } from "../protocol/index.js";
import { Disposables } from "../system/disposables.js";
import type { GatewayCore } from "./context.js";

/**
 * How often, at most, ended sessions are checked against `retention.endedSessions`; with a
 * `maxAgeMs` under ten times this, every tenth of it (at least every second), so that a session
 * is removed at most ~10% after its age is up (with a 60 s age and a 60 s interval, sessions
 * stayed up to twice as long: a soak test).
 */
export const SESSION_PRUNE_INTERVAL_MS = 60_000;
const SESSION_PRUNE_MIN_INTERVAL_MS = 1_000;
/** After a session ends, the wait for the burst of changes around it to settle before a pass (`maxCount`). */
const SESSION_PRUNE_SETTLE_MS = 100;

const RETENTION: Actor = { name: "retention", role: "system" };

/**
 * Applies `retention.endedSessions` (core.endedRetention: by age, count and total bytes) at
 * start, shortly after a session ends and every {@link SESSION_PRUNE_INTERVAL_MS} while ended
 * sessions are kept (none, nothing to prune: the timer sleeps). Reads the
 * rule on every pass, so a reload applies. A pass removes one session tree at a time, each
 * awaited (the purge is committed by the log's writer thread), so it never holds the event loop.
 */
export class SessionPruner {
  private readonly timer: WorkTimer;
  /** The pruner's timers and listener; `soon`: one check once a burst of ended sessions settles. */
  private readonly owned = new Disposables();
  private readonly timers = this.owned.timers({
    soon: { after: SESSION_PRUNE_SETTLE_MS, fire: () => void this.run() },
  });
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly core: GatewayCore,
    private readonly intervalMs = SESSION_PRUNE_INTERVAL_MS,
  ) {
    // Real time: an age is measured by core.clock (a test's), the passes are paced by the real one.
    const busy = (): boolean => core.sessions.list().some((session) => !session.running && !session.removed);
    this.timer = new WorkTimer({ clock: systemClock, everyMs: () => this.delay(), run: () => this.run(), busy });
    this.owned.add(() => this.timer.close());
    // Ended sessions restored: passes go on while they are kept. None: it sleeps until one ends.
    if (busy()) this.timer.wake();
    // An ended session can put the count over `maxCount`: check once the burst of changes settles.
    this.owned.add(
      core.sessions.onChange((session) => {
        if (!session.running && !session.removed && !this.closed) {
          this.timer.wake();
          this.timers.startIfIdle("soon");
        }
      }),
    );
  }

  /** One pass (a pass already under way is waited for instead). Resolves when it is done. */
  run(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops the timers; resolves once a pass under way has finished. */
  async close(): Promise<void> {
    this.closed = true;
    this.owned.dispose();
    await this.running;
  }

  /** The period, by the rule as it is now (a reload may change `maxAgeMs`). */
  private delay(): number {
    const maxAge = this.core.endedRetention().maxAgeMs;
    return maxAge === undefined
      ? this.intervalMs
      : Math.min(this.intervalMs, Math.max(SESSION_PRUNE_MIN_INTERVAL_MS, Math.floor(maxAge / 10)));
  }

  private async pass(): Promise<void> {
    const rule = this.core.endedRetention();
    if (rule.maxAgeMs === undefined && rule.maxCount === undefined && rule.maxTotalBytes === undefined) return;
    try {
      const removed = await this.core.sessions.prune(rule, RETENTION);
      if (removed.length === 0) return;
      this.core.metrics.sessionsRemoved.inc({ reason: "retention" }, removed.length);
      this.core.logger.info(
        { removed: removed.length, ...rule },
        `removed ${removed.length} ended session(s) (retention.endedSessions)`,
      );
    } catch (error) {
      this.core.logger.error({ err: error }, "removing ended sessions failed");
    }
  }
}
