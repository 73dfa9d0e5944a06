import { rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { CheckpointStore } from "../screen/checkpoint-store.js";
import { ScreenService } from "../screen/screen-service.js";
import { SearchIndex } from "../log/search/search-index.js";
import { FileTransfers } from "./routes/file-transfers.js";
import { PROMPT_BODY_MAX_BYTES, SwitchboardError } from "../protocol/index.js";
import { isPublicError } from "../protocol/errors.js";
import type { CreateSession } from "../protocol/index.js";
import type { Session } from "../sessions/session.js";
import type { SessionManager } from "../sessions/session-manager.js";
import { createTerminalSession } from "../sessions/terminal-session.js";
import { inNewWorktree } from "../sessions/worktree.js";
import type { WorktreeSettings } from "../sessions/worktree.js";
import { adoptHeldAgents, createAgentGatewaySession } from "./agents.js";
import { TokenRegistry, actorOf, canCreate, ownerFor } from "./identity/auth.js";
import { resolveAdminToken } from "./identity/admin-token.js";
import type { Identity } from "./identity/identity.js";
import type { GatewayCore } from "./context.js";
import { StopRequest } from "./stop-request.js";
import type { StopSessions } from "./stop-request.js";
import { AnonymousConnectionGate, anonymousBudget } from "./http/anonymous-gate.js";
import { RequestGuard } from "./http/guard.js";
import { reportAcceptErrors } from "./ops/fd-monitor.js";
import type { FdMonitor } from "./ops/fd-monitor.js";
import { createHttpServer, listen } from "./http/http-server.js";
import { ConnectionCounter } from "./ws/connection-counter.js";
import { DEVICES_FILE, DeviceStore } from "./identity/devices.js";
import { SHARES_FILE, ShareStore } from "./identity/share-links.js";
import { ShareSync } from "./cluster/share-sync.js";
import { endShare } from "./routes/shares.js";
import { PairingCodes } from "./identity/pairing-codes.js";
import { PushActionTokens } from "./push/push-action-tokens.js";
import { PushNotifier } from "./push/push-notifier.js";
import { PUSH_SUBSCRIPTIONS_FILE, PushSubscriptions } from "./push/push-subscriptions.js";
import { VAPID_FILE, loadVapidKeys } from "./push/vapid-keys.js";
import { RoutingTable, configWarnings } from "./config/settings.js";
import { configReloader, watchConfig } from "./config/gateway-reload.js";
import type { LiveSettings, ReloadResult } from "./config/gateway-reload.js";
import { createPluginHost } from "./plugin-wiring.js";
import { AuthFailureLimiter } from "./http/rate-limit.js";
import { Router } from "./http/router.js";
import { registerRoutes } from "./routes/index.js";
import { MultiplexEndpoint } from "./ws/ws-multiplex.js";
import { dataDirFullError, lockDataDir, prepareDataDir } from "./ops/data-dir-lock.js";
import type { DataDirLock } from "./ops/data-dir-lock.js";
import { StartPhases } from "./ops/start-phases.js";
import { SessionPruner } from "./session-pruner.js";
import { resolveEndedRetention } from "../log/ended-retention.js";
import type { EndedRetentionSetting } from "../log/ended-retention.js";
// The CLI names the setting for its flags; it reaches the log layer through the server.
export type { EndedRetentionSetting };
import { startNodeRpc } from "./cluster/cluster-mode.js";
import { forwardedCallHandler, sessionForwarder } from "./cluster/session-forwarding.js";
import { ClusterSearch, isSearchRequest, searchRequestHandler } from "./cluster/cluster-search.js";
import { runSessionAction } from "./routes/sessions.js";
import type { ClusterLink } from "./cluster/cluster-mode.js";
import type { NodeRequestHandler, NodeRpc } from "../cluster/node-rpc.js";
import { MessageSessionIndex } from "../cluster/message-index.js";
import { forgetEndedKeySessions } from "./routes/messages.js";
import { TerminalEndpoint } from "./ws/ws-terminal.js";
import { DEFAULT_HOST, DEFAULT_PORT, baseOf } from "./config/gateway-options.js";
import type { Base, GatewayOptions } from "./config/gateway-options.js";
import { LOG_FAILURE_REMINDER_ATTEMPTS, openLog } from "./gateway-log.js";
import { restoreSessions } from "./gateway-sessions.js";
import type { RestoredSessions } from "./gateway-sessions.js";
import type { OpenLog } from "./gateway-log.js";
// Part of the gateway's API, defined next to the start steps that read them.
export { DEFAULT_HOST, DEFAULT_PORT, LOG_FAILURE_REMINDER_ATTEMPTS };
export type { GatewayOptions };

/** How long shutdown waits for processes to exit after TERM before KILL. */
export const SHUTDOWN_GRACE_MS = 3000;
/** The web UI's sign-ins (cookie hashes), kept across restarts. */
export const UI_SESSIONS_FILE = "ui-sessions.json";

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
  /** Stops; `sessions` "end" ends held sessions too, whatever `sessions.onStop` says. */
  close(options?: { sessions?: StopSessions }): Promise<void>;
}

