import { hostname } from "node:os";

/** What a gateway in cluster mode runs with (see docs/cluster.md). */
export interface ClusterSettings {
  /** One Redis URL, or several seed URLs of a Redis Cluster. */
  seeds: string[];
  /** This node's name: unique among the live nodes (see NodeLease). */
  nodeId: string;
  /** Put in front of every key this gateway uses, so that several clusters can share one Redis. */
  keyPrefix: string;
  /** How long this node's lease (heartbeat) lives unrenewed before others take its sessions over. */
  nodeTtlMs?: number;
}

export const DEFAULT_KEY_PREFIX = "sb:";
/** Most seed URLs one `--redis` may name. */
export const MAX_REDIS_SEEDS = 32;
/** Node ids name keys and log lines: printable, no spaces, at most this long. */
export const NODE_ID_MAX_CHARS = 128;
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/;
export const KEY_PREFIX_PATTERN = /^[A-Za-z0-9_.:-]{0,64}$/;

/**
 * The problem with a Redis URL, or undefined when it is one: `redis://` or `rediss://` (TLS),
 * a host, and at most a database number as its path.
 */
export function redisUrlProblem(text: string): string | undefined {
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
 * The seed URLs of `--redis` or SWITCHBOARD_REDIS_URL (comma-separated); throws an Error naming
 * the first problem.
 */
export function parseRedisSeeds(text: string): string[] {
  const seeds = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (seeds.length === 0) throw new Error("no Redis URL given: write redis://HOST:PORT[/DB]");
  if (seeds.length > MAX_REDIS_SEEDS)
    throw new Error(`at most ${MAX_REDIS_SEEDS} Redis seed URLs, not ${seeds.length}`);
  for (const seed of seeds) {
    const problem = redisUrlProblem(seed);
    if (problem !== undefined) throw new Error(problem);
  }
  return seeds;
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
