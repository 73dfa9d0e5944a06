import type { Clock } from "../core/clock.js";
import { DEFAULT_KEY_PREFIX, defaultNodeId, nodeIdProblem } from "../cluster/cluster-settings.js";
import type { ClusterSettings } from "../cluster/cluster-settings.js";
import { NodeLease } from "../cluster/node-lease.js";
import { connectRedis } from "../cluster/redis-client.js";
import type { RedisClient } from "../cluster/redis-client.js";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";

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
  const problem = nodeIdProblem(nodeId);
  if (problem !== undefined) throw new Error(problem);
  return { seeds, nodeId, keyPrefix: config?.keyPrefix ?? DEFAULT_KEY_PREFIX };
}

/** A gateway's link to the cluster: its Redis connection and its node's lease. */
export interface ClusterLink {
  readonly settings: ClusterSettings;
  readonly redis: RedisClient;
  close(): Promise<void>;
}

/** Connects to Redis and claims the node id (refused while another live node holds it). */
export async function joinCluster(settings: ClusterSettings, clock: Clock, logger: Logger): Promise<ClusterLink> {
  const redis = await connectRedis(settings.seeds);
  let lease: NodeLease;
  try {
    lease = await NodeLease.claim({
      redis,
      keyPrefix: settings.keyPrefix,
      nodeId: settings.nodeId,
      clock,
      onLost: (reason) => logger.error({ nodeId: settings.nodeId, reason }, "node lease not renewed"),
    });
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  logger.info({ nodeId: settings.nodeId, redis: settings.seeds.length }, "joined the cluster");
  let closing: Promise<void> | undefined;
  return {
    settings,
    redis,
    close() {
      closing ??= lease
        .release()
        .catch((error: unknown) => logger.warn({ err: error }, "node lease not released: it expires by itself"))
        .finally(() => redis.disconnect());
      return closing;
    },
  };
}
