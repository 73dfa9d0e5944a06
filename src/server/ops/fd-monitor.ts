import type { Server } from "node:net";
import type { Clock } from "../../core/clock.js";
import { WorkTimer } from "../../core/work-timer.js";
import { readFdUsage } from "../../system/fd-usage.js";
import type { FdUsage } from "../../system/fd-usage.js";
import type { Logger } from "./logger.js";

/** How often the open descriptors are counted against the limit, after something opened some (see FdMonitor.wake). */
export const FD_CHECK_INTERVAL_MS = 5_000;
/** A count younger than this is reused (scrapes, reports of failures): counting is never per request. */
export const FD_COUNT_MAX_AGE_MS = 1_000;
/** At this share of the limit open, the gateway is near its limit: one warning line. */
export const FD_WARN_RATIO = 0.9;
/** Below this share it is not any more: one line saying so (lower than the warning's, so it does not flap). */
export const FD_CLEAR_RATIO = 0.8;

/** The warning when the gateway is near its own limit, or something failed there. */
const NEAR_LIMIT =
  "the gateway is near its file descriptor limit: at the limit new sessions, agent runs and plugin commands fail (RESOURCE_EXHAUSTED) and new connections are closed unanswered; end sessions or connections, or raise the limit (`ulimit -n`, systemd `LimitNOFILE=`) and restart the gateway";
/** The warning when something failed for lack of descriptors far below the gateway's own limit. */
const SYSTEM_FULL =
  "the system is out of file descriptors (ENFILE: the open-file table all processes share is full; the gateway is far from its own limit): new sessions, agent runs and plugin commands fail (RESOURCE_EXHAUSTED); end processes that hold many files, or raise the sysctl `fs.file-max`";

/**
 * What failed for lack of descriptors: starting a terminal session's process, an agent's process
 * (its session's next run), a plugin's process or a command a plugin runs, or accepting a connection.
 */
export const FD_EXHAUSTION_OPERATIONS = ["session", "agent", "plugin", "accept"] as const;
export type FdExhaustion = (typeof FD_EXHAUSTION_OPERATIONS)[number];

/**
 * Where failures are counted: GatewayMetrics' `fdExhaustion` (metrics.ts), which takes its labels
 * from this module, so the monitor names only the one counter it uses.
 */
interface ExhaustionMetrics {
  fdExhaustion: { inc(labels: { operation: FdExhaustion }): void };
}

/**
 * Watches the gateway's file descriptors against its limit: there libuv closes new connections
 * unanswered without telling Node (its EMFILE trick), so only counting shows it. Counted
 * {@link FD_CHECK_INTERVAL_MS} after each {@link wake} (a session, a connection: what opens
 * descriptors), and every period while near the limit: one warning at {@link FD_WARN_RATIO} or on
 * a failure (another if far below: the system's table is full), one info line under
 * {@link FD_CLEAR_RATIO} with no failure. The state is `switchboard_fds_near_limit`.
 */
export class FdMonitor {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly metrics: ExhaustionMetrics;
  private readonly read: () => FdUsage | null;
  private last: { at: number; usage: FdUsage | null } | undefined;
  private failedSinceCheck: FdExhaustion | null = null;
  private near = false;
  private readonly timer: WorkTimer;

  constructor(options: {
    clock: Clock;
    logger: Logger;
    metrics: ExhaustionMetrics;
    /** Default: `/proc` (`readFdUsage`). */
    read?: () => FdUsage | null;
  }) {
    this.clock = options.clock;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.read = options.read ?? readFdUsage;
    this.timer = new WorkTimer({
      clock: this.clock,
      everyMs: FD_CHECK_INTERVAL_MS,
      run: () => this.check(),
      busy: () => this.near,
    });
    this.timer.wake();
  }

  /** Something that takes descriptors happened (a session, a connection): counted again within {@link FD_CHECK_INTERVAL_MS}. */
  wake(): void {
    this.timer.wake();
  }

  /** True from the warning line to the line that says it is over. */
  get nearLimit(): boolean {
    return this.near;
  }

  /** Open descriptors and the limit, counted at most every {@link FD_COUNT_MAX_AGE_MS}; null where unknown. */
  usage(): FdUsage | null {
    const now = this.clock.monotonic();
    if (this.last === undefined || now - this.last.at >= FD_COUNT_MAX_AGE_MS) {
      this.last = { at: now, usage: this.read() };
    }
    return this.last.usage;
  }

  /** Something failed for lack of descriptors: counted, and the gateway is near its limit until a check finds it is not. */
  reportExhausted(what: FdExhaustion): void {
    this.metrics.fdExhaustion.inc({ operation: what });
    this.failedSinceCheck ??= what;
    // The warning comes now, with a fresh count (once: from then on it is near its limit).
    if (!this.near) {
      this.last = undefined;
      this.check();
    }
  }

  /** Stops the checks. Idempotent. */
  close(): void {
    this.timer.close();
  }

  /** Counts (rate-limited) and logs a change of state. */
  private check(): void {
    const usage = this.usage();
    const failed = this.failedSinceCheck;
    this.failedSinceCheck = null;
    const share = usage === null ? null : usage.open / usage.limit;
    if (!this.near && (failed !== null || (share !== null && share >= FD_WARN_RATIO))) {
      this.near = true;
      const fields = { open: usage?.open, limit: usage?.limit, ...(failed !== null ? { failed } : {}) };
      // The gateway's own limit fails a spawn or an accept only within a spawn's few descriptors
      // of it, well above FD_CLEAR_RATIO of any limit it can run with (it holds ~30 at start).
      // A failure this far below it was the system's open-file table (ENFILE).
      if (failed !== null && share !== null && share < FD_CLEAR_RATIO) this.logger.warn(fields, SYSTEM_FULL);
      else this.logger.warn(fields, NEAR_LIMIT);
    } else if (this.near && failed === null && (share === null || share < FD_CLEAR_RATIO)) {
      this.near = false;
      this.logger.info(
        { open: usage?.open, limit: usage?.limit },
        `file descriptors back under ${FD_CLEAR_RATIO * 100}% of the limit`,
      );
    }
  }
}

/**
 * Call once `server` listens: from then on its 'error' means Node could not accept a connection
 * (net.js `onconnection`), and unheard it would end the process. At the fd limit libuv usually
 * accepts and closes the connection itself and tells Node nothing (its EMFILE trick); this
 * comes only when that fails, e.g. when another thread took the descriptor it keeps in reserve.
 */
export function reportAcceptErrors(server: Server, fds: FdMonitor, logger: Logger): void {
  server.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EMFILE" || error.code === "ENFILE") fds.reportExhausted("accept");
    else logger.error({ err: error }, "accepting a connection failed");
  });
}
