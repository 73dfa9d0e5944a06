import { Cluster, Redis } from "ioredis";
import type { ClusterNode } from "ioredis";

/** A connection to the cluster's Redis: one server, or a Redis Cluster named by several seeds. */
export type RedisClient = Redis | Cluster;

/**
 * How long a command may wait for a connection that is down before it fails: commands are not
 * queued without bound while Redis is away (the log keeps what waits, see docs/cluster.md).
 */
export const REDIS_COMMAND_TIMEOUT_MS = 5_000;
/** Longest pause between two reconnection attempts. */
export const REDIS_RECONNECT_MAX_MS = 1_000;

/** Credentials and TLS as the URL gives them, and the command settings every connection shares. */
function connectionOptions(url: URL) {
  return {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === "rediss:" ? { tls: { servername: url.hostname } } : {}),
    maxRetriesPerRequest: null,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
  };
}

/** Never give up reconnecting: a Redis restart must not end the gateway's cluster mode. */
const reconnectDelay = (attempt: number) => Math.min(attempt * 50, REDIS_RECONNECT_MAX_MS);

/**
 * Connects to the seeds (see parseRedisSeeds): one URL is one server (its path selects the
 * database), several are the seeds of a Redis Cluster. Resolves once connected; rejects with
 * what went wrong (the URLs' passwords are not in it).
 */
export async function connectRedis(seeds: readonly string[]): Promise<RedisClient> {
  const urls = seeds.map((s) => new URL(s));
  const first = urls[0];
  if (first === undefined) throw new Error("no Redis URL given");
  let client: RedisClient;
  if (urls.length === 1) {
    const db = Number(first.pathname.slice(1) || 0);
    client = new Redis({
      host: first.hostname,
      port: Number(first.port || 6379),
      db,
      ...connectionOptions(first),
      retryStrategy: reconnectDelay,
      lazyConnect: true,
    });
  } else {
    const nodes: ClusterNode[] = urls.map((u) => ({ host: u.hostname, port: Number(u.port || 6379) }));
    client = new Cluster(nodes, {
      redisOptions: connectionOptions(first),
      clusterRetryStrategy: reconnectDelay,
      lazyConnect: true,
    });
  }
  // Reported through the connection state (see RedisLink); without a listener ioredis prints each one.
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    const where = urls.map((u) => `${u.protocol}//${u.host}`).join(",");
    throw new Error(`cannot connect to Redis at ${where}: ${(error as Error).message}`, { cause: error });
  }
  return client;
}

/** A second connection like `client` (a subscriber needs its own: it takes no other commands). */
export function duplicateClient(client: RedisClient): RedisClient {
  return client instanceof Cluster ? client.duplicate() : client.duplicate();
}
