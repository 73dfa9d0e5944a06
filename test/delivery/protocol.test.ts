/**
 * Events reach only their subscribers (no global broadcast),
 * authentication and Origin are checked before the upgrade, and bad frames get an `error`
 * with a stable code while the connection stays up; frames over the limit close with 1009.
 */
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { CLOSE_CODES } from "../../src/protocol/index.js";
import { DEFAULT_LIMITS } from "../../src/server/config/config.js";
import type { Gateway } from "../../src/server/gateway.js";
import {
  MuxClient,
  UpgradeRefused,
  api,
  appendOutput,
  authHeaders,
  closed,
  decodeData,
  endStream,
  openWs,
  opened,
  startTestGateway,
  wsUrl,
} from "./helpers.js";
import type { Defer, MuxFrame } from "./helpers.js";
import { createSession } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const defer: Defer = (fn) => onTestFinished(async () => void (await fn()));

/**
 * One gateway for the tests that open sessions of their own and read nothing gateway-wide (a
 * gateway's start costs about 0.3 CPU-s, docs/benchmarks.md); the ones with a config of their own
 * or with refused credentials (which slow the address down) start their own.
 */
let shared: Gateway;
const atFileEnd: Array<() => unknown> = [];
beforeAll(async () => {
  shared = await startTestGateway((fn) => void atFileEnd.unshift(fn));
});
afterAll(async () => {
  for (const fn of atFileEnd) await fn();
});

async function refusal(
  url: string,
  options: WebSocket.ClientOptions = {},
  protocols?: string[],
): Promise<{ status: number; code: string }> {
  try {
    const ws = await openWs(url, options, protocols);
    ws.terminate();
    return { status: 101, code: "" };
  } catch (error) {
    if (!(error instanceof UpgradeRefused)) throw error;
    return { status: error.status, code: (JSON.parse(error.body) as { error: { code: string } }).error.code };
  }
}

/** A /ws/session client that keeps its frames. */
async function terminalClient(
  gw: Gateway,
  id: string,
  query = "",
): Promise<{ ws: WebSocket; frames: Array<Record<string, unknown>> }> {
  const ws = new WebSocket(wsUrl(gw, `/ws/session/${id}${query}`), { headers: authHeaders(gw) });
  defer(() => ws.terminate());
  const frames: Array<Record<string, unknown>> = [];
  ws.on("message", (raw) => frames.push(JSON.parse(raw.toString()) as Record<string, unknown>));
  await opened(ws);
  return { ws, frames };
}

describe("routing of events", () => {
  it("two clients on two sessions: each gets only its own session, nobody else gets anything", async () => {
    const gw = shared;
    const a = (await createSession(gw, { kind: "stream" })).id;
    const b = (await createSession(gw, { kind: "stream" })).id;
    const muxA = await MuxClient.open(gw, defer);
    const muxB = await MuxClient.open(gw, defer);
    const idle = await MuxClient.open(gw, defer);
    muxA.subscribe(a, 0);
    muxB.subscribe(b, 0);
    await muxA.frame((f) => f.op === "subscribed");
    await muxB.frame((f) => f.op === "subscribed");
    const termA = await terminalClient(gw, a);
    const termB = await terminalClient(gw, b);

    // Interleaved producers, so both sessions are live at the same moments.
    for (let i = 0; i < 50; i++) {
      await Promise.all([appendOutput(gw, a, [`A${i}\n`]), appendOutput(gw, b, [`B${i}\n`])]);
    }
    await Promise.all([endStream(gw, a), endStream(gw, b)]);
    await muxA.until(() => muxA.state.get(a)!.ended, 5000, "a's end");
    await muxB.until(() => muxB.state.get(b)!.ended, 5000, "b's end");
    await waitFor(
      () => [termA, termB].every((t) => t.frames.some((f) => f["type"] === "exit")),
      5000,
      "terminal exits",
    );

    const expectA = Array.from({ length: 50 }, (_, i) => `A${i}\n`).join("");
    const expectB = Array.from({ length: 50 }, (_, i) => `B${i}\n`).join("");
    const sessionsSeen = (c: MuxClient) =>
      new Set(c.frames.filter((f) => f.session !== undefined).map((f) => f.session));
    expect(sessionsSeen(muxA)).toEqual(new Set([a]));
    expect(sessionsSeen(muxB)).toEqual(new Set([b]));
    expect(muxA.bytes(a).toString()).toBe(expectA);
    expect(muxB.bytes(b).toString()).toBe(expectB);
    expect(muxA.errors.concat(muxB.errors)).toEqual([]);
    const terminalText = (t: { frames: Array<Record<string, unknown>> }) =>
      t.frames
        .filter((f) => f["type"] === "stdout")
        .map((f) => f["data"])
        .join("");
    expect(terminalText(termA)).toBe(expectA);
    expect(terminalText(termB)).toBe(expectB);
    // A connection with no subscription got its hello and nothing else.
    expect(idle.frames.map((f) => f.op)).toEqual(["hello"]);
  });
});

