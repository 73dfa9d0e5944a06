import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { api, TEST_TOKEN } from "../helpers/gateway.js";
import { startRedis } from "../helpers/redis.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { threeGateways } from "./resume-any-node.js";
import { waitFor } from "../helpers/wait-for.js";

const TEST_MS = 60_000;

/** The next frame `ws` receives, parsed. */
function nextFrame(ws: WebSocket): Promise<Record<string, unknown>> {
  return new Promise((resolve) => ws.once("message", (data: Buffer) => resolve(JSON.parse(data.toString()))));
}

/**
 * Node `node` is stopped (SIGSTOP) while its owner appends `text`, so that once it runs again
 * it handles what waits on its sockets before its copy can hold the new entry (which needs a
 * round trip to Redis): the copy is behind the position a viewer names.
 */
async function appendWhileStopped(node: ChildGateway, owner: ChildGateway, id: string, text: string) {
  node.child.kill("SIGSTOP");
  const res = await api(owner.url).post(`/v1/sessions/${id}/events`, {
    type: "output",
    data: { stream: "stdout", data: text },
  });
  expect(res.status).toBe(200);
  return { seq: res.json.last as number, resume: () => node.child.kill("SIGCONT") };
}

describe("a resume on a node whose copy of the session is behind", () => {
  it(
    "waits for the copy over /v1/ws and /ws/session/:id instead of refusing the position",
    async () => {
      const redis = await startRedis();
      const [a, b] = (await threeGateways(redis.url)) as [ChildGateway, ChildGateway];
      const id = (await api(a.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      await api(a.url).post(`/v1/sessions/${id}/events`, { type: "output", data: { stream: "stdout", data: "one " } });
      await waitFor(async () => (await api(b.url).get(`/v1/sessions/${id}/events`)).json.events?.length === 1);

      // /v1/ws: the subscribe frame reaches node b while its copy ends at seq 1.
      const ws = new WebSocket(`${b.url.replace("http", "ws")}/v1/ws`, {
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
      });
      expect((await nextFrame(ws))["op"]).toBe("hello");
      const two = await appendWhileStopped(b, a, id, "two ");
      ws.send(JSON.stringify({ op: "subscribe", session: id, since: two.seq, ref: 1 }));
      const answer = nextFrame(ws);
      two.resume();
      expect(await answer).toMatchObject({ op: "subscribed", session: id, from: two.seq + 1, head: two.seq });
      const live = nextFrame(ws);
      await api(a.url).post(`/v1/sessions/${id}/events`, { type: "output", data: { stream: "stdout", data: "three" } });
      expect(await live).toMatchObject({ op: "event", event: { seq: two.seq + 1, data: "three" } });
      ws.terminate();

      // /ws/session/:id: `since` is past the bytes node b's copy holds.
      const four = await appendWhileStopped(b, a, id, "four");
      const end = "one two threefour".length;
      const terminal = new WebSocket(`${b.url.replace("http", "ws")}/ws/session/${id}?since=${end}`, {
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
      });
      const refused = new Promise<number>((resolve) =>
        terminal.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0)),
      );
      const first = nextFrame(terminal);
      four.resume();
      expect(await Promise.race([first, refused])).toMatchObject({ type: "connected", offset: end });
      const next = nextFrame(terminal);
      await api(a.url).post(`/v1/sessions/${id}/events`, { type: "output", data: { stream: "stdout", data: "five" } });
      expect(await next).toMatchObject({ type: "stdout", data: "five", offset: end });
      terminal.terminate();

      // A position the owner never reached is still refused, once the wait is over.
      const ws2 = new WebSocket(`${b.url.replace("http", "ws")}/v1/ws`, {
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
      });
      expect((await nextFrame(ws2))["op"]).toBe("hello");
      ws2.send(JSON.stringify({ op: "subscribe", session: id, since: four.seq + 5, ref: 2 }));
      expect(await nextFrame(ws2)).toMatchObject({ op: "error", code: "BAD_REQUEST", ref: 2, session: id });
      ws2.terminate();
    },
    TEST_MS,
  );
});
