// The processes a nemesis run attacks: one redis-server (AOF always) and N gateway nodes, each
// reaching Redis through its own FaultProxy (a partition cuts one node off), all on 127.0.0.1.
// Independent of vitest, so `npm run nemesis` runs the same code outside the suite.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliCommand } from "../../helpers/compiled-cli.js";
import { FaultProxy } from "../../helpers/fault-proxy.js";

export const NEMESIS_TOKEN = "nemesis-admin-token-0123456789abcdef";
/** The node lease's TTL in a run: short, so takeovers happen within the run (cluster.nodeTtlMs). */
export const NEMESIS_TTL_MS = 2_000;
/** How long a forwarded request waits for its owner (cluster.requestTimeoutMs). */
const NEMESIS_REQUEST_TIMEOUT_MS = 2_000;
/** Starts of a node tried in a row before the run gives up on it (one every TTL / 2). */
const START_ATTEMPTS = 40;
/** How long a node may take to say it listens (tsx compiles the sources at each start). */
const START_TIMEOUT_MS = 60_000;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What a node's log said that the checker counts: bugs, and exits nobody asked for. */
export interface NodeReport {
  bugs: string[];
  unexpectedExits: string[];
  /** The newest warnings and errors the node logged (for a failed run's diagnosis). */
  warnings: string[];
}

/** One gateway process, restarted under the same id and data dir as often as the nemesis kills it. */
export class NemesisNode {
  child: ChildProcess | undefined;
  url = "";
  port = 0;
  /** The nemesis stopped (SIGSTOP) or killed it: its exits and silence are expected. */
  expectedExit = false;
  paused = false;
  readonly report: NodeReport = { bugs: [], unexpectedExits: [], warnings: [] };

  constructor(
    readonly id: string,
    readonly dataDir: string,
    /** More `serve` arguments (its config, cluster mode). */
    private readonly args: readonly string[],
    /** Cluster mode: the proxy between it and Redis (a partition black-holes it). */
    readonly proxy?: FaultProxy,
  ) {}

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Starts it, as a supervisor would (systemd's Restart=on-failure): again after a failed start
   * (its previous run's lease still lives, Redis is down or paused, the disk is full: each exits 1
   * at start), at most {@link START_ATTEMPTS} times.
   */
  async start(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.startOnce();
        return;
      } catch (error) {
        if (attempt >= START_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, NEMESIS_TTL_MS / 2));
      }
    }
  }

  private async startOnce(): Promise<void> {
    this.port ||= await freePort();
    const [node, ...cli] = cliCommand();
    const args = [
      ...cli,
      "serve",
      "--token",
      NEMESIS_TOKEN,
      "--host",
      "127.0.0.1",
      "--port",
      String(this.port),
      "--data-dir",
      this.dataDir,
      ...this.args,
    ];
    const child = spawn(node!, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    this.expectedExit = false;
    this.paused = false;
    let stderr = "";
    let partial = "";
    child.stderr!.on("data", (d: Buffer) => {
      const text = d.toString();
      if (stderr.length < 20_000) stderr += text;
      const lines = (partial + text).split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        if (line.includes('"bug"')) this.report.bugs.push(`${this.id}: ${line.slice(0, 2000)}`);
        if (/"level":(40|50|60)/.test(line)) {
          this.report.warnings.push(`${this.id}: ${line.slice(0, 1500)}`);
          if (this.report.warnings.length > 300) this.report.warnings.shift();
        }
      }
    });
    child.stdout!.resume();
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(
        () => reject(new Error(`${this.id} did not start in ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /switchboard listening on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          this.url = m[1]!;
          resolve();
        }
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${this.id} exited at start (${code ?? signal}): ${stderr.slice(-2000)}`));
      });
    });
    child.on("exit", (code, signal) => {
      if (!this.expectedExit && child === this.child)
        this.report.unexpectedExits.push(`${this.id} exited by itself (${code ?? signal}): ${stderr.slice(-3000)}`);
    });
  }

  kill9(): void {
    this.expectedExit = true;
    this.child?.kill("SIGCONT");
    this.child?.kill("SIGKILL");
    this.paused = false;
  }

  pause(): void {
    this.paused = true;
    this.child?.kill("SIGSTOP");
  }

  resume(): void {
    this.paused = false;
    this.child?.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.alive) return;
    this.kill9();
    await new Promise((resolve) => child.once("exit", resolve));
  }
}

/** The redis-server of a run, with its AOF in a temp dir, killed and restarted on the same port. */
export class NemesisRedis {
  child: ChildProcess | undefined;
  paused = false;

  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  static async start(dir: string): Promise<NemesisRedis> {
    const redis = new NemesisRedis(await freePort(), dir);
    await redis.restart();
    return redis;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async restart(): Promise<void> {
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, "--save", ""];
    const child = spawn(
      "/usr/bin/redis-server",
      [...args, "--appendonly", "yes", "--appendfsync", "always", "--logfile", ""],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    this.paused = false;
    await new Promise<void>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("Ready to accept connections")) resolve();
      });
      child.on("exit", (code) => reject(new Error(`redis-server exited (${code}): ${out.slice(-2000)}`)));
    });
    child.stdout!.resume();
  }

  async kill9(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.alive) return;
    child.kill("SIGCONT");
    child.kill("SIGKILL");
    this.paused = false;
    await new Promise((resolve) => child.once("exit", resolve));
  }

  pause(): void {
    this.paused = true;
    this.child?.kill("SIGSTOP");
  }

  resume(): void {
    this.paused = false;
    this.child?.kill("SIGCONT");
  }
}

/** A run's processes: Redis, the nodes, their proxies, and the temp dir holding their files. */
export interface NemesisCluster {
  redis: NemesisRedis;
  nodes: NemesisNode[];
  close(): Promise<void>;
}

export async function startNemesisCluster(nodeCount: number): Promise<NemesisCluster> {
  const root = mkdtempSync(join(tmpdir(), "sb-nemesis-"));
  const redis = await NemesisRedis.start(root);
  const config = join(root, "config.json");
  writeFileSync(
    config,
    JSON.stringify({
      cluster: {
        redis: "redis://127.0.0.1:1",
        nodeTtlMs: NEMESIS_TTL_MS,
        requestTimeoutMs: NEMESIS_REQUEST_TIMEOUT_MS,
      },
    }),
  );
  const nodes: NemesisNode[] = [];
  const proxies: FaultProxy[] = [];
  const close = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.kill9();
    for (const proxy of proxies) await proxy.close();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < nodeCount; i++) {
      const proxy = await FaultProxy.start(redis.port);
      proxies.push(proxy);
      const dataDir = join(root, `node-${i}`);
      const id = `gw-${String.fromCharCode(97 + i)}`;
      const args = ["--config", config, "--redis", `redis://127.0.0.1:${proxy.port}`, "--node-id", id];
      nodes.push(new NemesisNode(id, dataDir, args, proxy));
    }
    await Promise.all(nodes.map((n) => n.start()));
  } catch (error) {
    await close();
    throw error;
  }
  return { redis, nodes, close };
}