describe("checks before the upgrade", () => {
  it("refuses /v1/ws and /ws/session without valid credentials (401) before upgrading", async () => {
    const gw = await startTestGateway(defer);
    const { id } = await createSession(gw, { kind: "stream" });
    expect(await refusal(wsUrl(gw, "/v1/ws"))).toEqual({ status: 401, code: "UNAUTHORIZED" });
    expect(await refusal(wsUrl(gw, "/v1/ws"), { headers: { Authorization: "Bearer wrong-token-0123456789" } })).toEqual(
      { status: 401, code: "UNAUTHORIZED" },
    );
    expect(await refusal(wsUrl(gw, `/ws/session/${id}`))).toEqual({ status: 401, code: "UNAUTHORIZED" });
    // Without credentials an unknown session answers 401 as well: nothing is revealed before auth.
    expect(await refusal(wsUrl(gw, "/ws/session/no-such-session"))).toEqual({ status: 401, code: "UNAUTHORIZED" });
  });

  it("answers 404 for an unknown session on /ws/session before upgrading", async () => {
    const gw = shared;
    expect(await refusal(wsUrl(gw, "/ws/session/no-such-session"), { headers: authHeaders(gw) })).toEqual({
      status: 404,
      code: "SESSION_NOT_FOUND",
    });
    const { id } = await createSession(gw, { kind: "stream" });
    // And 400 for a position past the end of the output.
    expect(await refusal(wsUrl(gw, `/ws/session/${id}?since=10`), { headers: authHeaders(gw) })).toEqual({
      status: 400,
      code: "BAD_REQUEST",
    });
    // And for an output mode that does not exist.
    expect(await refusal(wsUrl(gw, `/ws/session/${id}?output=xml`), { headers: authHeaders(gw) })).toEqual({
      status: 400,
      code: "BAD_REQUEST",
    });
  });

  it("accepts the token as the switchboard.bearer subprotocol (clients that cannot set headers)", async () => {
    const gw = shared;
    const ws = await openWs(wsUrl(gw, "/v1/ws"), {}, ["switchboard.v1", `switchboard.bearer.${gw.token}`]);
    defer(() => ws.terminate());
    expect(ws.readyState).toBe(WebSocket.OPEN);
  });

  it("refuses a foreign Origin and accepts the gateway's own and configured ones", async () => {
    const gw = await startTestGateway(defer, { config: { allowedOrigins: ["https://ui.example"] } });
    const { id } = await createSession(gw, { kind: "stream" });
    const own = gw.url; // http://127.0.0.1:PORT
    for (const path of ["/v1/ws", `/ws/session/${id}`]) {
      expect(await refusal(wsUrl(gw, path), { headers: authHeaders(gw), origin: "https://evil.example" })).toEqual({
        status: 403,
        code: "ORIGIN_NOT_ALLOWED",
      });
      // Same host, other scheme+port: still foreign.
      expect((await refusal(wsUrl(gw, path), { headers: authHeaders(gw), origin: "http://127.0.0.1:1" })).status).toBe(
        403,
      );
      expect((await refusal(wsUrl(gw, path), { headers: authHeaders(gw), origin: own })).status).toBe(101);
      expect((await refusal(wsUrl(gw, path), { headers: authHeaders(gw), origin: "https://ui.example" })).status).toBe(
        101,
      );
    }
    // The Origin check comes before credentials: a foreign page learns nothing about tokens.
    expect(await refusal(wsUrl(gw, "/v1/ws"), { origin: "https://evil.example" })).toEqual({
      status: 403,
      code: "ORIGIN_NOT_ALLOWED",
    });
  });
});

