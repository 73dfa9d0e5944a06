import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RedisLog } from "../../src/cluster/redis-log.js";
import { connectRedis } from "../../src/cluster/redis-client.js";
import { afterTest } from "../helpers/cleanup.js";
import { api } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { startReplicatedRedis, startSentinel } from "../helpers/redis.js";
import { tempDir } from "../helpers/tmp.js";
import { expectFloodKept, flood, follow } from "./flood-and-follow.js";
import { waitFor } from "../helpers/wait-for.js";

const FAILOVER_TEST_MS = 60_000;

/**
 * Two gateway processes (gw-a, gw-b) with `cluster` and waitReplicas 1 in their config, and a
 * stream session on gw-a that gw-b shows.
 */
async function twoGatewaysWithSession(cluster: { redis: string; waitTimeoutMs: number }, args: string[]) {
  const config = join(tempDir(), "config.json");
  writeFileSync(config, JSON.stringify({ cluster: { ...cluster, waitReplicas: 1 } }));
  const [a, b] = await Promise.all(
    ["gw-a", "gw-b"].map((name) => serveInChild({ dataDir: tempDir(), config, args: [...args, "--node-id", name] })),
  );
  const id = (await api(a!.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
  await waitFor(async () => (await api(b!.url).get(`/v1/sessions/${id}`)).status === 200, 10_000);
  return { a: a!, b: b!, id };
}

describe("Redis primary killed under Sentinel", () => {
  it(
    "with waitReplicas 1, every event a viewer saw before the kill is in the promoted replica's log with its seq and content, seqs stay contiguous, and the flood goes on without a gateway restart",
    async () => {
      // Two replicas: after the kill the promoted one still has a replica to confirm WAIT 1.
      const redis = await startSentinel({ replicas: 2, sentinels: 3 });
      // The Sentinel URL given as --redis too: the command line takes it as the config does.
      const { a, b, id } = await twoGatewaysWithSession({ redis: redis.url, waitTimeoutMs: 500 }, [
        "--redis",
        redis.url,
      ]);
      const producer = api(a.url);
      // Viewers on the owner and on the node that copies the session: both get only what WAIT confirmed.
      const viewers = [follow(a.url, id), follow(b.url, id)];
      const notes = flood(producer, id, 200);
      await waitFor(() => notes.acknowledged > 200, 15_000);
      await redis.whenWatching();
      const seenBeforeKill = viewers.map((v) => new Map(v.seen));
      await redis.primary.kill9();
      const atKill = notes.acknowledged;
      await waitFor(async () => (await redis.masterPort()) !== redis.primary.port, 15_000);
      await waitFor(async () => (await notes.acknowledged) > atKill + 200, 20_000);
      await notes.stop();
      for (const viewer of viewers) await waitFor(() => viewer.seen.size >= notes.acknowledged, 10_000);
      await Promise.all(viewers.map((v) => v.stop()));

      const promoted = await redis.masterPort();
      expect(redis.replicas.map((r) => r.port)).toContain(promoted);
      expect(seenBeforeKill[0]!.size).toBeGreaterThan(100);
      const stored = await expectFloodKept(`redis://127.0.0.1:${promoted}`, id, {
        seen: [...seenBeforeKill, ...viewers.map((v) => v.seen)],
        acknowledged: notes.acknowledged,
      });
      // The other gateway followed the new primary too: its copy serves the whole log.
      await waitFor(
        async () =>
          ((await api(b.url).get(`/v1/sessions/${id}/events?since=0&limit=1`)).json as { head?: number }).head ===
          stored.at(-1)!.seq,
        10_000,
      );
    },
    FAILOVER_TEST_MS,
  );
});

describe("cluster.waitReplicas", () => {
  it(
    "holds an event back from viewers on every node while no replica confirms it, reports Redis degraded, and delivers it once the replica answers",
    async () => {
      const { primary, replicas } = await startReplicatedRedis(1);
      const replica = replicas[0]!;
      // The default wait: with less, a replica a busy machine has not run in time leaves even the
      // first append unconfirmed (503), before any fault.
      const { a, b, id } = await twoGatewaysWithSession({ redis: primary.url, waitTimeoutMs: 1_000 }, []);
      const client = api(a.url);
      // One viewer on the owner, one on the node that copies the session from Redis.
      const viewers = [follow(a.url, id), follow(b.url, id)];
      afterTest(() => Promise.all(viewers.map((v) => v.stop())));
      const saw = (n: number) => viewers.map((v) => [...v.seen.values()].some((json) => json.includes(`"n":${n}`)));
      expect((await client.post(`/v1/sessions/${id}/events`, { type: "note", data: { n: 0 } })).status).toBe(200);
      await waitFor(() => {
        expect(saw(0)).toEqual([true, true]);
        return true;
      }, 10_000);

      replica.child.kill("SIGSTOP");
      afterTest(() => replica.child.kill("SIGCONT"));
      const held = client.post(`/v1/sessions/${id}/events`, { type: "note", data: { n: 1 } });
      // Redis ran the append (the primary holds it), but no replica confirmed it: not delivered.
      const redis = await connectRedis([primary.url]);
      afterTest(() => redis.disconnect());
      const log = new RedisLog(redis, "sb:");
      await waitFor(
        async () => (await log.read(id, 1, "+", 100)).some((e) => e.json.includes('"n":1')) === true,
        5_000,
      );
      await waitFor(
        async () => ((await client.get("/healthz")).json as { degraded?: string }).degraded === "REDIS_UNAVAILABLE",
        5_000,
      );
      // Longer than the copies' sweep (1 s): the node that copies has read Redis meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(saw(1)).toEqual([false, false]);

      replica.child.kill("SIGCONT");
      await waitFor(() => {
        expect(saw(1)).toEqual([true, true]);
        return true;
      }, 10_000);
      expect((await held).status).toBe(200);
      await waitFor(async () => ((await client.get("/healthz")).json as { degraded?: string }).degraded === undefined);
      const stored = await log.read(id, 1, "+", 100);
      for (const viewer of viewers)
        for (const [seq, json] of viewer.seen) expect(stored.find((e) => e.seq === seq)?.json).toBe(json);
    },
    FAILOVER_TEST_MS,
  );
});
