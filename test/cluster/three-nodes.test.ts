import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { api } from "../helpers/gateway.js";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { readSseMessages } from "../helpers/sse.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/tmp.js";
import { afterFile } from "./ws-forward-helpers.js";
import { waitFor } from "../helpers/wait-for.js";

const CLUSTER_TEST_MS = 150_000;

interface SeenEvent {
  seq: number;
  type: string;
  bytes?: Buffer;
}

function seen(event: { seq: number; type: string; data?: unknown; enc?: string }): SeenEvent {
  if (event.type !== "output") return { seq: event.seq, type: event.type };
  const data = event.data as string;
  return { seq: event.seq, type: "output", bytes: Buffer.from(data, event.enc === "base64" ? "base64" : "utf8") };
}

/** The event of an SSE message; undefined for a comment or a named event (`reset`, `end`). */
function sseEvent(message: string): SeenEvent | undefined {
  const data = message
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => l.slice(6))
    .join("\n");
  if (data === "" || message.includes("event: ")) return undefined;
  return seen(JSON.parse(data) as { seq: number; type: string });
}

/** Reads `/stream` SSE from `since` until `cut` events came (or the stream ended); the events read. */
async function readSse(base: string, id: string, since: number, cut: number): Promise<SeenEvent[]> {
  const { status, messages } = await readSseMessages(
    `${base}/v1/sessions/${id}/stream?since=${since}`,
    (m) => m.filter((message) => sseEvent(message) !== undefined).length >= cut,
  );
  if (status === 204) return [];
  expect(status).toBe(200);
  return messages.flatMap((message) => sseEvent(message) ?? []);
}

/** Pages `/events` from `since`, at most `cut` events. */
async function readPages(base: string, id: string, since: number, cut: number): Promise<SeenEvent[]> {
  const res = await api(base).get(`/v1/sessions/${id}/events?since=${since}&limit=${Math.max(1, Math.min(cut, 1000))}`);
  expect(res.status).toBe(200);
  return (res.json.events as Array<{ seq: number; type: string }>).map(seen);
}

/** Three gateway processes on one Redis (AOF `always`); stopped when the file's tests end. */
async function threeNodes() {
  const redis = await startRedis({ appendfsync: "always" });
  const nodes: ChildGateway[] = await Promise.all(
    ["gw-a", "gw-b", "gw-c"].map((name) =>
      serveInChild({
        dataDir: tempDir(),
        args: ["--redis", redis.url, "--node-id", name],
        defer: afterFile,
      }),
    ),
  );
  return { redis, nodes };
}

/** The session list as every node should give it (what moves with viewers, who watch on each node, left out). */
async function listOn(node: ChildGateway) {
  const res = await api(node.url).get("/v1/sessions");
  expect(res.status).toBe(200);
  return (res.json.sessions as Array<Record<string, unknown>>).map(
    ({ viewers: _v, watchers: _w, lastActivityAt: _l, ...s }) => s,
  );
}

