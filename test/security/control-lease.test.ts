/**
 * docs/architecture.md, guarantee 7: the single-writer control lease over every transport. The gateway runs on
 * a ManualClock, so the 5-minute auto-release takes milliseconds to test.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { DEFAULT_AUTO_RELEASE_AFTER_MS } from "../../src/core/control-lease.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { api, createSession, TEST_TOKEN, testGateway } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import {
  Mux,
  TOKENS,
  WsClient,
  advanceLive,
  authTokens,
  catPty,
  errorOf,
  eventsOf,
  http,
  secGateway,
} from "./helpers.js";
import type { Frame } from "./helpers.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

const TTL = DEFAULT_AUTO_RELEASE_AFTER_MS;
const MINUTE = 60_000;

type ControlEvent = Extract<SessionEvent, { type: "control" }>;

async function controlEvents(gw: Parameters<typeof eventsOf>[0], id: string): Promise<ControlEvent[]> {
  return (await eventsOf(gw, id)).filter((e): e is ControlEvent => e.type === "control");
}

async function controllerOf(gw: Parameters<typeof eventsOf>[0], id: string): Promise<string | null> {
  return (await http(gw, "admin").get(`/v1/sessions/${id}`)).json.controller as string | null;
}

const isError = (code: string) => (f: Frame) => f["op"] === "error" && f["code"] === code;
const isTermError = (code: string) => (f: Frame) => f["type"] === "error" && f["code"] === code;
const connected = (f: Frame) => f["type"] === "connected";

describe("control lease: two operators fighting", () => {
  it("gives the loser CONTROL_HELD over HTTP, /v1/ws and /ws/session while the holder steers", async () => {
    const gw = await secGateway();
    // alice owns it; carol may steer it through her `shared-*` glob.
    const s = await catPty(gw, "alice", "shared-fight");
    const alice = await Mux.open(gw, "alice");
    expect(await alice.request({ op: "control", session: s.id, action: "acquire" })).toMatchObject({
      op: "ack",
      result: { controller: "alice" },
    });

    const carolHttp = http(gw, "carol");
    for (const [route, body] of [
      ["input", { data: "x" }],
      ["signal", { signal: "WINCH" }],
      ["resize", { cols: 100, rows: 30 }],
      ["control", { action: "acquire" }],
      ["control", { action: "release" }],
    ] as const) {
      const r = await carolHttp.post(`/v1/sessions/${s.id}/${route}`, body);
      expect(errorOf(r), `${route} ${JSON.stringify(body)}`).toMatchObject({ status: 409, code: "CONTROL_HELD" });
      expect(r.json.error.message).toContain("alice");
    }
    expect((await carolHttp.post(`/v1/sessions/${s.id}/input`, { data: "x" })).json.error.holder).toBe("alice");

    const carol = await Mux.open(gw, "carol");
    for (const frame of [
      { op: "input", session: s.id, data: "x" },
      { op: "signal", session: s.id, signal: "WINCH" },
      { op: "resize", session: s.id, cols: 100, rows: 30 },
      { op: "control", session: s.id, action: "acquire" },
    ]) {
      // With who holds it, as over HTTP.
      expect(await carol.request(frame), frame.op).toMatchObject({
        op: "error",
        session: s.id,
        code: "CONTROL_HELD",
        holder: "alice",
      });
    }

    const term = await WsClient.open(gw, `/ws/session/${s.id}`, "carol");
    await term.waitFor(connected, "connected");
    for (const frame of [
      { type: "stdin", data: "x" },
      { type: "signal", signal: "WINCH" },
      { type: "resize", cols: 100, rows: 30 },
    ]) {
      const from = term.frames.length;
      term.send(frame);
      expect(await term.waitFor((f) => f["type"] === "error", `error for ${frame.type}`, from)).toMatchObject({
        code: "CONTROL_HELD",
        holder: "alice",
      });
    }
    // Asking for control on connect while it is held: an error frame, and the viewer stays connected.
    const asking = await WsClient.open(gw, `/ws/session/${s.id}?control=acquire`, "carol");
    expect(await asking.waitFor(isTermError("CONTROL_HELD"), "CONTROL_HELD on connect")).toMatchObject({
      holder: "alice",
    });
    expect(asking.closeCode).toBeUndefined();

    // The holder steers; nothing the loser tried reached the log.
    expect(await alice.request({ op: "input", session: s.id, data: "hi\n" })).toMatchObject({ op: "ack" });
    const log = await eventsOf(gw, s.id);
    // seq 1 is the PTY's initial size, logged at creation; the rest is steering.
    const steering = log.filter((e) => e.seq > 1 && (e.type === "input" || e.type === "signal" || e.type === "resize"));
    expect(steering).toEqual([
      expect.objectContaining({
        type: "input",
        bytes: 3,
        by: expect.objectContaining({ name: "alice", role: "operator" }),
      }),
    ]);
    expect(log.filter((e) => e.type === "control")).toHaveLength(1);
    expect(await controllerOf(gw, s.id)).toBe("alice");
  });

  it("lets a non-holder release nothing, and the holder release explicitly", async () => {
    const gw = await secGateway();
    const s = await catPty(gw, "alice", "shared-release");
    const carol = await Mux.open(gw, "carol");
    await carol.request({ op: "control", session: s.id, action: "acquire" });
    const alice = await Mux.open(gw, "alice");
    expect(await alice.request({ op: "control", session: s.id, action: "release" })).toMatchObject({
      code: "CONTROL_HELD",
    });
    // Over HTTP with who holds it, as every CONTROL_HELD says (regression: this one had no holder).
    const overHttp = await http(gw, "alice").post(`/v1/sessions/${s.id}/control`, { action: "release" });
    expect(overHttp.status).toBe(409);
    expect(overHttp.json.error).toMatchObject({ code: "CONTROL_HELD", holder: "carol" });
    expect(await carol.request({ op: "control", session: s.id, action: "release" })).toMatchObject({
      op: "ack",
      result: { controller: null },
    });
    // Free again: any operator allowed on the session steers without taking control.
    expect(await alice.request({ op: "input", session: s.id, data: "ok\n" })).toMatchObject({ op: "ack" });
    expect((await controlEvents(gw, s.id)).map((e) => e.action)).toEqual(["acquired", "released"]);
  });

  // Regression: input to a stream session someone held was answered CONTROL_HELD, and after
  // taking control the caller learnt that a stream session takes no input at all.
  it("answers WRONG_SESSION_KIND, not CONTROL_HELD, for what a held session's kind never takes", async () => {
    const gw = await secGateway();
    const stream = await createSession(gw, { kind: "stream", name: "shared-stream" }, TOKENS.alice);
    const pipe = await createSession(gw, { command: ["cat"], name: "shared-pipe" }, TOKENS.alice);
    const alice = await Mux.open(gw, "alice");
    for (const s of [stream, pipe])
      expect(await alice.request({ op: "control", session: s.id, action: "acquire" })).toMatchObject({ op: "ack" });

    const carolHttp = http(gw, "carol");
    const refused: Array<[string, string, unknown]> = [
      [stream.id, "input", { data: "x" }],
      [stream.id, "signal", { signal: "INT" }],
      [stream.id, "resize", { cols: 100, rows: 30 }],
      [stream.id, "prompt", { text: "hi" }],
      [stream.id, "abort", {}],
      [pipe.id, "resize", { cols: 100, rows: 30 }],
      [pipe.id, "prompt", { text: "hi" }],
    ];
    for (const [id, route, body] of refused) {
      const r = await carolHttp.post(`/v1/sessions/${id}/${route}`, body);
      expect(errorOf(r), `${route} on ${id === stream.id ? "stream" : "pipe"}`).toMatchObject({
        status: 409,
        code: "WRONG_SESSION_KIND",
      });
    }
    const carol = await Mux.open(gw, "carol");
    for (const frame of [
      { op: "input", session: stream.id, data: "x" },
      { op: "resize", session: pipe.id, cols: 100, rows: 30 },
      { op: "prompt", session: pipe.id, text: "hi" },
    ])
      expect(await carol.request(frame), JSON.stringify(frame)).toMatchObject({ code: "WRONG_SESSION_KIND" });
    // What the pipe does take is still the holder's.
    expect(errorOf(await carolHttp.post(`/v1/sessions/${pipe.id}/input`, { data: "x" }))).toMatchObject({
      code: "CONTROL_HELD",
    });
  });
});

describe("control lease: agent runs", () => {
  it("applies control to prompt and abort on every transport, and audits who prompted", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "agent", agent: "echo", name: "shared-agent" }, TOKENS.alice);
    const alice = await Mux.open(gw, "alice");
    await alice.request({ op: "control", session: s.id, action: "acquire" });
    for (const [route, body] of [
      ["prompt", { text: "hi" }],
      ["abort", {}],
    ] as const) {
      expect(errorOf(await http(gw, "carol").post(`/v1/sessions/${s.id}/${route}`, body)), route).toMatchObject({
        status: 409,
        code: "CONTROL_HELD",
      });
    }
    const carol = await Mux.open(gw, "carol");
    expect(await carol.request({ op: "prompt", session: s.id, text: "hi" })).toMatchObject({ code: "CONTROL_HELD" });
    expect(await carol.request({ op: "abort", session: s.id })).toMatchObject({ code: "CONTROL_HELD" });
    const accepted = await alice.request({ op: "prompt", session: s.id, text: "hello there" });
    expect(accepted).toMatchObject({ op: "ack", result: { runId: expect.any(String) } });
    const log = await waitFor(
      async () => {
        const evs = await eventsOf(gw, s.id);
        return evs.some((e) => e.type === "chat.final") ? evs : undefined;
      },
      5_000,
      "the echo run",
    );
    const queued = log.filter((e) => e.type === "run.queued");
    expect(queued).toEqual([
      expect.objectContaining({ runId: accepted["result"].runId, by: expect.objectContaining({ name: "alice" }) }),
    ]);
  });

  it("applies control to answers to permission requests (approving a tool call steers the agent)", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "agent", agent: "echo", name: "shared-asks-first" }, TOKENS.alice);
    const alice = await Mux.open(gw, "alice");
    await alice.request({ op: "control", session: s.id, action: "acquire" });
    await alice.request({ op: "prompt", session: s.id, text: "/permission may I?" });
    const request = await waitFor(
      async () => {
        const evs = await eventsOf(gw, s.id);
        return evs.find(
          (e): e is Extract<SessionEvent, { type: "permission.request" }> => e.type === "permission.request",
        );
      },
      5_000,
      "the permission request",
    );
    const answer = { requestId: request.requestId, optionId: request.options[0]!.optionId };
    expect(errorOf(await http(gw, "carol").post(`/v1/sessions/${s.id}/permission`, answer))).toMatchObject({
      status: 409,
      code: "CONTROL_HELD",
    });
    const carol = await Mux.open(gw, "carol");
    expect(await carol.request({ op: "permission", session: s.id, ...answer })).toMatchObject({ code: "CONTROL_HELD" });
    expect((await eventsOf(gw, s.id)).some((e) => e.type === "permission.resolved")).toBe(false);
    expect(await alice.request({ op: "permission", session: s.id, ...answer })).toMatchObject({ op: "ack" });
    const resolved = await waitFor(
      async () => {
        const evs = await eventsOf(gw, s.id);
        return evs.find(
          (e): e is Extract<SessionEvent, { type: "permission.resolved" }> => e.type === "permission.resolved",
        );
      },
      5_000,
      "the answer",
    );
    expect(resolved).toMatchObject({ outcome: "selected", by: expect.objectContaining({ name: "alice" }) });
  });
});

describe("control lease: auto-release after holder silence", () => {
  it("expires a hung /v1/ws holder after 5 minutes: control event, CONTROL_LOST to the holder, the other operator steers", async () => {
    const clock = new ManualClock();
    const gw = await secGateway({ clock });
    const s = await catPty(gw, "alice", "shared-hung");
    const alice = await Mux.open(gw, "alice");
    await alice.request({ op: "control", session: s.id, action: "acquire" });

    await advanceLive(gw, clock, TTL - 1, [alice]);
    expect(await controllerOf(gw, s.id)).toBe("alice");
    expect(errorOf(await http(gw, "carol").post(`/v1/sessions/${s.id}/input`, { data: "x" })).code).toBe(
      "CONTROL_HELD",
    );

    // alice is hung: she sends nothing. One more millisecond and the lease is gone.
    await advanceLive(gw, clock, 1, [alice]);
    const lost = await alice.client.waitFor(isError("CONTROL_LOST"), "CONTROL_LOST to the hung holder");
    expect(lost).toMatchObject({ session: s.id, message: expect.stringMatching(/expired/), reason: "expired" });
    expect(lost).not.toHaveProperty("holder");
    expect(await controllerOf(gw, s.id)).toBeNull();
    const [acquired, expired] = await controlEvents(gw, s.id);
    expect(acquired).toMatchObject({ action: "acquired", holder: { name: "alice" }, previous: null });
    expect(expired).toMatchObject({
      action: "expired",
      holder: null,
      previous: { name: "alice", role: "operator", connId: alice.connId },
    });

    const r = await http(gw, "carol").post(`/v1/sessions/${s.id}/input`, { data: "y" });
    expect(r.status).toBe(200);
    const inputs = (await eventsOf(gw, s.id)).filter((e) => e.type === "input");
    expect(inputs.at(-1)).toMatchObject({ type: "input", by: { name: "carol" } });
  });

  it("expires an HTTP holder and a /ws/session holder the same way", async () => {
    const clock = new ManualClock();
    const gw = await secGateway({ clock });
    const viaHttp = await catPty(gw, "alice", "shared-http-holder");
    expect((await http(gw, "alice").post(`/v1/sessions/${viaHttp.id}/control`, { action: "acquire" })).json).toEqual({
      ok: true,
      controller: "alice",
    });
    const viaTerm = await catPty(gw, "alice", "shared-term-holder");
    const term = await WsClient.open(gw, `/ws/session/${viaTerm.id}?control=acquire`, "alice");
    await term.waitFor(connected, "connected");
    await waitFor(async () => (await controllerOf(gw, viaTerm.id)) === "alice", 5_000, "terminal holder");

    await advanceLive(gw, clock, TTL, [term]);
    for (const id of [viaHttp.id, viaTerm.id]) {
      expect((await controlEvents(gw, id)).map((e) => e.action)).toEqual(["acquired", "expired"]);
      expect((await http(gw, "carol").post(`/v1/sessions/${id}/resize`, { cols: 90, rows: 20 })).status).toBe(200);
    }
    // The expired terminal viewer stays connected (read-only until it steers again).
    expect(term.closeCode).toBeUndefined();
  });

  it("tells a /ws/session holder whose lease expired with an error frame CONTROL_LOST", async () => {
    const clock = new ManualClock();
    const gw = await secGateway({ clock });
    const s = await catPty(gw, "alice", "shared-term-expiry");
    const term = await WsClient.open(gw, `/ws/session/${s.id}?control=acquire`, "alice");
    await term.waitFor(connected, "connected");
    await waitFor(async () => (await controllerOf(gw, s.id)) === "alice", 5_000, "terminal holder");
    await advanceLive(gw, clock, TTL, [term]);
    await waitFor(async () => (await controllerOf(gw, s.id)) === null, 5_000, "expiry");
    expect(await term.waitFor(isTermError("CONTROL_LOST"), "CONTROL_LOST on expiry", 0, 500)).toMatchObject({
      reason: "expired",
    });
  });

  it("uses control.autoReleaseAfterMs from the config", async () => {
    const clock = new ManualClock();
    const gw = await secGateway({ clock, config: { control: { autoReleaseAfterMs: 1500 } } });
    const s = await catPty(gw, "alice", "shared-short");
    await http(gw, "alice").post(`/v1/sessions/${s.id}/control`, { action: "acquire" });
    clock.advance(1499);
    expect(await controllerOf(gw, s.id)).toBe("alice");
    clock.advance(1);
    expect(await controllerOf(gw, s.id)).toBeNull();
  });

  it("keeps the lease while the holder is active or pings (/v1/ws, /ws/session, HTTP)", async () => {
    const clock = new ManualClock();
    const gw = await secGateway({ clock });
    const a = await catPty(gw, "alice", "shared-renew-a");
    const b = await catPty(gw, "alice", "shared-renew-b");
    const c = await catPty(gw, "alice", "shared-renew-c");
    const mux = await Mux.open(gw, "alice");
    await mux.request({ op: "control", session: a.id, action: "acquire" });
    const term = await WsClient.open(gw, `/ws/session/${b.id}?control=acquire`, "alice");
    await term.waitFor(connected, "connected");
    await waitFor(async () => (await controllerOf(gw, b.id)) === "alice", 5_000, "terminal holder");
    await http(gw, "alice").post(`/v1/sessions/${c.id}/control`, { action: "acquire" });

    // Activity: input on each transport.
    await advanceLive(gw, clock, 4 * MINUTE, [mux, term]);
    expect(await mux.request({ op: "input", session: a.id, data: "1" })).toMatchObject({ op: "ack" });
    term.send({ type: "stdin", data: "1" });
    await waitFor(async () => (await eventsOf(gw, b.id)).some((e) => e.type === "input"), 5_000, "terminal input");
    expect((await http(gw, "alice").post(`/v1/sessions/${c.id}/input`, { data: "1" })).status).toBe(200);

    // Heartbeat: ping on the WebSockets; the HTTP holder renews by acquiring again.
    await advanceLive(gw, clock, 4 * MINUTE, [mux, term]);
    mux.client.send({ op: "ping", t: 1 });
    await mux.client.waitFor((f) => f["op"] === "pong" && f["t"] === 1, "pong");
    const from = term.frames.length;
    term.send({ type: "ping" });
    await term.waitFor((f) => f["type"] === "pong", "terminal pong", from);
    expect((await http(gw, "alice").post(`/v1/sessions/${c.id}/control`, { action: "acquire" })).status).toBe(200);

    await advanceLive(gw, clock, 4 * MINUTE, [mux, term]);
    for (const s of [a, b, c]) expect(await controllerOf(gw, s.id), s.name as string).toBe("alice");
    // Five minutes after the last sign of life, all three are released.
    await advanceLive(gw, clock, MINUTE, [mux, term]);
    for (const s of [a, b, c]) {
      expect(await controllerOf(gw, s.id)).toBeNull();
      expect((await controlEvents(gw, s.id)).map((e) => e.action)).toEqual(["acquired", "expired"]);
    }
  });
});

describe("control lease: disconnect and takeover", () => {
  it("releases at once when the holder disconnects (/v1/ws and /ws/session)", async () => {
    const gw = await secGateway();
    const a = await catPty(gw, "alice", "shared-dc-a");
    const b = await catPty(gw, "alice", "shared-dc-b");
    const mux = await Mux.open(gw, "alice");
    await mux.request({ op: "control", session: a.id, action: "acquire" });
    const term = await WsClient.open(gw, `/ws/session/${b.id}?control=acquire`, "alice");
    await term.waitFor(connected, "connected");
    await waitFor(async () => (await controllerOf(gw, b.id)) === "alice", 5_000, "terminal holder");

    await mux.client.close();
    await term.close();
    for (const s of [a, b]) {
      const events = await waitFor(
        async () => {
          const evs = await controlEvents(gw, s.id);
          return evs.length === 2 ? evs : undefined;
        },
        5_000,
        "disconnected event",
      );
      expect(events[1]).toMatchObject({ action: "disconnected", holder: null, previous: { name: "alice" } });
      expect((await http(gw, "carol").post(`/v1/sessions/${s.id}/input`, { data: "x" })).status).toBe(200);
    }
  });

  it("keeps a /v1/ws holder's lease over a reconnect for its clientKey and token only, without force", async () => {
    const gw = await secGateway({ config: { control: { reconnectGraceMs: 60_000 } } });
    const s = await catPty(gw, "alice", "shared-grace");
    const key = "tab-key-0123456789abcdef";
    const first = await Mux.open(gw, "alice");
    await first.request({ op: "control", session: s.id, action: "acquire", clientKey: key });
    await first.client.close();
    await waitFor(async () => gw.core.sessions.get(s.id)?.lease.awaitingReconnect === true, 5_000, "the grace period");
    // Held all along: carol (who may steer it) cannot type, nor take it with alice's key.
    expect((await http(gw, "carol").post(`/v1/sessions/${s.id}/input`, { data: "x" })).status).toBe(409);
    const carol = await Mux.open(gw, "carol");
    const acquire = { op: "control", session: s.id, action: "acquire" };
    expect(await carol.request({ ...acquire, clientKey: key })).toMatchObject({ code: "CONTROL_HELD" });
    // Alice's own other connections without the key, or with another, do not either.
    const other = await Mux.open(gw, "alice");
    expect(await other.request(acquire)).toMatchObject({ code: "CONTROL_HELD" });
    expect(await other.request({ ...acquire, clientKey: "another-tab-0123456789" })).toMatchObject({
      code: "CONTROL_HELD",
    });
    expect(await other.request({ ...acquire, clientKey: "short" })).toMatchObject({ code: "VALIDATION_FAILED" });
    const back = await Mux.open(gw, "alice");
    expect(await back.request({ ...acquire, clientKey: key })).toMatchObject({
      op: "ack",
      result: { controller: "alice" },
    });
    expect(await back.request({ op: "input", session: s.id, data: "x" })).toMatchObject({ op: "ack" });
    // The log: acquired twice, never free in between.
    const events = await controlEvents(gw, s.id);
    expect(events.map((e) => [e.action, e.holder?.connId ?? null])).toEqual([
      ["acquired", first.connId],
      ["acquired", back.connId],
    ]);
  });

  it("keeps a /ws/session holder's lease over a reconnect with the same ?clientKey=, and refuses a malformed one", async () => {
    const gw = await secGateway({ config: { control: { reconnectGraceMs: 60_000 } } });
    const s = await catPty(gw, "alice", "shared-grace-attach");
    const path = `/ws/session/${s.id}?control=acquire&clientKey=attach-key-0123456789`;
    const first = await WsClient.open(gw, path, "alice");
    await first.waitFor(connected, "connected");
    await waitFor(async () => (await controllerOf(gw, s.id)) === "alice", 5_000, "the first holder");
    await first.close();
    await waitFor(async () => gw.core.sessions.get(s.id)?.lease.awaitingReconnect === true, 5_000, "the grace period");
    const carol = await WsClient.open(
      gw,
      `/ws/session/${s.id}?control=acquire&clientKey=attach-key-0123456789`,
      "carol",
    );
    await carol.waitFor(isTermError("CONTROL_HELD"), "CONTROL_HELD to carol");
    const back = await WsClient.open(gw, path, "alice");
    await back.waitFor(connected, "connected");
    await waitFor(async () => (await controlEvents(gw, s.id)).length === 2, 5_000, "the second acquire");
    expect((await controlEvents(gw, s.id)).map((e) => [e.action, e.holder?.via])).toEqual([
      ["acquired", "attach"],
      ["acquired", "attach"],
    ]);
    expect(back.frames.filter(isTermError("CONTROL_HELD"))).toEqual([]);
    await expect(
      WsClient.open(gw, `/ws/session/${s.id}?control=acquire&clientKey=short`, "alice"),
    ).rejects.toMatchObject({ status: 400 });
  });

  it("ends a holder's lease at once when it closes normally (1000), clientKey or not, on /v1/ws and /ws/session", async () => {
    const gw = await secGateway({ config: { control: { reconnectGraceMs: 60_000 } } });
    const s = await catPty(gw, "alice", "closed-on-purpose");
    const mux = await Mux.open(gw, "alice");
    await mux.request({ op: "control", session: s.id, action: "acquire", clientKey: "sdk-key-0123456789abcdef" });
    mux.client.ws.close(1000, "client closed");
    await waitFor(async () => (await controllerOf(gw, s.id)) === null, 5_000, "the lease to end");
    expect(gw.core.sessions.get(s.id)?.lease.awaitingReconnect).toBe(false);

    const attach = await WsClient.open(
      gw,
      `/ws/session/${s.id}?control=acquire&clientKey=attach-key-0123456789`,
      "alice",
    );
    await attach.waitFor(connected, "connected");
    await waitFor(async () => (await controllerOf(gw, s.id)) === "alice", 5_000, "attach's lease");
    attach.ws.close(1000, "detached");
    await waitFor(async () => (await controllerOf(gw, s.id)) === null, 5_000, "the lease to end");
    expect((await controlEvents(gw, s.id)).map((e) => e.action)).toEqual([
      "acquired",
      "disconnected",
      "acquired",
      "disconnected",
    ]);
  });

  it("force takeover on /v1/ws notifies the previous holder with CONTROL_LOST", async () => {
    const gw = await secGateway();
    const s = await catPty(gw, "alice", "shared-takeover");
    const alice = await Mux.open(gw, "alice");
    await alice.request({ op: "control", session: s.id, action: "acquire" });
    const carol = await Mux.open(gw, "carol");
    expect(await carol.request({ op: "control", session: s.id, action: "acquire", force: true })).toMatchObject({
      op: "ack",
      result: { controller: "carol" },
    });

    expect(await alice.client.waitFor(isError("CONTROL_LOST"), "CONTROL_LOST")).toMatchObject({
      session: s.id,
      message: expect.stringContaining("carol"),
      reason: "taken-over",
      holder: "carol",
    });
    expect(alice.client.closeCode).toBeUndefined();
    expect(await alice.request({ op: "input", session: s.id, data: "x" })).toMatchObject({ code: "CONTROL_HELD" });
    const events = await controlEvents(gw, s.id);
    expect(events.at(-1)).toMatchObject({
      action: "taken-over",
      holder: { name: "carol", connId: carol.connId },
      previous: { name: "alice", connId: alice.connId },
    });

    // An HTTP caller can force too; the /v1/ws holder hears about it.
    const from = carol.frames.length;
    expect(
      (await http(gw, "alice").post(`/v1/sessions/${s.id}/control`, { action: "acquire", force: true })).json
        .controller,
    ).toBe("alice");
    await carol.client.waitFor(isError("CONTROL_LOST"), "CONTROL_LOST after HTTP force", from);
  });

  it("force takeover on /ws/session sends CONTROL_LOST and closes the previous holder with 4001", async () => {
    const gw = await secGateway();
    const s = await catPty(gw, "alice", "shared-term-takeover");
    const alice = await WsClient.open(gw, `/ws/session/${s.id}?control=acquire`, "alice");
    await alice.waitFor(connected, "connected");
    await waitFor(async () => (await controllerOf(gw, s.id)) === "alice", 5_000, "alice holds");

    const carol = await WsClient.open(gw, `/ws/session/${s.id}?control=force`, "carol");
    await carol.waitFor(connected, "connected");
    expect(await alice.waitFor(isTermError("CONTROL_LOST"), "CONTROL_LOST")).toMatchObject({
      message: expect.stringContaining("carol"),
      reason: "taken-over",
      holder: "carol",
    });
    expect((await alice.closed).code).toBe(4001);
    expect(await controllerOf(gw, s.id)).toBe("carol");

    // A /v1/ws force over a terminal holder also closes it with 4001.
    const mux = await Mux.open(gw, "alice");
    await mux.request({ op: "control", session: s.id, action: "acquire", force: true });
    expect((await carol.closed).code).toBe(4001);
    expect((await controlEvents(gw, s.id)).map((e) => e.action)).toEqual(["acquired", "taken-over", "taken-over"]);
  });

  it("does not let a viewer force control over any transport", async () => {
    const gw = await secGateway();
    const s = await catPty(gw, "alice", "shared-viewer-force");
    await http(gw, "alice").post(`/v1/sessions/${s.id}/control`, { action: "acquire" });
    expect(
      errorOf(await http(gw, "vera").post(`/v1/sessions/${s.id}/control`, { action: "acquire", force: true })),
    ).toMatchObject({ status: 403, code: "FORBIDDEN" });
    const vera = await Mux.open(gw, "vera");
    expect(await vera.request({ op: "control", session: s.id, action: "acquire", force: true })).toMatchObject({
      code: "FORBIDDEN",
    });
    await expect(WsClient.open(gw, `/ws/session/${s.id}?control=force`, "vera")).rejects.toMatchObject({ status: 403 });
    expect(await controllerOf(gw, s.id)).toBe("alice");
  });
});

describe("control lease: gateway restart", () => {
  /** A stream session: it stays running across a restart, while no lease outlives the gateway that granted it. */
  const stream = async (url: string, name: string) =>
    (await api(url, TOKENS.alice).post("/v1/sessions", { kind: "stream", name })).json.id as string;
  const controlSummary = async (url: string, id: string) =>
    ((await api(url, TEST_TOKEN).get(`/v1/sessions/${id}/events`)).json.events as SessionEvent[])
      .filter((e): e is ControlEvent => e.type === "control")
      .map((e) => `${e.action} ${e.holder?.name ?? "-"} ${e.previous?.name ?? "-"}`);

  it("ends in the log the leases a stopping gateway held on sessions that outlive it (regression: the log still named the holder)", async () => {
    const dataDir = tempDir();
    const options = { dataDir, token: TEST_TOKEN, config: { auth: { tokens: authTokens() } } };
    const first = await testGateway(options);
    const overHttp = await stream(first.url, "shared-restart-http");
    const overWs = await stream(first.url, "shared-restart-ws");
    expect(
      (await api(first.url, TOKENS.alice).post(`/v1/sessions/${overHttp}/control`, { action: "acquire" })).status,
    ).toBe(200);
    const carol = await Mux.open(first, "carol");
    expect(await carol.request({ op: "control", session: overWs, action: "acquire" })).toMatchObject({ op: "ack" });
    await first.close();
    const stoppedAt = Date.now();
    await sleep(20);

    const second = await testGateway(options);
    for (const [id, holder] of [
      [overHttp, "alice"],
      [overWs, "carol"],
    ] as const) {
      const info = (await api(second.url, TEST_TOKEN).get(`/v1/sessions/${id}`)).json;
      expect(info).toMatchObject({ state: "running", controller: null });
      expect(await controlSummary(second.url, id)).toEqual([`acquired ${holder} -`, `disconnected - ${holder}`]);
      // Ended as the gateway stopped, not found out at the next start.
      const events = (await api(second.url, TEST_TOKEN).get(`/v1/sessions/${id}/events`)).json.events as SessionEvent[];
      expect(events.at(-1)!.ts).toBeLessThanOrEqual(stoppedAt);
    }
    // The next holder's `acquired` (previous: nobody) follows a log that says the lease was free.
    expect(
      (await api(second.url, TOKENS.carol).post(`/v1/sessions/${overHttp}/control`, { action: "acquire" })).status,
    ).toBe(200);
    expect((await controlSummary(second.url, overHttp)).at(-1)).toBe("acquired carol -");
  });

  it("ends in the log, at the next start, a lease held when the gateway was killed", async () => {
    const dataDir = tempDir();
    const config = join(dataDir, "config.json");
    writeFileSync(config, JSON.stringify({ auth: { tokens: authTokens() } }));
    const first = await serveInChild({ dataDir, config });
    const id = await stream(first.url, "shared-crash");
    // Answered once the control event is durable.
    expect((await api(first.url, TOKENS.alice).post(`/v1/sessions/${id}/control`, { action: "acquire" })).status).toBe(
      200,
    );
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));

    const second = await testGateway({ dataDir, token: TEST_TOKEN, config });
    expect((await api(second.url, TEST_TOKEN).get(`/v1/sessions/${id}`)).json).toMatchObject({
      state: "running",
      controller: null,
    });
    expect(await controlSummary(second.url, id)).toEqual(["acquired alice -", "disconnected - alice"]);
    // Once only: the next start finds nothing more to end.
    await second.close();
    const third = await testGateway({ dataDir, token: TEST_TOKEN, config });
    expect(await controlSummary(third.url, id)).toEqual(["acquired alice -", "disconnected - alice"]);
  });
});

