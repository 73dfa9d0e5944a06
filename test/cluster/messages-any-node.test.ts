import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import type { ConfigInput } from "../../src/server/config/config.js";
import { api, testGateway } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";
import { afterFile } from "./ws-forward-helpers.js";

const MESSAGES_TEST_MS = 90_000;

const config: ConfigInput = {
  agents: { helper: { adapter: "echo" } },
  bindings: [{ agentId: "helper", match: { channel: "slack" } }],
  defaultAgent: "echo",
};

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

const message = (peer: string, text: string) => ({ channel: "slack", peer: { kind: "direct", id: peer }, text });

/** The answers without what differs between any two gateways (ids), to compare with one node's. */
const shape = (answers: Answer[]) =>
  answers.map(({ status, json }) => {
    const { sessionId, runId, ...rest } = json;
    return { status, ...rest, ids: typeof sessionId === "string" && typeof runId === "string" };
  });

/** The texts of a session's final answers, once it has `count` of them. */
async function finals(base: string, sessionId: string, count: number): Promise<string[]> {
  let texts: string[] = [];
  await waitFor(async () => {
    const events = (await api(base).get(`/v1/sessions/${sessionId}/events?since=0`)).json.events as Array<{
      type: string;
      text: string;
    }>;
    texts = events.filter((e) => e.type === "chat.final").map((e) => e.text);
    return texts.length === count;
  }, 20_000);
  return texts;
}

/** Three gateway processes on one Redis, with `config`; stopped when the file's tests end. */
async function threeNodes(): Promise<ChildGateway[]> {
  const redis = await startRedis();
  const file = join(tempDir(), "config.json");
  writeFileSync(file, JSON.stringify(config));
  return Promise.all(
    ["gw-a", "gw-b", "gw-c"].map((name) =>
      serveInChild({
        dataDir: tempDir(),
        config: file,
        args: ["--redis", redis.url, "--node-id", name],
        defer: afterFile,
      }),
    ),
  );
}

describe("/v1/messages on any node", () => {
  // One cluster for both tests: each sends to keys (peers) of its own, so each finds its own sessions.
  let nodes: ChildGateway[];
  beforeAll(async () => {
    nodes = await threeNodes();
  });

  it(
    "messages for one key posted to random nodes land in one session, with the answers one node gives",
    async () => {
      const single = await testGateway({ config });
      let peer = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(fc.nat(nodes.length - 1), { minLength: 3, maxLength: 8 }), async (picks) => {
          const id = `u${peer++}`;
          const texts = picks.map((node, i) => `m${i} to node ${node}`);
          const clustered: Answer[] = [];
          for (const [i, node] of picks.entries())
            clustered.push(await api(nodes[node]!.url).post("/v1/messages", message(id, texts[i]!)));
          const alone: Answer[] = [];
          for (const text of texts) alone.push(await api(single.url).post("/v1/messages", message(id, text)));
          expect(shape(clustered)).toEqual(shape(alone));
          const sessionIds = new Set(clustered.map((a) => a.json["sessionId"]));
          expect(sessionIds.size).toBe(1);
          const sessionId = [...sessionIds][0] as string;
          // Every node lists that one session for the key, and it holds every message's answer in order.
          for (const node of nodes) {
            const listed = (await api(node.url).get("/v1/sessions")).json.sessions as Array<{
              id: string;
              name: string;
            }>;
            expect(listed.filter((s) => s.name === clustered[0]!.json["sessionKey"]).map((s) => s.id)).toEqual([
              sessionId,
            ]);
          }
          const answered = await finals(nodes[0]!.url, sessionId, texts.length);
          const reference = await finals(single.url, alone[0]!.json["sessionId"] as string, texts.length);
          expect(answered).toEqual(reference);
          texts.forEach((text, i) => expect(answered[i]).toContain(text));
        }),
        { numRuns: 3 },
      );
    },
    MESSAGES_TEST_MS,
  );

  it(
    "first messages for a new key sent to every node at once create one session, and a message after it ended creates the next one",
    async () => {
      const race = await Promise.all(
        nodes.flatMap((node, n) =>
          [0, 1].map((i) => api(node.url).post("/v1/messages", message("racer", `r${n}.${i}`))),
        ),
      );
      expect(race.map((a) => a.status)).toEqual(race.map(() => 202));
      const first = new Set(race.map((a) => a.json["sessionId"]));
      expect(first.size).toBe(1);
      const firstId = [...first][0] as string;
      await finals(nodes[1]!.url, firstId, race.length);

      // Ended on one node (DELETE, forwarded to its owner): the next message, on another, starts a new one.
      expect((await api(nodes[2]!.url).del(`/v1/sessions/${firstId}`)).status).toBe(200);
      const next = await api(nodes[0]!.url).post("/v1/messages", message("racer", "after"));
      expect(next.status).toBe(202);
      expect(next.json["sessionId"]).not.toBe(firstId);
      const again = await api(nodes[1]!.url).post("/v1/messages", message("racer", "and again"));
      expect(again.json["sessionId"]).toBe(next.json["sessionId"]);
    },
    MESSAGES_TEST_MS,
  );
});
