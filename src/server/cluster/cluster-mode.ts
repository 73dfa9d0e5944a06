import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Clock, Timer } from "../../core/clock.js";
import {
  DEFAULT_KEY_PREFIX,
  DEFAULT_WAIT_TIMEOUT_MS,
  defaultNodeId,
  nodeIdProblem,
  redisSeedsProblem,
} from "../../cluster/cluster-settings.js";
import type { ClusterSettings } from "../../cluster/cluster-settings.js";
import { NodeLease, leaseRenewalMs } from "../../cluster/node-lease.js";
import { connectRedis } from "../../cluster/redis-client.js";
import type { RedisClient } from "../../cluster/redis-client.js";
import { RedisLog } from "../../cluster/redis-log.js";
import { replicaConfirmation } from "../../cluster/replica-wait.js";
import type { FencedError } from "../../cluster/redis-log.js";
import { RedisEventStore } from "../../cluster/redis-store.js";
import { NODE_REQUEST_OVERHEAD_BYTES, NodeRpc } from "../../cluster/node-rpc.js";
import type { NodeRequestHandler } from "../../cluster/node-rpc.js";
import type { SqliteEventStore } from "../../log/sqlite-store.js";
import { SwitchboardError } from "../../protocol/index.js";
import type { Actor } from "../../protocol/index.js";
import type { SessionManager } from "../../sessions/session-manager.js";
import { writePrivateFile } from "../../system/private-file.js";
import type { Config } from "../config/config.js";
import type { Logger } from "../ops/logger.js";
import type { GatewayMetrics } from "../ops/metrics.js";
import { InternalError } from "../../protocol/errors.js";

/** Cluster mode as `serve` was told it (`--redis`, `--node-id` or their variables): ahead of the config's. */
export interface ClusterOptions {
  redis?: string[];
  nodeId?: string;
}

/**
 * The cluster settings to run with, or undefined for a single node: the options given to
 * `serve` over the config's `cluster` section; the node id defaults to the host name and port.
 */
export function resolveClusterSettings(
  given: ClusterOptions | undefined,
  config: Config["cluster"],
  port: number,
): ClusterSettings | undefined {
  const seeds = given?.redis ?? (config === undefined ? undefined : [config.redis].flat());
  if (seeds === undefined) return undefined;
  const nodeId = given?.nodeId ?? config?.nodeId ?? defaultNodeId(port);
  const problem = nodeIdProblem(nodeId) ?? redisSeedsProblem(seeds, config?.waitReplicas);
  if (problem !== undefined) throw new InternalError(problem);
  return {
    seeds,
    nodeId,
    keyPrefix: config?.keyPrefix ?? DEFAULT_KEY_PREFIX,
    ...(config?.nodeTtlMs !== undefined ? { nodeTtlMs: config.nodeTtlMs } : {}),
    ...(config?.waitReplicas ? { waitReplicas: config.waitReplicas } : {}),
    ...(config?.waitTimeoutMs !== undefined ? { waitTimeoutMs: config.waitTimeoutMs } : {}),
    ...(config?.requestTimeoutMs !== undefined ? { requestTimeoutMs: config.requestTimeoutMs } : {}),
  };
}

/** A gateway's link to the cluster: its Redis connection and its node's lease. */
export interface ClusterLink {
  readonly settings: ClusterSettings;
  readonly redis: RedisClient;
  readonly log: RedisLog;
  /** The node lease's TTL (see Membership). */
  readonly ttlMs: number;
  /**
   * This node's lease: its holder and how to write its members entry again (Membership), and its
   * pace (renewed every half TTL while the node shows no session, see NodeLease).
   */
  readonly lease: Pick<NodeLease, "holder" | "rejoin" | "paceBy" | "wake">;
  /**
   * The event store over Redis with `local` as the node's replica. `onFenced` is told of a
   * session another node took over (see {@link stopFencedSession}).
   */
  store(local: SqliteEventStore, onFenced: (sessionId: string, error: FencedError) => void): RedisEventStore;
  /**
   * Gives the node id back; `keepLease`: held sessions run on, so the lease is left to expire and
   * a restart within the TTL takes it back (docs/cluster.md, "Held sessions").
   */
  close(options?: { keepLease?: boolean }): Promise<void>;
}