/**
 * Starts a gateway: claims the data directory, opens the log, restores sessions, listens.
 * Resolves once it accepts connections. When a step fails (another gateway on the directory,
 * the port in use, a bad config), what was started is closed again before the error is thrown.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const phases = new StartPhases();
  const dataDir = resolve(options.dataDir);
  const { created } = prepareDataDir(dataDir);
  const lock = lockDataDir(dataDir);
  phases.done("dataDir");
  const undo: Array<() => unknown> = [() => lock.release()];
  // A start that fails leaves no data directory it made behind (a fresh database, a token nobody
  // was given, the lock file): removed once everything in it is closed, while the lock is still
  // held, so never one another gateway took meanwhile.
  if (created) undo.push(() => rmSync(dataDir, { recursive: true, force: true }));
  try {
    return await openGateway({ options, dataDir, lock, undo, phases });
  } catch (error) {
    for (const step of undo.reverse())
      await Promise.resolve()
        .then(step)
        .catch(() => undefined);
    throw dataDirFullError(dataDir, error) ?? error;
  }
}

/** {@link startGateway} once the data directory is ours: each step pushes onto `undo` what it starts. */
async function openGateway(start: {
  options: GatewayOptions;
  dataDir: string;
  lock: DataDirLock;
  undo: Array<() => unknown>;
  phases: StartPhases;
}): Promise<Gateway> {
  const { options, dataDir, lock, undo, phases } = start;
  const base = baseOf(options, dataDir, lock, undo);
  const { token, generated } = resolveAdminToken(dataDir, options.token);
  const log = await openLog(base);
  phases.done("log");
  const sessions = await restoreSessions(base, log);
  phases.done("restore");
  const { core, live, routing, notifier } = buildCore(base, log, sessions.manager, token);
  adoptHeldAgents(core);
  phases.done("core");
  // The screen thread boots on its own core while the rest starts and the gateway listens: a
  // screen asked for before it is up waits for it (docs/benchmarks.md, "scale"). A failed start
  // is told by the first screen request, which tries again.
  const screensUp = core.screens.ready().catch(() => undefined);
  const rpc = log.cluster && (await forwardToOwners(base, log.cluster, core));
  if (log.cluster) await syncShares(base, log.cluster, core);
  const membership = sessions.membership;
  if (membership) core.nodes = () => membership.list();
  const mirror = sessions.mirror;
  if (mirror) core.discover = (id) => mirror.discover(id);
  phases.done("cluster");
  const pruner = await startPruner(base, core);
  phases.done("pruner");
  const front = await startListening(base, core, log.fds);
  phases.done("listen");
  const reload = configReloader({
    configFile: typeof options.config === "string" ? options.config : undefined,
    core,
    live,
    routing,
    adminToken: token,
    uiSessionsFile: join(dataDir, UI_SESSIONS_FILE),
  });
  const watcher = await wirePlugins(base, core, log.fds, reload);
  phases.done("plugins");
  const close = closer({ base, log, sessions, core, pruner, front, watcher, notifier, rpc: rpc || undefined });
  // `serve` replaces this with its own stop (its stop line, then the exit).
  core.stopRequest.onRequest((asked) => void close({ sessions: asked.sessions }));
  // startGateway resolves once the thread is up, so its caller finds the thread's descriptors
  // taken (test/server/fd-limit.test.ts counts them); clients are served meanwhile.
  await screensUp;
  phases.done("screens");
  // Listening: the held sessions' processes are taken over from here on, in the background or at
  // a viewer's demand (adoption-queue.ts).
  sessions.manager.adoptInBackground();
  base.logger.info(
    { startMs: phases.summary, sessions: sessions.manager.list().length, adopting: sessions.manager.adoptionsPending },
    "gateway started",
  );
  return {
    url: front.url,
    host: front.address.address,
    port: front.address.port,
    token,
    tokenGenerated: generated,
    core,
    reload,
    close,
  };
}