describe("control lease: audit", () => {
  it("records every control change and steering action with who did it (a name, never a token)", async () => {
    const clock = new ManualClock();
    const gw = await secGateway({ clock });
    const s = await catPty(gw, "alice", "shared-audit");
    const alice = await Mux.open(gw, "alice");
    await alice.request({ op: "control", session: s.id, action: "acquire" });
    await alice.request({ op: "input", session: s.id, data: "abc" });
    await alice.request({ op: "resize", session: s.id, cols: 120, rows: 40 });
    await alice.request({ op: "signal", session: s.id, signal: "WINCH" });
    await alice.request({ op: "control", session: s.id, action: "release" });
    const carol = await WsClient.open(gw, `/ws/session/${s.id}?control=acquire`, "carol");
    await carol.waitFor(connected, "connected");
    carol.send({ type: "stdin", data: "de" });
    await waitFor(
      async () => (await eventsOf(gw, s.id)).filter((e) => e.type === "input").length === 2,
      5_000,
      "carol's input",
    );
    await http(gw, "admin").post(`/v1/sessions/${s.id}/control`, { action: "acquire", force: true });
    await http(gw, "admin").post(`/v1/sessions/${s.id}/signal`, { signal: "WINCH" });
    await advanceLive(gw, clock, TTL, [alice, carol]);
    await alice.request({ op: "control", session: s.id, action: "acquire" });
    await alice.client.close();
    await waitFor(
      async () => (await controlEvents(gw, s.id)).some((e) => e.action === "disconnected"),
      5_000,
      "disconnected",
    );

    const log = await eventsOf(gw, s.id);
    const audit = log.filter((e) => ["control", "input", "signal", "resize"].includes(e.type));
    const summary = audit.map((e) => {
      if (e.type === "control") return `control ${e.action} ${e.holder?.name ?? "-"} ${e.previous?.name ?? "-"}`;
      return `${e.type} ${(e as { by: { name: string } }).by.name}`;
    });
    expect(summary).toEqual([
      "resize alice", // the PTY's initial size, logged at creation
      "control acquired alice -",
      "input alice",
      "resize alice",
      "signal alice",
      "control released - alice",
      "control acquired carol -",
      "input carol",
      "control taken-over admin carol",
      "signal admin",
      "control expired - admin",
      "control acquired alice -",
      "control disconnected - alice",
    ]);
    for (const e of audit) {
      const actors =
        e.type === "control" ? [e.holder, e.previous].filter((a) => a !== null) : [(e as { by: unknown }).by];
      for (const actor of actors)
        expect(actor).toMatchObject({ name: expect.any(String), role: expect.stringMatching(/^(admin|operator)$/) });
    }
    const text = JSON.stringify(log);
    for (const token of Object.values(TOKENS)) expect(text).not.toContain(token.slice(0, 12));
  });
});
