import { hostname } from "node:os";
import { InternalError } from "../protocol/errors.js";

/** What a gateway in cluster mode runs with (see docs/cluster.md). */
export interface ClusterSettings {
  /** One Redis URL, one `redis+sentinel://` URL, or several seed URLs of a Redis Cluster. */
  seeds: string[];
  /** This node's name: unique among the live nodes (see NodeLease). */
  nodeId: string;
  /** Put in front of every key this gateway uses, so that several clusters can share one Redis. */
  keyPrefix: string;
  /** How long this node's lease (heartbeat) lives unrenewed before others take its sessions over. */
  nodeTtlMs?: number;
  /** Replicas that must hold each append before its events are delivered (`WAIT`); 0: none. */
  waitReplicas?: number;
  /** How long one `WAIT` may take before the append counts as not acknowledged. */
  waitTimeoutMs?: number;
  /** How long a request forwarded to another node waits for its answer before NODE_UNAVAILABLE. */
  requestTimeoutMs?: number;
}

export const DEFAULT_KEY_PREFIX = "sb:";
/** Most seed URLs one `--redis` may name. */
export const MAX_REDIS_SEEDS = 32;
/** Node ids name keys and log lines: printable, no spaces, at most this long. */
export const NODE_ID_MAX_CHARS = 128;
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/;
export const KEY_PREFIX_PATTERN = /^[A-Za-z0-9_.:-]{0,64}$/;
/** Most replicas `waitReplicas` may ask for. */
export const MAX_WAIT_REPLICAS = 16;
/**
 * `waitTimeoutMs`: the default, and the bounds (under REDIS_COMMAND_TIMEOUT_MS, so the driver
 * never gives up on a WAIT that Redis is still running).
 */
export const DEFAULT_WAIT_TIMEOUT_MS = 1_000;
export const MIN_WAIT_TIMEOUT_MS = 10;
export const MAX_WAIT_TIMEOUT_MS = 4_000;
/**
 * Shortest and longest `requestTimeoutMs` (its default is NODE_REQUEST_TIMEOUT_MS, 5 s); tests
 * shorten it to see NODE_UNAVAILABLE without waiting 5 s.
 */
export const MIN_REQUEST_TIMEOUT_MS = 500;
export const MAX_REQUEST_TIMEOUT_MS = 60_000;
/** The port of a Sentinel a `redis+sentinel://` URL names without one. */
export const DEFAULT_SENTINEL_PORT = 26379;
/** A master's name as Sentinel knows it (`sentinel monitor <name> …`). */
const MASTER_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const SENTINEL_URL_SHAPE = "redis+sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER[/DB]";

/** A Redis found through its Sentinels, as a `redis+sentinel://` URL names it. */
export interface SentinelTarget {
  sentinels: Array<{ host: string; port: number }>;
  /** The master's name the Sentinels monitor. */
  name: string;
  db: number;
  username?: string;
  password?: string;
  /** `rediss+sentinel://`: TLS to the Redis servers (the Sentinels are asked in plain text). */
  tls: boolean;
}

/** Whether `text` names Sentinels rather than one server. */
export function isSentinelUrl(text: string): boolean {
  return /^rediss?\+sentinel:\/\//i.test(text.trim());
}

/**
 * Reads a `redis+sentinel://` URL (see {@link SentinelTarget}); throws an Error naming its
 * problem. The credentials are the Redis servers'; the Sentinels are asked without any.
 * @example
 * parseSentinelUrl("redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/mymaster/0");
 * // => { sentinels: [{host: "10.0.0.5", port: 26379}, {host: "10.0.0.6", port: 26379}], name: "mymaster", db: 0, tls: false }
 */
