import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { tempDir } from "./tmp.js";
import { afterTest } from "./cleanup.js";

export const REDIS_SERVER = "/usr/bin/redis-server";

/** A redis-server this test started, on 127.0.0.1 at a free port, with its files in a temp dir. */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly child: ChildProcess;
  /** SIGKILLs it (no shutdown save: only what its AOF already holds survives). */
  kill9(): Promise<void>;
  /** Starts it again on the same port and dir (its AOF is loaded). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisOptions {
  /** `appendfsync` with `appendonly yes`; no AOF when undefined. */
  appendfsync?: "always" | "everysec";
  /** More `--name value` arguments (e.g. `["--cluster-enabled", "yes"]`). */
  args?: string[];
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function launch(port: number, dir: string, options: RedisOptions): Promise<ChildProcess> {
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--logfile",
    "",
    ...(options.appendfsync ? ["--appendonly", "yes", "--appendfsync", options.appendfsync] : ["--appendonly", "no"]),
    ...(options.args ?? []),
  ];
  return spawnUntil(REDIS_SERVER, args, "Ready to accept connections", "redis-server");
}

/** Runs `program` and resolves once its output shows `ready`; rejects, naming it `what`, if it exits first. */
function spawnUntil(program: string, args: string[], ready: string, what: string): Promise<ChildProcess> {
  const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes(ready)) resolve(child);
    });
    child.on("error", (error) => reject(new Error(`cannot run ${program}: ${error.message}`)));
    child.on("exit", (code) => reject(new Error(`${what} exited (${code}): ${out.slice(-2000)}`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Starts a redis-server for this test; it is killed when the test (or the file, outside a test) ends. */
export async function startRedis(options: RedisOptions = {}): Promise<TestRedis> {
  const dir = tempDir("switchboard-redis-");
  let port = 0;
  let child: ChildProcess | undefined;
  // Another process may take the free port before redis-server binds it: try a few.
  for (let attempt = 0; child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await launch(port, dir, options);
    } catch (error) {
      if (attempt >= 4) throw error;
    }
  }
  const redis: TestRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    child,
    async kill9() {
      redis.child.kill("SIGKILL");
      await exited(redis.child);
    },
    async restart() {
      (redis as { child: ChildProcess }).child = await launch(port, dir, options);
    },
    async stop() {
      redis.child.kill("SIGKILL");
      await exited(redis.child);
    },
  };
  afterTest(() => redis.stop());
  return redis;
}

export const REDIS_CLI = "/usr/bin/redis-cli";

/** A Redis Cluster of masters this test started (each a {@link TestRedis} with `--cluster-enabled yes`). */
export interface TestRedisCluster {
  readonly nodes: readonly TestRedis[];
  /** The seed list a gateway is given: `redis://127.0.0.1:P1,redis://127.0.0.1:P2,…`. */
  readonly url: string;
}

function run(program: string, args: string[]): Promise<string> {
  const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`cannot run ${program}: ${error.message}`)));
    child.on("exit", (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${program} ${args.join(" ")} exited (${code}): ${out.slice(-2000)}`)),
    );
  });
}

/** Hash slots of a Redis Cluster (0 to 16383). */
const CLUSTER_SLOTS = 16_384;

/**
 * Starts `masters` redis-servers with `--cluster-enabled yes` (each its own temp dir and free
 * port), joins them as `redis-cli --cluster create … --cluster-replicas 0` does (slots split
 * evenly, a config epoch each, `CLUSTER MEET`) but without its one-second waits, and resolves
 * once every node reports `cluster_state:ok` and knows the others; all are killed when the test ends.
 */
export async function startRedisCluster(masters = 3, options: RedisOptions = {}): Promise<TestRedisCluster> {
  // Each keeps its nodes.conf in its own dir.
  const nodes = await Promise.all(
    Array.from({ length: masters }, () =>
      startRedis({
        ...options,
        args: ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000", ...(options.args ?? [])],
      }),
    ),
  );
  const cli = (node: TestRedis, ...args: string[]) => run(REDIS_CLI, ["-p", String(node.port), ...args]);
  const per = Math.ceil(CLUSTER_SLOTS / masters);
  for (const [i, node] of nodes.entries()) {
    const last = Math.min(CLUSTER_SLOTS, (i + 1) * per) - 1;
    await cli(node, "cluster", "addslotsrange", String(i * per), String(last));
    await cli(node, "cluster", "set-config-epoch", String(i + 1));
  }
  for (const node of nodes.slice(1)) await cli(nodes[0]!, "cluster", "meet", "127.0.0.1", String(node.port));
  // The nodes agree a moment later (gossip).
  const knowsAll = new RegExp(`^cluster_known_nodes:${masters}\\r?$`, "m");
  for (const node of nodes) {
    for (let i = 0; ; i++) {
      const info = await cli(node, "cluster", "info");
      if (info.includes("cluster_state:ok") && knowsAll.test(info)) break;
      if (i >= 200) throw new Error(`Redis Cluster node ${node.port} is not ok after 10 s: ${info}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { nodes, url: nodes.map((n) => n.url).join(",") };
}

export const REDIS_SENTINEL = "/usr/bin/redis-sentinel";

/** A primary, its replicas and the Sentinels that watch them, all started by this test. */
export interface TestSentinels {
  /** The master's name the Sentinels monitor. */
  readonly name: string;
  readonly primary: TestRedis;
  readonly replicas: readonly TestRedis[];
  readonly sentinelPorts: readonly number[];
  /** What a gateway is given: `redis+sentinel://127.0.0.1:S1,…/<name>`. */
  readonly url: string;
  /** Resolves once every Sentinel sees the replicas and the other Sentinels: a failover can start at once. */
  whenWatching(): Promise<void>;
  /** The port of the server the Sentinels name as master now (asks the first that answers). */
  masterPort(): Promise<number>;
}

/** Starts one redis-sentinel watching the master on `masterPort`, on a free port; resolves with its port. */
async function startSentinelProcess(name: string, masterPort: number, quorum: number): Promise<number> {
  const dir = tempDir("switchboard-sentinel-");
  const conf = join(dir, "sentinel.conf");
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    writeFileSync(
      conf,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} ${quorum}`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 10000`,
        "",
      ].join("\n"),
    );
    try {
      const child = await spawnUntil(
        REDIS_SENTINEL,
        [conf, "--logfile", ""],
        "+monitor master",
        `redis-sentinel on ${port}`,
      );
      afterTest(async () => {
        child.kill("SIGKILL");
        await exited(child);
      });
      return port;
    } catch (error) {
      // Another process took the free port first: try another.
      if (attempt >= 4) throw error;
    }
  }
}

