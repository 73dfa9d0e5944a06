import { describe, expect, it } from "vitest";
import { NodeRpc, replyChannel, requestStreamKey } from "../../src/cluster/node-rpc.js";
import type { NodeRequestHandler } from "../../src/cluster/node-rpc.js";
import { connectRedis } from "../../src/cluster/redis-client.js";
import type { RedisClient } from "../../src/cluster/redis-client.js";
import { ManualClock, systemClock } from "../../src/core/clock.js";
import type { Clock } from "../../src/core/clock.js";
import { SwitchboardError } from "../../src/protocol/index.js";
import { afterTest } from "../helpers/cleanup.js";
import { FaultProxy } from "../helpers/fault-proxy.js";
import { startRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait-for.js";

const TIMEOUT_MS = 400;

/** Two nodes on one real redis-server; `b` answers with `handle`, its clock `skew` ms ahead once set. */
async function twoNodes(handle: NodeRequestHandler) {
  const server = await startRedis();
  const problems: string[] = [];
  const skew = { ms: 0 };
  const node = async (nodeId: string, clock: Clock, answer: NodeRequestHandler) => {
    const redis = await connectRedis([server.url]);
    afterTest(() => redis.disconnect());
    const rpc = new NodeRpc({
      redis,
      keyPrefix: "t:",
      nodeId,
      clock,
      handle: answer,
      maxRequestBytes: 10_000,
      timeoutMs: TIMEOUT_MS,
      onProblem: (what) => problems.push(what),
    });
    await rpc.start();
    afterTest(() => rpc.close());
    return rpc;
  };
  const skewed: Clock = { ...systemClock, now: () => systemClock.now() + skew.ms };
  const a = await node("a", systemClock, async () => undefined);
  const b = await node("b", skewed, handle);
  return { a, b, skew, problems };
}

describe("requests between nodes over Redis", () => {
  it("answers a request with the target's value, and its SwitchboardError with code, message and details", async () => {
    const { a } = await twoNodes(async (request) => {
      const { n } = request as { n: number };
      if (n < 0) throw new SwitchboardError("HISTORY_TRIMMED", `no ${n}`, { first: 7 });
      return { doubled: n * 2 };
    });
    expect(await a.request("b", { n: 21 })).toEqual({ doubled: 42 });
    const refused = await a.request("b", { n: -1 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SwitchboardError);
    expect((refused as SwitchboardError).toJSON()).toEqual({ code: "HISTORY_TRIMMED", message: "no -1", first: 7 });
  });

  it("answers concurrent requests each with its own answer", async () => {
    const { a } = await twoNodes(async (request) => request);
    const asked = Array.from({ length: 50 }, (_, i) => ({ i, pad: "x".repeat(i) }));
    expect(await Promise.all(asked.map((r) => a.request("b", r)))).toEqual(asked);
  });

  it("refuses a request over the size limit before sending it", async () => {
    let called = 0;
    const { a } = await twoNodes(async () => (called += 1));
    const error = await a.request("b", { big: "x".repeat(10_000) }).catch((e: unknown) => e);
    expect((error as SwitchboardError).code).toBe("PAYLOAD_TOO_LARGE");
    expect(called).toBe(0);
  });

  it("answers NODE_UNAVAILABLE naming a node that does not answer, after the timeout", async () => {
    const { a } = await twoNodes(async () => undefined);
    const started = performance.now();
    const error = (await a.request("gone", {}).catch((e: unknown) => e)) as SwitchboardError;
    expect(error.code).toBe("NODE_UNAVAILABLE");
    expect(error.details).toEqual({ node: "gone" });
    expect(error.message).toContain("node gone");
    expect(performance.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
  });

  it("drops a request the target reads after its sender stopped waiting, without running it", async () => {
    let called = 0;
    const { a, skew, problems } = await twoNodes(async () => (called += 1));
    await a.request("b", {});
    expect(called).toBe(1);
    // As if b had been stopped for longer than the timeout between the write and its read.
    skew.ms = TIMEOUT_MS + 100;
    const error = (await a.request("b", {}).catch((e: unknown) => e)) as SwitchboardError;
    expect(error.code).toBe("NODE_UNAVAILABLE");
    expect(called).toBe(1);
    expect(problems).toContain("a request read after its sender stopped waiting was dropped");
  });

  it("fails what waits with SHUTTING_DOWN on close, and sends nothing after", async () => {
    const { a } = await twoNodes(() => new Promise(() => undefined));
    const waiting = a.request("b", {}).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await a.close();
    expect(((await waiting) as SwitchboardError).code).toBe("SHUTTING_DOWN");
    expect(((await a.request("b", {}).catch((e: unknown) => e)) as SwitchboardError).code).toBe("SHUTTING_DOWN");
  });

  describe("reading the requests", () => {
    /** A node on Redis at `url`: b answers with `handle` on a manual clock (no sweep unless moved), a asks. */
    async function rpcNode(
      url: string,
      nodeId: "a" | "b",
      clock: Clock,
      handle: NodeRequestHandler,
      idle?: () => boolean,
      redis?: RedisClient,
    ) {
      redis ??= await connectRedis([url]);
      afterTest(() => redis.disconnect());
      const rpc = new NodeRpc({
        ...(idle ? { idle } : {}),
        redis,
        keyPrefix: "t:",
        nodeId,
        clock,
        handle,
        maxRequestBytes: 10_000,
        timeoutMs: 2_000,
        sweepMs: 1_000,
        onProblem: () => undefined,
      });
      await rpc.start();
      afterTest(() => rpc.close());
      return rpc;
    }
    const target = (url: string, clock: ManualClock, handle: NodeRequestHandler) => rpcNode(url, "b", clock, handle);
    const requester = (url: string) => rpcNode(url, "a", systemClock, async () => undefined);

    it("reads a request when told of it, and one it was not told of at its next sweep", async () => {
      const server = await startRedis();
      const clock = new ManualClock();
      await target(server.url, clock, async (request) => request);
      const a = await requester(server.url);
      // Told: answered with b's clock standing still, so without a sweep.
      expect(await a.request("b", { n: 1 })).toEqual({ n: 1 });

      // Appended without the notice (as a sender whose notice was lost): read at the sweep.
      const listener = await connectRedis([server.url]);
      afterTest(() => listener.disconnect());
      const answers: string[] = [];
      listener.on("message", (_channel: string, message: string) => answers.push(message));
      await listener.subscribe(replyChannel("t:", "x"));
      const writer = await connectRedis([server.url]);
      afterTest(() => writer.disconnect());
      await writer.xadd(requestStreamKey("t:", "b"), "*", "f", "x", "i", "r1", "t", "2000", "b", '{"n":2}');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(answers).toEqual([]);
      clock.advance(1_000);
      await waitFor(() => answers.length === 1, 2_000, "the answer");
      expect(JSON.parse(answers[0]!)).toEqual({ i: "r1", v: { n: 2 } });
    });

    it("sweeps on its main connection while idle (the lease's renewal goes there too), and on the reader's once it shows a session", async () => {
      const server = await startRedis();
      const clock = new ManualClock();
      const main = await connectRedis([server.url]);
      let mainReads = 0;
      const xread = main.xread.bind(main) as (...args: unknown[]) => Promise<unknown>;
      (main as unknown as { xread: typeof xread }).xread = (...args) => {
        mainReads++;
        return xread(...args);
      };
      let idle = true;
      await rpcNode(
        server.url,
        "b",
        clock,
        async (request) => request,
        () => idle,
        main,
      );
      const listener = await connectRedis([server.url]);
      afterTest(() => listener.disconnect());
      const answers: string[] = [];
      listener.on("message", (_channel: string, message: string) => answers.push(message));
      await listener.subscribe(replyChannel("t:", "x"));
      // Requests appended without their notice: only a sweep finds them.
      const lost = (id: string) =>
        main.xadd(requestStreamKey("t:", "b"), "*", "f", "x", "i", id, "t", "2000", "b", '{"n":1}');

      await lost("r1");
      clock.advance(1_000);
      await waitFor(() => answers.length === 1, 2_000, "the idle sweep's answer");
      expect(mainReads).toBe(1);

      // Busy: a flood's appends may queue on the main connection, so the sweep reads on the reader's.
      idle = false;
      await lost("r2");
      clock.advance(1_000);
      await waitFor(() => answers.length === 2, 2_000, "the busy sweep's answer");
      expect(mainReads).toBe(1);
      expect(answers.map((a) => (JSON.parse(a) as { i: string }).i)).toEqual(["r1", "r2"]);
    });

    it("reads what it was told of while its channel reconnected, without waiting for a sweep", async () => {
      const server = await startRedis();
      const proxy = await FaultProxy.start(server.port);
      afterTest(() => proxy.close());
      let handled = 0;
      await target(`redis://127.0.0.1:${proxy.port}`, new ManualClock(), async () => ++handled);
      const a = await requester(server.url);
      expect(await a.request("b", {})).toBe(1);
      for (let round = 2; round <= 4; round++) {
        // b's connections drop; the request's notice is published while its channel is down.
        proxy.cut();
        expect(await a.request("b", {})).toBe(round);
      }
    });
  });
});
