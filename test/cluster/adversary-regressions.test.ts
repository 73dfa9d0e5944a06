// Regression tests for what a nemesis run found in cluster mode (docs/cluster.md, "Proven by a
// nemesis"): each one a failure the run saw, reproduced with one scripted fault.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { NodeRpc } from "../../src/cluster/node-rpc.js";
import { connectRedis } from "../../src/cluster/redis-client.js";
import { RedisLog } from "../../src/cluster/redis-log.js";
import { ManualClock } from "../../src/core/clock.js";
import { OutputEntry } from "../../src/log/output-entry.js";
import { afterTest } from "../helpers/cleanup.js";
import { clusterGateway } from "./cluster-gateway.js";
import { FaultProxy } from "../helpers/fault-proxy.js";
import { api, TEST_TOKEN } from "../helpers/gateway.js";
import { startRedis } from "../helpers/redis.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

async function redisLog(url: string) {
  const redis = await connectRedis([url]);
  afterTest(() => redis.disconnect());
  return { redis, log: new RedisLog(redis, "sb:") };
}

/** An output entry as the owner appends it: `text` at byte `offset`. */
function outputEntry(seq: number, offset: number, text: string): OutputEntry {
  return new OutputEntry(seq, Date.now(), "stdout", offset, Buffer.from(text), false);
}