/** The file in the data directory naming the node lease's holder of the last start (see NodeLease). */
export const NODE_LEASE_FILE = "node-lease";

function previousHolder(dataDir: string): string | undefined {
  try {
    const text = readFileSync(join(dataDir, NODE_LEASE_FILE), "utf8").trim();
    return /^[0-9a-f]{32}$/.test(text) ? text : undefined;
  } catch (error) {
    // None yet: the first start in cluster mode on this data directory.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** While Redis writes fail, a line naming the failing sessions and their send queues is logged this often. */
const REDIS_FAILURE_REMINDER_MS = 10_000;

/**
 * A session this node owned was taken over (its epoch raised behind its back): nothing it
 * writes reaches a viewer any more, so its process is stopped here, the log says why, and once
 * it is stopped `follow` shows the session as a copy of the new owner's (its viewers here see the
 * new owner's `lost`, a stream's next output; steering goes there).
 */
export function stopFencedSession(
  o: { sessions: SessionManager; logger: Logger; follow: (sessionId: string, owner: string) => Promise<void> },
  sessionId: string,
  error: FencedError,
): void {
  const { sessions, logger } = o;
  logger.error(
    { sessionId, reason: error.message },
    "session fenced: another node owns it now, so this node stops it and appends nothing more to it",
  );
  const session = sessions.get(sessionId);
  if (session === undefined) return;
  const system: Actor = { name: "gateway", role: "system" };
  // Its end is not awaited: it cannot be published (the append is refused too).
  void session
    .shutdown(system, { endHeld: true })
    .catch((e: unknown) => logger.warn({ sessionId, err: e }, "fenced session did not stop"));
  // A stream has no process: it follows at once.
  void (session.record.kind === "stream" ? Promise.resolve() : session.stopped())
    .then(() => {
      // Removed from Redis (no owner): nothing to follow; what is sent to it here is refused.
      if (error.owner === "") {
        session.log.markCopy(
          () =>
            new SwitchboardError(
              "WRONG_SESSION_KIND",
              `session ${sessionId} was removed from the cluster while this node was cut off from it`,
            ),
        );
        return undefined;
      }
      return o.follow(sessionId, error.owner);
    })
    .catch((e: unknown) => logger.warn({ sessionId, err: e }, "fenced session could not follow its new owner"));
}

/** Connects to Redis and claims the node id (refused while another live node holds it). */
export async function joinCluster(
  settings: ClusterSettings,
  clock: Clock,
  logger: Logger,
  metrics: GatewayMetrics,
  /** Whose lock this start holds: the lease its last start left is taken back (NodeLease). */
  dataDir: string,
): Promise<ClusterLink> {
  const redis = await connectRedis(settings.seeds);
  let lease: NodeLease;
  let shared: RedisEventStore | undefined;
  try {
    lease = await NodeLease.claim({
      redis,
      keyPrefix: settings.keyPrefix,
      nodeId: settings.nodeId,
      clock,
      ...(settings.nodeTtlMs !== undefined ? { ttlMs: settings.nodeTtlMs } : {}),
      previousHolder: previousHolder(dataDir),
      onLost: (reason) => logger.error({ nodeId: settings.nodeId, reason }, "node lease not renewed"),
      // Back from a pause or a partition past the TTL: another node may have taken its sessions over.
      onRenewed: (lapsed) => {
        if (!lapsed) return;
        logger.warn(
          { nodeId: settings.nodeId },
          "node lease had expired: checking which sessions are still this node's",
        );
        shared
          ?.checkEpochs()
          .catch((error: unknown) => logger.warn({ err: error }, "checking the sessions' epochs failed"));
      },
    });
    writePrivateFile(join(dataDir, NODE_LEASE_FILE), lease.holder);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  logger.info(
    { nodeId: settings.nodeId, redis: settings.seeds.length, waitReplicas: settings.waitReplicas ?? 0 },
    "joined the cluster",
  );
  const waitReplicas = settings.waitReplicas ?? 0;
  const confirmReplicas =
    waitReplicas > 0
      ? replicaConfirmation(redis, {
          replicas: waitReplicas,
          timeoutMs: settings.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS,
          keyPrefix: settings.keyPrefix,
        })
      : undefined;
  let closing: Promise<void> | undefined;
  const log = new RedisLog(redis, settings.keyPrefix, (seconds) => metrics.observeRedisAppend(seconds));
  return {
    settings,
    redis,
    log,
    ttlMs: lease.ttlMs,
    lease,
    store(local, onFenced) {
      let reminder: Timer | undefined;
      const store = (shared = new RedisEventStore({
        local,
        redis: log,
        nodeId: settings.nodeId,
        clock,
        onFenced,
        ...(confirmReplicas ? { confirmReplicas } : {}),
        onWriteFailed: (failure) => {
          if (reminder !== undefined) return;
          logger.error(
            { code: failure.code, reason: failure.message, attempts: failure.attempts },
            "Redis does not take the log's appends: new sessions, prompts and appended events are refused (LOG_UNAVAILABLE), running processes are held back once their backlog is full, and what they wrote waits in memory and is written in order once Redis answers again",
          );
          const remind = (): void => {
            reminder = clock.setTimeout(() => {
              // Closed meanwhile: nothing is retried any more, so nothing to remind of.
              if (store.closed) return;
              const now = store.writeFailure;
              logger.error(
                {
                  reason: now?.message,
                  attempts: now?.attempts,
                  failingForMs: clock.now() - failure.since,
                  sessions: store.failingSessions.slice(0, 20),
                },
                "Redis still does not take the log's appends for these sessions",
              );
              remind();
            }, REDIS_FAILURE_REMINDER_MS);
          };
          remind();
        },
        onWriteRecovered: (failure) => {
          reminder?.cancel();
          reminder = undefined;
          logger.info(
            { attempts: failure.attempts, failedForMs: clock.now() - failure.since },
            "Redis takes appends again: everything held in memory was written",
          );
        },
      }));
      metrics.observeCluster({
        nodeId: settings.nodeId,
        connected: () => redis.status === "ready",
        waitingBytes: () => store.bytesWaiting,
      });
      return store;
    },
    close(options = {}) {
      if (options.keepLease === true) lease.stop();
      closing ??= lease
        .release()
        .catch((error: unknown) => logger.warn({ err: error }, "node lease not released: it expires by itself"))
        .finally(() => redis.disconnect());
      return closing;
    },
  };
}

/**
 * Starts this node's requests to other nodes and its answers to theirs (docs/cluster.md,
 * "Requests to the owner"); a request is at most a body (`bodyBytes`) and what goes with it.
 */
export async function startNodeRpc(
  link: ClusterLink,
  o: { clock: Clock; logger: Logger; bodyBytes: number; handle: NodeRequestHandler; idle: () => boolean },
): Promise<NodeRpc> {
  const rpc = new NodeRpc({
    redis: link.redis,
    keyPrefix: link.settings.keyPrefix,
    nodeId: link.settings.nodeId,
    clock: o.clock,
    handle: o.handle,
    maxRequestBytes: o.bodyBytes + NODE_REQUEST_OVERHEAD_BYTES,
    // Its sweep on an idle node's lease renewals: the node wakes once for both.
    sweepMs: leaseRenewalMs(link.ttlMs, true),
    idle: o.idle,
    ...(link.settings.requestTimeoutMs !== undefined ? { timeoutMs: link.settings.requestTimeoutMs } : {}),
    onProblem: (what, detail) => o.logger.warn(detail, what),
  });
  await rpc.start();
  return rpc;
}
