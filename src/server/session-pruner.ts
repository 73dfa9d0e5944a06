import type { Actor } from "../protocol/index.js";
import type { GatewayCore } from "./context.js";

/** How often ended sessions are checked against `retention.endedSessions`. */
export const SESSION_PRUNE_INTERVAL_MS = 60_000;

const RETENTION: Actor = { name: "retention", role: "system" };

/**
 * Applies `retention.endedSessions`: removes ended sessions older than `maxAgeMs` and beyond
 * the newest `maxCount`, at start, every {@link SESSION_PRUNE_INTERVAL_MS} and shortly after a
 * session ends. Reads the rule from the current config on every pass, so a reload applies.
 */
export class SessionPruner {
  private readonly timer: ReturnType<typeof setInterval>;
  private soon: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly stopWatching: () => void;

  constructor(
    private readonly core: GatewayCore,
    intervalMs = SESSION_PRUNE_INTERVAL_MS,
  ) {
    this.timer = setInterval(() => void this.run(), intervalMs);
    this.timer.unref();
    // An ended session can put the count over `maxCount`: check once the burst of changes settles.
    this.stopWatching = core.sessions.onChange((session) => {
      if (!session.running && !session.removed && this.soon === undefined && !this.closed) {
        this.soon = setTimeout(() => {
          this.soon = undefined;
          void this.run();
        }, 100);
        this.soon.unref();
      }
    });
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
    clearInterval(this.timer);
    if (this.soon !== undefined) clearTimeout(this.soon);
    this.stopWatching();
    await this.running;
  }

  private async pass(): Promise<void> {
    const rule = this.core.config.retention.endedSessions;
    if (rule.maxAgeMs === undefined && rule.maxCount === undefined) return;
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
