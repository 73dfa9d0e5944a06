import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ManualClock } from "../../src/core/clock.js";
import { Membership, takeoverKey } from "../../src/cluster/membership.js";
import type { TakenSession } from "../../src/cluster/membership.js";
import { NodeLease, membersKey } from "../../src/cluster/node-lease.js";
import { connectRedis } from "../../src/cluster/redis-client.js";
import type { RedisClient } from "../../src/cluster/redis-client.js";
import { FencedError, RedisLog, sessionKeys } from "../../src/cluster/redis-log.js";
import { afterTest } from "../helpers/cleanup.js";
import { startRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait-for.js";

async function client(url: string): Promise<RedisClient> {
  const redis = await connectRedis([url]);
  afterTest(() => redis.disconnect());
  return redis;
}

/** A session `owner` created in Redis (epoch 1, one entry), as its node's store writes it. */
async function ownedSession(log: RedisLog, id: string, owner: string): Promise<void> {
  await log.claim(id, owner);
  const json = JSON.stringify({ seq: 1, ts: 1, type: "custom", name: "n", data: id });
  await log.append(id, 1, {
    entries: [{ seq: 1, type: "custom", json, size: json.length }],
    position: { head: 1, first: 1, outputBytes: 0, retainedBytes: 0 },
    record: { id, kind: "stream", state: "running", createdAt: 1, meta: {} },
  });
}

function membership(redis: RedisClient, log: RedisLog, nodeId: string, adopted: Array<TakenSession & { by: string }>) {
  return new Membership({
    redis,
    log,
    keyPrefix: "t:",
    nodeId,
    ttlMs: 1000,
    clock: new ManualClock(),
    idle: () => false,
    knows: () => true,
    adopt: async (taken) => {
      adopted.push({ ...taken, by: nodeId });
    },
    onError: (error) => {
      throw error;
    },
  });
}

describe("Membership", () => {
  it("looks for dead nodes every third TTL while it shows no session, every second once it does", async () => {
    const server = await startRedis();
    const redis = await client(server.url);
    const clock = new ManualClock(0);
    let idle = true;
    const m = new Membership({
      redis,
      log: new RedisLog(redis, "t:"),
      keyPrefix: "t:",
      nodeId: "me",
      ttlMs: 9000,
      clock,
      idle: () => idle,
      knows: () => true,
      adopt: () => Promise.resolve(),
      onError: (error) => {
        throw error;
      },
    });
    afterTest(() => m.close());
    const looks: number[] = [];
    const check = m.check.bind(m);
    m.check = () => {
      looks.push(clock.now());
      return check();
    };
    m.start();
    clock.advance(26_999);
    expect(looks).toEqual([]);
    clock.advance(1);
    expect(looks).toEqual([27_000]);
    // A session appeared after the next look was armed at the idle pace: woken to the busy one.
    await waitFor(() => clock.pending === 1);
    idle = false;
    m.wake();
    clock.advance(1000);
    expect(looks).toEqual([27_000, 28_000]);
    await waitFor(() => clock.pending === 1);
    clock.advance(1000);
    expect(looks).toEqual([27_000, 28_000, 29_000]);
  });

  it("writes a node's entry when it claims and when it takes its lapsed lease again, not at each renewal, and tells a renewal that found its lease lapsed", async () => {
    const server = await startRedis();
    const redis = await client(server.url);
    const clock = new ManualClock(1_000_000);
    const renewals: boolean[] = [];
    const lease = await NodeLease.claim({
      redis,
      keyPrefix: "t:",
      nodeId: "gw-a",
      clock,
      ttlMs: 3000,
      onRenewed: (lapsed) => renewals.push(lapsed),
    });
    const entry = () => redis.hget(membersKey("t:"), "gw-a").then((j) => JSON.parse(j!) as Record<string, unknown>);
    expect(await entry()).toEqual({ holder: lease.holder, startedAt: 1_000_000, heartbeatAt: 1_000_000, ttlMs: 3000 });
    clock.advance(1000);
    await waitFor(() => {
      expect(renewals).toEqual([false]);
      return true;
    });
    // An idle node's Redis calls: the listing reads the last renewal from the lease's TTL instead.
    expect((await entry())["heartbeatAt"]).toBe(1_000_000);
    await redis.del(lease.key);
    clock.advance(1000);
    await waitFor(() => {
      expect(renewals).toEqual([false, true]);
      return true;
    });
    expect((await entry())["heartbeatAt"]).toBe(1_002_000);

    // An entry Redis lost (a failover to a replica that missed the write) is written again at the next look.
    const m = new Membership({
      redis,
      log: new RedisLog(redis, "t:"),
      keyPrefix: "t:",
      nodeId: "gw-a",
      ttlMs: 3000,
      self: { holder: lease.holder, rejoin: () => lease.rejoin() },
      clock,
      idle: () => true,
      knows: () => true,
      adopt: () => Promise.resolve(),
      onError: (error) => {
        throw error;
      },
    });
    await redis.hdel(membersKey("t:"), "gw-a");
    await m.check();
    expect(await entry()).toMatchObject({ holder: lease.holder, startedAt: 1_000_000, heartbeatAt: 1_002_000 });
    const [listed] = await m.list();
    // Renewed at 1_002_000 by the lease's TTL left in Redis (3,000 ms, some of it gone since).
    expect(listed).toMatchObject({ id: "gw-a", alive: true, self: true });
    expect(listed!.heartbeatAt).toBeGreaterThan(1_002_000 - 1000);
    expect(listed!.heartbeatAt).toBeLessThanOrEqual(1_002_000);
    await lease.release();
    expect(await redis.hexists(membersKey("t:"), "gw-a")).toBe(0);
  });

  it("has exactly one of any number of survivors take a dead node's sessions over, fencing its appends", async () => {
    const server = await startRedis();
    const redis = await client(server.url);
    const log = new RedisLog(redis, "t:");
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 0, max: 4 }), async (survivors, count) => {
        run++;
        const dead = `dead-${run}`;
        const ids = Array.from({ length: count }, (_, i) => `r${run}s${i}`);
        for (const id of ids) await ownedSession(log, id, dead);
        await ownedSession(log, `r${run}live`, "live");
        await redis.set("t:node:live", "h-live");
        const record = (holder: string) => JSON.stringify({ holder, startedAt: 0, heartbeatAt: 0, ttlMs: 1000 });
        await redis.hset(membersKey("t:"), dead, record("h-dead"), "live", record("h-live"));
        const adopted: Array<TakenSession & { by: string }> = [];
        const nodes = Array.from({ length: survivors }, (_, i) => membership(redis, log, `n${run}-${i}`, adopted));
        await Promise.all(nodes.map((m) => m.check()));
        // One taker, every session once, under epoch 2, and the dead node leaves the members.
        expect(new Set(adopted.map((a) => a.by)).size).toBeLessThanOrEqual(1);
        expect(adopted.map((a) => a.sessionId).sort()).toEqual(ids.sort());
        expect(adopted.every((a) => a.epoch === 2 && a.deadNode === dead)).toBe(true);
        for (const a of adopted) expect(await redis.hget(sessionKeys("t:", a.sessionId).meta, "owner")).toBe(a.by);
        expect(await redis.hexists(membersKey("t:"), dead)).toBe(0);
        // The live node was left alone.
        expect(await redis.hget(sessionKeys("t:", `r${run}live`).meta, "epoch")).toBe("1");
        // The dead node's late append is refused.
        if (ids[0] !== undefined) {
          const json = JSON.stringify({ seq: 2, ts: 1, type: "custom", name: "n", data: "late" });
          await expect(
            log.append(ids[0], 1, {
              entries: [{ seq: 2, type: "custom", json, size: json.length }],
              position: { head: 2, first: 1, outputBytes: 0, retainedBytes: 0 },
            }),
          ).rejects.toBeInstanceOf(FencedError);
        }
        await Promise.all(nodes.map((m) => m.close()));
      }),
      { numRuns: 15 },
    );
  });

  it("does not take over a dead node whose sessions this node has not copied yet", async () => {
    const server = await startRedis();
    const redis = await client(server.url);
    const log = new RedisLog(redis, "t:");
    await ownedSession(log, "s1", "gone");
    await redis.hset(
      membersKey("t:"),
      "gone",
      JSON.stringify({ holder: "h", startedAt: 0, heartbeatAt: 0, ttlMs: 1000 }),
    );
    const adopted: TakenSession[] = [];
    const m = new Membership({
      redis,
      log,
      keyPrefix: "t:",
      nodeId: "me",
      ttlMs: 1000,
      clock: new ManualClock(),
      idle: () => false,
      knows: () => false,
      adopt: async (t) => void adopted.push(t),
      onError: (error) => {
        throw error;
      },
    });
    await m.check();
    expect(adopted).toEqual([]);
    expect(
      await redis.exists(takeoverKey("t:", "gone", { holder: "h", startedAt: 0, heartbeatAt: 0, ttlMs: 1000 })),
    ).toBe(0);
    expect(await redis.keys("t:takeover:*")).toEqual([]);
    expect(await redis.hget(sessionKeys("t:", "s1").meta, "epoch")).toBe("1");
  });

  it("takes a node over again when it died for good after it lapsed, was taken over and came back", async () => {
    const server = await startRedis();
    const redis = await client(server.url);
    const log = new RedisLog(redis, "t:");
    const record = (heartbeatAt: number) => JSON.stringify({ holder: "h", startedAt: 0, heartbeatAt, ttlMs: 1000 });
    const adopted: Array<TakenSession & { by: string }> = [];
    const taker = membership(redis, log, "taker", adopted);
    afterTest(() => taker.close());

    // gw-x stalled past its TTL: taken over, though it lives.
    await ownedSession(log, "s1", "gw-x");
    await redis.hset(membersKey("t:"), "gw-x", record(0));
    await taker.check();
    expect(adopted.map((a) => a.sessionId)).toEqual(["s1"]);
    expect(await redis.hexists(membersKey("t:"), "gw-x")).toBe(0);
    // It takes its lease back with the same holder (NodeLease's renewal) and writes a new heartbeat.
    await redis.set("t:node:gw-x", "h", "PX", 1000);
    await redis.hset(membersKey("t:"), "gw-x", record(5000));
    await ownedSession(log, "s2", "gw-x");
    await taker.check();
    expect(adopted.map((a) => a.sessionId)).toEqual(["s1"]);
    // Then it dies for good, while the first claim still lives (5 TTLs): s2 is taken over all the same.
    await redis.del("t:node:gw-x");
    await taker.check();
    expect(adopted.map((a) => a.sessionId)).toEqual(["s1", "s2"]);
    expect(await redis.hget(sessionKeys("t:", "s2").meta, "owner")).toBe("taker");
  });
});
