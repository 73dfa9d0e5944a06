import { describe, it } from "vitest";
import { api } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/tmp.js";
import { expectFloodKept, flood, follow } from "./flood-and-follow.js";
import { waitFor } from "../helpers/wait-for.js";

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
      await waitFor(async () => (await api(b!.url).get(`/v1/sessions/${id}`)).status === 200, 10_000);
      const viewer = follow(b!.url, id);
      const notes = flood(producer, id, 500);
      await waitFor(() => notes.acknowledged > 200, 20_000);
      await redis.kill9();
      const atKill = notes.acknowledged;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await redis.restart();
      await waitFor(() => notes.acknowledged > atKill + 200, 30_000);
      await notes.stop();
      await waitFor(() => viewer.seen.size >= notes.acknowledged, 20_000);
      await viewer.stop();

      await expectFloodKept(redis.url, id, { seen: [viewer.seen], acknowledged: notes.acknowledged });
    },
    CRASH_TEST_MS,
  );
});