/** The {@link GatewayCore} every route and endpoint reads; config and tokens through `live`, which a reload swaps. */
function buildCore(
  base: Base,
  log: OpenLog,
  sessions: SessionManager,
  adminToken: string,
): { core: GatewayCore; live: LiveSettings; routing: RoutingTable; notifier: PushNotifier } {
  const { dataDir, clock, logger, metrics, settings, config, limits, host, undo } = base;
  const { events, fds } = log;
  const routing = new RoutingTable(settings.router);
  const devices = new DeviceStore(join(dataDir, DEVICES_FILE));
  // Cluster mode: the links live in Redis for every node (ShareSync), not in this node's file.
  const shares = new ShareStore({ file: log.cluster ? undefined : join(dataDir, SHARES_FILE), clock });
  undo.push(() => shares.close());
  const live: LiveSettings = {
    settings,
    tokens: new TokenRegistry(config.auth.tokens, adminToken, join(dataDir, UI_SESSIONS_FILE), undefined, {
      devices,
      shares,
      trustedProxy: config.auth.trustedProxy,
    }),
  };
  const push = {
    vapid: loadVapidKeys(join(dataDir, VAPID_FILE)),
    subscriptions: new PushSubscriptions(join(dataDir, PUSH_SUBSCRIPTIONS_FILE), base.options.pushServiceHosts),
    actions: new PushActionTokens(),
  };
  const notifier = new PushNotifier({
    ...push,
    events,
    sessions,
    identity: (principal) => live.tokens.byPrincipal(principal),
    signIns: () => live.tokens.liveSignIns(clock.now()),
    clock,
    logger: logger.child({ component: "push" }),
    agent: base.options.pushAgent,
  });
  undo.push(() => notifier.close());
  const pushes = { ...push, test: (principal: string, signIn: string | undefined) => notifier.test(principal, signIn) };
  if (push.subscriptions.droppedNamed > 0)
    logger.warn(
      { dropped: push.subscriptions.droppedNamed },
      "push subscriptions saved by name (before principal ids) were dropped: their browsers subscribe again from Alerts",
    );
  const screens = new ScreenService({
    checkpoints: new CheckpointStore(join(dataDir, "screens.db")),
    clock,
    sessions: () => sessions.list(),
    changes: (listener) => sessions.onChange(listener),
    // Only a PTY session has a screen: a stream's or pipe's entries leave the feed asleep.
    published: (listener) =>
      events.onPublished((id) => {
        if (sessions.get(id)?.record.pty === true) listener(id);
      }),
    onThreadLost: () => metrics.screenThreadRestarts.inc(),
    onQuarantined: (sessionId, reason) => {
      metrics.screensQuarantined.inc({ reason });
      logger.warn({ sessionId, reason }, "screen quarantined: its output broke it");
    },
  });
  undo.push(() => screens.close());
  const search = new SearchIndex({
    dataDir,
    events,
    clock,
    onError: (error) => logger.warn({ err: error }, "search index: a batch of indexing failed"),
    onThreadStopped: (reason, restartInMs) =>
      logger.warn({ reason, restartInMs }, "search index: its thread stopped; starting it again"),
  });
  undo.push(() => search.close());
  const fileTransfers = new FileTransfers(clock);
  undo.push(() => fileTransfers.close());
  // Indexes what the last run left behind the log, and forgets removed sessions as they go.
  search.indexer.start(sessions.list().map((s) => s.id));
  const stopForgetting = sessions.onChange((s) => {
    if (sessions.get(s.id) === undefined) search.indexer.forget(s.id);
  });
  undo.push(() => void stopForgetting());
  // A session takes descriptors (its PTY or pipes): the monitor counts again soon after.
  const stopCounting = sessions.onChange(() => fds.wake());
  undo.push(() => void stopCounting());
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
    clusterSearch: undefined,
    messageIndex: undefined,
    nodes: undefined,
    discover: undefined,
    pluginAgents: new Map(),
    stopRequest: new StopRequest(),
    connections: new ConnectionCounter(limits.connectionsPerToken),
    catchUp: base.catchUp,
    limits,
    clock,
    logger,
    metrics,
    get tokens() {
      return live.tokens;
    },
    devices,
    shares,
    pairings: new PairingCodes(),
    push: pushes,
    events,
    sessions,
    screens,
    search,
    fileTransfers,
    allowedHosts: new Set(
      ["localhost", "127.0.0.1", "[::1]", host.includes(":") ? `[${host}]` : host, ...config.allowedHosts].map((h) =>
        h.toLowerCase(),
      ),
    ),
    allowedOrigins: new Set(config.allowedOrigins),
    tls: base.options.tls !== undefined,
    listenHost: host,
    async createSession(body: CreateSession, identity: Identity): Promise<Session> {
      if (!canCreate(identity))
        throw new SwitchboardError("FORBIDDEN", `${identity.name} is a viewer and cannot create sessions`);
      try {
        switch (body.kind) {
          case "terminal":
            if (body.worktree !== undefined)
              return await inNewWorktree(worktreeSettings(core, body), body.worktree, (worktree) =>
                createTerminalSession(sessions, body, ownerFor(identity), { creator: actorOf(identity), worktree }),
              );
            return await createTerminalSession(sessions, body, ownerFor(identity), { creator: actorOf(identity) });
          case "stream":
            return sessions.createStream(ownerFor(identity), body.name);
          case "agent":
            if (body.worktree !== undefined)
              return await inNewWorktree(worktreeSettings(core, body), body.worktree, async (worktree) =>
                createAgentGatewaySession(core, body, ownerFor(identity), worktree),
              );
            return createAgentGatewaySession(core, body, ownerFor(identity));
        }
      } catch (error) {
        core.countFdExhaustion(error, "session");
        throw error;
      }
    },
    countFdExhaustion(error, what) {
      if (isPublicError(error) && error.code === "RESOURCE_EXHAUSTED") fds.reportExhausted(what);
    },
  };
  // A link revoked or expired closes its connections (every transport) and frees what it held.
  shares.ended = (identity, why) => endShare(core, identity, why);
  return { core, live, routing, notifier };
}

