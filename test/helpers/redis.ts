import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
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
  const child = spawn(REDIS_SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("Ready to accept connections")) resolve(child);
    });
    child.on("error", (error) => reject(new Error(`cannot run ${REDIS_SERVER}: ${error.message}`)));
    child.on("exit", (code) => reject(new Error(`redis-server exited (${code}): ${out.slice(-2000)}`)));
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

/**
 * Starts `masters` redis-servers with `--cluster-enabled yes` (each its own temp dir and free
 * port), joins them with `redis-cli --cluster create … --cluster-replicas 0`, and resolves once
 * every node reports `cluster_state:ok`; all are killed when the test ends.
 */
export async function startRedisCluster(masters = 3, options: RedisOptions = {}): Promise<TestRedisCluster> {
  const nodes: TestRedis[] = [];
  for (let i = 0; i < masters; i++) {
    // Each keeps its nodes.conf in its own dir.
    nodes.push(
      await startRedis({
        ...options,
        args: ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000", ...(options.args ?? [])],
      }),
    );
  }
  const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
  await run(REDIS_CLI, ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"]);
  // `create` returns once the slots are assigned; the nodes agree a moment later (gossip).
  for (const node of nodes) {
    for (let i = 0; ; i++) {
      const info = await run(REDIS_CLI, ["-p", String(node.port), "cluster", "info"]);
      if (info.includes("cluster_state:ok")) break;
      if (i >= 200) throw new Error(`Redis Cluster node ${node.port} is not ok after 10 s: ${info}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { nodes, url: nodes.map((n) => n.url).join(",") };
}
