import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { afterFile } from "../helpers/cleanup.js";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { startRedis } from "../helpers/redis.js";
import type { TestRedis } from "../helpers/redis.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";

/** Prints `line N` every 50 ms: a gap or a repeat in the log shows as a number missing or twice. */
const COUNTER = ["sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.05; done"];

type Ev = { seq: number; type: string; data?: string; reason?: string };

/** The lease TTL of node B, and of an A that is to be taken over soon after it stops. */
const SHORT_TTL_MS = 1_000;

async function node(
  redis: TestRedis,
  name: string,
  dataDir: string,
  ttlMs: number,
  defer?: (fn: () => void) => void,
): Promise<ChildGateway> {
  const config = join(tempDir(), "config.json");
  writeFileSync(config, JSON.stringify({ cluster: { redis: redis.url, nodeTtlMs: ttlMs } }));
  return serveInChild({
    dataDir,
    config,
    holders: true,
    args: ["--redis", redis.url, "--node-id", name],
    ...(defer !== undefined ? { defer } : {}),
  });
}

async function exit(gateway: ChildGateway, signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise((resolve) => gateway.child.once("exit", resolve));
  gateway.child.kill(signal);
  await exited;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function info(gateway: ChildGateway, id: string): Promise<Record<string, unknown>> {
  return (await api(gateway.url).get(`/v1/sessions/${id}`)).json as Record<string, unknown>;
}

async function events(gateway: ChildGateway, id: string): Promise<Ev[]> {
  return (await api(gateway.url).get(`/v1/sessions/${id}/events?since=0&limit=1000`)).json.events as Ev[];
}

/** The counter's numbers, in the order the log has them. */
async function counted(gateway: ChildGateway, id: string): Promise<number[]> {
  const res = await fetch(`${gateway.url}/v1/sessions/${id}/output`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  const text = await res.text();
  return [...text.matchAll(/line (\d+)\n/g)].map((m) => Number(m[1]));
}

/** One Redis and node B for the file; each test starts its own node A (`name`). */
let redis: TestRedis;
let b: ChildGateway;

/** A held session on a new node A, copied by B (so B can take it over), with some output. */
async function heldOnA(name: string, ttlMs: number) {
  const aDir = tempDir();
  const a = await node(redis, name, aDir, ttlMs);
  const created = await api(a.url).post("/v1/sessions", { kind: "terminal", command: COUNTER, pty: false });
  expect(created.status).toBe(201);
  const id = created.json.id as string;
  const pid = (await info(a, id)).pid as number;
  await waitFor(async () => (await events(b, id)).length >= 5 || undefined, 15_000, "B's copy");
  return { aDir, a, id, pid };
}

describe("held sessions in cluster mode", () => {
  beforeAll(async () => {
    redis = await startRedis({ appendfsync: "always" });
    b = await node(redis, "gw-b", tempDir(), SHORT_TTL_MS, afterFile);
  }, 60_000);

  it("a node restarted within its lease TTL keeps owning its held session: same pid, running, seqs and output contiguous", async () => {
    const { aDir, a, id, pid } = await heldOnA("gw-a1", 15_000);
    await exit(a, "SIGKILL");
    const again = await node(redis, "gw-a1", aDir, 15_000);
    // Taken over once the node listens (src/sessions/adoption-queue.ts).
    await waitFor(
      () => again.log.some((l) => l.msg === "session adopted from its holder" && l.session === id),
      10_000,
      "the take-over",
    );
    const before = (await counted(again, id)).length;
    await waitFor(
      async () => ((await counted(again, id)).length > before + 10 ? true : undefined),
      15_000,
      "more output",
    );
    for (const gateway of [again, b]) {
      const seen = await info(gateway, id);
      expect(seen.state).toBe("running");
      expect(seen.pid).toBe(pid);
    }
    const log = await events(again, id);
    expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => log[0]!.seq + i));
    expect(log.filter((e) => e.type === "lost")).toEqual([]);
    const numbers = await counted(again, id);
    expect(numbers).toEqual(numbers.map((_, i) => i));
    // Nobody took it over: B's log says nothing of gw-a1's death.
    expect(b.log.some((l) => l.msg === "cluster: took over a dead node's session" && l.sessionId === id)).toBe(false);
  }, 90_000);

  it("a node back after another took its held session over ends the held process: one owner, which marked it lost", async () => {
    const { aDir, a, id, pid } = await heldOnA("gw-a2", SHORT_TTL_MS);
    await exit(a, "SIGKILL");
    await waitFor(async () => ((await info(b, id)).state === "lost" ? true : undefined), 20_000, "B's takeover");
    // The held program outlived its node and the takeover: only its node can end it.
    expect(alive(pid)).toBe(true);
    const again = await node(redis, "gw-a2", aDir, SHORT_TTL_MS);
    await waitFor(async () => (alive(pid) ? undefined : true), 15_000, `pid ${pid} to end`);
    expect(again.log.some((l) => l.msg?.toString().startsWith("held session fenced") && l.session === id)).toBe(true);
    for (const gateway of [again, b]) expect((await info(gateway, id)).state).toBe("lost");
    const nodes = (await api(b.url).get("/v1/nodes")).json.nodes as Array<{ id: string; sessions: string[] }>;
    expect(nodes.filter((n) => n.sessions.includes(id)).map((n) => n.id)).toEqual(["gw-b"]);
    const lost = (await events(again, id)).filter((e) => e.type === "lost");
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toMatch(/node gw-a2 stopped renewing its lease/);
  }, 90_000);

  it("a node paused past its TTL finds its held session fenced and stops its process", async () => {
    const { a, id, pid } = await heldOnA("gw-a3", SHORT_TTL_MS);
    a.child.kill("SIGSTOP");
    try {
      await waitFor(async () => ((await info(b, id)).state === "lost" ? true : undefined), 20_000, "B's takeover");
    } finally {
      a.child.kill("SIGCONT");
    }
    await waitFor(async () => (alive(pid) ? undefined : true), 15_000, `pid ${pid} to end`);
    // Logged as the process is stopped; the line may reach stderr after the process ended.
    await waitFor(
      async () =>
        a.log.some(
          (l) => l.msg?.toString().startsWith("session fenced: another node owns it now") && l.sessionId === id,
        ) || undefined,
      15_000,
      "A's fence line",
    );
    await waitFor(async () => ((await info(a, id)).state === "lost" ? true : undefined), 15_000, "A's copy of the end");
    const nodes = (await api(b.url).get("/v1/nodes")).json.nodes as Array<{ id: string; sessions: string[] }>;
    expect(nodes.filter((n) => n.sessions.includes(id)).map((n) => n.id)).toEqual(["gw-b"]);
  }, 90_000);
});