async function pollUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A primary and its replicas, all started by this test. */
export interface TestReplicatedRedis {
  readonly primary: TestRedis;
  readonly replicas: readonly TestRedis[];
}

/**
 * Starts a primary (with `options`, e.g. AOF) and `replicas` servers replicating it; resolves
 * once every replica is in sync. All are killed when the test ends.
 */
export async function startReplicatedRedis(
  replicaCount: number,
  options: RedisOptions = {},
): Promise<TestReplicatedRedis> {
  // Redis 7 waits 5 s (`repl-diskless-sync-delay`) before a full sync, for more replicas to join
  // it; each server here, the primary and a replica Sentinel promotes, syncs at once instead.
  const args = ["--repl-diskless-sync-delay", "0", ...(options.args ?? [])];
  const primary = await startRedis({ ...options, args });
  const extra = ["--replicaof", "127.0.0.1", String(primary.port), ...args];
  const replicas = await Promise.all(
    Array.from({ length: replicaCount }, () => startRedis({ ...options, args: extra })),
  );
  await pollUntil("replicas in sync", 10_000, async () => {
    const info = await run(REDIS_CLI, ["-p", String(primary.port), "info", "replication"]);
    return (info.match(/state=online/g) ?? []).length === replicas.length;
  });
  return { primary, replicas };
}

/**
 * Starts a primary and `replicas` replicas (see {@link startReplicatedRedis}) and `sentinels`
 * redis-sentinel processes (quorum a majority, `down-after-milliseconds` 1,000, each on a free
 * port with its config in a temp dir); resolves once they run (see `whenWatching`). All are
 * killed when the test ends.
 */
export async function startSentinel(
  o: { replicas?: number; sentinels?: number; options?: RedisOptions } = {},
): Promise<TestSentinels> {
  const name = "sbmaster";
  const { primary, replicas } = await startReplicatedRedis(o.replicas ?? 1, o.options);
  const count = o.sentinels ?? 3;
  const quorum = Math.floor(count / 2) + 1;
  const sentinelPorts = await Promise.all(
    Array.from({ length: count }, () => startSentinelProcess(name, primary.port, quorum)),
  );
  const watching = Promise.all(
    sentinelPorts.map((port) =>
      pollUntil(`Sentinel ${port} sees the replicas and the other Sentinels`, 20_000, async () => {
        const info = await run(REDIS_CLI, ["-p", String(port), "sentinel", "master", name]);
        const field = (key: string) => Number(new RegExp(`^${key}\\n(\\d+)$`, "m").exec(info)?.[1] ?? -1);
        return field("num-slaves") === replicas.length && field("num-other-sentinels") === count - 1;
      }),
    ),
  );
  // Awaited by whenWatching(); a test that never asks is not failed by it.
  watching.catch(() => undefined);
  return {
    name,
    primary,
    replicas,
    sentinelPorts,
    url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(",")}/${name}`,
    async whenWatching() {
      await watching;
    },
    async masterPort() {
      for (const port of sentinelPorts) {
        const answer = await run(REDIS_CLI, ["-p", String(port), "sentinel", "get-master-addr-by-name", name]).catch(
          () => undefined,
        );
        const master = answer?.trim().split("\n")[1];
        if (master !== undefined) return Number(master);
      }
      throw new Error("no Sentinel answers");
    },
  };
}
