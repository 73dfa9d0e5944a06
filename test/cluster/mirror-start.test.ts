import { describe, expect, it } from "vitest";
import { api, TEST_TOKEN } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

const CLUSTER_TEST_MS = 90_000;

async function outputOf(node: ChildGateway, id: string): Promise<string> {
  const res = await fetch(`${node.url}/v1/sessions/${id}/output`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  return res.status === 200 ? res.text() : `status ${res.status}`;
}

describe("a node's first copy of a session", () => {
  it(
    "starts at the right output offset when the log opens with an event that is not output (regression: a copy that met output first appended in Redis refused every entry)",
    async () => {
      const redis = await startRedis();
      const owner = await serveInChild({ dataDir: tempDir(), args: ["--redis", redis.url, "--node-id", "gw-a"] });
      const id = (await api(owner.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      await api(owner.url).post(`/v1/sessions/${id}/events`, [
        { type: "opening", data: { n: 1 } },
        { type: "output", data: { stream: "stdout", data: "abc" } },
        { type: "output", data: { stream: "stdout", data: "def" } },
      ]);
      // The other node starts after the output is in Redis: its first sight of the session.
      const other = await serveInChild({ dataDir: tempDir(), args: ["--redis", redis.url, "--node-id", "gw-b"] });
      const events = async (node: ChildGateway) =>
        ((await api(node.url).get(`/v1/sessions/${id}/events?since=0`)).json.events as Array<{
          seq: number;
          type: string;
        }>) ?? [];
      const onOwner = await events(owner);
      expect(onOwner.map((e) => e.type)).toEqual(["custom", "output", "output"]);
      await waitFor(async () => {
        expect(await events(other)).toEqual(onOwner);
        return true;
      }, 15_000);
      expect(await outputOf(owner, id)).toBe("abcdef");
      await waitFor(async () => (await outputOf(other, id)) === "abcdef", 15_000);
      // Output appended after the copy started follows it.
      await api(owner.url).post(`/v1/sessions/${id}/events`, {
        type: "output",
        data: { stream: "stdout", data: "gh" },
      });
      await waitFor(async () => (await outputOf(other, id)) === "abcdefgh", 15_000);
    },
    CLUSTER_TEST_MS,
  );
});