describe("cluster mode under faults (regressions from the nemesis)", () => {
  it("refuses an append the shared log fenced, FENCED naming the new owner, even once the new owner wrote that seq", async () => {
    const server = await startRedis({ appendfsync: "always" });
    const { http } = await clusterGateway(server.url, "gw-a");
    const id = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;
    const first = await http.post(`/v1/sessions/${id}/events`, {
      type: "output",
      data: { stream: "stdout", data: "a\n" },
    });
    expect(first.json).toMatchObject({ first: 1, last: 1 });
    // Another node takes the session over and appends seq 2 before gw-a hears of it.
    const { log } = await redisLog(server.url);
    const epoch = await log.bumpEpoch(id, "gw-b", "gw-a");
    const position = { head: 2, first: 1, outputBytes: 4, retainedBytes: 0 };
    await log.append(id, epoch!, { entries: [outputEntry(2, 2, "b\n")], position });
    const refused = await http.post(`/v1/sessions/${id}/events`, {
      type: "output",
      data: { stream: "stdout", data: "x\n" },
    });
    expect(refused.status, JSON.stringify(refused.json)).toBe(503);
    expect(refused.json.error).toMatchObject({ code: "FENCED", node: "gw-b" });
    // gw-a now shows the new owner's log: seq 2 is theirs, and nothing of the refused append.
    await waitFor(async () => (await http.get(`/v1/sessions/${id}/output`)).text === "a\nb\n", 10_000);
  });

  it("takes writes again once Redis answers, though the sessions whose appends failed were fenced meanwhile", async () => {
    const server = await startRedis({ appendfsync: "always" });
    const proxy = await FaultProxy.start(server.port);
    afterTest(() => proxy.close());
    const { http } = await clusterGateway(`redis://127.0.0.1:${proxy.port}`, "gw-a");
    const id = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;
    expect((await http.post(`/v1/sessions/${id}/events`, { type: "note", data: 1 })).status).toBe(200);
    proxy.blackhole("both");
    const pending = http.post(`/v1/sessions/${id}/events`, { type: "note", data: 2 });
    await waitFor(async () => (await http.get("/healthz")).json.degraded === "REDIS_UNAVAILABLE", 15_000);
    // Taken over while cut off: its retried append is fenced, and never succeeds.
    const { log } = await redisLog(server.url);
    expect(await log.bumpEpoch(id, "gw-b", "gw-a")).toBe(2);
    proxy.heal();
    expect((await pending).json.error).toMatchObject({ code: "FENCED", node: "gw-b" });
    await waitFor(async () => {
      expect((await http.get("/healthz")).json).toEqual({ ok: true });
      return true;
    }, 15_000);
    expect((await http.post("/v1/sessions", { kind: "stream" })).status).toBe(201);
  });

  it("acknowledges an append Redis applied before the fence, whose answer was lost: written, never FENCED", async () => {
    const server = await startRedis({ appendfsync: "always" });
    const proxy = await FaultProxy.start(server.port);
    afterTest(() => proxy.close());
    const { http } = await clusterGateway(`redis://127.0.0.1:${proxy.port}`, "gw-a");
    const id = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;
    expect((await http.post(`/v1/sessions/${id}/events`, { type: "note", data: 1 })).status).toBe(200);
    // The append reaches Redis; its answer does not.
    proxy.blackhole("down");
    const pending = http.post(`/v1/sessions/${id}/events`, { type: "note", data: 2 });
    const { log } = await redisLog(server.url);
    await waitFor(async () => (await log.read(id, 2, 2, 1)).length === 1, 15_000);
    await waitFor(async () => (await http.get("/healthz")).json.degraded === "REDIS_UNAVAILABLE", 15_000);
    expect(await log.bumpEpoch(id, "gw-b", "gw-a")).toBe(2);
    proxy.heal();
    // The fence reads seq 2 back from Redis: this node's entry, so its writer is told it was written.
    const answer = await pending;
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    expect(answer.json).toMatchObject({ first: 2, last: 2 });
    await waitFor(async () => {
      expect(((await http.get(`/v1/sessions/${id}/events`)).json.events as any[]).map((e) => e.data)).toEqual([1, 2]);
      return true;
    });
  });

  it("takes writes again once an append lost with its connection times out, though later appends were acknowledged meanwhile", async () => {
    const server = await startRedis({ appendfsync: "always" });
    const proxy = await FaultProxy.start(server.port);
    afterTest(() => proxy.close());
    const { http } = await clusterGateway(`redis://127.0.0.1:${proxy.port}`, "gw-a");
    const id = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;
    expect((await http.post(`/v1/sessions/${id}/events`, { type: "note", data: 1 })).status).toBe(200);
    // Redis applies seq 2; its answer is lost with the connection, which the driver does not
    // resend on: the call is answered only by its 5 s timeout.
    proxy.blackhole("down");
    const second = http.post(`/v1/sessions/${id}/events`, { type: "note", data: 2 });
    const { log } = await redisLog(server.url);
    await waitFor(async () => (await log.read(id, 2, 2, 1)).length === 1, 15_000);
    proxy.cut();
    proxy.heal();
    // Seq 3 goes on the new connection and is acknowledged while seq 2 still waits.
    const third = http.post(`/v1/sessions/${id}/events`, { type: "note", data: 3 });
    await waitFor(async () => (await log.read(id, 3, 3, 1)).length === 1, 15_000);
    expect((await second).json).toMatchObject({ first: 2, last: 2 });
    expect((await third).json).toMatchObject({ first: 3, last: 3 });
    await waitFor(async () => {
      expect((await http.get("/healthz")).json).toEqual({ ok: true });
      return true;
    }, 15_000);
    expect((await http.post(`/v1/sessions/${id}/events`, { type: "note", data: 4 })).status).toBe(200);
    await expect
      .poll(async () => ((await http.get(`/v1/sessions/${id}/events`)).json.events as any[]).map((e) => e.data))
      .toEqual([1, 2, 3, 4]);
  });

  it("does not end the process when a forwarded request's answer comes before its XADD was acknowledged", async () => {
    const server = await startRedis();
    const proxy = await FaultProxy.start(server.port);
    afterTest(() => proxy.close());
    const redis = await connectRedis([`redis://127.0.0.1:${proxy.port}`]);
    afterTest(() => redis.disconnect());
    const clock = new ManualClock();
    const rpc = new NodeRpc({
      redis,
      keyPrefix: "t:",
      nodeId: "gw-a",
      clock,
      handle: async () => ({}),
      maxRequestBytes: 1024,
      timeoutMs: 1_000,
      onProblem: () => undefined,
    });
    await rpc.start();
    afterTest(() => rpc.close());
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    afterTest(() => process.off("unhandledRejection", onUnhandled));
    proxy.blackhole("up");
    const answer = rpc.request("gw-b", { hello: 1 });
    // The answer (here: the timeout) settles while the XADD is held by the network.
    clock.advance(1_001);
    await new Promise((resolve) => setTimeout(resolve, 100));
    proxy.heal();
    await expect(answer).rejects.toMatchObject({ code: "NODE_UNAVAILABLE" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(unhandled).toEqual([]);
  });

  it("answers a forwarded call for a session it no longer runs FENCED, naming the owner, never WRONG_SESSION_KIND", async () => {
    const server = await startRedis({ appendfsync: "always" });
    const { http, lines } = await clusterGateway(server.url, "gw-a");
    const id = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;
    expect((await http.post(`/v1/sessions/${id}/events`, { type: "note", data: 1 })).status).toBe(200);
    const { redis, log } = await redisLog(server.url);
    await log.bumpEpoch(id, "gw-b", "gw-a");
    // Its next append is refused: gw-a follows gw-b from then on.
    await http.post(`/v1/sessions/${id}/events`, { type: "note", data: 2 });
    await waitFor(
      () =>
        lines.some(
          (l) =>
            l["msg"] ===
            "session fenced: another node owns it now, so this node stops it and appends nothing more to it",
        ) === true,
    );
    const rpc = new NodeRpc({
      redis,
      keyPrefix: "sb:",
      nodeId: "gw-c",
      clock: new ManualClock(),
      handle: async () => ({}),
      maxRequestBytes: 64 * 1024,
      onProblem: () => undefined,
    });
    await rpc.start();
    afterTest(() => rpc.close());
    const call = {
      action: "events",
      sessionId: id,
      identity: { principal: "token:admin", name: "admin", role: "admin", sessions: ["*"] },
      holderKey: "http:token:admin",
      body: { type: "output", data: { stream: "stdout", data: "late\n" } },
      query: "",
    };
    await waitFor(async () => {
      expect(await rpc.request("gw-a", call).catch((error: unknown) => error)).toMatchObject({
        code: "FENCED",
        details: { node: "gw-b" },
      });
      return true;
    }, 10_000);
  });

  it("serves a session created on one node from another at once: GET, /v1/ws subscribe and /ws/session never SESSION_NOT_FOUND", async () => {
    const server = await startRedis({ appendfsync: "always" });
    const nodes = await Promise.all(
      ["gw-a", "gw-b"].map((name) =>
        serveInChild({ dataDir: tempDir(), args: ["--redis", server.url, "--node-id", name] }),
      ),
    );
    const ws = new WebSocket(`${nodes[1]!.url.replace("http", "ws")}/v1/ws`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    afterTest(() => ws.terminate());
    const frames: Array<Record<string, unknown>> = [];
    ws.on("message", (d: Buffer) => frames.push(JSON.parse(d.toString()) as Record<string, unknown>));
    await new Promise((resolve) => ws.once("open", resolve));
    for (let i = 0; i < 30; i++) {
      const [made, other] = i % 2 === 0 ? [nodes[0]!, nodes[1]!] : [nodes[1]!, nodes[0]!];
      const id = (await api(made.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      const got = await api(other.url).get(`/v1/sessions/${id}`);
      expect(got.status, `session ${i} on the other node: ${JSON.stringify(got.json)}`).toBe(200);
      const created = await api(made.url).post("/v1/sessions", { kind: "stream" });
      const next = created.json.id as string;
      ws.send(JSON.stringify({ op: "subscribe", session: next, since: 0, ref: i }));
      await waitFor(() => {
        expect(frames.find((f) => f["ref"] === i)).toMatchObject({ op: "subscribed", session: next });
        return true;
      });
      const term = new WebSocket(`${nodes[1]!.url.replace("http", "ws")}/ws/session/${next}`, {
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
      });
      const opened = await new Promise<number>((resolve) => {
        term.once("open", () => resolve(101));
        term.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      });
      term.terminate();
      expect(opened).toBe(101);
    }
  }, 120_000);

  it("a node restarted after kill -9 serves and copies again: no duplicate seq in its replica, never LOG_UNAVAILABLE", async () => {
    const server = await startRedis({ appendfsync: "always" });
    const dir = tempDir();
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ cluster: { redis: server.url, nodeTtlMs: 1_000 } }));
    const start = (name: string, dataDir: string) =>
      serveInChild({ dataDir, config, args: ["--redis", server.url, "--node-id", name] });
    const a = await start("gw-a", tempDir());
    const bDir = tempDir();
    let b = await start("gw-b", bDir);
    const id = (await api(a.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
    for (let i = 0; i < 20; i++) await api(a.url).post(`/v1/sessions/${id}/events`, { type: "note", data: i });
    // gw-b copies it (a reader there wants it), then dies.
    await waitFor(async () => (await api(b.url).get(`/v1/sessions/${id}/events?since=0`)).json.events?.length === 20);
    b.child.kill("SIGKILL");
    await new Promise((resolve) => b.child.once("exit", resolve));
    for (let i = 20; i < 30; i++) await api(a.url).post(`/v1/sessions/${id}/events`, { type: "note", data: i });
    for (;;) {
      const started = await start("gw-b", bDir).catch((error: Error) => error);
      if (!(started instanceof Error)) {
        b = started;
        break;
      }
      expect(started.message).toMatch(/another node is live/);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    await waitFor(async () => (await api(b.url).get(`/v1/sessions/${id}/events?since=0`)).json.events?.length === 30);
    expect((await api(b.url).post(`/v1/sessions/${id}/events`, { type: "note", data: 30 })).status).toBe(200);
    expect((await api(b.url).get("/healthz")).json).toEqual({ ok: true });
    expect(b.log.filter((l) => String(l["reason"] ?? "").includes("UNIQUE constraint"))).toEqual([]);
  }, 120_000);
});
