import { chmodSync, existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { systemClock } from "../core/clock.js";
import type { Clock } from "../core/clock.js";
import { EventLog } from "../log/event-log.js";
import { SqliteEventStore } from "../log/sqlite-store.js";
import { CheckpointStore } from "../screen/checkpoint-store.js";
import { ScreenService } from "../screen/screen-service.js";
import type { LogWriteFailure } from "../log/store.js";
import { SwitchboardError, tokenCharsProblem } from "../protocol/index.js";
import type { CreateSession } from "../protocol/index.js";
import type { Session } from "../sessions/session.js";
import { SessionManager } from "../sessions/session-manager.js";
import { StreamSession } from "../sessions/stream-session.js";
import { createTerminalSession, restoreTerminalSession } from "../sessions/terminal-session.js";
import { restoreAgentSession } from "../sessions/agent-gateway-session.js";
import { writePrivateFile } from "../system/private-file.js";
import { createAgentGatewaySession } from "./agents.js";
import { TokenRegistry, actorOf, canCreate, generateToken } from "./auth.js";
import type { Identity } from "./auth.js";
import { REVOKED } from "./ws-common.js";
import { DEFAULT_AUTO_RELEASE_MS, DEFAULT_LIMITS, MIN_TOKEN_CHARS, resolveLimits, resolveRetention } from "./config.js";
import type { Config, ConfigInput, Limits } from "./config.js";
import type { GatewayCore } from "./context.js";
import { AnonymousConnectionGate, anonymousBudget } from "./anonymous-gate.js";
import { CatchUpPacing } from "./catch-up.js";
import { RequestGuard } from "./guard.js";
import { FdMonitor, reportAcceptErrors } from "./fd-monitor.js";
import { HTTP_HOLDER_PREFIX, createHttpServer, listen } from "./http-server.js";
import { createLogger } from "./logger.js";
import type { Logger } from "./logger.js";
import { ConnectionCounter } from "./connection-counter.js";
import { GatewayMetrics } from "./metrics.js";
import { RoutingTable, buildSettings, configWarnings } from "./settings.js";
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
import { joinCluster, resolveClusterSettings, stopFencedSession } from "./cluster-mode.js";
import type { FencedError } from "../cluster/redis-log.js";
import { RemoteSession } from "../sessions/remote-session.js";
import { ClusterMirror } from "./cluster-mirror.js";
import type { ClusterOptions } from "./cluster-mode.js";
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
  reload(): { ok: true; warnings: string[] } | { ok: false; error: string };
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

/** {@link startGateway} once the data directory is ours; pushes onto `undo` what it starts. */
async function openGateway(
  options: GatewayOptions,
  dataDir: string,
  lock: DataDirLock,
  undo: Array<() => unknown>,
): Promise<Gateway> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger();
  let settings = buildSettings(options.config);
  const config = settings.config;
  // With plugins, once they started (see configWarnings).
  const hasPlugins = Object.keys(config.plugins ?? {}).length > 0;
  if (!hasPlugins) for (const w of settings.warnings) logger.warn({ warning: w }, "config");
  const routing = new RoutingTable(settings.router);
  const { token, generated } = resolveToken(dataDir, options.token);
  const host = options.host ?? DEFAULT_HOST;
  const limits = resolveLimits(config);
  const metrics = new GatewayMetrics();
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
  const sessions = new SessionManager({
    events,
    clock,
    autoReleaseAfterMs: config.control.autoReleaseAfterMs ?? DEFAULT_AUTO_RELEASE_MS,
    maxSessions: limits.sessions,
    maxSessionsPerOwner: limits.sessionsPerToken,
  });
  onFenced = (sessionId, error) => stopFencedSession(sessions, sessionId, error, logger);
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
  await mirror?.prepare();
  sessions.restore((record, log, ctx) => {
    const owner = shared?.ownerOf(record.id);
    if (owner !== undefined) return mirror!.restored(new RemoteSession(record, log, ctx, owner));
    switch (record.kind) {
      case "stream":
        return new StreamSession(record, log, ctx);
      case "agent":
        return restoreAgentSession(record, log, ctx);
      case "terminal":
        return restoreTerminalSession(record, log, ctx);
    }
  });
  // What the restore appended (sessions marked lost) is durable, and so readable, before anyone connects.
  events.flush();
  if (mirror) {
    undo.push(() => mirror.close());
    await mirror.start();
  }

  const uiSessionsFile = join(dataDir, UI_SESSIONS_FILE);
  let tokens = new TokenRegistry(config.auth.tokens, token, uiSessionsFile);
  const screens = new ScreenService({
    checkpoints: new CheckpointStore(join(dataDir, "screens.db")),
    clock,
    sessions: () => sessions.list(),
  });
  undo.push(() => screens.close());
  const core: GatewayCore = {
    get config() {
      return settings.config;
    },
    routing,
    plugins: undefined,
    pluginAgents: new Map(),
    connections: new ConnectionCounter(limits.connectionsPerToken),
    catchUp: new CatchUpPacing((error) => logger.error({ err: error }, "a catch-up read failed")),
    limits,
    clock,
    logger,
    metrics,
    get tokens() {
      return tokens;
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
  undo.push(() => sessions.close());
  metrics.observeSessions(() => sessions.list().map((s) => s.record));
  const pruner = new SessionPruner(core, options.pruneIntervalMs);
  undo.push(() => pruner.close());
  await pruner.run();

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

  /**
   * Re-reads the config file and swaps in what it compiles to (tokens, agents, bindings)
   * atomically. An invalid new config changes nothing: the old one stays and the error says
   * why. New tokens apply at once: a removed or rotated token's sign-ins end, and the WebSocket
   * and SSE connections of a token that was removed or whose role or globs changed are closed
   * (the others go on). Limits, event retention, `control` and the allowed hosts and origins
   * are read at start only, and a reload that changes them says so in a warning
   * ({@link startOnlyChanges}; `retention.endedSessions` applies from the next pass of the pruner).
   */
  const reload = (): { ok: true; warnings: string[] } | { ok: false; error: string } => {
    if (typeof options.config !== "string")
      return { ok: false, error: "no config file to reload (the config was given inline)" };
    try {
      const next = buildSettings(options.config, core.pluginAgents.keys());
      const previous = tokens;
      const nextTokens = new TokenRegistry(next.config.auth.tokens, token, uiSessionsFile, tokens);
      settings = next;
      tokens = nextTokens;
      // Open connections hold the identity they were opened with: those the new tokens no longer
      // grant (removed, or a role or globs changed) are ended, or a revoked token would go on.
      const revoked = core.connections.revokeUnless((identity) => nextTokens.has(identity), REVOKED);
      if (revoked > 0) logger.info({ connections: revoked }, "closed the connections of revoked or changed tokens");
      // Their control leases went with their connections; HTTP callers hold theirs by token name,
      // and a lease of a revoked token would keep everyone else from steering until it expired.
      const released = releaseRevokedLeases(core.sessions.list(), (name) => {
        const before = previous.named(name);
        return before !== undefined && nextTokens.has(before);
      });
      if (released > 0) logger.info({ sessions: released }, "released the control leases of revoked or changed tokens");
      routing.replace(next.router);
      void core.plugins
        ?.load(next.config.plugins ?? {})
        .catch((error: unknown) => logger.error({ err: error }, "plugin reload failed"));
      const warnings = [...next.warnings];
      const restartOnly = startOnlyChanges(config, next.config);
      if (restartOnly.length > 0)
        warnings.push(
          restartOnly.length === 1
            ? `${restartOnly[0]} changed: it is read at start only and applies after a restart`
            : `${restartOnly.join(", ")} changed: they are read at start only and apply after a restart`,
        );
      // At warn when it comes with warnings: a reload that ignores a setting is not routine.
      logger[warnings.length > 0 ? "warn" : "info"]({ warnings }, "config reloaded");
      return { ok: true, warnings };
    } catch (error) {
      const message = (error as Error).message;
      // With a code to alert on, as every other refusal has.
      logger.error({ code: "CONFIG_INVALID", err: message }, "config reload refused; keeping the previous config");
      return { ok: false, error: message };
    }
  };
  const watcher =
    typeof options.config === "string" && options.watchConfig !== false
      ? watchConfig(options.config, reload, logger)
      : undefined;
  const pluginHost = createPluginHost(
    core,
    { dataDir, configFile: typeof options.config === "string" ? options.config : undefined, reload, fds },
    core.pluginAgents,
  );
  core.plugins = pluginHost;
  undo.push(() => pluginHost.close());
  undo.push(() => watcher?.close());
  await pluginHost.load(config.plugins ?? {});
  if (hasPlugins)
    for (const w of configWarnings(config, core.pluginAgents.keys())) logger.warn({ warning: w }, "config");

  let closing: Promise<void> | undefined;
  return {
    url,
    host: address.address,
    port: address.port,
    token,
    tokenGenerated: generated,
    core,
    reload,
    close() {
      closing ??= (async () => {
        watcher?.close();
        fds.close();
        dirWatch.close();
        await pruner.close();
        server.close();
        await core.plugins?.close();
        // Sessions end while their viewers are still connected, so that each gets the output up
        // to the end and the exit (a follower told only "going away" could not know the session
        // ended); then the connections are closed.
        await sessions.close();
        multiplex.close();
        terminal.close();
        server.closeAllConnections();
        mirror?.close();
        events.close();
        await cluster?.close();
        // Last: the directory is free for another gateway only once the log is closed.
        lock.release();
        logger.info("gateway stopped");
      })();
      return closing;
    },
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

/**
 * The settings a reload leaves as they were at start (the gateway's listeners, log and sessions
 * were built with them) that `next` changes, by path: a reload says so rather than appear to apply
 * them.
 */
function startOnlyChanges(running: Config, next: Config): string[] {
  const pairs: Array<[string, unknown, unknown]> = [
    ["allowedHosts", running.allowedHosts, next.allowedHosts],
    ["allowedOrigins", running.allowedOrigins, next.allowedOrigins],
    ...Object.keys(DEFAULT_LIMITS).map((k): [string, unknown, unknown] => [
      `limits.${k}`,
      running.limits[k as keyof Limits],
      next.limits[k as keyof Limits],
    ]),
    ["retention.maxEvents", running.retention.maxEvents, next.retention.maxEvents],
    ["retention.maxBytes", running.retention.maxBytes, next.retention.maxBytes],
    ["control.autoReleaseAfterMs", running.control.autoReleaseAfterMs, next.control.autoReleaseAfterMs],
    ["cluster", running.cluster, next.cluster],
  ];
  return pairs.filter(([, a, b]) => JSON.stringify(a) !== JSON.stringify(b)).map(([path]) => path);
}

/**
 * The token to run with: the given one, else DATA_DIR/token, else a new one written there with
 * mode 0600. A stored token is held to the rule of `--token` (at least {@link MIN_TOKEN_CHARS}
 * characters) and its file narrowed to 0600 if someone left it wider, as the log's files are.
 */
function resolveToken(dataDir: string, given: string | undefined): { token: string; generated: boolean } {
  if (given !== undefined && given !== "") return { token: given, generated: false };
  const file = join(dataDir, "token");
  if (existsSync(file)) {
    let stored: string;
    try {
      stored = readFileSync(file, "utf8").trim();
    } catch (error) {
      throw new Error(
        `cannot read the token file ${file}: ${(error as Error).message}; make it a readable file, or remove it to have a token generated`,
        { cause: error },
      );
    }
    if (stored) {
      if (stored.length < MIN_TOKEN_CHARS)
        throw new Error(
          `the token in ${file} has ${stored.length} characters: a token needs at least ${MIN_TOKEN_CHARS}; put a longer one there, or remove the file to have one generated`,
        );
      const problem = tokenCharsProblem(stored);
      if (problem !== undefined)
        throw new Error(
          `the token in ${file} cannot be a token: ${problem}; put another there, or remove the file to have one generated`,
        );
      if ((statSync(file).mode & 0o077) !== 0) {
        try {
          chmodSync(file, 0o600);
        } catch (error) {
          throw new Error(
            `the token file ${file} can be read by others and could not be narrowed (${(error as Error).message}): chmod 600 it`,
            { cause: error },
          );
        }
      }
      return { token: stored, generated: true };
    }
  }
  const token = generateToken();
  // Written whole or not at all: a full disk left an empty token file behind.
  writePrivateFile(file, `${token}\n`);
  return { token, generated: true };
}

/**
 * Releases the control leases HTTP callers hold (`http:<token name>`) under a token `granted`
 * says the config no longer grants as it did; returns how many. The session's log records it as
 * `control` `disconnected`, as when a WebSocket holder goes away.
 */
function releaseRevokedLeases(sessions: readonly Session[], granted: (tokenName: string) => boolean): number {
  let released = 0;
  for (const session of sessions) {
    const key = session.lease.holder?.key;
    if (key === undefined || !key.startsWith(HTTP_HOLDER_PREFIX)) continue;
    if (granted(key.slice(HTTP_HOLDER_PREFIX.length))) continue;
    if (session.lease.release(key, "disconnected")) released++;
  }
  return released;
}
