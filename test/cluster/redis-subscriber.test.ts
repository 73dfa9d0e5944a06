import { describe, expect, it } from "vitest";
import { REDIS_COMMAND_TIMEOUT_MS, connectRedis, subscriberClient } from "../../src/cluster/redis-client.js";
import { afterTest } from "../helpers/cleanup.js";
import { FaultProxy } from "../helpers/fault-proxy.js";
import { waitFor } from "../helpers/wait-for.js";
import { startRedis } from "../helpers/redis.js";

describe("a subscriber connection to Redis", () => {
  it("subscribes again after a reconnect however long Redis takes to answer, with no unhandled rejection", async () => {
    const server = await startRedis();
    const proxy = await FaultProxy.start(server.port);
    afterTest(() => proxy.close());
    const main = await connectRedis([`redis://127.0.0.1:${proxy.port}`]);
    afterTest(() => main.disconnect());
    const subscriber = subscriberClient(main);
    afterTest(() => subscriber.disconnect());
    const heard: string[] = [];
    subscriber.on("message", (_channel: string, message: string) => heard.push(message));
    await subscriber.subscribe("replies");
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on("unhandledRejection", onRejection);
    afterTest(() => void process.off("unhandledRejection", onRejection));

    // The driver subscribes again on the next connection; Redis answers only after a command's timeout.
    const reconnected = new Promise<void>((resolve) =>
      subscriber.once("ready", () => {
        proxy.blackhole("both");
        resolve();
      }),
    );
    proxy.cut();
    await reconnected;
    await new Promise((r) => setTimeout(r, REDIS_COMMAND_TIMEOUT_MS + 1_000));
    proxy.heal();

    const publisher = await connectRedis([server.url]);
    afterTest(() => publisher.disconnect());
    await waitFor(
      async () => {
        await publisher.publish("replies", "an answer");
        return heard.includes("an answer");
      },
      10_000,
      "a message on the channel subscribed before the reconnect",
    );
    expect(rejections).toEqual([]);
  }, 30_000);
});
