import { readFileSync, writeFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { MIRROR_SWEEP_MS } from "../../src/server/cluster/cluster-mirror.js";
import { api } from "../helpers/gateway.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { WsClient, afterFile, configuredNodes, listedEverywhere } from "./ws-forward-helpers.js";
import type { Frame } from "./ws-forward-helpers.js";
import { waitFor } from "../helpers/wait-for.js";

/** The control lease's auto-release these tests run with (the default is 5 minutes). */
const AUTO_RELEASE_MS = 1500;
/** The node lease's TTL (the default is 10 s). */
const TTL_MS = 1500;
const TEST_MS = 90_000;
const OPAL_TOKEN = "opal-token-0123456789abcdef0123456789";

/**
 * Gateway processes on one real redis-server, with short control and node leases; `defer` as for
 * `configuredNodes`.
 */
async function cluster(names: string[], defer?: (fn: () => void) => void): Promise<ChildGateway[]> {
  const { nodes } = await configuredNodes(
    names,
    { cluster: { nodeTtlMs: TTL_MS }, control: { autoReleaseAfterMs: AUTO_RELEASE_MS } },
    defer ? { defer } : {},
  );
  return nodes;
}

async function ptyOn(node: ChildGateway, nodes: ChildGateway[], command = ["cat"]): Promise<string> {
  const created = await api(node.url).post("/v1/sessions", { kind: "terminal", command, pty: true });
  expect(created.status).toBe(201);
  const id = created.json.id as string;
  await listedEverywhere(nodes, id);
  return id;
}

/** A `/v1/ws` client on `node`, past its hello. */
async function mux(node: ChildGateway): Promise<WsClient> {
  const client = await WsClient.open(node, "/v1/ws");
  await client.next((f) => f["op"] === "hello");
  return client;
}

let refs = 100;
/** Sends `frame` with a new ref and resolves with its answer. */
async function ask(client: WsClient, frame: Frame): Promise<Frame> {
  const ref = ++refs;
  client.send({ ...frame, ref });
  return client.answer(ref);
}

/** A `CONTROL_LOST` error frame of `/v1/ws`, once it comes. */
function controlLost(client: WsClient, timeoutMs = 10_000): Promise<Frame> {
  return client.next((f) => f["op"] === "error" && f["code"] === "CONTROL_LOST", timeoutMs);
}

/** The events of `id` a `/v1/ws` subscriber has been sent so far. */
function muxEvents(client: WsClient, id: string): Frame[] {
  return client.frames
    .filter((f) => (f["op"] === "event" || f["op"] === "events") && f["session"] === id)
    .flatMap((f: Frame) => (f["op"] === "event" ? [f["event"]] : f["events"]) as Frame[]);
}

async function controlEvents(node: ChildGateway, id: string): Promise<Frame[]> {
  const res = await api(node.url).get(`/v1/sessions/${id}/events?limit=1000&types=control`);
  expect(res.status).toBe(200);
  return res.json.events as Frame[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the control lease across nodes behaves as on one node", () => {
  // One cluster for the tests that neither stop, kill nor reconfigure a node: each takes the lease of a session of its own.
  let shared: ChildGateway[];
  beforeAll(async () => {
    shared = await cluster(["gw-a", "gw-b", "gw-c"], afterFile);
  });

  it(
    "a controller on B of a session on A is told CONTROL_LOST (close 4001 on /ws/session) when taken over from A or C, or expired, with the frames a local controller gets",
    async () => {
      const nodes = shared;
      const [a, b, c] = nodes as [ChildGateway, ChildGateway, ChildGateway];
      const id = await ptyOn(a, nodes);

      // Taken over by a connection on A: the local controller's frame, then the remote one's.
      const localHolder = await mux(a);
      expect(await ask(localHolder, { op: "control", session: id, action: "acquire" })).toMatchObject({ op: "ack" });
      const takerOnA = await mux(a);
      expect(await ask(takerOnA, { op: "control", session: id, action: "acquire", force: true })).toMatchObject({
        op: "ack",
      });
      const localLost = await controlLost(localHolder);
      expect(localLost).toMatchObject({ session: id, reason: "taken-over" });

      const remoteHolder = await mux(b);
      expect(await ask(remoteHolder, { op: "control", session: id, action: "acquire", force: true })).toMatchObject({
        op: "ack",
      });
      expect(await ask(takerOnA, { op: "control", session: id, action: "acquire", force: true })).toMatchObject({
        op: "ack",
      });
      expect(await controlLost(remoteHolder)).toEqual(localLost);
      // It no longer holds control: its input is refused as on one node.
      expect(await ask(remoteHolder, { op: "input", session: id, data: "x" })).toMatchObject({ code: "CONTROL_HELD" });

      // Taken over from C: /ws/session on B gets the error frame, then close 4001.
      const terminal = await WsClient.open(b, `/ws/session/${id}?control=force`);
      await terminal.next((f) => f["type"] === "connected");
      await waitFor(async () => (await controlEvents(b, id)).at(-1)?.["action"] === "taken-over", 10_000);
      expect(await ask(await mux(c), { op: "control", session: id, action: "acquire", force: true })).toMatchObject({
        op: "ack",
      });
      expect(await terminal.next((f) => f["type"] === "error")).toEqual({ type: "error", ...stripOp(localLost) });
      expect(await terminal.closed).toBe(4001);

      // Expired after the holder's silence, from B as from A.
      const silentOnA = await mux(a);
      expect(await ask(silentOnA, { op: "control", session: id, action: "acquire", force: true })).toMatchObject({
        op: "ack",
      });
      const expiredLocal = await controlLost(silentOnA);
      expect(expiredLocal).toMatchObject({ reason: "expired" });
      const silentOnB = await mux(b);
      expect(await ask(silentOnB, { op: "control", session: id, action: "acquire" })).toMatchObject({ op: "ack" });
      expect(await controlLost(silentOnB)).toEqual(expiredLocal);
      // The log of every node says so, naming B's connection.
      const hello = silentOnB.frames.find((f) => f["op"] === "hello")!;
      for (const node of nodes)
        await waitFor(async () => {
          expect((await controlEvents(node, id)).at(-1)).toMatchObject({
            action: "expired",
            previous: { connId: hello["connId"] },
          });
          return true;
        }, 10_000);
    },
    TEST_MS,
  );

  it(
    "a controller on B whose token a reload removes is closed as on one node, and its lease on A ends `disconnected`",
    async () => {
      const base = { cluster: { nodeTtlMs: TTL_MS } };
      const opal = { name: "opal", token: OPAL_TOKEN, role: "operator", sessions: ["*"] };
      const { nodes, configs } = await configuredNodes(["gw-a", "gw-b"], { ...base, auth: { tokens: [opal] } });
      const [a, b] = nodes as [ChildGateway, ChildGateway];
      const id = await ptyOn(a, nodes);
      const holder = await WsClient.open(b, "/v1/ws", undefined, OPAL_TOKEN);
      const hello = await holder.next((f) => f["op"] === "hello");
      expect(await ask(holder, { op: "control", session: id, action: "acquire" })).toMatchObject({ op: "ack" });

      // opal's token leaves every node's config.
      for (const [i, file] of configs.entries()) {
        const { auth: _auth, ...rest } = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
        writeFileSync(file, JSON.stringify(rest));
        nodes[i]!.child.kill("SIGHUP");
      }
      expect(await holder.closed).toBe(1008);
      expect(holder.frames.at(-1)).toMatchObject({ op: "error", code: "UNAUTHORIZED" });
      await waitFor(async () => {
        expect((await controlEvents(a, id)).at(-1)).toMatchObject({
          action: "disconnected",
          holder: null,
          previous: { name: "opal", connId: hello["connId"] },
        });
        return true;
      }, 10_000);
    },
    TEST_MS,
  );

  it(
    "a ping on B renews the lease its connection took on A, over /v1/ws and /ws/session",
    async () => {
      const [a, b] = shared as [ChildGateway, ChildGateway];
      const nodes = [a, b];
      // One session per transport, so that both are pinged over the same three auto-release times.
      const id = await ptyOn(a, nodes);
      const termId = await ptyOn(a, nodes);

      const holder = await mux(b);
      expect(await ask(holder, { op: "control", session: id, action: "acquire" })).toMatchObject({ op: "ack" });
      const terminal = await WsClient.open(b, `/ws/session/${termId}?control=acquire`);
      await terminal.next((f) => f["type"] === "connected");
      await waitFor(async () => (await controlEvents(a, termId)).at(-1)?.["action"] === "acquired", 10_000);
      // Three auto-release times of pings alone on both, then input still goes through.
      for (let waited = 0; waited < 3 * AUTO_RELEASE_MS; waited += 300) {
        holder.send({ op: "ping" });
        terminal.send({ type: "ping" });
        await sleep(300);
      }
      const [input, muxControl, terminalControl] = await Promise.all([
        ask(holder, { op: "input", session: id, data: "still mine\n" }),
        controlEvents(a, id),
        controlEvents(a, termId),
      ]);
      expect(input).toEqual({ op: "ack", ref: refs });
      expect(holder.frames.filter((f) => f["code"] === "CONTROL_LOST")).toEqual([]);
      expect(muxControl.map((e) => e["action"])).toEqual(["acquired"]);
      expect(terminal.frames.filter((f) => f["type"] === "error")).toEqual([]);
      expect(terminalControl.at(-1)).toMatchObject({ action: "acquired" });
      // Its close ends the lease on A as a local connection's does.
      await terminal.close();
      await waitFor(async () => {
        expect((await controlEvents(a, termId)).at(-1)).toMatchObject({ action: "disconnected", holder: null });
        return true;
      }, 10_000);
      // Silent from its input on: it expires on A and B says so.
      expect(await controlLost(holder)).toMatchObject({ reason: "expired" });
    },
    TEST_MS,
  );

  it(
    "after a node dies, the other nodes forward to the node that took its sessions over, not to the dead one",
    async () => {
      const nodes = await cluster(["gw-a", "gw-b", "gw-c"]);
      const [a, b, c] = nodes as [ChildGateway, ChildGateway, ChildGateway];
      const termId = await ptyOn(a, nodes);
      const streamId = (await api(a.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      await listedEverywhere(nodes, streamId);

      a.child.kill("SIGKILL");
      let taker: ChildGateway | undefined;
      await waitFor(async () => {
        const listed = (await api(b.url).get("/v1/nodes")).json.nodes as Array<{ id: string; sessions: string[] }>;
        const owner = listed.find((n) => n.sessions.includes(streamId))?.id;
        taker = owner === "gw-b" ? b : owner === "gw-c" ? c : undefined;
        return taker !== undefined;
      }, TTL_MS + 10_000);
      const other = taker === b ? c : b;
      const takerId = taker === b ? "gw-b" : "gw-c";
      // The other node hears of it at once (the taker publishes the id); at the latest, its next sweep.
      await sleep(MIRROR_SWEEP_MS + 500);

      // A post on the other node goes to the new owner at once, as a read of its copy shows.
      const started = performance.now();
      const posted = await api(other.url).post(`/v1/sessions/${streamId}/events`, {
        type: "output",
        data: { stream: "stdout", data: "after the takeover\n" },
      });
      expect([posted.status, posted.json]).toEqual([200, expect.anything()]);
      expect(performance.now() - started).toBeLessThan(2_000);
      expect((await api(other.url).get(`/v1/sessions/${streamId}/output`)).text).toBe("after the takeover\n");

      // The terminal ended `lost` with A: the owner's refusal, not NODE_UNAVAILABLE naming A.
      await waitFor(async () => (await api(other.url).get(`/v1/sessions/${termId}`)).json.state === "lost", 5_000);
      const refused = await api(other.url).post(`/v1/sessions/${termId}/input`, { data: "x" });
      expect([refused.status, refused.json.error.code]).toEqual([409, "SESSION_NOT_RUNNING"]);
      const ws = await mux(other);
      expect(await ask(ws, { op: "resize", session: termId, cols: 90, rows: 30 })).toMatchObject({
        code: "SESSION_NOT_RUNNING",
      });
      expect(JSON.stringify([refused.json, ws.frames])).not.toContain("gw-a");
      // Every node names the new owner in the list of members.
      const listed = (await api(other.url).get("/v1/nodes")).json.nodes as Array<{ id: string; sessions: string[] }>;
      expect(listed.find((n) => n.id === takerId)?.sessions.sort()).toEqual([termId, streamId].sort());
    },
    TEST_MS,
  );

  it(
    "a node fenced after a pause shows the session as a copy of the new owner's: its viewers see the `lost`, its posts go there",
    async () => {
      const nodes = await cluster(["gw-a", "gw-b"]);
      const [a, b] = nodes as [ChildGateway, ChildGateway];
      const termId = await ptyOn(a, nodes, ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.01; done"]);
      const streamId = (await api(a.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      await listedEverywhere(nodes, streamId);
      const viewer = await mux(a);
      for (const [ref, id] of [termId, streamId].entries()) {
        viewer.send({ op: "subscribe", session: id, since: 0, ref });
        await viewer.next((f) => f["op"] === "subscribed" && f["ref"] === ref);
      }
      await waitFor(() => muxEvents(viewer, termId).length > 20 === true, 10_000);

      a.child.kill("SIGSTOP");
      try {
        await waitFor(
          async () => (await api(b.url).get(`/v1/sessions/${termId}`)).json.state === "lost",
          TTL_MS + 10_000,
        );
      } finally {
        a.child.kill("SIGCONT");
      }

      // The viewer on the fenced node sees the new owner's `lost`, and then nothing more.
      await waitFor(() => {
        expect(muxEvents(viewer, termId).find((e) => e["type"] === "lost")).toMatchObject({
          reason: expect.stringContaining("gw-a"),
        });
        return true;
      }, 10_000);
      await waitFor(async () => (await api(a.url).get(`/v1/sessions/${termId}`)).json.state === "lost", 5_000);
      const onB = (await api(b.url).get(`/v1/sessions/${termId}/events?limit=10000`)).json.events as Frame[];
      const onA = (await api(a.url).get(`/v1/sessions/${termId}/events?limit=10000`)).json.events as Frame[];
      expect(onA).toEqual(onB);
      const seen = muxEvents(viewer, termId);
      expect(seen.map((e) => e["seq"])).toEqual(seen.map((_, i) => i + 1));
      expect(seen).toEqual(onB.slice(0, seen.length));
      expect(seen.at(-1)).toEqual(onB.at(-1));

      // Its stream is B's now: a post on A goes there, and A's viewer sees it.
      await waitFor(
        () => a.log.some((l) => String(l["msg"]).startsWith("session fenced") && l["sessionId"] === streamId) === true,
        10_000,
      );
      const posted = await api(a.url).post(`/v1/sessions/${streamId}/events`, {
        type: "output",
        data: { stream: "stdout", data: "posted on a\n" },
      });
      expect(posted.status).toBe(200);
      expect((await api(b.url).get(`/v1/sessions/${streamId}/output`)).text).toBe("posted on a\n");
      await waitFor(() => {
        expect(muxEvents(viewer, streamId).find((e) => e["type"] === "output")).toMatchObject({
          data: "posted on a\n",
        });
        return true;
      }, 10_000);
    },
    TEST_MS,
  );
});

/** A `/v1/ws` error frame as `/ws/session` sends it: without `op` and `session`. */
function stripOp(frame: Frame): Frame {
  const { op: _op, session: _session, ...rest } = frame;
  return rest;
}
