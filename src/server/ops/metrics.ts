import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { systemClock } from "../../core/clock.js";
import { registerDefaultMetrics } from "./event-loop-delay.js";
import { FD_EXHAUSTION_OPERATIONS } from "./fd-monitor.js";
import { SCREEN_QUARANTINE_REASONS } from "../../screen/screen-quarantine.js";

/** prom-client's default gauge, replaced (see the constructor). */
const OPEN_FDS = "process_open_fds";
/**
 * prom-client's gauges that break Prometheus's naming rules (`promtool check metrics`: a gauge
 * must not end in `_total`), removed: each is the sum of its unsuffixed gauge by `type`
 * (`sum(nodejs_active_handles)`), which stays.
 */
export const REMOVED_DEFAULT_GAUGES = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
] as const;

/**
 * Distinct variant names `switchboard_acp_unknown_updates_total` labels; later ones count as
 * `other`, so an agent inventing names cannot grow the metrics without bound.
 */
export const MAX_UNKNOWN_UPDATE_LABELS = 32;

/** What the file descriptor gauges read at scrape time (`FdMonitor`). */
export interface FdSource {
  usage(): { open: number; limit: number } | null;
  readonly nearLimit: boolean;
}

/** The gateway's Prometheus metrics, on a registry of its own (several gateways can share a process in tests). */
export class GatewayMetrics {
  readonly registry = new Registry();
  /** prom-client's default metrics; their event loop sampler runs while scrapes come. */
  private readonly defaults: { close(): void };
  /** Read at scrape time from the session source, so session changes cost nothing. */
  private sessionSource: () => Iterable<{ kind: string; state: string }> = () => [];
  readonly sessions = new Gauge({
    name: "switchboard_sessions",
    help: "Sessions by kind and state",
    labelNames: ["kind", "state"] as const,
    registers: [this.registry],
    collect: () => {
      this.sessions.reset();
      for (const s of this.sessionSource()) this.sessions.inc({ kind: s.kind, state: s.state });
    },
  });
  readonly eventsAppended = new Counter({
    name: "switchboard_events_appended_total",
    help: "Events written to the log (group commits)",
    registers: [this.registry],
    collect: () => this.commits.flush(),
  });
  readonly appendBatchSeconds = new Histogram({
    name: "switchboard_append_batch_seconds",
    help: "Duration of one group commit",
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [this.registry],
    collect: () => this.commits.flush(),
  });
  /** Commits counted in batches: a keystroke's echo is a commit of its own (see BatchedObservations). */
  private readonly commits = new BatchedObservations((seconds, writes) => {
    this.eventsAppended.inc(writes);
    this.appendBatchSeconds.observe(seconds);
  });
  readonly sseClients = new Gauge({
    name: "switchboard_sse_clients",
    help: "Open Server-Sent Events streams",
    registers: [this.registry],
  });
  readonly wsConnections = new Gauge({
    name: "switchboard_ws_connections",
    help: "Open WebSocket connections",
    labelNames: ["endpoint"] as const,
    registers: [this.registry],
  });
  readonly wsRefused = new Counter({
    name: "switchboard_ws_upgrades_refused_total",
    help: "WebSocket upgrades answered with an error instead of a connection, by error code (LIMIT_EXCEEDED: limits.connectionsPerToken)",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  readonly wsReadsPaused = new Counter({
    name: "switchboard_ws_reads_paused_total",
    help: "Times the gateway stopped reading a WebSocket that left its answers unread (over 4096 frames or twice limits.queueBytes queued), until it drained",
    labelNames: ["endpoint"] as const,
    registers: [this.registry],
  });
  readonly catchUps = new Counter({
    name: "switchboard_catchup_total",
    help: "Times a connection fell behind and was switched to catch-up from the log",
    registers: [this.registry],
  });
  readonly resets = new Counter({
    name: "switchboard_resets_total",
    help: "Resets sent because retention dropped what a client needed",
    registers: [this.registry],
  });
  /** Read at scrape time: output bytes the sessions' holders keep for this gateway (see HolderTransport.heldBytes). */
  private heldSource: () => number = () => 0;
  readonly holderHeldBytes = new Gauge({
    name: "switchboard_holder_held_bytes",
    help: "Output bytes the session holders keep that this gateway has not acknowledged as committed (up to 8 MiB each)",
    registers: [this.registry],
    collect: () => {
      this.holderHeldBytes.set(this.heldSource());
    },
  });
  readonly sessionsAdopted = new Counter({
    name: "switchboard_sessions_adopted_total",
    help: "Running sessions this gateway took over from the holders an earlier gateway left them under",
    registers: [this.registry],
  });
  readonly sessionsRemoved = new Counter({
    name: "switchboard_sessions_removed_total",
    help: "Sessions removed with their logs, by why (purge: a DELETE with ?purge; retention: retention.endedSessions)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  /** Read at scrape time from the log's store. */
  private logSource: { readonly writeFailure?: unknown; readonly unwrittenOps: number } | undefined;
  readonly logWriteFailures = new Counter({
    name: "switchboard_log_write_failures_total",
    help: "Failed commits of the event log (each retry counts), by storage error code (SQLITE_FULL: disk full, SQLITE_READONLY, SQLITE_IOERR_*)",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  readonly logWritable = new Gauge({
    name: "switchboard_log_writable",
    help: "1 when the event log's last commit succeeded, 0 while commits fail (new work is refused with LOG_UNAVAILABLE)",
    registers: [this.registry],
    collect: () => {
      this.logWritable.set(this.logSource?.writeFailure ? 0 : 1);
    },
  });
  readonly logUnwritten = new Gauge({
    name: "switchboard_log_unwritten_writes",
    help: "Events and session records appended and not yet committed to disk (grows while commits fail)",
    registers: [this.registry],
    collect: () => {
      this.logUnwritten.set(this.logSource?.unwrittenOps ?? 0);
    },
  });
  readonly authFailures = new Counter({
    name: "switchboard_auth_failures_total",
    help: "Requests refused for a bad token or cookie (those with none are not counted: no credentials is no guess)",
    registers: [this.registry],
  });
  readonly connectionsRefused = new Counter({
    name: "switchboard_connections_refused_total",
    help: "TCP connections closed on arrival, by why (anonymous_per_address: limits.anonymousConnectionsPerAddress; anonymous_total: the oldest connection without a credential, closed for a new one past the gateway's anonymous budget)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  /** Read at scrape time from the file descriptor monitor. */
  private fdSource: FdSource | undefined;
  readonly fdsNearLimit = new Gauge({
    name: "switchboard_fds_near_limit",
    help: "1 from when 90% of the file descriptor limit was open (or something failed for lack of descriptors) until under 80% are open again",
    registers: [this.registry],
    collect: () => {
      this.fdsNearLimit.set(this.fdSource?.nearLimit ? 1 : 0);
    },
  });
  readonly fdExhaustion = new Counter({
    name: "switchboard_fd_exhaustion_total",
    help: "Operations that failed for lack of file descriptors, the gateway's or the system's (RESOURCE_EXHAUSTED) — session: a terminal session's process could not be started; agent: an agent's process (the run ended with chat.error); plugin: a plugin's process or a command it ran; accept: Node could not accept a connection",
    labelNames: ["operation"] as const,
    registers: [this.registry],
  });
  readonly acpUnknownUpdates = new Counter({
    name: "switchboard_acp_unknown_updates_total",
    help: `ACP session/update variants the gateway has no mapping for (logged as agent.update), by variant; past ${MAX_UNKNOWN_UPDATE_LABELS} names, or a name that is not snake_case, as "other"`,
    labelNames: ["variant"] as const,
    registers: [this.registry],
  });
  /** The variant names {@link acpUnknownUpdates} has a label for (at most MAX_UNKNOWN_UPDATE_LABELS). */
  private readonly unknownUpdateLabels = new Set<string>();

  /** Counts an ACP `session/update` variant the gateway does not know, under a bounded set of labels. */
  countUnknownAcpUpdate(variant: string): void {
    let label = /^[a-z][a-z0-9_]{0,63}$/.test(variant) ? variant : "other";
    if (!this.unknownUpdateLabels.has(label)) {
      if (this.unknownUpdateLabels.size >= MAX_UNKNOWN_UPDATE_LABELS) label = "other";
      else this.unknownUpdateLabels.add(label);
    }
    this.acpUnknownUpdates.inc({ variant: label });
  }
  readonly messages = new Counter({
    name: "switchboard_messages_total",
    help: "Chat messages delivered to agents by the bindings (POST /v1/messages, plugins' api.messages.inbound), by result: delivered, or the error code a refused one got (NO_ROUTE, LIMIT_EXCEEDED, AGENT_NOT_FOUND, VALIDATION_FAILED, …)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly screenThreadRestarts = new Counter({
    name: "switchboard_screen_thread_restarts_total",
    help: "Times the screen thread stopped (out of heap, a crash) and a new one was started; the screens it held are rebuilt from checkpoints",
    registers: [this.registry],
  });
  readonly screensQuarantined = new Counter({
    name: "switchboard_screens_quarantined_total",
    help: "Sessions whose screen is no longer kept (SCREEN_UNAVAILABLE until a restart) because their output broke it, by reason (emulator_error: xterm threw parsing it; out_of_memory: the screen thread ran out of heap; thread_stopped: the thread stopped otherwise while parsing it)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: "switchboard_http_requests_total",
    help: "HTTP requests by status class",
    labelNames: ["status"] as const,
    registers: [this.registry],
  });

  constructor() {
    // Listed at 0 from the start, so that an alert on increase() sees the first one (a labelled
    // counter has no series until its first inc). Counters labelled by error code are open sets.
    for (const operation of FD_EXHAUSTION_OPERATIONS) this.fdExhaustion.inc({ operation }, 0);
    for (const endpoint of ["multiplex", "terminal"]) this.wsReadsPaused.inc({ endpoint }, 0);
    for (const reason of ["purge", "retention"]) this.sessionsRemoved.inc({ reason }, 0);
    this.connectionsRefused.inc({ reason: "anonymous_per_address" }, 0);
    this.connectionsRefused.inc({ reason: "anonymous_total" }, 0);
    this.messages.inc({ result: "delivered" }, 0);
    for (const reason of SCREEN_QUARANTINE_REASONS) this.screensQuarantined.inc({ reason }, 0);
    // Unprefixed, as prom-client and every exporter name them (`process_cpu_seconds_total`,
    // `nodejs_heap_size_used_bytes`), so that off-the-shelf dashboards and alerts work.
    this.defaults = registerDefaultMetrics(this.registry, systemClock);
    for (const name of REMOVED_DEFAULT_GAUGES) this.registry.removeSingleMetric(name);
    // prom-client counts open descriptors (on Linux only) by listing /proc/self/fd, which takes
    // a descriptor: at the limit that fails and the gauge keeps its last value. The monitor's
    // count does not (FdMonitor.usage).
    if (this.registry.getSingleMetric(OPEN_FDS) !== undefined) {
      this.registry.removeSingleMetric(OPEN_FDS);
      const source = () => this.fdSource;
      new Gauge({
        name: OPEN_FDS,
        help: "Number of open file descriptors",
        registers: [this.registry],
        collect() {
          const usage = source()?.usage();
          if (usage) this.set(usage.open);
        },
      });
    }
  }

  observeSessions(source: () => Iterable<{ kind: string; state: string }>): void {
    this.sessionSource = source;
  }

  observeHeldBytes(source: () => number): void {
    this.heldSource = source;
  }

  observeFds(monitor: FdSource): void {
    this.fdSource = monitor;
  }

  /**
   * Cluster mode: every series names the node, and Redis's state is measured (the connection, the
   * bytes waiting for it, each append's round trip through {@link redisCommandSeconds}).
   */
  observeCluster(cluster: { nodeId: string; connected: () => boolean; waitingBytes: () => number }): void {
    this.registry.setDefaultLabels({ node: cluster.nodeId });
    this.registry.registerMetric(this.redisCommandSeconds);
    new Gauge({
      name: "switchboard_redis_connected",
      help: "1 while the connection to Redis is ready, 0 while it is down (appends wait in memory)",
      registers: [this.registry],
      collect() {
        this.set(cluster.connected() ? 1 : 0);
      },
    });
    new Gauge({
      name: "switchboard_redis_waiting_bytes",
      help: "Bytes of events appended and not yet acknowledged by Redis (grows while Redis is unreachable)",
      registers: [this.registry],
      collect() {
        this.set(cluster.waitingBytes());
      },
    });
  }

  readonly redisCommandSeconds = new Histogram({
    name: "switchboard_redis_append_seconds",
    help: "Round trip of one append script call to Redis (cluster mode)",
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2],
    registers: [],
    collect: () => this.redisAppends.flush(),
  });
  private readonly redisAppends = new BatchedObservations((seconds) => this.redisCommandSeconds.observe(seconds));

  /** One append script call's round trip (cluster mode), counted in {@link redisCommandSeconds}. */
  observeRedisAppend(seconds: number): void {
    this.redisAppends.add(seconds);
  }

  observeLog(store: { readonly writeFailure?: unknown; readonly unwrittenOps: number }): void {
    this.logSource = store;
  }

  /** Stops the event loop's sampler. Idempotent. */
  close(): void {
    this.defaults.close();
  }

  recordCommit(writes: number, ms: number): void {
    this.commits.add(ms / 1000, writes);
  }
}

/**
 * Values observed into a histogram in batches, for one observed on every append: prom-client's
 * `observe` allocates several objects a call, and one call per append cost 2% of a cluster owner's
 * CPU (docs/benchmarks.md, "Where a delivery's CPU goes"). Flushed when full and by the
 * histogram's `collect`, so every scrape counts every value.
 */
class BatchedObservations {
  private readonly values = new Float64Array(256);
  /** Each value's weight (a commit's writes), 1 unless given. */
  private readonly weights = new Float64Array(256);
  private count = 0;

  constructor(private readonly observe: (value: number, weight: number) => void) {}

  add(value: number, weight = 1): void {
    this.values[this.count] = value;
    this.weights[this.count++] = weight;
    if (this.count === this.values.length) this.flush();
  }

  flush(): void {
    const count = this.count;
    this.count = 0;
    for (let i = 0; i < count; i++) this.observe(this.values[i]!, this.weights[i]!);
  }
}
