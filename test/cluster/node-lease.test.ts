import { describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { ManualClock } from "../../src/core/clock.js";
import { NodeLease } from "../../src/cluster/node-lease.js";
import type { NodeLeaseOptions } from "../../src/cluster/node-lease.js";
import { connectRedis } from "../../src/cluster/redis-client.js";
import { afterTest } from "../helpers/cleanup.js";
import { startRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait-for.js";

async function client(url: string): Promise<Redis> {
  const redis = (await connectRedis([url])) as Redis;
  afterTest(() => redis.disconnect());
  return redis;
}

/** Node gw-a's lease of 3 s on a Redis of its own, on `clock`. */
async function claimed(
  clock: ManualClock,
  callbacks: Pick<NodeLeaseOptions, "onLost" | "onRenewed">,
): Promise<{ redis: Redis; lease: NodeLease }> {
  const redis = await client((await startRedis()).url);
  const lease = await NodeLease.claim({ redis, keyPrefix: "t:", nodeId: "gw-a", clock, ttlMs: 3000, ...callbacks });
  return { redis, lease };
}

describe("NodeLease", () => {
  it("refuses a second live node with the same id, and takes the id once the first released it", async () => {
    const server = await startRedis();
    const redis = await client(server.url);
    const clock = new ManualClock();
    const first = await NodeLease.claim({ redis, keyPrefix: "t:", nodeId: "gw-a", clock });
    await expect(NodeLease.claim({ redis, keyPrefix: "t:", nodeId: "gw-a", clock })).rejects.toThrow(
      /another node is live with the id gw-a \(its lease t:node:gw-a in Redis expires in \d+ ms unless renewed\): stop it, or give this one another --node-id/,
    );
    // Another id is free.
    const other = await NodeLease.claim({ redis, keyPrefix: "t:", nodeId: "gw-b", clock });
    await first.release();
    expect(await redis.exists("t:node:gw-a")).toBe(0);
    const again = await NodeLease.claim({ redis, keyPrefix: "t:", nodeId: "gw-a", clock });
    await again.release();
    await other.release();
  });

  it("renews its key before the TTL and says so when someone else holds it", async () => {
    const clock = new ManualClock();
    const lost: string[] = [];
    const { redis, lease } = await claimed(clock, { onLost: (reason) => lost.push(reason) });
    await redis.pexpire("t:node:gw-a", 10);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Expired meanwhile (Redis was away for longer than the TTL) and nobody took it: taken again.
    clock.advance(1000);
    await waitFor(async () => (await redis.pttl("t:node:gw-a")) > 2000);
    expect(lost).toEqual([]);
    await redis.set("t:node:gw-a", "someone else");
    clock.advance(1000);
    await waitFor(() => {
      expect(lost).toEqual(["the lease t:node:gw-a is no longer this node's"]);
      return true;
    });
    // Released, it leaves the other holder's key alone.
    await lease.release();
    expect(await redis.get("t:node:gw-a")).toBe("someone else");
  });

  it("renews every half TTL while the node shows no session, every third once it shows one", async () => {
    const clock = new ManualClock(0);
    const renewals: number[] = [];
    const { redis, lease } = await claimed(clock, { onRenewed: () => renewals.push(clock.now()) });
    afterTest(() => lease.release());
    let idle = true;
    lease.paceBy(() => idle);
    // Moves the clock in steps of 100 ms, each renewal answered (and the next armed) before the next step.
    const run = async (ms: number): Promise<void> => {
      for (let t = 0; t < ms; t += 100) {
        clock.advance(100);
        await redis.ping();
      }
    };

    await run(6000);
    expect(renewals).toEqual([1500, 3000, 4500, 6000]);
    // A session appears: the renewal armed for 7.5 s comes at 7 s, then every second.
    renewals.length = 0;
    clock.advance(200);
    idle = false;
    lease.wake();
    await run(2800);
    expect(renewals).toEqual([7000, 8000, 9000]);
    // A renewal at either pace leaves the key its whole TTL.
    expect(await redis.pttl("t:node:gw-a")).toBeGreaterThan(2000);
  });
});
