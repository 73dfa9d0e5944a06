/**
 * No exception raised while handling one connection's frame, one HTTP request or one event
 * stream reaches the process: it ends that request (500, or its connection cut once an answer is
 * under way) or that connection (1011), is logged with where it happened, and the gateway and
 * its other clients go on. Faults are injected by making a handler throw.
 */
import { get } from "node:http";
import type { IncomingMessage } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { SessionFeed } from "../../src/server/ws/feed.js";
import { createLogger } from "../../src/server/ops/logger.js";
import { ClientFrameCheck, Outbox } from "../../src/server/ws/ws-common.js";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { Mux, TOKENS, WsClient, catPty, http, secGateway } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

afterEach(() => {
  vi.restoreAllMocks();
});

/** A gateway whose error log lines are kept, parsed. */
async function loggedGateway() {
  const lines: Array<Record<string, any>> = [];
  const logger = createLogger({
    level: "error",
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, any>) },
  });
  const gw = await secGateway({ logger });
  return { gw, lines };
}

/** The `/v1/ws` subscribe frame of the crash report: `types` nested `depth` levels deep. */
function deepSubscribe(depth: number): string {
  return `{"op":"subscribe","session":"x","types":${"[".repeat(depth)}${"]".repeat(depth)}}`;
}

/** Opens a WebSocket on a child gateway with the test token; resolves with it open and its frames so far. */
function openChildWs(url: string): Promise<{ ws: WebSocket; frames: Array<Record<string, any>> }> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
  const frames: Array<Record<string, any>> = [];
  ws.on("message", (data) => frames.push(JSON.parse(data.toString()) as Record<string, any>));
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, frames }));
    ws.once("error", reject);
  });
}

