import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { connectRedis } from "../../src/cluster/redis-client.js";
import { sessionKeys } from "../../src/cluster/redis-log.js";
import { api } from "../helpers/gateway.js";
import { readSseMessages } from "../helpers/sse.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

const CLUSTER_TEST_MS = 120_000;
const MAX_EVENTS = 20;
const EVENTS = 150;

/** The `HISTORY_TRIMMED` answer of `/events` for a position retention dropped: status, code, first, head. */
async function trimmedAnswer(node: ChildGateway, id: string) {
  const res = await api(node.url).get(`/v1/sessions/${id}/events?since=1`);
  const error = res.json.error as { code: string; first: number; head: number } | undefined;
  return { status: res.status, code: error?.code, first: error?.first, head: error?.head };
}

/** The SSE messages with data of `/stream?since=1` up to the event with seq `head`: `event: reset` first, then the events. */
async function sseFrom1(node: ChildGateway, id: string, head: number): Promise<string[]> {
  const { status, messages } = await readSseMessages(`${node.url}/v1/sessions/${id}/stream?since=1`, (m) =>
    m.at(-1)!.includes(`"seq":${head},`),
  );
  expect(status).toBe(200);
  return messages.filter((m) => m.includes("data: "));
}

describe("retention in cluster mode", () => {
  it(
    "a viewer on another node resuming from a trimmed position gets the same HISTORY_TRIMMED and reset as on one node, and Redis keeps nothing below the trim point",
    async () => {
      const redis = await startRedis();
      const config = join(tempDir(), "config.json");
      writeFileSync(config, JSON.stringify({ retention: { maxEvents: MAX_EVENTS } }));
      const [owner, other, single] = await Promise.all([
        serveInChild({ dataDir: tempDir(), config, args: ["--redis", redis.url, "--node-id", "gw-a"] }),
        serveInChild({ dataDir: tempDir(), config, args: ["--redis", redis.url, "--node-id", "gw-b"] }),
        serveInChild({ dataDir: tempDir(), config }),
      ]);
      const ids: string[] = [];
      for (const node of [owner, single]) {
        const id = (await api(node.url).post("/v1/sessions", { kind: "stream", name: "kept-short" })).json.id as string;
        for (let i = 0; i < EVENTS; i++) {
          const res = await api(node.url).post(`/v1/sessions/${id}/events`, {
            type: "output",
            data: { stream: "stdout", data: `line ${i}\n` },
          });
          expect(res.status).toBe(200);
        }
        ids.push(id);
      }
      const [id, singleId] = ids as [string, string];

      // One node: retention kept the newest MAX_EVENTS events.
      await waitFor(async () => {
        expect(await trimmedAnswer(single, singleId)).toEqual({
          status: 410,
          code: "HISTORY_TRIMMED",
          first: EVENTS - MAX_EVENTS + 1,
          head: EVENTS,
        });
        return true;
      }, 15_000);
      // The owner and the other node answer alike (the other once its copy has the trim).
      for (const node of [owner, other]) {
        await waitFor(async () => {
          expect(await trimmedAnswer(node, id)).toEqual({
            status: 410,
            code: "HISTORY_TRIMMED",
            first: EVENTS - MAX_EVENTS + 1,
            head: EVENTS,
          });
          return true;
        }, 15_000);
      }

      // Streams from the trimmed position: an explicit reset naming the range, then the retained events.
      const strip = (messages: string[], sessionId: string) =>
        messages.map((m) => m.replaceAll(sessionId, "<id>").replace(/"ts":\d+/g, '"ts":0'));
      const onSingle = strip(await sseFrom1(single, singleId, EVENTS), singleId);
      expect(onSingle[0]).toBe(
        `event: reset\ndata: ${JSON.stringify({ reason: "trimmed", first: EVENTS - MAX_EVENTS + 1, head: EVENTS })}`,
      );
      expect(onSingle).toHaveLength(1 + MAX_EVENTS);
      expect(onSingle[1]).toContain(`line ${EVENTS - MAX_EVENTS}\\n`);
      expect(strip(await sseFrom1(other, id, EVENTS), id)).toEqual(onSingle);
      expect(strip(await sseFrom1(owner, id, EVENTS), id)).toEqual(onSingle);

      // Redis holds exactly the retained entries: none below the trim point.
      const client = await connectRedis([redis.url]);
      try {
        const keys = sessionKeys("sb:", id);
        const entries = await client.xrange(keys.log, "-", "+");
        expect(entries.map(([entryId]) => entryId)).toEqual(
          Array.from({ length: MAX_EVENTS }, (_, i) => `${EVENTS - MAX_EVENTS + 1 + i}-0`),
        );
        expect(await client.hmget(keys.meta, "first", "head")).toEqual([
          String(EVENTS - MAX_EVENTS + 1),
          String(EVENTS),
        ]);
      } finally {
        client.disconnect();
      }
    },
    CLUSTER_TEST_MS,
  );
});