/** `worktrees` of the config now, for a create that asks for a worktree (and so gives no `cwd`). */
function worktreeSettings(core: GatewayCore, body: { cwd?: string | undefined }): WorktreeSettings {
  if (body.cwd !== undefined)
    throw new SwitchboardError("VALIDATION_FAILED", "cwd: give cwd or worktree, not both (a worktree is the cwd)");
  return core.config.worktrees;
}

/** Cluster mode: changes to a session another node runs go to that node, and this node runs theirs. */
async function forwardToOwners(base: Base, cluster: ClusterLink, core: GatewayCore): Promise<NodeRpc> {
  const calls = forwardedCallHandler((call) => runSessionAction(core, call), core);
  const searches = searchRequestHandler(core);
  const handle: NodeRequestHandler = (request) => (isSearchRequest(request) ? searches(request) : calls(request));
  const rpc = await startNodeRpc(cluster, {
    ...base,
    // A prompt's body may be larger than other bodies (images: PROMPT_BODY_MAX_BYTES).
    bodyBytes: Math.max(base.limits.bodyBytes, PROMPT_BODY_MAX_BYTES),
    handle,
    idle: () => core.sessions.list().length === 0,
  });
  base.undo.push(() => rpc.close());
  core.forwarder = sessionForwarder(rpc);
  core.clusterSearch = new ClusterSearch({ rpc, nodeId: cluster.settings.nodeId, logger: base.logger });
  core.messageIndex = new MessageSessionIndex(cluster.redis, cluster.settings.keyPrefix);
  base.undo.push(forgetEndedKeySessions(core, core.messageIndex));
  return rpc;
}