describe("a frame nested deeper than the JSON depth limit (regression: one frame ended the gateway)", () => {
  it("is refused with VALIDATION_FAILED on /v1/ws and /ws/session, and the gateway and the connections live on", async () => {
    const gw = await serveInChild({ dataDir: tempDir() });
    let exited: number | null | undefined;
    gw.child.on("exit", (code) => (exited = code));
    const created = await fetch(`${gw.url}/v1/sessions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ command: ["cat"], pty: true }),
    });
    const { id } = (await created.json()) as { id: string };
    const wsBase = gw.url.replace(/^http/, "ws");

    const mux = await openChildWs(`${wsBase}/v1/ws`);
    await waitFor(() => mux.frames.some((f) => f["op"] === "hello"), 5_000, "hello");
    mux.ws.send(deepSubscribe(5000));
    const error = await waitFor(() => mux.frames.find((f) => f["op"] === "error"), 5_000, "the error frame");
    expect(error).toMatchObject({ code: "VALIDATION_FAILED" });
    expect(error["message"]).toMatch(/deeper than 64 levels/);
    mux.ws.send(JSON.stringify({ op: "ping", ref: "after" }));
    await waitFor(() => mux.frames.find((f) => f["op"] === "pong" && f["ref"] === "after"), 5_000, "a pong after it");

    const term = await openChildWs(`${wsBase}/ws/session/${id}`);
    term.ws.send(`{"type":"resize","cols":${"[".repeat(5000)}${"]".repeat(5000)},"rows":24}`);
    const termError = await waitFor(() => term.frames.find((f) => f["type"] === "error"), 5_000, "the error frame");
    expect(termError).toMatchObject({ code: "VALIDATION_FAILED" });
    term.ws.send(JSON.stringify({ type: "ping" }));
    await waitFor(() => term.frames.some((f) => f["type"] === "pong"), 5_000, "a pong after it");

    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    expect(exited).toBeUndefined();
    mux.ws.terminate();
    term.ws.terminate();
  });
});

describe("a frame handler that throws", () => {
  it("on /v1/ws ends that connection with an INTERNAL error and 1011, logged with its id; others go on", async () => {
    const { gw, lines } = await loggedGateway();
    const victim = await Mux.open(gw, "alice");
    const bystander = await Mux.open(gw, "bob");
    vi.spyOn(ClientFrameCheck.prototype, "check").mockImplementationOnce(() => {
      throw new TypeError("injected fault");
    });
    victim.client.send({ op: "ping", ref: 1 });
    const { code } = await victim.client.closed;
    expect(code).toBe(1011);
    expect(victim.frames.at(-1)).toMatchObject({ op: "error", code: "INTERNAL" });
    const logged = lines.find((l) => l["msg"]?.includes("handling a frame failed"));
    expect(logged).toMatchObject({ connId: victim.connId, endpoint: "multiplex", err: { message: "injected fault" } });
    bystander.client.send({ op: "ping", ref: "still-here" });
    await bystander.client.waitFor((f) => f["op"] === "pong" && f["ref"] === "still-here", "pong");
    expect((await http(gw, "alice").get("/v1/sessions")).status).toBe(200);
  });

  it("on /ws/session ends that connection with an INTERNAL error and 1011, logged with its id; others go on", async () => {
    const { gw, lines } = await loggedGateway();
    const { id } = await catPty(gw, "alice");
    const victim = await WsClient.open(gw, `/ws/session/${id}`, "alice");
    const bystander = await WsClient.open(gw, `/ws/session/${id}`, "alice");
    vi.spyOn(ClientFrameCheck.prototype, "check").mockImplementationOnce(() => {
      throw new RangeError("injected fault");
    });
    victim.send({ type: "ping" });
    expect((await victim.closed).code).toBe(1011);
    expect(victim.frames.at(-1)).toMatchObject({ type: "error", code: "INTERNAL" });
    expect(lines.find((l) => l["msg"]?.includes("handling a frame failed"))).toMatchObject({
      endpoint: "terminal",
      connId: expect.any(String),
      err: { message: "injected fault" },
    });
    bystander.send({ type: "ping" });
    await bystander.waitFor((f) => f["type"] === "pong", "pong");
  });
});

describe("a connection whose start throws (its greeting)", () => {
  it("is closed with 1011 and logged, on /v1/ws and /ws/session; the next connection is greeted", async () => {
    const { gw, lines } = await loggedGateway();
    const { id } = await catPty(gw, "alice");
    for (const [path, endpoint, greeting] of [
      ["/v1/ws", "multiplex", "hello"],
      [`/ws/session/${id}`, "terminal", "connected"],
    ] as const) {
      const fault = vi.spyOn(Outbox.prototype, "sendControl").mockImplementationOnce(() => {
        throw new TypeError(`injected fault in ${endpoint}`);
      });
      const victim = await WsClient.open(gw, path, "alice");
      expect((await victim.closed).code).toBe(1011);
      fault.mockRestore();
      expect(lines.find((l) => l["err"]?.message === `injected fault in ${endpoint}`)).toMatchObject({ endpoint });
      const next = await WsClient.open(gw, path, "alice");
      await next.waitFor((f) => f["op"] === greeting || f["type"] === greeting, greeting);
    }
  });
});

/** Opens an SSE stream as alice; resolves with its response once the headers arrived. */
function openStream(gw: { url: string }, id: string) {
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = get(`${gw.url}/v1/sessions/${id}/stream`, { headers: { authorization: `Bearer ${TOKENS.alice}` } });
    req.once("response", resolve);
    req.once("error", reject);
  });
}

describe("an HTTP request or event stream whose handler throws", () => {
  it("after its answer started (an SSE stream's first read) is cut and logged; the gateway answers the next", async () => {
    const { gw, lines } = await loggedGateway();
    const { id } = await catPty(gw, "alice");
    vi.spyOn(SessionFeed.prototype, "pump").mockImplementationOnce(() => {
      throw new TypeError("injected fault");
    });
    const res = await openStream(gw, id);
    expect(res.statusCode).toBe(200);
    await new Promise<void>((resolve) => {
      res.on("close", resolve);
      res.on("error", () => resolve());
      res.resume();
    });
    expect(lines.find((l) => l["err"]?.message === "injected fault")).toMatchObject({
      path: `/v1/sessions/${id}/stream`,
    });
    expect((await http(gw, "alice").get(`/v1/sessions/${id}`)).status).toBe(200);
  });

  it("in a stream's write callback cuts that stream, logged with its session; the gateway goes on", async () => {
    const { gw, lines } = await loggedGateway();
    const { id } = await catPty(gw, "alice");
    const victim = await openStream(gw, id);
    const victimClosed = new Promise<void>((resolve) => victim.once("close", resolve));
    victim.resume();
    // Every later read throws: the next write callback of either stream that pumps fails.
    const pump = vi.spyOn(SessionFeed.prototype, "pump").mockImplementation(() => {
      throw new TypeError("injected fault");
    });
    const mux = await Mux.open(gw, "alice");
    // A stream pumps from a write callback once the write completes: a write it makes after
    // this point (its heartbeat or an event) fails; input makes events come.
    await mux.request({ op: "input", session: id, data: "x" });
    await victimClosed;
    expect(lines.find((l) => l["msg"]?.includes("event stream failed"))).toMatchObject({
      session: id,
      err: { message: "injected fault" },
    });
    pump.mockRestore();
    expect((await http(gw, "alice").get(`/v1/sessions/${id}`)).status).toBe(200);
  });

  it("outside its own error handling (its request log) ends only that request", async () => {
    const { gw, lines } = await loggedGateway();
    vi.spyOn(gw.core.metrics.httpRequests, "inc").mockImplementationOnce(() => {
      throw new TypeError("injected fault");
    });
    const first = await http(gw, "alice").get("/v1/sessions");
    expect(first.status).toBe(200);
    await waitFor(() => lines.find((l) => l["err"]?.message === "injected fault"), 5_000, "the log line");
    expect(lines.find((l) => l["err"]?.message === "injected fault")).toMatchObject({
      method: "GET",
      path: "/v1/sessions",
    });
    expect((await http(gw, "alice").get("/v1/sessions")).status).toBe(200);
  });
});