describe("bad frames", () => {
  it("/v1/ws: invalid JSON, unknown op and wrong fields get error frames with stable codes; the connection stays up", async () => {
    const gw = shared;
    const { id } = await createSession(gw, { kind: "stream" });
    const c = await MuxClient.open(gw, defer);
    const errorAfter = async (n: number): Promise<MuxFrame> => {
      const errors = () => c.frames.filter((f) => f.op === "error");
      await c.until(() => errors().length > n, 5000, `error #${n + 1}`);
      return errors()[n]!;
    };

    c.ws.send("{not json");
    expect(await errorAfter(0)).toMatchObject({ op: "error", code: "INVALID_JSON" });
    c.send({ op: "teleport", session: id, ref: "r1" });
    expect(await errorAfter(1)).toMatchObject({ op: "error", code: "UNKNOWN_OP", ref: "r1" });
    c.send({ op: "subscribe", session: id, since: -1, ref: 7 });
    expect(await errorAfter(2)).toMatchObject({ op: "error", code: "VALIDATION_FAILED", ref: 7 });
    c.send({ op: "subscribe", session: id, extra: true, ref: "r3" });
    expect(await errorAfter(3)).toMatchObject({ op: "error", code: "VALIDATION_FAILED", ref: "r3" });
    c.send({ op: "resize", session: id, cols: "wide", rows: 10, ref: "r4" });
    expect(await errorAfter(4)).toMatchObject({ op: "error", code: "VALIDATION_FAILED", ref: "r4" });
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await errorAfter(5)).toMatchObject({ op: "error", code: "INVALID_JSON" });
    c.send({ op: "subscribe", session: id, since: 99, ref: "r6" });
    expect(await errorAfter(6)).toMatchObject({ op: "error", code: "BAD_REQUEST", ref: "r6", session: id });
    c.send({ op: "unsubscribe", session: id, ref: "r7" });
    expect(await errorAfter(7)).toMatchObject({ op: "error", code: "NOT_SUBSCRIBED", ref: "r7" });
    c.send({ op: "subscribe", session: "no-such-session", ref: "r8" });
    expect(await errorAfter(8)).toMatchObject({ op: "error", code: "SESSION_NOT_FOUND", ref: "r8" });

    // Still up and working: ping echoes t, a subscription delivers.
    c.send({ op: "ping", t: 42 });
    const pong = await c.frame((f) => f.op === "pong");
    expect(pong).toMatchObject({ op: "pong", t: 42 });
    expect(typeof (pong as { serverTime?: unknown }).serverTime).toBe("number");
    c.send({ op: "subscribe", session: id, since: 0, ref: "s" });
    await c.frame((f) => f.op === "subscribed" && f.ref === "s");
    c.send({ op: "unsubscribe", session: id, ref: "u" });
    await c.frame((f) => f.op === "ack" && f.ref === "u");
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("/v1/ws: a refused re-subscribe (since past the head) leaves the subscription as it was", async () => {
    const gw = shared;
    const { id } = await createSession(gw, { kind: "stream" });
    const c = await MuxClient.open(gw, defer);
    c.send({ op: "subscribe", session: id, since: 0, ref: "s" });
    await c.frame((f) => f.op === "subscribed" && f.ref === "s");
    await appendOutput(gw, id, ["one\n"]);
    await c.until(() => c.bytes(id).toString() === "one\n", 5000, "the first output");

    c.send({ op: "subscribe", session: id, since: 99, ref: "bad" });
    expect(await c.frame((f) => f.op === "error" && f.ref === "bad")).toMatchObject({ code: "BAD_REQUEST" });
    // "A refused request changes nothing": the first subscription still delivers.
    await appendOutput(gw, id, ["two\n"]);
    await c.until(() => c.bytes(id).toString() === "one\ntwo\n", 5000, "output after the refusal");
    expect(gw.core.sessions.get(id)!.viewers).toBe(1);
  });

  // Regression (raw-client review): `ping` takes a `ref` like every frame, but its pong dropped it.
  it("/v1/ws: a pong echoes its ping's ref and t; a ping without them gets a pong without them", async () => {
    const gw = shared;
    const c = await MuxClient.open(gw, defer);
    c.send({ op: "ping", t: 7, ref: "p1" });
    c.send({ op: "ping", ref: 2 });
    c.send({ op: "ping" });
    await c.until(() => c.frames.filter((f) => f.op === "pong").length === 3, 5000, "three pongs");
    const pongs = c.frames.filter((f) => f.op === "pong");
    expect(pongs.map(({ t, ref }) => ({ t, ref }))).toEqual([
      { t: 7, ref: "p1" },
      { t: undefined, ref: 2 },
      { t: undefined, ref: undefined },
    ]);
    // A ping is answered by its pong alone: no ack besides.
    expect(c.frames.some((f) => f.op === "ack")).toBe(false);
  });

  // Regression (raw-client review): a frame refused for its fields got an error without `session`,
  // so keystrokes sent to several sessions without `ref` could not be told apart when refused.
  it("/v1/ws: the error to a frame refused for its fields names the frame's session", async () => {
    const gw = shared;
    const a = (await createSession(gw, { command: ["cat"] })).id;
    const b = (await createSession(gw, { command: ["cat"] })).id;
    const c = await MuxClient.open(gw, defer);
    c.send({ op: "input", session: a, data: "" });
    c.send({ op: "resize", session: b, cols: 0, rows: 10 });
    c.send({ op: "input", session: "x".repeat(129), data: "" });
    await c.until(() => c.frames.filter((f) => f.op === "error").length === 3, 5000, "three errors");
    const errors = c.frames.filter((f) => f.op === "error");
    expect(errors.map(({ code, session }) => ({ code, session }))).toEqual([
      { code: "VALIDATION_FAILED", session: a },
      { code: "VALIDATION_FAILED", session: b },
      // Not a session id: not echoed.
      { code: "VALIDATION_FAILED", session: undefined },
    ]);
  });

  // Regression (raw-client review): a frame with no op at all was answered "unknown op undefined".
  it("says what a frame is to a frame without an op (or type), on both endpoints", async () => {
    const gw = shared;
    const { id } = await createSession(gw, { kind: "stream" });
    const c = await MuxClient.open(gw, defer);
    c.send({ type: "ping", ref: "wrong-endpoint" });
    c.send([1, 2]);
    c.send({ op: 5 });
    await c.until(() => c.frames.filter((f) => f.op === "error").length === 3, 5000, "three errors");
    const errors = c.frames.filter((f) => f.op === "error") as Array<MuxFrame & { message?: string }>;
    expect(errors[0]).toMatchObject({ code: "UNKNOWN_OP", ref: "wrong-endpoint" });
    for (const e of errors) {
      expect(e.code).toBe("UNKNOWN_OP");
      expect(e.message).toBe('a frame is a JSON object with a string "op"; see docs/protocol.md');
    }

    const t = await terminalClient(gw, id);
    t.ws.send(JSON.stringify({ op: "ping" }));
    await waitFor(() => t.frames.some((f) => f["type"] === "error"), 5000, "an error");
    expect(t.frames.find((f) => f["type"] === "error")).toEqual({
      type: "error",
      code: "UNKNOWN_OP",
      message: 'a frame is a JSON object with a string "type"; see docs/protocol.md',
    });
    // An op the endpoint does not know is still named.
    c.send({ op: "teleport" });
    await c.until(() => c.frames.filter((f) => f.op === "error").length === 4, 5000, "a fourth error");
    const named = c.frames.filter((f) => f.op === "error").at(-1) as MuxFrame & { message?: string };
    expect(named.message).toBe('unknown op "teleport"; see docs/protocol.md');
  });

  it("/v1/ws: on a connection that follows the session live, the event a frame appended comes before its ack", async () => {
    const gw = shared;
    const { id } = await createSession(gw, { kind: "stream" });
    const c = await MuxClient.open(gw, defer);
    c.send({ op: "subscribe", session: id, ref: "s" });
    await c.frame((f) => f.op === "subscribed" && f.ref === "s");
    c.send({ op: "control", session: id, action: "acquire", ref: "c" });
    await c.frame((f) => f.op === "ack" && f.ref === "c");
    const after = c.frames.slice(c.frames.findIndex((f) => f.op === "subscribed"));
    expect(after.map((f) => f.op)).toEqual(["subscribed", "event", "ack"]);
    expect(after[1]!.event).toMatchObject({ seq: 1, type: "control", action: "acquired" });
  });

  it("/ws/session: invalid JSON, unknown type and wrong fields get error frames; the connection stays up", async () => {
    const gw = shared;
    const { id } = await createSession(gw, { command: ["cat"] });
    const t = await terminalClient(gw, id);
    const errors = () => t.frames.filter((f) => f["type"] === "error");
    const send = (v: unknown) => t.ws.send(typeof v === "string" ? v : JSON.stringify(v));
    send("][");
    send({ type: "teleport" });
    send({ type: "resize", cols: -1, rows: 10 });
    send({ type: "stdin", data: 5 });
    await waitFor(() => errors().length === 4, 5000, "four errors");
    expect(errors().map((f) => f["code"])).toEqual([
      "INVALID_JSON",
      "UNKNOWN_OP",
      "VALIDATION_FAILED",
      "VALIDATION_FAILED",
    ]);
    send({ type: "ping" });
    await waitFor(() => t.frames.some((f) => f["type"] === "pong"), 5000, "pong");
    expect(t.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("closes with 1009 when a frame is over the size limit, on both endpoints", async () => {
    const gw = shared;
    const { id } = await createSession(gw, { kind: "stream" });
    const limit = DEFAULT_LIMITS.frameBytes;
    /** A JSON frame of exactly `size` bytes (an unknown field, so it is answered with an error). */
    const frameOf = (size: number, head: string) => {
      const shell = `{${head},"pad":""}`;
      return `{${head},"pad":"${"p".repeat(size - shell.length)}"}`;
    };
    for (const [path, head] of [
      ["/v1/ws", '"op":"ping"'],
      [`/ws/session/${id}`, '"type":"ping"'],
    ] as const) {
      const ws = new WebSocket(wsUrl(gw, path), { headers: authHeaders(gw) });
      defer(() => ws.terminate());
      const frames: Array<Record<string, unknown>> = [];
      ws.on("message", (raw) => frames.push(JSON.parse(raw.toString()) as Record<string, unknown>));
      await opened(ws);
      // At the limit: read, validated, answered.
      ws.send(frameOf(limit, head));
      await waitFor(
        () => frames.some((f) => f["code"] === "VALIDATION_FAILED"),
        5000,
        "the answer to a frame at the limit",
      );
      expect(ws.readyState).toBe(WebSocket.OPEN);
      // One byte over: the connection is closed with 1009.
      ws.send(frameOf(limit + 1, head));
      expect(await closed(ws)).toBe(CLOSE_CODES.TOO_BIG);
    }
  });
});

describe("binary input on /ws/session", () => {
  it("a binary message is input, its bytes as they are (not UTF-8 too), recorded; refused like a stdin frame without control", async () => {
    const gw = shared;
    const { id } = await createSession(gw, { command: ["cat"] });
    const t = await terminalClient(gw, id, "?control=acquire");
    const sent = Buffer.from([0x68, 0x69, 0x00, 0xff, 0xfe, 0xc3, 0x0a]);
    t.ws.send(sent, { binary: true });
    const output = () =>
      Buffer.concat(
        t.frames
          .filter((f) => f["type"] === "stdout")
          .map((f) => decodeData(f["data"] as string, f["enc"] as string | undefined)),
      );
    await waitFor(() => output().length >= sent.length, 5000, "cat's echo of the bytes");
    expect([...output()]).toEqual([...sent]);
    const { events } = await api<{ events: Array<{ type: string; bytes?: number }> }>(
      gw,
      "GET",
      `/v1/sessions/${id}/events?types=input`,
    );
    expect(events.map((e) => e.bytes)).toEqual([sent.length]);

    // Another connection, without control: refused as its stdin frame would be, and nothing written.
    const other = await terminalClient(gw, id);
    other.ws.send(Buffer.from("no"), { binary: true });
    await waitFor(() => other.frames.some((f) => f["type"] === "error"), 5000, "the refusal");
    expect(other.frames.find((f) => f["type"] === "error")?.["code"]).toBe("CONTROL_HELD");
    expect(other.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("/v1/ws still refuses binary frames: its frames are JSON", async () => {
    const ws = new WebSocket(wsUrl(shared, "/v1/ws"), { headers: authHeaders(shared) });
    defer(() => ws.terminate());
    const frames: Array<Record<string, unknown>> = [];
    ws.on("message", (raw) => frames.push(JSON.parse(raw.toString()) as Record<string, unknown>));
    await opened(ws);
    ws.send(Buffer.from("hi"), { binary: true });
    await waitFor(() => frames.some((f) => f["op"] === "error"), 5000, "the refusal");
    expect(frames.find((f) => f["op"] === "error")?.["code"]).toBe("INVALID_JSON");
  });
});

describe("output in JSON frames", () => {
  it("carries every byte of mixed output — escapes, non-ASCII text, bytes that are not UTF-8 — live and replayed, on both endpoints", async () => {
    const gw = shared;
    // Text a TUI prints (colors, box drawing, CJK, emoji), everything JSON escapes, and bytes that are not UTF-8.
    const pieces = [
      Buffer.from('\x1b[1;32m✓\x1b[0m "quoted" back\\slash\ttab\0nul\x7f ─│┌┐ 漢字 😀 \u2028\r\n'),
      Buffer.from([0xff, 0xfe, 0x41, 0xc3]),
      Buffer.from([0xa9, 0x0a]), // completes the é the previous piece cut
      Buffer.from("tail é\n".repeat(2000)),
    ];
    const expected = Buffer.concat(pieces);
    const script = `process.stdin.once("data", async () => { for (const p of ${JSON.stringify(pieces.map((p) => p.toString("base64")))}) { process.stdout.write(Buffer.from(p, "base64")); await new Promise((r) => setTimeout(r, 20)); } process.exit(0); });`;
    const { id } = await createSession(gw, { command: [process.execPath, "-e", script] });

    const live = await terminalClient(gw, id);
    const mux = await MuxClient.open(gw, defer);
    mux.subscribe(id);
    await waitFor(() => live.frames.some((f) => f["type"] === "connected"), 5000, "connected");
    await mux.frame((f) => f.op === "subscribed" || f.op === "event", 5000, "the subscription");
    live.ws.send(JSON.stringify({ type: "stdin", data: "go\n" }));

    const bytesOf = (frames: Array<Record<string, unknown>>, types: string[]) =>
      Buffer.concat(
        frames
          .filter((f) => types.includes(f["type"] as string))
          .map((f) => decodeData(f["data"] as string, f["enc"] as string | undefined)),
      );
    await waitFor(() => live.frames.some((f) => f["type"] === "exit"), 10_000, "the exit frame");
    expect(bytesOf(live.frames, ["stdout", "stderr"]).equals(expected)).toBe(true);
    expect(live.frames.some((f) => f["enc"] === "base64")).toBe(true);

    await mux.until(() => mux.state.get(id)?.ended === true, 10_000, "the exit event");
    expect(mux.errors).toEqual([]);
    expect(mux.bytes(id).equals(expected)).toBe(true);

    const replay = await terminalClient(gw, id, "?since=0");
    await waitFor(() => replay.frames.some((f) => f["type"] === "exit"), 10_000, "the replay's exit frame");
    expect(bytesOf(replay.frames, ["replay"]).equals(expected)).toBe(true);

    const late = await MuxClient.open(gw, defer);
    late.subscribe(id);
    await late.until(() => late.state.get(id)?.ended === true, 10_000, "the catch-up's exit event");
    expect(late.errors).toEqual([]);
    expect(late.bytes(id).equals(expected)).toBe(true);
  });
});

describe("a type filter over a long log", () => {
  it("delivers the few events it matches, in order, and goes on live, reading the log in bounded stretches", async () => {
    const gw = shared;
    const { id } = await createSession(gw, { kind: "stream", name: "long" });
    const rare = (n: number) => ({ type: "milestone", data: { n } });
    const filler = Array.from({ length: 1000 }, () => ({ type: "output", data: { data: "." } }));
    const post = (body: unknown) => api(gw, "POST", `/v1/sessions/${id}/events`, body);
    await post(rare(1));
    // 2.4 stretches of FILTERED_SCAN_EVENTS between the two matches, most of them in the store.
    for (let i = 0; i < 40; i++) await post(filler);
    await post(rare(2));
    for (let i = 0; i < 2; i++) await post(filler);
    const c = await MuxClient.open(gw, defer);
    c.send({ op: "subscribe", session: id, since: 0, types: ["custom"], ref: "s" });
    await c.frame((f) => f.op === "subscribed", 10_000, "subscribed");
    const milestones = () =>
      c.frames.flatMap((f) =>
        (f.events ?? (f.event ? [f.event] : [])).flatMap((e) =>
          e.type === "custom" && (e as { name?: string }).name === "milestone"
            ? [(e as { data: { n: number } }).data.n]
            : [],
        ),
      );
    await c.until(() => milestones().length === 2, 10_000, "both milestones from the log");
    await post(rare(3));
    await c.until(() => milestones().length === 3, 10_000, "the live milestone");
    const delivered = c.frames.flatMap((f) => f.events ?? (f.event ? [f.event] : []));
    expect(delivered.map((e) => [e.type, e.seq])).toEqual([
      ["custom", 1],
      ["custom", 40_002],
      ["custom", 42_003],
    ]);
    expect(milestones()).toEqual([1, 2, 3]);
  }, 60_000);

  // Found by a client author working from protocol.md: a subscription filtered to `custom` got
  // nothing when the session ended, and resubscribing from its last position said nothing of the
  // end either, so it waited for ever.
  it("never hides the session's end: live, on catch-up, and on a resubscribe after it", async () => {
    const gw = shared;
    const { id } = await createSession(gw, { kind: "stream", name: "filtered" });
    const post = (body: unknown) => api(gw, "POST", `/v1/sessions/${id}/events`, body);
    await post([
      { type: "milestone", data: { n: 1 } },
      { type: "output", data: { data: "x" } },
    ]);
    const live = await MuxClient.open(gw, defer);
    live.send({ op: "subscribe", session: id, since: 0, types: ["custom"], ref: "s" });
    await live.frame((f) => f.op === "subscribed", 10_000, "subscribed");
    await post([
      { type: "output", data: { data: "y" } },
      { type: "exit", data: { exitCode: 0 } },
    ]);
    const seen = (c: MuxClient) =>
      c.frames.flatMap((f) => (f.events ?? (f.event ? [f.event] : [])).map((e) => [e.type, e.seq]));
    await live.until(() => seen(live).length === 2, 10_000, "the exit, live");
    expect(seen(live)).toEqual([
      ["custom", 1],
      ["exit", 4],
    ]);

    const late = await MuxClient.open(gw, defer);
    late.send({ op: "subscribe", session: id, since: 1, types: ["custom"], ref: "s" });
    await late.until(() => seen(late).length === 1, 10_000, "the exit, from the log");
    expect(seen(late)).toEqual([["exit", 4]]);
    late.send({ op: "subscribe", session: id, since: 4, types: ["custom"], ref: "again" });
    const again = await late.frame((f) => f.op === "subscribed" && f.ref === "again", 10_000, "subscribed again");
    expect((again as { end?: unknown }).end).toMatchObject({ type: "exit", seq: 4 });
  });
});
