import { describe, expect, it } from "vitest";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { WsClient, configuredNodes, listedEverywhere } from "./ws-forward-helpers.js";
import type { Frame } from "./ws-forward-helpers.js";
import { waitFor } from "../helpers/wait-for.js";

const auth = { authorization: `Bearer ${TEST_TOKEN}` };
let refs = 0;
async function ask(client: WsClient, frame: Frame): Promise<Frame> {
  const ref = ++refs;
  client.send({ ...frame, ref });
  return client.answer(ref);
}

async function mux(node: ChildGateway): Promise<WsClient> {
  const client = await WsClient.open(node, "/v1/ws");
  await client.next((f) => f["op"] === "hello");
  return client;
}

/** The session's controller and controllerVia as its owner lists them. */
async function controller(owner: ChildGateway, id: string): Promise<Frame> {
  const { json } = await api(owner.url).get(`/v1/sessions/${id}`);
  return { controller: json.controller ?? null, controllerVia: json.controllerVia ?? null };
}

describe("control taken through another node, over a reconnect", () => {
  // Regression: a lease taken through another node ended with its connection (no reconnect
  // grace), and the owner listed it without controllerVia.
  it("is kept for the connection's clientKey on /v1/ws and /ws/session, and listed with how it is held", async () => {
    const { nodes } = await configuredNodes(["gw-a", "gw-b"], { control: { reconnectGraceMs: 30_000 } });
    const [a, b] = nodes as [ChildGateway, ChildGateway];
    const created = await api(a.url).post("/v1/sessions", { kind: "terminal", command: ["cat"], pty: true });
    const id = created.json.id as string;
    await listedEverywhere(nodes, id);
    const other = await mux(a);

    // /v1/ws on B with a clientKey: held as an SDK's, kept while it reconnects.
    const key = "sdk-client-key-0123456789";
    const first = await mux(b);
    expect(await ask(first, { op: "control", session: id, action: "acquire", clientKey: key })).toMatchObject({
      op: "ack",
    });
    expect(await controller(a, id)).toEqual({ controller: "admin", controllerVia: "sdk" });
    await first.close();
    expect(await ask(other, { op: "control", session: id, action: "acquire" })).toMatchObject({ code: "CONTROL_HELD" });
    const back = await mux(b);
    expect(await ask(back, { op: "control", session: id, action: "acquire", clientKey: key })).toMatchObject({
      op: "ack",
    });
    expect(await ask(back, { op: "input", session: id, data: "still-mine\n" })).toMatchObject({ op: "ack" });
    // Closed on purpose (1000, as the SDK's close()): no grace, the lease ends on A at once.
    back.ws.close(1000, "client closed");
    await waitFor(async () => {
      expect(await controller(a, id)).toEqual({ controller: null, controllerVia: null });
      return true;
    }, 5_000);

    // /ws/session on B, as attach connects: held as attach's, kept for its ?clientKey=.
    const path = `/ws/session/${id}?control=acquire&clientKey=attach-key-0123456789`;
    const attach = await WsClient.open(b, path);
    await waitFor(async () => {
      expect(await controller(a, id)).toEqual({ controller: "admin", controllerVia: "attach" });
      return true;
    }, 10_000);
    await attach.close();
    expect(await ask(other, { op: "control", session: id, action: "acquire" })).toMatchObject({ code: "CONTROL_HELD" });
    const again = await WsClient.open(b, path);
    again.send({ type: "stdin", data: "attach-again\n" });
    await again.next((f) => f["type"] === "error" || f["type"] === "connected");
    await waitFor(async () => {
      expect(await controller(a, id)).toEqual({ controller: "admin", controllerVia: "attach" });
      return true;
    }, 10_000);
    expect(again.frames.filter((f) => f["type"] === "error")).toEqual([]);
    // Both reconnects steered: what they typed reached the program on A.
    await waitFor(
      async () =>
        /still-mine[\s\S]*attach-again/.test(
          await (await fetch(`${a.url}/v1/sessions/${id}/output`, { headers: auth })).text(),
        ),
      10_000,
    );
  }, 90_000);
});