export function parseSentinelUrl(text: string): SentinelTarget {
  const m = /^(rediss?)\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/@]+)\/([^/]*)(?:\/(\d{1,2}))?\/?$/i.exec(
    text.trim(),
  );
  if (m === null) throw new InternalError(`a Sentinel URL looks like ${SENTINEL_URL_SHAPE}`);
  const [, scheme = "", user = "", password = "", hostList = "", name = "", db = "0"] = m;
  if (!MASTER_NAME_PATTERN.test(name))
    throw new InternalError(
      `a Sentinel URL names the master as its path, 1 to 64 letters, digits and _ . - (${SENTINEL_URL_SHAPE})`,
    );
  const hosts = hostList.split(",").filter((h) => h !== "");
  if (hosts.length === 0 || hosts.length > MAX_REDIS_SEEDS)
    throw new InternalError(`a Sentinel URL names 1 to ${MAX_REDIS_SEEDS} Sentinels (${SENTINEL_URL_SHAPE})`);
  const sentinels = hosts.map((h) => {
    const address = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/.exec(h);
    const port = Number(address?.[2] ?? DEFAULT_SENTINEL_PORT);
    if (address === null || port < 1 || port > 65_535)
      throw new InternalError(
        `${JSON.stringify(h.slice(0, 100))} is not a Sentinel's HOST:PORT (${SENTINEL_URL_SHAPE})`,
      );
    return { host: address[1]!.replace(/^\[|\]$/g, ""), port };
  });
  return {
    sentinels,
    name,
    db: Number(db),
    ...(user !== "" ? { username: decodeURIComponent(user) } : {}),
    ...(password !== "" ? { password: decodeURIComponent(password) } : {}),
    tls: scheme.toLowerCase() === "rediss",
  };
}

/**
 * The problem with a Redis URL, or undefined when it is one: `redis://` or `rediss://` (TLS),
 * a host, and at most a database number as its path.
 */
export function redisUrlProblem(text: string): string | undefined {
  if (isSentinelUrl(text)) {
    try {
      parseSentinelUrl(text);
      return undefined;
    } catch (error) {
      // The problem is the answer.
      return (error as Error).message;
    }
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Not a URL at all; the problem says what one looks like.
    return `${JSON.stringify(text.slice(0, 100))} is not a URL: write redis://HOST:PORT[/DB]`;
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:")
    return `${url.protocol}// is not a Redis URL: write redis://HOST:PORT[/DB] (rediss:// for TLS)`;
  if (url.hostname === "") return `a Redis URL needs a host: redis://HOST:PORT[/DB]`;
  if (!/^(?:\/\d{0,2})?$/.test(url.pathname)) return `a Redis URL's path is a database number (redis://HOST:PORT/0)`;
  return undefined;
}

/**
 * The seed URLs of `--redis` or SWITCHBOARD_REDIS_URL (comma-separated; a `redis+sentinel://`
 * URL, whose Sentinels are separated by commas too, is one); throws an Error naming the first problem.
 */
export function parseRedisSeeds(text: string): string[] {
  if (isSentinelUrl(text)) {
    parseSentinelUrl(text);
    return [text.trim()];
  }
  const seeds = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (seeds.length === 0) throw new InternalError("no Redis URL given: write redis://HOST:PORT[/DB]");
  if (seeds.length > MAX_REDIS_SEEDS)
    throw new InternalError(`at most ${MAX_REDIS_SEEDS} Redis seed URLs, not ${seeds.length}`);
  for (const seed of seeds) {
    const problem = redisUrlProblem(seed);
    if (problem !== undefined) throw new InternalError(problem);
  }
  return seeds;
}

/**
 * The problem with a list of seeds as a whole, or undefined: a Sentinel URL stands alone, and
 * `waitReplicas` needs one server or Sentinel (a Redis Cluster's WAIT would have to reach the
 * shard of each append, which is not built).
 */
export function redisSeedsProblem(seeds: readonly string[], waitReplicas = 0): string | undefined {
  if (seeds.length > 1 && seeds.some(isSentinelUrl))
    return "a redis+sentinel:// URL names all its Sentinels itself: give it alone, not in a list of seeds";
  if (seeds.length > 1 && waitReplicas > 0)
    return "cluster.waitReplicas needs one Redis server or a redis+sentinel:// URL, not a Redis Cluster: set it to 0 or name one server";
  return undefined;
}

/** The problem with a node id, or undefined when it is one. */
export function nodeIdProblem(id: string): string | undefined {
  if (id.length === 0 || id.length > NODE_ID_MAX_CHARS || !NODE_ID_PATTERN.test(id))
    return `a node id is 1 to ${NODE_ID_MAX_CHARS} letters, digits and _ . : @ - (starting with a letter or digit), not ${JSON.stringify(id.slice(0, 100))}`;
  return undefined;
}

/**
 * The node id when none is given: the host name and the port. With `--port 0` the port is not
 * known before the log opens, so the process id stands in for it.
 */
export function defaultNodeId(port: number, host = hostname(), pid = process.pid): string {
  const name = host.replace(/[^A-Za-z0-9_.:@-]/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "node";
  return (port === 0 ? `${name}:pid${pid}` : `${name}:${port}`).slice(0, NODE_ID_MAX_CHARS);
}
