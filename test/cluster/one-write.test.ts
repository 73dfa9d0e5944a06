import { describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { connectRedis, oneWriteThisTurn } from "../../src/cluster/redis-client.js";
import { afterTest } from "../helpers/cleanup.js";
import { startRedis } from "../helpers/redis.js";

type Writes = { write: number; writev: number; chunks: number };

/** Counts the socket writes of `redis` (each `_write` and `_writev` is one system call). */
function countWrites(redis: Redis): Writes {
  type Write = (this: unknown, ...args: unknown[]) => unknown;
  const socket = (redis as unknown as { stream: { _write: Write; _writev: Write } }).stream;
  const writes: Writes = { write: 0, writev: 0, chunks: 0 };
  const write = socket._write;
  const writev = socket._writev;
  socket._write = function (this: unknown, ...args: unknown[]) {
    writes.write++;
    writes.chunks++;
    return write.apply(this, args);
  };
  socket._writev = function (this: unknown, ...args: unknown[]) {
    writes.writev++;
    writes.chunks += (args[0] as unknown[]).length;
    return writev.apply(this, args);
  };
  return writes;
}

describe("oneWriteThisTurn", () => {
  it("sends the commands of one turn of the event loop in one write, and the next turn's as they come", async () => {
    const server = await startRedis();
    const redis = (await connectRedis([server.url])) as Redis;
    afterTest(() => redis.disconnect());
    const writes = countWrites(redis);

    // Without it, each command is a write of its own (an idle node woke Redis, and was preempted, per command).
    await Promise.all([redis.set("a", "1"), redis.set("b", "2"), redis.set("c", "3")]);
    expect(writes).toEqual({ write: 3, writev: 0, chunks: 3 });

    oneWriteThisTurn(redis);
    oneWriteThisTurn(redis); // twice in a turn is once
    const answers = await Promise.all([redis.get("a"), redis.get("b"), redis.get("c"), redis.incr("n")]);
    expect(answers).toEqual(["1", "2", "3", 1]);
    expect(writes).toEqual({ write: 3, writev: 1, chunks: 7 });

    // Uncorked at the end of that turn: the next command goes at once, alone.
    await new Promise((resolve) => setImmediate(resolve));
    expect(await redis.incr("n")).toBe(2);
    expect(writes).toEqual({ write: 4, writev: 1, chunks: 8 });

    // A turn that corked and wrote nothing leaves the socket as it was.
    oneWriteThisTurn(redis);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await redis.get("a")).toBe("1");
    expect(writes).toEqual({ write: 5, writev: 1, chunks: 9 });
  });
});
