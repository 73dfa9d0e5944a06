import { describe, expect, it } from "vitest";
import { RedisLog, sessionKeys } from "../../src/cluster/redis-log.js";
import { connectRedis } from "../../src/cluster/redis-client.js";
import { OutputEntry } from "../../src/log/output-entry.js";
import { afterTest } from "../helpers/cleanup.js";
import { clusterGateway } from "./cluster-gateway.js";
import { startRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait-for.js";

describe("a gateway in cluster mode", () => {
  it("writes its sessions' events and output bytes to Redis, one stream entry per seq, before it serves them", async () => {
    const server = await startRedis({ appendfsync: "always" });
    const { gateway, http } = await clusterGateway(server.url, "gw-a");
    const created = await http.post("/v1/sessions", { kind: "stream", name: "s" });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const bytes = Buffer.from([0xff, 0x00, 0x41, 0xe2, 0x82]);
    const posted = await http.post(`/v1/sessions/${id}/events`, [
      { type: "output", data: { stream: "stdout", data: bytes.toString("base64"), enc: "base64" } },
      { type: "note", data: { n: 1 } },
    ]);
    expect(posted.status).toBe(200);
    const redis = await connectRedis([server.url]);
    afterTest(() => redis.disconnect());
    const log = new RedisLog(redis, "sb:");
    const stored = await log.read(id, 1, "+", 100);
    expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1));
    const output = stored.find((e) => e instanceof OutputEntry) as OutputEntry;
    expect(Buffer.from(output.bytes)).toEqual(bytes);
    expect(stored.at(-1)!.json).toContain('"name":"note"');
    // What the gateway serves is what Redis holds.
    const events = await http.get(`/v1/sessions/${id}/events?since=0`);
    expect(events.json.events.map((e: { seq: number }) => e.seq)).toEqual(stored.map((e) => e.seq));
    const raw = await fetch(`${gateway.url}/v1/sessions/${id}/output`, {
      headers: { authorization: `Bearer ${gateway.token}` },
    });
    expect(Buffer.from(await raw.arrayBuffer())).toEqual(bytes);
    expect(await log.session(id)).toMatchObject({ epoch: 1, owner: "gw-a", record: { id, kind: "stream" } });
    expect(await redis.zrange("sb:sessions", "0", "-1")).toEqual([id]);
  });

  it("a stale owner (its epoch raised behind its back) cannot append: refused, the log stays contiguous, the session stops there with the reason", async () => {
    const server = await startRedis();
    const { http, lines } = await clusterGateway(server.url, "gw-a");
    const id = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;
    expect((await http.post(`/v1/sessions/${id}/events`, { type: "note", data: 1 })).status).toBe(200);
    const redis = await connectRedis([server.url]);
    afterTest(() => redis.disconnect());
    const log = new RedisLog(redis, "sb:");
    const before = (await log.read(id, 1, "+", 100)).map((e) => e.seq);
    expect(await log.bumpEpoch(id, "gw-b", "gw-a")).toBe(2);
    // Not acknowledged: nothing Redis refused is published, so the answer says it was not appended.
    const refused = http.post(`/v1/sessions/${id}/events`, { type: "note", data: 2 });
    await waitFor(() => {
      expect(lines.find((l) => l["msg"]?.toString().startsWith("session fenced"))).toMatchObject({
        sessionId: id,
        reason: `session ${id} is fenced: this node appended under epoch 1, Redis has epoch 2 owned by gw-b`,
      });
      return true;
    });
    const after = (await log.read(id, 1, "+", 100)).map((e) => e.seq);
    expect(after).toEqual(before);
    expect(after).toEqual(after.map((_, i) => i + 1));
    expect(await redis.hget(sessionKeys("sb:", id).meta, "head")).toBe(String(before.length));
    const answer = await refused;
    expect(answer.status).toBe(503);
    expect(answer.json.error).toMatchObject({ code: "FENCED", node: "gw-b" });
    expect((await http.get(`/v1/sessions/${id}/events?since=0`)).json.events).toHaveLength(before.length);
  });
});

describe("a gateway in cluster mode with Redis unreachable", () => {
  it("keeps what its sessions append in memory, says degraded on /healthz and in metrics, and writes it in order once Redis is back", async () => {
    const server = await startRedis({ appendfsync: "always" });
    const { gateway, http } = await clusterGateway(server.url, "gw-a");
    const id = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;
    expect((await http.post(`/v1/sessions/${id}/events`, { type: "note", data: 0 })).status).toBe(200);
    expect((await http.get("/healthz")).json).toEqual({ ok: true });
    await server.kill9();
    const waiting = http.post(`/v1/sessions/${id}/events`, { type: "note", data: 1 });
    await waitFor(async () => {
      expect((await http.get("/healthz")).json).toEqual({
        ok: true,
        degraded: "REDIS_UNAVAILABLE",
        reason: expect.stringContaining("cannot write"),
      });
      return true;
    }, 15_000);
    const metrics = (await http.get("/metrics")).text;
    expect(metrics).toMatch(/^switchboard_redis_connected\{node="gw-a"\} 0$/m);
    expect(metrics).toMatch(/^switchboard_redis_waiting_bytes\{node="gw-a"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^switchboard_redis_append_seconds_count\{node="gw-a"\} [1-9]\d*$/m);
    await server.restart();
    expect((await waiting).status).toBe(200);
    await waitFor(async () => {
      expect((await http.get("/healthz")).json).toEqual({ ok: true });
      return true;
    }, 15_000);
    const redis = await connectRedis([server.url]);
    afterTest(() => redis.disconnect());
    const stored = await new RedisLog(redis, "sb:").read(id, 1, "+", 100);
    expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1));
    expect(stored.filter((e) => e.type === "custom").map((e) => (JSON.parse(e.json) as { data: number }).data)).toEqual(
      [0, 1],
    );
    void gateway;
  });
});
