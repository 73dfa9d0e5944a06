import { beforeAll, describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { WsClient, afterFile, configuredNodes, listedEverywhere, threeNodes } from "./ws-forward-helpers.js";
import type { Frame } from "./ws-forward-helpers.js";
import { waitFor } from "../helpers/wait-for.js";

const CLUSTER_TEST_MS = 150_000;
/** The forward timeout the NODE_UNAVAILABLE test runs with (`cluster.requestTimeoutMs`; the default is 5 s). */
const REQUEST_TIMEOUT_MS = 1_500;

async function ptyOn(node: ChildGateway, nodes: ChildGateway[]): Promise<string> {
  const created = await api(node.url).post("/v1/sessions", { kind: "terminal", command: ["cat"], pty: true });
  expect(created.status).toBe(201);
  const id = created.json.id as string;
  await listedEverywhere(nodes, id);
  return id;
}

/** What a `/ws/session` client has been sent as output so far. */
function terminalText(client: WsClient): string {
  return client.frames
    .filter((f) => f["type"] === "stdout" || f["type"] === "replay")
    .map((f: Frame) => Buffer.from(f["data"] as string, f["enc"] === "base64" ? "base64" : "utf8").toString())
    .join("");
}

/** What a `/v1/ws` client has been sent as output of `id` so far. */
function muxText(client: WsClient, id: string): string {
  return client.frames
    .filter((f) => (f["op"] === "event" || f["op"] === "events") && f["session"] === id)
    .flatMap((f: Frame) => (f["op"] === "event" ? [f["event"]] : f["events"]) as Frame[])
    .filter((e) => e["type"] === "output")
    .map((e) => Buffer.from(e["data"] as string, e["enc"] === "base64" ? "base64" : "utf8").toString())
    .join("");
}

async function eventsOn(node: ChildGateway, id: string, type: string): Promise<Frame[]> {
  const res = await api(node.url).get(`/v1/sessions/${id}/events?limit=1000&types=${type}`);
  expect(res.status).toBe(200);
  return res.json.events as Frame[];
}

describe("WebSocket steering frames sent to any node are carried to the node that runs the session", () => {
  // One cluster for the tests that neither stop nor kill a node: each steers a session of its own.
  let nodes: [ChildGateway, ChildGateway, ChildGateway];
  beforeAll(async () => {
    nodes = await threeNodes(afterFile);
  });

  it(
    "types into a PTY on A from B over /ws/session and /v1/ws and sees the echo; resize and signal from C",
    async () => {
      const [a, b, c] = nodes;
      const id = await ptyOn(a, nodes);

      const terminal = await WsClient.open(b, `/ws/session/${id}`);
      await terminal.next((f) => f["type"] === "connected");
      terminal.send({ type: "stdin", data: "typed on b\n" });
      await waitFor(() => terminalText(terminal).includes("typed on b"), 15_000);

      const mux = await WsClient.open(b, "/v1/ws");
      const hello = await mux.next((f) => f["op"] === "hello");
      mux.send({ op: "subscribe", session: id, ref: 1 });
      await mux.next((f) => f["op"] === "subscribed" && f["ref"] === 1);
      mux.send({ op: "input", session: id, data: "muxed on b\n", ref: 2 });
      expect(await mux.answer(2)).toEqual({ op: "ack", ref: 2 });
      // Acknowledged once B's copy holds the input event, with the connection in its `by`.
      const inputs = await eventsOn(b, id, "input");
      expect(inputs.at(-1)).toMatchObject({ type: "input", bytes: 11, by: { connId: hello["connId"] } });
      await waitFor(() => muxText(mux, id).includes("muxed on b"), 15_000);
      await waitFor(() => terminalText(terminal).includes("muxed on b"), 15_000);

      const fromC = await WsClient.open(c, "/v1/ws");
      fromC.send({ op: "resize", session: id, cols: 101, rows: 31, ref: 7 });
      expect(await fromC.answer(7)).toEqual({ op: "ack", ref: 7 });
      expect((await api(a.url).get(`/v1/sessions/${id}`)).json).toMatchObject({ cols: 101, rows: 31 });
      expect((await eventsOn(c, id, "resize")).at(-1)).toMatchObject({ cols: 101, rows: 31 });
      // A refused frame has the owner's code, with its ref and session.
      fromC.send({ op: "prompt", session: id, text: "hi", ref: 8 });
      expect(await fromC.answer(8)).toMatchObject({ op: "error", ref: 8, session: id, code: "WRONG_SESSION_KIND" });

      const terminalC = await WsClient.open(c, `/ws/session/${id}`);
      await terminalC.next((f) => f["type"] === "connected");
      terminalC.send({ type: "signal", signal: "SIGTERM" });
      expect(await terminalC.closed).toBe(1000);
      expect(terminalC.frames.at(-1)).toMatchObject({ type: "exit" });
      for (const node of nodes)
        await waitFor(async () => (await api(node.url).get(`/v1/sessions/${id}`)).json.state !== "running", 15_000);
      // Input to the ended session: the same code through B as on A.
      const onA = await WsClient.open(a, "/v1/ws");
      for (const client of [mux, onA]) {
        client.send({ op: "input", session: id, data: "late", ref: 9 });
        expect(await client.answer(9)).toMatchObject({ op: "error", ref: 9, code: "SESSION_NOT_RUNNING" });
      }
    },
    CLUSTER_TEST_MS,
  );

  it(
    "control taken over WS on B refuses input on C and A (CONTROL_HELD) and is freed when that socket closes",
    async () => {
      const [a, b, c] = nodes;
      const id = await ptyOn(a, nodes);
      const holder = await WsClient.open(b, "/v1/ws");
      const holderId = (await holder.next((f) => f["op"] === "hello"))["connId"] as string;
      holder.send({ op: "control", session: id, action: "acquire", ref: 1 });
      expect(await holder.answer(1)).toEqual({ op: "ack", ref: 1, result: { controller: expect.any(String) } });
      expect((await api(a.url).get(`/v1/sessions/${id}`)).json.controller).toEqual(expect.any(String));

      const other = await WsClient.open(c, "/v1/ws");
      other.send({ op: "input", session: id, data: "refused\n", ref: 2 });
      expect(await other.answer(2)).toMatchObject({
        op: "error",
        ref: 2,
        session: id,
        code: "CONTROL_HELD",
        holderConnId: holderId,
      });
      const terminalA = await WsClient.open(a, `/ws/session/${id}`);
      await terminalA.next((f) => f["type"] === "connected");
      terminalA.send({ type: "stdin", data: "refused on a\n" });
      expect(await terminalA.next((f) => f["type"] === "error")).toMatchObject({ code: "CONTROL_HELD" });
      // The holder steers through B.
      holder.send({ op: "input", session: id, data: "held\n", ref: 3 });
      expect(await holder.answer(3)).toEqual({ op: "ack", ref: 3 });

      await holder.close();
      await waitFor(async () => (await api(a.url).get(`/v1/sessions/${id}`)).json.controller === null, 15_000);
      other.send({ op: "input", session: id, data: "free now\n", ref: 4 });
      expect(await other.answer(4)).toEqual({ op: "ack", ref: 4 });

      // `?control=acquire` on /ws/session through C holds it on A until that socket closes.
      const viewer = await WsClient.open(c, `/ws/session/${id}?control=acquire`);
      await viewer.next((f) => f["type"] === "connected");
      await waitFor(async () => {
        expect((await api(a.url).get(`/v1/sessions/${id}`)).json.controller).toEqual(expect.any(String));
        return true;
      }, 15_000);
      other.send({ op: "input", session: id, data: "refused again\n", ref: 5 });
      expect(await other.answer(5)).toMatchObject({ op: "error", code: "CONTROL_HELD" });
      viewer.send({ type: "stdin", data: "from the viewer\n" });
      await waitFor(
        async () => (await api(a.url).get(`/v1/sessions/${id}/output`)).text.includes("from the viewer"),
        15_000,
      );
      expect(viewer.frames.filter((f) => f["type"] === "error")).toEqual([]);
      await viewer.close();
      await waitFor(async () => (await api(a.url).get(`/v1/sessions/${id}`)).json.controller === null, 15_000);
    },
    CLUSTER_TEST_MS,
  );

  it(
    "answers NODE_UNAVAILABLE naming the owner while it is stopped, and goes on with the next frame after",
    async () => {
      // Its own two nodes: the owner is stopped, and the forward timeout is short.
      const { nodes: pair } = await configuredNodes(
        ["gw-a", "gw-b"],
        { cluster: { requestTimeoutMs: REQUEST_TIMEOUT_MS } },
        { redis: {} },
      );
      const [a, b] = pair as [ChildGateway, ChildGateway];
      const id = await ptyOn(a, pair);
      const mux = await WsClient.open(b, "/v1/ws");
      a.child.kill("SIGSTOP");
      try {
        const started = performance.now();
        mux.send({ op: "input", session: id, data: "while stopped\n", ref: 1 });
        const refused = await mux.answer(1, REQUEST_TIMEOUT_MS + 5_000);
        expect(refused).toMatchObject({ op: "error", ref: 1, session: id, code: "NODE_UNAVAILABLE", node: "gw-a" });
        expect(performance.now() - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      } finally {
        a.child.kill("SIGCONT");
      }
      mux.send({ op: "input", session: id, data: "after\n", ref: 2 });
      expect(await mux.answer(2)).toEqual({ op: "ack", ref: 2 });
      await waitFor(async () => (await api(a.url).get(`/v1/sessions/${id}/output`)).text.includes("after"), 15_000);
      expect((await api(a.url).get(`/v1/sessions/${id}/output`)).text).not.toContain("while stopped");
    },
    CLUSTER_TEST_MS,
  );
});
