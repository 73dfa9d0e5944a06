/**
 * Cluster mode on Redis (docs/cluster.md): appends through the shared log beside bare pipelined
 * XADDs on the same Redis, and a resume of missed events on a node that copies the session beside
 * the same resume on its owner. Redis is a redis-server this module starts (AOF off: the figures
 * are the gateway's cost, not the disk's).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectRedis } from "../src/cluster/redis-client.js";
import type { RedisClient } from "../src/cluster/redis-client.js";
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/logger.js";
import { SessionFeed } from "../src/server/feed.js";
import type { SessionLog } from "../src/log/session-log.js";
import type { BenchSection } from "./types.js";
import { fmt, met, sideBySide } from "./stats.js";

const APPEND_EVENTS = 20_000;
const RESUME_EVENTS = 100_000;
const PAYLOAD = "x".repeat(1024 - 80); // ~1 KB serialized events
const ROUNDS = 3;

export async function redisServer(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("Ready to accept connections")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`redis-server exited (${code})`)));
  });
  return { url: `redis://127.0.0.1:${port}`, child };
}

async function node(dir: string, url: string, name: string): Promise<Gateway> {
  return startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir: join(dir, name),
    token: "bench-token-0123456789abcdef",
    logger: createLogger({ level: "silent" }),
    watchConfig: false,
    cluster: { redis: [url], nodeId: name },
  });
}

function logOf(gw: Gateway, id: string): SessionLog {
  return gw.core.sessions.get(id)!.log;
}

/** Events/s appended to a stream session's log on its owner, until Redis and the replica have them all (published). */
async function appendThroughGateway(gw: Gateway): Promise<number> {
  const session = gw.core.sessions.createStream("bench", undefined);
  const t0 = performance.now();
  for (let i = 0; i < APPEND_EVENTS; i++) {
    session.log.append({ type: "custom", name: "bench", data: PAYLOAD });
    // As a producer held back by the backlog would (see SessionLog.room).
    const room = session.log.room();
    if (room) await room;
  }
  await session.log.whenPublished();
  return (APPEND_EVENTS / (performance.now() - t0)) * 1000;
}

/** Baseline: the same events as bare XADDs with explicit ids, pipelined 1000 at a time. */
async function bareXadd(redis: RedisClient, round: number): Promise<number> {
  const key = `bench:{raw${round}}:log`;
  const t0 = performance.now();
  for (let i = 0; i < APPEND_EVENTS; i += 1000) {
    const pipeline = redis.pipeline();
    for (let j = i; j < Math.min(APPEND_EVENTS, i + 1000); j++)
      pipeline.xadd(
        key,
        `${j + 1}-0`,
        "t",
        "custom",
        "j",
        JSON.stringify({ seq: j + 1, ts: 0, type: "custom", name: "bench", data: PAYLOAD }),
      );
    await pipeline.exec();
  }
  const rate = (APPEND_EVENTS / (performance.now() - t0)) * 1000;
  await redis.del(key);
  return rate;
}

/** Events/s replayed from seq 0 through a feed (as a resuming viewer's) of `log`. */
function resume(log: SessionLog): number {
  let delivered = 0;
  const t0 = performance.now();
  const feed = new SessionFeed(log, 0, {
    queuedBytes: 0,
    budgetBytes: Number.MAX_SAFE_INTEGER,
    deliver: (entries) => (delivered += entries.length),
    reset: () => undefined,
  });
  feed.pump();
  feed.close();
  if (delivered < RESUME_EVENTS) throw new Error(`resume delivered ${delivered} of ${RESUME_EVENTS}`);
  return (delivered / (performance.now() - t0)) * 1000;
}

export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-cluster-"));
  const server = await redisServer(dir);
  const redis = await connectRedis([server.url]);
  const [a, b] = [await node(dir, server.url, "a"), await node(dir, server.url, "b")];
  try {
    let round = 0;
    const append = await sideBySide(
      ROUNDS,
      () => bareXadd(redis, round++),
      () => appendThroughGateway(a),
    );

    const session = a.core.sessions.createStream("bench", undefined);
    for (let i = 0; i < RESUME_EVENTS; i++) {
      session.log.append({ type: "custom", name: "bench", data: PAYLOAD });
      const room = session.log.room();
      if (room) await room;
    }
    await session.log.whenPublished();
    const head = session.log.head;
    while (b.core.sessions.get(session.id)?.log.head !== head) await new Promise((r) => setTimeout(r, 100));
    const resumed = await sideBySide(
      ROUNDS,
      () => resume(logOf(a, session.id)),
      () => resume(logOf(b, session.id)),
    );

    const rows = [
      `| append of 1 KB events through the shared log (owner: Lua append + replica) vs bare pipelined XADD | ${fmt(append.subject)}/s | ${fmt(append.baseline)}/s | ${fmt(append.ratio, 2)}× | ≥ 0.8× | ${met(append.ratio >= 0.8)} |`,
      `| resume of ${fmt(RESUME_EVENTS)} missed events on another node vs on the owner | ${fmt(resumed.subject)}/s | ${fmt(resumed.baseline)}/s | ${fmt(resumed.ratio, 2)}× | ≥ 0.8× | ${met(resumed.ratio >= 0.8)} |`,
    ];
    return {
      title: "Cluster",
      markdown: [
        "| measure | Switchboard | baseline | ratio | goal | |",
        "| --- | --- | --- | --- | --- | --- |",
        ...rows,
        "",
        `Method: one redis-server (AOF off) and two gateways in this process. Append: ${fmt(APPEND_EVENTS)} events of ~1 KB`,
        "appended to a stream session's log on its owner until all are published (acknowledged by Redis through the append",
        "script, then committed to the node's replica), beside the same events as bare XADDs pipelined 1,000 at a time.",
        `Resume: ${fmt(RESUME_EVENTS)} events replayed through a SessionFeed from seq 0 on the node that copies the session`,
        `beside the owner; both read their node's replica. Median of the per-round ratios, ${ROUNDS} rounds.`,
        "Not measured yet: PTY 50 MiB to a viewer on another node, and fan-out 3 nodes × 150 clients.",
      ].join("\n"),
    };
  } finally {
    await a.close();
    await b.close();
    redis.disconnect();
    server.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}
