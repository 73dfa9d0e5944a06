import { describe, expect, it, vi } from "vitest";
import { RedisLog } from "../../src/cluster/redis-log.js";
import type { RedisAppend } from "../../src/cluster/redis-log.js";
import { connectRedis } from "../../src/cluster/redis-client.js";
import { REDIS_APPEND_MAX_ENTRIES } from "../../src/cluster/redis-store.js";
import { afterTest } from "../helpers/cleanup.js";
import { testGateway } from "../helpers/gateway.js";
import { startRedis } from "../helpers/redis.js";

describe("the owner's appends to Redis", () => {
  it("sends a full batch while the tick that appends goes on, and Redis holds every entry in order", async () => {
    const server = await startRedis();
    const gateway = await testGateway({ cluster: { redis: [server.url], nodeId: "gw-a" } });
    const session = gateway.core.sessions.createStream({ id: "token:test", name: "test" }, undefined);
    // The session is claimed (its first append answered) before the flood.
    session.log.append({ type: "custom", name: "first", data: 0 });
    await session.log.whenPublished();
    const append = vi.spyOn(RedisLog.prototype, "append");
    afterTest(() => append.mockRestore());

    const count = 2 * REDIS_APPEND_MAX_ENTRIES + 500;
    for (let i = 1; i <= count; i++) session.log.append({ type: "custom", name: "n", data: i });
    // Still in the appending tick: the two full batches are on their way to Redis already.
    expect(append.mock.calls.map((c) => (c[2] as RedisAppend).entries.length)).toEqual([
      REDIS_APPEND_MAX_ENTRIES,
      REDIS_APPEND_MAX_ENTRIES,
    ]);
    await session.log.whenPublished();
    expect(append.mock.calls.map((c) => (c[2] as RedisAppend).entries.length)).toEqual([
      REDIS_APPEND_MAX_ENTRIES,
      REDIS_APPEND_MAX_ENTRIES,
      500,
    ]);

    const redis = await connectRedis([server.url]);
    afterTest(() => redis.disconnect());
    const stored = await new RedisLog(redis, "sb:").read(session.id, 1, "+", count + 10);
    expect(stored.map((e) => e.seq)).toEqual(Array.from({ length: count + 1 }, (_, i) => i + 1));
    expect(stored.slice(1).map((e) => (JSON.parse(e.json) as { data: number }).data)).toEqual(
      Array.from({ length: count }, (_, i) => i + 1),
    );
  });
});
