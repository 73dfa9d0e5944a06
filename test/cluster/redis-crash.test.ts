import { describe, expect, it } from "vitest";
import { RedisLog } from "../../src/cluster/redis-log.js";
import { connectRedis } from "../../src/cluster/redis-client.js";
import { afterTest } from "../helpers/cleanup.js";
import { api } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/tmp.js";
import { follow } from "./sse-follow.js";

const CRASH_TEST_MS = 150_000;

describe("Redis killed mid-flood", () => {
  it(
    "with appendfsync always, every event a viewer saw is in the log after the restart with its seq and content, seqs stay contiguous, and the flood goes on",
    async () => {
      const redis = await startRedis({ appendfsync: "always" });
      const [a, b] = await Promise.all(
        ["gw-a", "gw-b"].map((name) =>
          serveInChild({ dataDir: tempDir(), args: ["--redis", redis.url, "--node-id", name] }),
        ),
      );
      const producer = api(a!.url);
      const id = (await producer.post("/v1/sessions", { kind: "stream" })).json.id as string;
      await expect
        .poll(async () => (await api(b!.url).get(`/v1/sessions/${id}`)).status, { timeout: 10_000 })
        .toBe(200);
      const viewer = follow(b!.url, id);
      let acknowledged = 0;
      let stopFlood = false;
      const flood = (async () => {
        for (let n = 0; !stopFlood;) {
          // Refused while Redis is away (503 LOG_UNAVAILABLE): not appended, so sent again.
          const res = await producer
            .post(`/v1/sessions/${id}/events`, { type: "note", data: { n, pad: "x".repeat(500) } })
            .catch(() => undefined);
          if (res?.status === 200) {
            acknowledged++;
            n++;
          } else await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      await expect.poll(() => acknowledged, { timeout: 20_000 }).toBeGreaterThan(200);
      await redis.kill9();
      const atKill = acknowledged;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await redis.restart();
      await expect.poll(() => acknowledged, { timeout: 30_000 }).toBeGreaterThan(atKill + 200);
      stopFlood = true;
      await flood;
      await expect.poll(() => viewer.seen.size, { timeout: 20_000 }).toBeGreaterThanOrEqual(acknowledged);
      await viewer.stop();

      const client = await connectRedis([redis.url]);
      afterTest(() => client.disconnect());
      const stored = await new RedisLog(client, "sb:").read(id, 1, "+", 1_000_000);
      expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1));
      const byId = new Map(stored.map((e) => [e.seq, e.json]));
      for (const [seq, json] of viewer.seen) expect(byId.get(seq)).toBe(json);
      // Every acknowledged event is there (notes 0 .. acknowledged-1, once each).
      const notes = stored
        .filter((e) => e.type === "custom")
        .map((e) => (JSON.parse(e.json) as { data: { n: number } }).data.n);
      expect(notes).toEqual(notes.map((_, i) => i));
      expect(notes.length).toBeGreaterThanOrEqual(acknowledged);
    },
    CRASH_TEST_MS,
  );
});
