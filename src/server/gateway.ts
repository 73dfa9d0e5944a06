import { rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { systemClock } from "../core/clock.js";
import type { Clock } from "../core/clock.js";
import { DEFAULT_RECONNECT_GRACE_MS } from "../core/control-lease.js";
import { EventLog } from "../log/event-log.js";
import { SqliteEventStore } from "../log/sqlite-store.js";
import { CheckpointStore } from "../screen/checkpoint-store.js";
import { ScreenService } from "../screen/screen-service.js";
import type { LogWriteFailure } from "../log/store.js";
import { SwitchboardError } from "../protocol/index.js";
import type { CreateSession } from "../protocol/index.js";
import type { Session, SessionContext, SessionRecord } from "../sessions/session.js";
import type { SessionLog } from "../log/session-log.js";
import { SessionManager } from "../sessions/session-manager.js";
import { StreamSession } from "../sessions/stream-session.js";
import { createTerminalSession, restoreTerminalSession } from "../sessions/terminal-session.js";
import { restoreAgentSession } from "../sessions/agent-gateway-session.js";
import { createAgentGatewaySession } from "./agents.js";
import { TokenRegistry, actorOf, canCreate } from "./auth.js";
import { resolveAdminToken } from "./admin-token.js";
import type { Identity } from "./auth.js";
import { DEFAULT_AUTO_RELEASE_MS, resolveLimits, resolveRetention } from "./config.js";
import type { Config, ConfigInput, Limits } from "./config.js";
import type { GatewayCore } from "./context.js";
import { AnonymousConnectionGate, anonymousBudget } from "./anonymous-gate.js";
import { CatchUpPacing } from "./catch-up.js";
import { RequestGuard } from "./guard.js";
import { FdMonitor, reportAcceptErrors } from "./fd-monitor.js";
import { createHttpServer, listen } from "./http-server.js";
import { createLogger } from "./logger.js";
import type { Logger } from "./logger.js";
import { ConnectionCounter } from "./connection-counter.js";
import { GatewayMetrics } from "./metrics.js";
import { RoutingTable, buildSettings, configWarnings } from "./settings.js";
import type { Settings } from "./settings.js";
import { configReloader } from "./gateway-reload.js";
import type { LiveSettings, ReloadResult } from "./gateway-reload.js";
import { createPluginHost } from "./plugin-wiring.js";
import { AuthFailureLimiter } from "./rate-limit.js";
import { Router } from "./router.js";
import { registerRoutes } from "./routes/index.js";
import { MultiplexEndpoint } from "./ws-multiplex.js";
import { dataDirFullError, lockDataDir, prepareDataDir } from "./data-dir-lock.js";
import type { DataDirLock } from "./data-dir-lock.js";
import { watchDataDir } from "./data-dir-watch.js";
import { watchConfig } from "./config-watch.js";
import { SessionPruner } from "./session-pruner.js";
import { resolveEndedRetention } from "../log/ended-retention.js";
import type { EndedRetentionSetting } from "../log/ended-retention.js";
// The CLI names the setting for its flags; it reaches the log layer through the server.
export type { EndedRetentionSetting };
import { joinCluster, resolveClusterSettings, startNodeRpc, stopFencedSession } from "./cluster-mode.js";
import { forwardedCallHandler, sessionForwarder } from "./session-forwarding.js";
import { runSessionAction } from "./routes/sessions.js";
import type { FencedError } from "../cluster/redis-log.js";
import { RemoteSession } from "../sessions/remote-session.js";
import { ClusterMirror } from "./cluster-mirror.js";
import { watchMembers } from "./cluster-takeover.js";
import type { Membership } from "../cluster/membership.js";
import type { ClusterLink, ClusterOptions } from "./cluster-mode.js";
import type { RedisEventStore } from "../cluster/redis-store.js";
import type { NodeRpc } from "../cluster/node-rpc.js";
import { MessageSessionIndex } from "../cluster/message-index.js";
import { TerminalEndpoint } from "./ws-terminal.js";

export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 7317;
/** While the log cannot write, its error line is repeated every this many failed attempts (a minute at one retry a second). */
export const LOG_FAILURE_REMINDER_ATTEMPTS = 60;
/** How long shutdown waits for processes to exit after TERM before KILL. */
export const SHUTDOWN_GRACE_MS = 3000;
/** The web UI's sign-ins (cookie hashes), kept across restarts. */
export const UI_SESSIONS_FILE = "ui-sessions.json";
export interface GatewayOptions {
  host?: string;
  port?: number;
  dataDir: string;
  /** Admin token. Without one, one is generated into DATA_DIR/token on first start (and read from there after), configured tokens or not. */
  token?: string;
  /** A config file path or a config object (validated like a file). */
  config?: string | ConfigInput;
  /** Reload when the config file changes (default true). */
  watchConfig?: boolean;
  clock?: Clock;
  logger?: Logger;
  /** How often ended sessions are checked against `retention.endedSessions` (default 60 s). */
  pruneIntervalMs?: number;
  /** `retention.endedSessions` as `serve --ended-max-age/--ended-max-bytes` (or their variables) set it, ahead of the config. */
  endedSessions?: EndedRetentionSetting;
  /** Cluster mode (docs/cluster.md), ahead of the config's `cluster` section. */
  cluster?: ClusterOptions;
  /** Count loopback peers against `limits.anonymousConnectionsPerAddress` too (tests: they only have loopback). */
  countLoopbackConnections?: boolean;
}

export interface Gateway {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The admin token (generated or given). */
  readonly token: string;
  /** True when the token was generated and stored in the data dir. */
  readonly tokenGenerated: boolean;
  readonly core: GatewayCore;
  /** Re-reads the config file (also on SIGHUP and when the file changes). */
  reload(): ReloadResult;
  close(): Promise<void>;
}

/**
 * Starts a gateway: claims the data directory, opens the log, restores sessions, listens.
 * Resolves once it accepts connections. When a step fails (another gateway on the directory,
 * the port in use, a bad config), what was started is closed again before the error is thrown.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const dataDir = resolve(options.dataDir);
  const { created } = prepareDataDir(dataDir);
  const lock = lockDataDir(dataDir);
  const undo: Array<() => unknown> = [() => lock.release()];
  // A start that fails leaves no data directory it made behind (a fresh database, a token nobody
  // was given, the lock file): removed once everything in it is closed, while the lock is still
  // held, so never one another gateway took meanwhile.
  if (created) undo.push(() => rmSync(dataDir, { recursive: true, force: true }));
  try {
    return await openGateway(options, dataDir, lock, undo);
  } catch (error) {
    for (const step of undo.reverse())
      await Promise.resolve()
        .then(step)
        .catch(() => undefined);
    throw dataDirFullError(dataDir, error) ?? error;
  }
}

/** {@link startGateway} once the data directory is ours: each step pushes onto `undo` what it starts. */
async function openGateway(
  options: GatewayOptions,
  dataDir: string,
  lock: DataDirLock,
  undo: Array<() => unknown>,
): Promise<Gateway> {
  const base = baseOf(options, dataDir, lock, undo);
  const { token, generated } = resolveAdminToken(dataDir, options.token);
  const log = await openLog(base);
  const sessions = await restoreSessions(base, log);
  const { core, live, routing } = buildCore(base, log, sessions.manager, token);
  // The screen thread is up before the first request: its descriptors are taken at start, not at
  // a moment a client could see (test/server/fd-limit.test.ts counts them). A failed start is
  // told by the first screen request, which tries again.
  await core.screens.ready().catch(() => undefined);
  const rpc = log.cluster && (await forwardToOwners(base, log.cluster, core));
  const membership = sessions.membership;
  if (membership) core.nodes = () => membership.list();
  const pruner = await startPruner(base, core);
  const front = await startListening(base, core, log.fds);
  const reload = configReloader({
    configFile: typeof options.config === "string" ? options.config : undefined,
    core,
    live,
    routing,
    adminToken: token,
    uiSessionsFile: join(dataDir, UI_SESSIONS_FILE),
  });
  const watcher = await wirePlugins(base, core, log.fds, reload);
  return {
    url: front.url,
    host: front.address.address,
    port: front.address.port,
    token,
    tokenGenerated: generated,
    core,
    reload,
    close: closer({ base, log, sessions, core, pruner, front, watcher, rpc: rpc || undefined }),
  };
}

/** What every step reads: the options, the start config and the shared services. */
interface Base {
  options: GatewayOptions;
  dataDir: string;
  lock: DataDirLock;
  undo: Array<() => unknown>;
  clock: Clock;
  logger: Logger;
  metrics: GatewayMetrics;
  settings: Settings;
  config: Config;
  limits: Limits;
  host: string;
  hasPlugins: boolean;
}

/** Reads the options and the config (said at once without plugins, else once they started). */
function baseOf(options: GatewayOptions, dataDir: string, lock: DataDirLock, undo: Array<() => unknown>): Base {
  const logger = options.logger ?? createLogger();
  const settings = buildSettings(options.config);
  const config = settings.config;
  const hasPlugins = Object.keys(config.plugins ?? {}).length > 0;
  // With plugins, the warnings wait for them (see configWarnings).
  if (!hasPlugins) for (const w of settings.warnings) logger.warn({ warning: w }, "config");
  return {
    options,
    dataDir,
    lock,
    undo,
    clock: options.clock ?? systemClock,
    logger,
    metrics: new GatewayMetrics(),
    settings,
    config,
    limits: resolveLimits(config),
    host: options.host ?? DEFAULT_HOST,
    hasPlugins,
  };
}

interface OpenLog {
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
async function openLog(base: Base): Promise<OpenLog> {
  const { options, dataDir, lock, undo, clock, logger, metrics, config } = base;
  const clusterSettings = resolveClusterSettings(options.cluster, config.cluster, options.port ?? DEFAULT_PORT);
  const cluster = clusterSettings && (await joinCluster(clusterSettings, clock, logger, metrics));
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

interface RestoredSessions {
  manager: SessionManager;
  /** Cluster mode: follows the sessions other nodes own. */
  mirror: ClusterMirror | undefined;
  /** Cluster mode: the nodes, and the takeover of a dead one's sessions. */
  membership: Membership | undefined;
}

/** Builds the session manager and restores the logged sessions (other nodes' as remote ones). */
async function restoreSessions(base: Base, log: OpenLog): Promise<RestoredSessions> {
  const { undo, clock, logger, metrics, config, limits } = base;
  const { cluster, shared, events } = log;
  const sessions = new SessionManager({
    events,
    clock,
    autoReleaseAfterMs: config.control.autoReleaseAfterMs ?? DEFAULT_AUTO_RELEASE_MS,
    reconnectGraceMs: config.control.reconnectGraceMs ?? DEFAULT_RECONNECT_GRACE_MS,
    maxSessions: limits.sessions,
    maxSessionsPerOwner: limits.sessionsPerToken,
  });
  const mirror =
    cluster && shared
      ? new ClusterMirror({
          redis: cluster.redis,
          log: cluster.log,
          store: shared,
          events,
          sessions,
          nodeId: cluster.settings.nodeId,
          keyPrefix: cluster.settings.keyPrefix,
          clock,
          logger,
        })
      : undefined;
  log.setOnFenced((sessionId, error) =>
    stopFencedSession({ sessions, logger, follow: (id, owner) => mirror!.follow(id, owner) }, sessionId, error),
  );
  await mirror?.prepare();
  const build = (record: SessionRecord, sessionLog: SessionLog, ctx: SessionContext): Session => {
    switch (record.kind) {
      case "stream":
        return new StreamSession(record, sessionLog, ctx);
      case "agent":
        return restoreAgentSession(record, sessionLog, ctx);
      case "terminal":
        return restoreTerminalSession(record, sessionLog, ctx);
    }
  };
  sessions.restore((record, sessionLog, ctx) => {
    const owner = shared?.ownerOf(record.id);
    if (owner !== undefined) return mirror!.restored(new RemoteSession(record, sessionLog, ctx, owner));
    return build(record, sessionLog, ctx);
  });
  // What the restore appended (sessions marked lost) is durable, and so readable, before anyone connects.
  events.flush();
  let membership: Membership | undefined;
  if (mirror) {
    undo.push(() => mirror.close());
    await mirror.start();
    membership = watchMembers({ cluster: cluster!, store: shared!, sessions, clock, logger, build });
    undo.push(() => membership?.close());
  }
  undo.push(() => sessions.close());
  metrics.observeSessions(() => sessions.list().map((s) => s.record));
  return { manager: sessions, mirror, membership };
}

/** The {@link GatewayCore} every route and endpoint reads; config and tokens through `live`, which a reload swaps. */
function buildCore(
  base: Base,
  log: OpenLog,
  sessions: SessionManager,
  adminToken: string,
): { core: GatewayCore; live: LiveSettings; routing: RoutingTable } {
  const { dataDir, clock, logger, metrics, settings, config, limits, host, undo } = base;
  const { events, fds } = log;
  const routing = new RoutingTable(settings.router);
  const live: LiveSettings = {
    settings,
    tokens: new TokenRegistry(config.auth.tokens, adminToken, join(dataDir, UI_SESSIONS_FILE)),
  };
  const screens = new ScreenService({
    checkpoints: new CheckpointStore(join(dataDir, "screens.db")),
    clock,
    sessions: () => sessions.list(),
  });
  undo.push(() => screens.close());
  const core: GatewayCore = {
    get config() {
      return live.settings.config;
    },
    dataDir: base.dataDir,
    endedRetention: () =>
      resolveEndedRetention(base.options.endedSessions, live.settings.config.retention.endedSessions),
    routing,
    plugins: undefined,
    forwarder: undefined,
    messageIndex: undefined,
    nodes: undefined,
    pluginAgents: new Map(),
    connections: new ConnectionCounter(limits.connectionsPerToken),
    catchUp: new CatchUpPacing((error) => logger.error({ err: error }, "a catch-up read failed")),
    limits,
    clock,
    logger,
    metrics,
    get tokens() {
      return live.tokens;
    },
    events,
    sessions,
    screens,
    allowedHosts: new Set(
      ["localhost", "127.0.0.1", "[::1]", host.includes(":") ? `[${host}]` : host, ...config.allowedHosts].map((h) =>
        h.toLowerCase(),
      ),
    ),
    allowedOrigins: new Set(config.allowedOrigins),
    async createSession(body: CreateSession, identity: Identity): Promise<Session> {
      if (!canCreate(identity))
        throw new SwitchboardError("FORBIDDEN", `${identity.name} is a viewer and cannot create sessions`);
      try {
        switch (body.kind) {
          case "terminal":
            return createTerminalSession(sessions, body, identity.name, { creator: actorOf(identity) });
          case "stream":
            return sessions.createStream(identity.name, body.name);
          case "agent":
            return createAgentGatewaySession(core, body, identity.name);
        }
      } catch (error) {
        core.countFdExhaustion(error, "session");
        throw error;
      }
    },
    countFdExhaustion(error, what) {
      if (error instanceof SwitchboardError && error.code === "RESOURCE_EXHAUSTED") fds.reportExhausted(what);
    },
  };
  return { core, live, routing };
}

/** Cluster mode: changes to a session another node runs go to that node, and this node runs theirs. */
async function forwardToOwners(base: Base, cluster: ClusterLink, core: GatewayCore): Promise<NodeRpc> {
  const handle = forwardedCallHandler((call) => runSessionAction(core, call), core);
  const rpc = await startNodeRpc(cluster, { ...base, bodyBytes: base.limits.bodyBytes, handle });
  base.undo.push(() => rpc.close());
  core.forwarder = sessionForwarder(rpc);
  core.messageIndex = new MessageSessionIndex(cluster.redis, cluster.settings.keyPrefix);
  return rpc;
}

/** Prunes ended sessions past `retention.endedSessions` once now, then on a timer. */
async function startPruner(base: Base, core: GatewayCore): Promise<SessionPruner> {
  const pruner = new SessionPruner(core, base.options.pruneIntervalMs);
  base.undo.push(() => pruner.close());
  await pruner.run();
  return pruner;
}

interface FrontDoorParts {
  server: Server;
  multiplex: MultiplexEndpoint;
  terminal: TerminalEndpoint;
  address: AddressInfo;
  url: string;
}

/** Builds the guard, routes and WebSocket endpoints, and listens on `host`:`port`. */
async function startListening(base: Base, core: GatewayCore, fds: FdMonitor): Promise<FrontDoorParts> {
  const { options, dataDir, undo, clock, logger, metrics, limits, host } = base;
  const failures = new AuthFailureLimiter(clock);
  const anonymous = new AnonymousConnectionGate(limits.anonymousConnectionsPerAddress, {
    countLoopback: options.countLoopbackConnections ?? false,
    onRefused: () => metrics.connectionsRefused.inc({ reason: "anonymous_per_address" }),
    total: anonymousBudget(fds.usage()?.limit ?? null),
    onEvicted: () => metrics.connectionsRefused.inc({ reason: "anonymous_total" }),
  });
  const guard = new RequestGuard(core, failures, anonymous);
  const router = new Router();
  registerRoutes(router, core);
  const multiplex = new MultiplexEndpoint(core);
  const terminal = new TerminalEndpoint(core);

  const server = createHttpServer({ core, guard, router, anonymous, multiplex, terminal });
  undo.push(() => {
    multiplex.close();
    terminal.close();
    server.close();
  });
  const address = await listen(server, host, options.port ?? DEFAULT_PORT);
  reportAcceptErrors(server, fds, logger);
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${urlHost}:${address.port}`;
  // The limit that counts: Node raises the soft limit to the hard one when it starts.
  logger.info({ url, dataDir, fdLimit: fds.usage()?.limit }, "gateway listening");
  return { server, multiplex, terminal, address, url };
}

/** Watches the config file and starts the configured plugins; returns the watcher, if any. */
async function wirePlugins(
  base: Base,
  core: GatewayCore,
  fds: FdMonitor,
  reload: () => ReloadResult,
): Promise<{ close(): void } | undefined> {
  const { options, dataDir, undo, logger, config, hasPlugins } = base;
  const configFile = typeof options.config === "string" ? options.config : undefined;
  const watcher =
    configFile !== undefined && options.watchConfig !== false ? watchConfig(configFile, reload, logger) : undefined;
  const pluginHost = createPluginHost(core, { dataDir, configFile, reload, fds }, core.pluginAgents);
  core.plugins = pluginHost;
  undo.push(() => pluginHost.close());
  undo.push(() => watcher?.close());
  await pluginHost.load(config.plugins ?? {});
  if (hasPlugins)
    for (const w of configWarnings(config, core.pluginAgents.keys())) logger.warn({ warning: w }, "config");
  return watcher;
}

/** The gateway's idempotent `close()` (docs/operations.md, "SIGTERM / SIGINT"): the reverse of the start, sessions before connections. */
function closer(parts: {
  base: Base;
  log: OpenLog;
  sessions: RestoredSessions;
  core: GatewayCore;
  pruner: SessionPruner;
  front: FrontDoorParts;
  watcher: { close(): void } | undefined;
  rpc: NodeRpc | undefined;
}): () => Promise<void> {
  const { base, log, sessions, core, pruner, front, watcher, rpc } = parts;
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= (async () => {
      watcher?.close();
      log.fds.close();
      log.dirWatch.close();
      await pruner.close();
      // Before the sessions end: a node that stops takes nothing over on its way out.
      await sessions.membership?.close();
      front.server.close();
      // No more requests from other nodes either; theirs that wait answer NODE_UNAVAILABLE.
      await rpc?.close();
      await core.plugins?.close();
      // Sessions end while their viewers are still connected, so that each gets the output up
      // to the end and the exit (a follower told only "going away" could not know the session
      // ended); then the connections are closed.
      await sessions.manager.close();
      front.multiplex.close();
      front.terminal.close();
      front.server.closeAllConnections();
      sessions.mirror?.close();
      core.screens.close();
      log.events.close();
      await log.cluster?.close();
      // Last: the directory is free for another gateway only once the log is closed.
      base.lock.release();
      base.logger.info("gateway stopped");
    })();
    return closing;
  };
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
