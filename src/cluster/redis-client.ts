import type * as IORedis from "ioredis";
import type { Cluster, ClusterNode, Redis } from "ioredis";
import { isSentinelUrl, parseSentinelUrl } from "./cluster-settings.js";
import { InternalError } from "../protocol/errors.js";

/** A connection to the cluster's Redis: one server, or a Redis Cluster named by several seeds. */
export type RedisClient = Redis | Cluster;

/** ioredis, loaded by the first connection: a single node never needs it, nor pays its start-up. */
let ioredis: Promise<typeof IORedis> | undefined;

function isCluster(client: RedisClient): client is Cluster {
  return client.isCluster;
}

/**
 * How long a command may wait for a connection that is down before it fails: commands are not
 * queued without bound while Redis is away (the log keeps what waits, see docs/cluster.md).
 */
export const REDIS_COMMAND_TIMEOUT_MS = 5_000;
/** Longest pause between two reconnection attempts. */
export const REDIS_RECONNECT_MAX_MS = 1_000;

/**
 * A command whose connection dropped before its answer fails (failSentOnDrop); the driver never
 * sends it again on reconnect (ioredis's default does): sent twice, a forwarded request's XADD
 * runs the request twice, an append written twice. Callers retry what is safe to retry (the
 * append script skips the seqs Redis holds).
 */
const AT_MOST_ONCE = { autoResendUnfulfilledCommands: false } as const;

/** Credentials and TLS as the URL gives them, and the command settings every connection shares. */
function connectionOptions(url: URL) {
  return {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === "rediss:" ? { tls: { servername: url.hostname } } : {}),
    maxRetriesPerRequest: null,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    ...AT_MOST_ONCE,
  };
}

/** Never give up reconnecting: a Redis restart must not end the gateway's cluster mode. */
const reconnectDelay = (attempt: number) => Math.min(attempt * 50, REDIS_RECONNECT_MAX_MS);

/**
 * The master that Sentinels name, asked at each (re)connect: a failover drops the connection and
 * a READONLY reply (a demoted master) reconnects. Not ioredis's `failoverDetector`: its disconnect
 * during a reconnect left the client ended for good (every command "Connection is closed.").
 */
function sentinelClient(RedisClass: typeof Redis, text: string): Redis {
  const target = parseSentinelUrl(text);
  return new RedisClass({
    sentinels: target.sentinels,
    name: target.name,
    role: "master",
    db: target.db,
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    ...AT_MOST_ONCE,
    reconnectOnError: (error: Error) => (error.message.startsWith("READONLY") ? 2 : false),
    retryStrategy: reconnectDelay,
    sentinelRetryStrategy: reconnectDelay,
    lazyConnect: true,
  });
}

/** Where the seeds point, for an error message: hosts only, never credentials. */
function describeSeeds(seeds: readonly string[]): string {
  const first = seeds[0] ?? "";
  if (isSentinelUrl(first)) {
    const target = parseSentinelUrl(first);
    return `the master ${target.name} of the Sentinels ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(",")}`;
  }
  return seeds
    .map((s) => new URL(s))
    .map((u) => `${u.protocol}//${u.host}`)
    .join(",");
}

/**
 * Connects to the seeds (see parseRedisSeeds): one URL is one server (its path selects the
 * database), a `redis+sentinel://` URL is the master its Sentinels name, several are the seeds
 * of a Redis Cluster. Resolves once connected; rejects with what went wrong (the URLs'
 * passwords are not in it).
 */
export async function connectRedis(seeds: readonly string[]): Promise<RedisClient> {
  const { Cluster, Redis } = await (ioredis ??= import("ioredis"));
  if (seeds[0] !== undefined && isSentinelUrl(seeds[0])) return connected(sentinelClient(Redis, seeds[0]), seeds);
  const urls = seeds.map((s) => new URL(s));
  const first = urls[0];
  if (first === undefined) throw new InternalError("no Redis URL given");
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
  return connected(client, seeds);
}

/**
 * Fails the commands a connection had sent when it drops. With AT_MOST_ONCE ioredis neither sends
 * them again nor fails them: each waited for the command timeout (an XREAD cut by a proxy failed
 * after 5,005 ms; test/cluster/forward-rpc.test.ts, "…while its channel reconnected…").
 */
function failSentOnDrop(client: RedisClient): RedisClient {
  const watch = (redis: Redis) =>
    redis.on("close", () => {
      // "close" comes a tick after the drop, before any reconnect replaces the queue.
      const sent = (redis as unknown as { commandQueue: { toArray(): Array<{ command: { reject(e: Error): void } }> } })
        .commandQueue;
      for (const { command } of sent.toArray())
        command.reject(new InternalError("the connection to Redis closed before it answered"));
    });
  if (isCluster(client)) client.on("+node", watch);
  else watch(client);
  return client;
}

async function connected(client: RedisClient, seeds: readonly string[]): Promise<RedisClient> {
  // Reported through the connection state (see RedisLink); without a listener ioredis prints each one.
  client.on("error", () => undefined);
  failSentOnDrop(client);
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new InternalError(`cannot connect to Redis at ${describeSeeds(seeds)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return client;
}

/** Sockets corked until the end of this turn of the event loop (see {@link oneWriteThisTurn}). */
const corked = new Set<{ cork(): void; uncork(): void }>();

/**
 * Sends every command written to `client` in this turn of the event loop in one write: its
 * sockets are corked until the turn's check phase. For periodic work on aligned timers, which
 * issues several commands at once: each write to a Redis on the same machine woke it, and its
 * wake-up preempted the node's thread, so an idle node ran once per command instead of once per
 * look (docs/benchmarks.md, "Idle cluster node").
 */
export function oneWriteThisTurn(client: RedisClient): void {
  const connections = isCluster(client) ? client.nodes() : [client];
  for (const connection of connections) {
    const socket = (connection as unknown as { stream?: { cork(): void; uncork(): void } }).stream;
    if (socket === undefined || corked.has(socket)) continue;
    if (corked.size === 0) setImmediate(uncorkAll);
    socket.cork();
    corked.add(socket);
  }
}

function uncorkAll(): void {
  for (const socket of corked) socket.uncork();
  corked.clear();
}

/** A second connection like `client` (a blocking reader needs its own). */
export function duplicateClient(client: RedisClient): RedisClient {
  return failSentOnDrop(isCluster(client) ? client.duplicate() : client.duplicate());
}

/**
 * A connection for SUBSCRIBE / SSUBSCRIBE only. After a reconnect ioredis subscribes again by
 * itself, with commands nobody handles: under a command timeout, one Redis did not answer in
 * time was an unhandled rejection, and the channel stayed unsubscribed for good (a node then
 * never heard its forwarded requests' answers). So no timeout here, and a subscribe in flight
 * when the connection drops is sent again (subscribing twice is harmless).
 */
export function subscriberClient(client: RedisClient, sharded = false): RedisClient {
  const subscriber = isCluster(client)
    ? client.duplicate([], sharded ? { shardedSubscribers: true } : {})
    : client.duplicate();
  // Not connected yet (lazyConnect): the options are read at connect and at each command.
  const options = (
    isCluster(subscriber)
      ? (subscriber.options.redisOptions = { ...subscriber.options.redisOptions })
      : subscriber.options
  ) as { commandTimeout?: number | undefined; autoResendUnfulfilledCommands?: boolean | undefined };
  delete options.commandTimeout;
  options.autoResendUnfulfilledCommands = true;
  return subscriber;
}
