import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { WebSocket } from "ws";
import { expect, onTestFinished } from "vitest";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { startRedis } from "../helpers/redis.js";
import type { RedisOptions, TestRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/tmp.js";
import { afterFile } from "../helpers/cleanup.js";
import { waitFor } from "../helpers/wait-for.js";

export type Frame = Record<string, any>;

/** Stops a gateway when the file's tests end: for a cluster a `beforeAll` starts and several tests share. */
export { afterFile };

/**
 * Three gateway processes, gw-a, gw-b and gw-c, on one real redis-server; `defer` registers their
 * kill (default: when the running test finishes; {@link afterFile} from a `beforeAll`).
 */
export async function threeNodes(
  defer?: (fn: () => void) => void,
): Promise<[ChildGateway, ChildGateway, ChildGateway]> {
  const redis = await startRedis();
  const nodes = await Promise.all(
    ["gw-a", "gw-b", "gw-c"].map((name) =>
      serveInChild({
        dataDir: tempDir(),
        args: ["--redis", redis.url, "--node-id", name],
        ...(defer ? { defer } : {}),
      }),
    ),
  );
  return nodes as [ChildGateway, ChildGateway, ChildGateway];
}

/**
 * Gateway processes named `names` on one real redis-server (AOF `always` unless `o.redis` says
 * otherwise), each with its own data directory and a config file holding `config` with
 * `cluster.redis` set to that server; `o.defer` as for {@link threeNodes}.
 */
export async function configuredNodes(
  names: string[],
  config: { cluster?: Record<string, unknown>; [section: string]: unknown },
  o: { redis?: RedisOptions; defer?: (fn: () => void) => void } = {},
): Promise<{ redis: TestRedis; nodes: ChildGateway[]; configs: string[] }> {
  const redis = await startRedis(o.redis ?? { appendfsync: "always" });
  const configs = names.map(() => join(tempDir(), "config.json"));
  const nodes = await Promise.all(
    names.map((name, i) => {
      const file = configs[i]!;
      writeFileSync(file, JSON.stringify({ ...config, cluster: { ...config.cluster, redis: redis.url } }));
      return serveInChild({
        dataDir: join(dirname(file), "data"),
        config: file,
        args: ["--node-id", name],
        ...(o.defer ? { defer: o.defer } : {}),
      });
    }),
  );
  return { redis, nodes, configs };
}

/** Resolves once every node lists session `id` (a node forwards only what it knows). */
export async function listedEverywhere(nodes: ChildGateway[], id: string): Promise<void> {
  await waitFor(async () => {
    expect(await Promise.all(nodes.map(async (n) => (await api(n.url).get(`/v1/sessions/${id}`)).status))).toEqual(
      nodes.map(() => 200),
    );
    return true;
  }, 15_000);
}

/** A WebSocket client that keeps every JSON frame it gets and waits for the ones a test expects. */
export class WsClient {
  readonly frames: Frame[] = [];
  private readonly taken = new Set<number>();
  private readonly wake = new Set<() => void>();
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (raw, isBinary) => {
      if (isBinary) return;
      this.frames.push(JSON.parse(String(raw)) as Frame);
      for (const w of this.wake) w();
    });
    this.closed = new Promise((resolve) => ws.once("close", (code) => resolve(code)));
  }

  /** Opens `path` on `node` with `token` (the admin's by default); closed when the test ends. */
  static async open(
    node: ChildGateway,
    path: string,
    defer: (fn: () => void) => void = (fn) => onTestFinished(fn),
    token = TEST_TOKEN,
  ): Promise<WsClient> {
    const ws = new WebSocket(`${node.url.replace(/^http/, "ws")}${path}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    defer(() => ws.terminate());
    // Listening before it opens: the first frames come with the upgrade.
    const client = new WsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return client;
  }

  send(frame: Frame): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** The first frame not taken yet that `match` accepts (waits up to `timeoutMs` for it). */
  async next(match: (f: Frame) => boolean, timeoutMs = 15_000): Promise<Frame> {
    const find = () => this.frames.findIndex((f, i) => !this.taken.has(i) && match(f));
    let at = find();
    if (at < 0) {
      let wake = () => {};
      const timer = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
      try {
        while (at < 0) {
          const more = new Promise<void>((resolve) => (wake = resolve));
          this.wake.add(wake);
          const woke = await Promise.race([more.then(() => true), timer.then(() => false)]);
          this.wake.delete(wake);
          at = find();
          if (!woke && at < 0)
            throw new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`);
        }
      } finally {
        this.wake.delete(wake);
      }
    }
    this.taken.add(at);
    return this.frames[at]!;
  }

  /** The answer (`ack` or `error`) to the frame sent with `ref`. */
  answer(ref: number, timeoutMs = 15_000): Promise<Frame> {
    return this.next((f) => (f["op"] === "ack" || f["op"] === "error") && f["ref"] === ref, timeoutMs);
  }

  async close(): Promise<void> {
    this.ws.close();
    await this.closed;
  }
}
