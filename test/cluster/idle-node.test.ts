import { describe, expect, it } from "vitest";
import { connectRedis } from "../../src/cluster/redis-client.js";
import { afterTest } from "../helpers/cleanup.js";
import { startRedis } from "../helpers/redis.js";
import { clusterGateway } from "./cluster-gateway.js";

const WINDOW_MS = 7_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls of each command Redis served since its stats were reset (INFO commandstats). */
function calls(info: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

describe("an idle cluster node", () => {
  // Regression: with no session, a node looked for dead members (HGETALL), swept the shared
  // sessions (ZRANGE) and re-issued its request reader's XREAD every second; later it wrote its
  // members entry (HSET) at each renewal.
  it(
    "renews its lease every half TTL and looks around every third TTL while it shows no session, every second once it shows one",
    { timeout: 60_000 },
    async () => {
      const server = await startRedis();
      const redis = await connectRedis([server.url]);
      afterTest(() => redis.disconnect());
      const { http } = await clusterGateway(server.url, "a");
      const count = async (): Promise<Record<string, number>> => {
        await redis.config("RESETSTAT");
        await sleep(WINDOW_MS);
        return calls(await redis.info("commandstats"));
      };

      // Lease 10 s: renewed every 5 s while idle; the looks for dead members and the sweep come
      // every 30 s, so 7 s hold at most one of each (the busy pace made 7); the request reader
      // reads with each renewal, without waiting in Redis.
      const idle = await count();
      expect(idle["eval"] ?? 0).toBeGreaterThan(0); // the lease is renewed all the same
      expect(idle["eval"] ?? 0).toBeLessThanOrEqual(2);
      expect(idle["hset"] ?? 0).toBe(0); // and nothing else is written
      expect(idle["hgetall"] ?? 0).toBeLessThanOrEqual(1);
      expect(idle["zrange"] ?? 0).toBeLessThanOrEqual(1);
      expect(idle["xread"] ?? 0).toBeLessThanOrEqual(2);

      expect((await http.post("/v1/sessions", { kind: "stream" })).status).toBe(201);
      const busy = await count();
      expect(busy["hgetall"]).toBeGreaterThanOrEqual(5);
      expect(busy["zrange"]).toBeGreaterThanOrEqual(5);
    },
  );
});
