// Opening the event log (SQLite, or the shared one over Redis in cluster mode) and reporting
// its write failures: the gateway's first start step, apart from the wiring in gateway.ts.
import { join } from "node:path";
import { systemClock } from "../core/clock.js";
import { EventLog } from "../log/event-log.js";
import { SqliteEventStore } from "../log/sqlite-store.js";
import type { LogWriteFailure } from "../log/store.js";
import type { FencedError } from "../cluster/redis-log.js";
import type { RedisEventStore } from "../cluster/redis-store.js";
import { joinCluster, resolveClusterSettings } from "./cluster/cluster-mode.js";
import type { ClusterLink } from "./cluster/cluster-mode.js";
import { resolveRetention } from "./config/config.js";
import { watchDataDir } from "./ops/data-dir-watch.js";
import { FdMonitor } from "./ops/fd-monitor.js";
import { DEFAULT_PORT } from "./config/gateway-options.js";
import type { Base } from "./config/gateway-options.js";
import type { Logger } from "./ops/logger.js";
import type { GatewayMetrics } from "./ops/metrics.js";

/** While the log cannot write, its error line is repeated every this many failed attempts (a minute at one retry a second). */
export const LOG_FAILURE_REMINDER_ATTEMPTS = 60;

export interface OpenLog {
  cluster: ClusterLink | undefined;
  /** The shared store over Redis in cluster mode, with the local one as the node's replica. */
  shared: RedisEventStore | undefined;
  events: EventLog;
  fds: FdMonitor;
  dirWatch: { close(): void };
  /** Set once the sessions exist: stops a session another node took over. */
  setOnFenced(handler: (sessionId: string, error: FencedError) => void): void;
}

/** Joins the cluster (if configured), opens the SQLite log, and starts watching the data dir and descriptors. */
export async function openLog(base: Base): Promise<OpenLog> {
  const { options, dataDir, lock, undo, clock, logger, metrics, config } = base;
  const clusterSettings = resolveClusterSettings(options.cluster, config.cluster, options.port ?? DEFAULT_PORT);
  const cluster = clusterSettings && (await joinCluster(clusterSettings, clock, logger, metrics, dataDir));
  if (cluster) undo.push(() => cluster.close());
  const local = new SqliteEventStore(join(dataDir, "switchboard.db"), {
    onError: (error) => logger.error({ err: error }, "event log failed"),
    ...logWriteReporting(logger, metrics, dataDir),
  });
  // In cluster mode the data directory holds the node's replica of the shared log (docs/cluster.md).
  let onFenced: (sessionId: string, error: FencedError) => void = () => undefined;
  const shared = cluster?.store(local, (id, error) => onFenced(id, error));
  const store = shared ?? local;
  metrics.observeLog(store);
  const dirWatch = watchDataDir({ dataDir, lock, logger, refuse: (failure) => local.refuseWrites(failure) });
  undo.push(() => dirWatch.close());
  // Real time, whatever clock the gateway was given: it samples a real resource, and a test that
  // moves a ManualClock a week ahead would otherwise read /proc 120,000 times on the way.
  const fds = new FdMonitor({ clock: systemClock, logger, metrics });
  metrics.observeFds(fds);
  undo.push(() => fds.close());
  const events = new EventLog({
    store,
    clock,
    retention: resolveRetention(config),
    onCommit: (writes, ms) => metrics.recordCommit(writes, ms),
    onListenerError: (error) => logger.error({ err: error }, "log listener failed"),
  });
  undo.push(() => events.close());
  // Agents start with their first prompt, not with their session: a run whose agent's process could
  // not be started for lack of descriptors ends with chat.error RESOURCE_EXHAUSTED, and only such a run.
  events.tap(
    (_sessionId, event) => {
      if (event.type === "chat.error" && event.code === "RESOURCE_EXHAUSTED") fds.reportExhausted("agent");
    },
    new Set(["chat.error"]),
  );
  const setOnFenced = (handler: typeof onFenced) => {
    onFenced = handler;
  };
  return { cluster: cluster || undefined, shared, events, fds, dirWatch, setOnFenced };
}

/**
 * How failed log commits are reported: one error line when they start (not one per attempt,
 * and no stack: a full disk is an expected condition), a reminder every
 * {@link LOG_FAILURE_REMINDER_ATTEMPTS} attempts, one line when writes work again; a counter per attempt.
 */
function logWriteReporting(logger: Logger, metrics: GatewayMetrics, dataDir: string) {
  return {
    onWriteFailed: (failure: LogWriteFailure) => {
      metrics.logWriteFailures.inc({ code: failure.code ?? "unknown" });
      if (failure.attempts !== 1 && failure.attempts % LOG_FAILURE_REMINDER_ATTEMPTS !== 0) return;
      logger.error(
        {
          code: failure.code,
          reason: failure.message,
          dataDir,
          attempts: failure.attempts,
          failingForMs: Date.now() - failure.since,
        },
        "event log cannot write: new sessions, prompts and appended events are refused (LOG_UNAVAILABLE), running processes are held back, and what they wrote is kept in memory and retried until the disk takes it; free space in the data directory or make it writable",
      );
    },
    onWriteRecovered: (failure: LogWriteFailure) => {
      logger.info(
        { dataDir, attempts: failure.attempts, failedForMs: Date.now() - failure.since },
        "event log writable again: everything held in memory was written",
      );
    },
    onWriterRestarted: () =>
      logger.info({ dataDir }, "event log writer thread running again: big commits are off the main thread again"),
    onWarning: (message: string) => logger.warn({ dataDir, reason: message }, "event log housekeeping failed"),
    onOutputLost: (message: string) =>
      logger.warn({ dataDir, reason: message }, "event log lost its last writes in a system crash"),
  };
}