describe("three gateway processes on one Redis", () => {
  // One cluster for both tests: each makes sessions of its own.
  let nodes: ChildGateway[];
  beforeAll(async () => {
    ({ nodes } = await threeNodes());
  });

  it(
    "list the same sessions, created on different nodes, and serve every session's events and bytes on every node",
    async () => {
      const [a, b, c] = nodes as [ChildGateway, ChildGateway, ChildGateway];
      // Sessions another test of this file made before this one: not this test's to find.
      const earlier = new Set((await listOn(a)).map((s) => s["id"]));
      const onA = (await api(a.url).post("/v1/sessions", { kind: "stream", name: "on-a" })).json.id as string;
      const onB = (await api(b.url).post("/v1/sessions", { kind: "stream", name: "on-b" })).json.id as string;
      const term = await api(c.url).post("/v1/sessions", {
        kind: "terminal",
        command: ["sh", "-c", "printf 'one\\ntwo\\n'"],
      });
      expect(term.status).toBe(201);
      const onC = term.json.id as string;
      await api(a.url).post(`/v1/sessions/${onA}/events`, {
        type: "output",
        data: { stream: "stdout", data: "from a" },
      });
      await api(b.url).post(`/v1/sessions/${onB}/events`, [
        {
          type: "output",
          data: { stream: "stdout", data: Buffer.from([0, 255, 1]).toString("base64"), enc: "base64" },
        },
        { type: "exit", data: { exitCode: 3, signal: null } },
      ]);
      // Polled until every node gives one list with both ended sessions ended (their last change), and
      // fails if they never agree: an expected list taken once could be one the others had passed.
      const agreed = async () => {
        const lists = await Promise.all(nodes.map(listOn));
        const ended = lists.every((l) =>
          [onB, onC].every((id) => l.find((s) => s["id"] === id)?.["state"] === "exited"),
        );
        const texts = lists.map((l) => JSON.stringify(l));
        return ended && texts.every((t) => t === texts[0]);
      };
      await waitFor(async () => (await agreed()) === true, 15_000);
      const list = await listOn(a);
      expect(
        list
          .map((s) => s["id"])
          .filter((id) => !earlier.has(id))
          .sort(),
      ).toEqual([onA, onB, onC].sort());
      expect(list.find((s) => s["id"] === onB)).toMatchObject({ state: "exited", exitCode: 3, name: "on-b" });
      await waitFor(async () => (await listOn(b)).find((s) => s["id"] === onC)?.["state"] === "exited", 15_000);
      for (const node of nodes) {
        const raw = async (id: string) =>
          Buffer.from(
            await (
              await fetch(`${node.url}/v1/sessions/${id}/output`, {
                headers: { authorization: `Bearer ${TEST_TOKEN}` },
              })
            ).arrayBuffer(),
          );
        expect((await raw(onA)).toString()).toBe("from a");
        expect(await raw(onB)).toEqual(Buffer.from([0, 255, 1]));
        expect((await raw(onC)).toString()).toBe("one\ntwo\n");
        // The same errors on every node.
        const missing = await api(node.url).get("/v1/sessions/nope/events");
        expect([missing.status, missing.json.error.code]).toEqual([404, "SESSION_NOT_FOUND"]);
      }
    },
    CLUSTER_TEST_MS,
  );

  it(
    "clients that drop and resume with since on a random node rebuild each session's bytes exactly: no duplicate, no gap",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 2 }),
          fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { minLength: 20, maxLength: 60 }),
          fc.array(
            fc.array(
              fc.record({
                node: fc.integer({ min: 0, max: 2 }),
                sse: fc.boolean(),
                cut: fc.integer({ min: 1, max: 25 }),
              }),
              {
                minLength: 1,
                maxLength: 8,
              },
            ),
            { minLength: 10, maxLength: 10 },
          ),
          async (owner, pieces, clients) => {
            const producer = api(nodes[owner]!.url);
            const id = (await producer.post("/v1/sessions", { kind: "stream" })).json.id as string;
            const produce = (async () => {
              for (const piece of pieces) {
                const res = await producer.post(`/v1/sessions/${id}/events`, {
                  type: "output",
                  data: { stream: "stdout", data: Buffer.from(piece).toString("base64"), enc: "base64" },
                });
                expect(res.status).toBe(200);
              }
              await producer.post(`/v1/sessions/${id}/events`, { type: "exit", data: { exitCode: 0, signal: null } });
            })();
            const expected = Buffer.concat(pieces.map((p) => Buffer.from(p)));
            const results = await Promise.all(
              clients.map(async (steps) => {
                const got: SeenEvent[] = [];
                let since = 0;
                for (let i = 0; got.at(-1)?.type !== "exit"; i++) {
                  const step = steps[i % steps.length]!;
                  const node = nodes[step.node]!.url;
                  // A node that has not copied the session yet answers 404: the client tries again.
                  const listed = await api(node).get(`/v1/sessions/${id}`);
                  if (listed.status === 404) {
                    await new Promise((resolve) => setTimeout(resolve, 20));
                    continue;
                  }
                  const batch = step.sse
                    ? await readSse(node, id, since, step.cut)
                    : await readPages(node, id, since, step.cut);
                  got.push(...batch);
                  since = got.at(-1)?.seq ?? since;
                }
                return got;
              }),
            );
            await produce;
            for (const got of results) {
              expect(got.map((e) => e.seq)).toEqual(got.map((_, i) => i + 1));
              expect(Buffer.concat(got.flatMap((e) => (e.bytes ? [e.bytes] : [])))).toEqual(expected);
            }
          },
        ),
        { numRuns: 3 },
      );
    },
    CLUSTER_TEST_MS,
  );
});