/** Cluster mode: share links made on any node open their session on this one, and end here when revoked there. */
async function syncShares(base: Base, cluster: ClusterLink, core: GatewayCore): Promise<void> {
  const sync = new ShareSync({
    redis: cluster.redis,
    keyPrefix: cluster.settings.keyPrefix,
    store: core.shares,
    logger: base.logger,
  });
  base.undo.push(() => sync.close());
  await sync.start();
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

  const server = createHttpServer({ core, guard, router, anonymous, multiplex, terminal }, options.tls);
  undo.push(() => {
    multiplex.close();
    terminal.close();
    server.close();
  });
  const address = await listen(server, host, options.port ?? DEFAULT_PORT);
  reportAcceptErrors(server, fds, logger);
  // A connection takes a descriptor: the monitor counts again soon after.
  server.on("connection", () => fds.wake());
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `${options.tls ? "https" : "http"}://${urlHost}:${address.port}`;
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
  notifier: PushNotifier;
  rpc: NodeRpc | undefined;
}): (options?: { sessions?: StopSessions }) => Promise<void> {
  const { base, log, sessions, core, pruner, front, watcher, notifier, rpc } = parts;
  let closing: Promise<void> | undefined;
  return (options = {}) => {
    closing ??= (async () => {
      // First: from here on requests are refused with SHUTTING_DOWN, never told a session ended.
      sessions.manager.beginStop();
      watcher?.close();
      log.fds.close();
      log.dirWatch.close();
      base.metrics.close();
      await pruner.close();
      // A gateway on its way out notifies nobody that its sessions end.
      notifier.close();
      core.shares.close();
      // Before the sessions end: a node that stops takes nothing over on its way out.
      await sessions.membership?.close();
      front.server.close();
      // No more requests from other nodes either; theirs that wait answer NODE_UNAVAILABLE.
      await rpc?.close();
      await core.plugins?.close();
      // Sessions end while their viewers are still connected, so that each gets the output up
      // to the end and the exit (a follower told only "going away" could not know the session
      // ended); then the connections are closed.
      await sessions.manager.close(options.sessions === "end" ? { endHeld: true } : {});
      // Sessions still running go on for the next gateway (held ones, streams): viewers are told 1012.
      const restarting = sessions.manager.list().some((s) => s.running);
      front.multiplex.close(restarting);
      front.terminal.close(restarting);
      front.server.closeAllConnections();
      sessions.mirror?.close();
      core.screens.close();
      core.search.close();
      log.events.close();
      // Held sessions run on: the lease is left to expire, so a restart within its TTL keeps them.
      await log.cluster?.close({ keepLease: sessions.manager.held().length > 0 });
      // Last: the directory is free for another gateway only once the log is closed.
      base.lock.release();
      base.logger.info("gateway stopped");
    })();
    return closing;
  };
}
