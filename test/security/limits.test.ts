/**
 * Limits: every limit is a named config value (`limits.<name>`) and answers with a
 * clear, stable error when hit — and a refused request changes nothing.
 */
import { request } from "node:http";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { ERROR_CODES, LIMITS } from "../../src/protocol/index.js";
import { MAX_QUEUED_PROMPT_CHARS } from "../../src/agents/agent-session.js";
import { DEFAULT_LIMITS, parseConfig } from "../../src/server/config/config.js";
import type { Gateway } from "../../src/server/gateway.js";
import { REFUSED_LINGER_MS } from "../../src/server/http/anonymous-gate.js";
import { AUTH_FAILURES_ALLOWED, AUTH_FAILURE_WINDOW_MS } from "../../src/server/http/rate-limit.js";
import { Mux, TOKENS, WsClient, catPty, changesOf, errorOf, eventsOf, http, secGateway } from "./helpers.js";
import { createSession } from "../helpers/gateway.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

/** A raw HTTP/1.1 connection: requests written by hand, the socket kept open between them. */
class RawConnection {
  private received = "";
  private closed = false;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (text: string) => {
      this.received += text;
      this.wake();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => resolve(new RawConnection(socket)));
      socket.once("error", reject);
    });
  }

  /** Sends a GET and resolves with the response head once it has arrived (throws if the connection closes first). */
  async request(path: string, token?: string): Promise<string> {
    this.received = "";
    const auth = token !== undefined ? `Authorization: Bearer ${token}\r\n` : "";
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}\r\n`);
    await this.until(() => this.received.includes("\r\n\r\n") || this.closed);
    if (!this.received.includes("\r\n\r\n"))
      throw new Error(`closed before answering: ${JSON.stringify(this.received)}`);
    return this.received;
  }

  /** Waits until the gateway closes the connection; resolves with what it sent before (nothing, for a refusal). */
  async closedWith(): Promise<string> {
    this.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await this.until(() => this.closed);
    return this.received;
  }

  private until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no answer in 10 s")), 10_000);
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** POSTs `size` bytes of JSON with chunked transfer encoding (no Content-Length to check up front). */
function postChunked(gw: Gateway, path: string, size: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${gw.url}${path}`,
      {
        method: "POST",
        headers: {
          authorization: `Bearer ${TOKENS.admin}`,
          "content-type": "application/json",
          "transfer-encoding": "chunked",
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    // The server may answer and stop reading before the upload ends.
    req.on("error", (error: NodeJS.ErrnoException) =>
      error.code === "ECONNRESET" || error.code === "EPIPE" ? undefined : reject(error),
    );
    const body = JSON.stringify({ kind: "stream", name: "x".repeat(size) });
    for (let i = 0; i < body.length; i += 512) req.write(body.slice(i, i + 512));
    req.end();
  });
}

describe("limits", () => {
  it("has a documented, positive default for every limit and refuses nonsense in the config", () => {
    for (const [name, value] of Object.entries(DEFAULT_LIMITS)) expect(value, name).toBeGreaterThan(0);
    expect(() => parseConfig({ limits: { bodyBytes: 0 } })).toThrow(/limits\.bodyBytes/);
    expect(() => parseConfig({ limits: { frameBytes: -1 } })).toThrow(/limits\.frameBytes/);
    expect(() => parseConfig({ limits: { sessions: 1.5 } })).toThrow(/limits\.sessions/);
    expect(() => parseConfig({ limits: { noSuchLimit: 1 } })).toThrow(/limits/);
    expect(() => parseConfig({ control: { autoReleaseAfterMs: 0 } })).toThrow(/control\.autoReleaseAfterMs/);
  });

  it("refuses bodies over limits.bodyBytes with 413, by Content-Length and while reading", async () => {
    const gw = await secGateway({ config: { limits: { bodyBytes: 2048 } } });
    const s = await catPty(gw, "admin");
    const big = await http(gw, "admin").post("/v1/sessions", { kind: "stream", name: "y".repeat(3000) });
    expect(errorOf(big)).toMatchObject({
      status: 413,
      code: "PAYLOAD_TOO_LARGE",
      message: expect.stringContaining("limits.bodyBytes"),
    });
    const chunked = await postChunked(gw, "/v1/sessions", 5000);
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body)).toMatchObject({
      error: { code: "PAYLOAD_TOO_LARGE", message: expect.stringContaining("limits.bodyBytes") },
    });
    const input = await http(gw, "admin").post(`/v1/sessions/${s.id}/input`, { data: "z".repeat(3000) });
    expect(errorOf(input)).toMatchObject({ status: 413, code: "PAYLOAD_TOO_LARGE" });
    // Just under the limit is fine; nothing over it was created or written.
    expect((await http(gw, "admin").post("/v1/sessions", { kind: "stream", name: "ok" })).status).toBe(201);
    expect((await http(gw, "admin").get("/v1/sessions")).json.sessions).toHaveLength(2);
    expect(await changesOf(gw, s.id)).toEqual([]);
  });

  it("closes a WebSocket with 1009 when a frame is over limits.frameBytes", async () => {
    const gw = await secGateway({ config: { limits: { frameBytes: 4096 } } });
    const s = await catPty(gw, "admin");
    const mux = await Mux.open(gw, "admin");
    expect(mux.frames[0]).toMatchObject({ op: "hello", limits: { frameBytes: 4096 } });
    // Under the limit: an answer, not a close.
    expect(await mux.request({ op: "input", session: s.id, data: "a".repeat(3000) })).toMatchObject({ op: "ack" });
    mux.client.send({ op: "input", session: s.id, data: "a".repeat(5000) });
    expect((await mux.client.closed).code).toBe(1009);
    const term = await WsClient.open(gw, `/ws/session/${s.id}`, "admin");
    term.send({ type: "stdin", data: "b".repeat(5000) });
    expect((await term.closed).code).toBe(1009);
    const inputs = (await eventsOf(gw, s.id)).filter((e) => e.type === "input");
    expect(inputs.map((e) => (e as { bytes: number }).bytes)).toEqual([3000]);
  });

  it("refuses input over LIMITS.INPUT_BYTES per message as PAYLOAD_TOO_LARGE at any size, text or bytes, on every route", async () => {
    const gw = await secGateway();
    const s = await catPty(gw, "admin");
    const max = LIMITS.INPUT_BYTES;
    // Just over; over twice the characters (once a schema length limit: VALIDATION_FAILED); bytes as base64.
    const bodies = [
      { data: "a".repeat(max + 1), bytes: max + 1 },
      { data: "a".repeat(300_000), bytes: 300_000 },
      { data: Buffer.alloc(100_000, 7).toString("base64"), enc: "base64", bytes: 100_000 },
    ];
    const mux = await Mux.open(gw, "admin");
    const term = await WsClient.open(gw, `/ws/session/${s.id}`, "admin");
    await term.waitFor((f) => f["type"] === "connected", "connected");
    for (const { bytes, ...body } of bodies) {
      const refusal = { code: "PAYLOAD_TOO_LARGE", message: `input is ${bytes} bytes; at most ${max} per message` };
      const viaHttp = await http(gw, "admin").post(`/v1/sessions/${s.id}/input`, body);
      expect(errorOf(viaHttp)).toMatchObject({ status: 413, ...refusal });
      expect(await mux.request({ op: "input", session: s.id, ...body })).toMatchObject({ op: "error", ...refusal });
      const from = term.frames.length;
      term.send({ type: "stdin", ...body });
      expect(await term.waitFor((f) => f["type"] === "error", "the refusal", from)).toMatchObject(refusal);
    }
    // Nothing of it was written, and both connections are still up.
    expect(await mux.request({ op: "input", session: s.id, data: "ok" })).toMatchObject({ op: "ack" });
    expect((await eventsOf(gw, s.id)).filter((e) => e.type === "input").map((e) => e["bytes"])).toEqual([2]);
    expect(term.closeCode).toBeUndefined();
  });

  it("limits input bytes per second per connection (limits.inputBytesPerSecond) on /v1/ws and /ws/session", async () => {
    const clock = new ManualClock();
    const gw = await secGateway({ clock, config: { limits: { inputBytesPerSecond: 100 } } });
    const s = await catPty(gw, "admin");
    const mux = await Mux.open(gw, "admin");
    expect(await mux.request({ op: "input", session: s.id, data: "a".repeat(60) })).toMatchObject({ op: "ack" });
    const limited = await mux.request({ op: "input", session: s.id, data: "a".repeat(60) });
    expect(limited).toMatchObject({
      op: "error",
      code: "RATE_LIMITED",
      message: expect.stringContaining("limits.inputBytesPerSecond"),
    });
    // Another connection has its own budget; time refills this one.
    const other = await Mux.open(gw, "admin");
    expect(await other.request({ op: "input", session: s.id, data: "a".repeat(60) })).toMatchObject({ op: "ack" });
    clock.advance(1000);
    expect(await mux.request({ op: "input", session: s.id, data: "a".repeat(60) })).toMatchObject({ op: "ack" });

    const term = await WsClient.open(gw, `/ws/session/${s.id}`, "admin");
    await term.waitFor((f) => f["type"] === "connected", "connected");
    term.send({ type: "stdin", data: "b".repeat(90) });
    term.send({ type: "stdin", data: "b".repeat(90) });
    expect(await term.waitFor((f) => f["type"] === "error", "rate limit")).toMatchObject({ code: "RATE_LIMITED" });
    const inputs = await waitFor(
      async () => {
        const evs = (await eventsOf(gw, s.id)).filter((e) => e.type === "input");
        return evs.length === 4 ? evs : undefined;
      },
      5_000,
      "four accepted inputs",
    );
    expect(inputs.map((e) => (e as { bytes: number }).bytes)).toEqual([60, 60, 60, 90]);
  });

  it("limits input messages per second per connection (limits.inputFramesPerSecond) on /v1/ws, /ws/session and per token over HTTP", async () => {
    const clock = new ManualClock();
    const gw = await secGateway({ clock, config: { limits: { inputFramesPerSecond: 3 } } });
    const s = await catPty(gw, "admin");
    const mux = await Mux.open(gw, "admin");
    for (let i = 0; i < 3; i++)
      expect(await mux.request({ op: "input", session: s.id, data: "a" })).toMatchObject({ op: "ack" });
    // One byte each, far within limits.inputBytesPerSecond: the count is what is refused.
    expect(await mux.request({ op: "input", session: s.id, data: "a" })).toMatchObject({
      op: "error",
      code: "RATE_LIMITED",
      message: expect.stringContaining("limits.inputFramesPerSecond"),
    });

    const term = await WsClient.open(gw, `/ws/session/${s.id}`, "admin");
    await term.waitFor((f) => f["type"] === "connected", "connected");
    for (let i = 0; i < 4; i++) term.send({ type: "stdin", data: "b" });
    expect(await term.waitFor((f) => f["type"] === "error", "rate limit")).toMatchObject({
      code: "RATE_LIMITED",
      message: expect.stringContaining("limits.inputFramesPerSecond"),
    });

    const admin = http(gw, "admin");
    for (let i = 0; i < 3; i++)
      expect((await admin.post(`/v1/sessions/${s.id}/input`, { data: "c" })).status).toBe(200);
    const refused = await admin.post(`/v1/sessions/${s.id}/input`, { data: "c" });
    expect(errorOf(refused)).toMatchObject({
      status: 429,
      code: "RATE_LIMITED",
      message: expect.stringContaining("per token (limits.inputFramesPerSecond)"),
    });
    // Another token has its own budget over HTTP.
    const own = await catPty(gw, "alice");
    expect((await http(gw, "alice").post(`/v1/sessions/${own.id}/input`, { data: "d" })).status).toBe(200);

    // Exactly the accepted messages were written; a second later each budget is full again.
    const inputs = await waitFor(
      async () => {
        const evs = (await eventsOf(gw, s.id)).filter((e) => e.type === "input");
        return evs.length === 9 ? evs : undefined;
      },
      5_000,
      "nine accepted inputs",
    );
    expect(inputs).toHaveLength(9);
    clock.advance(1000);
    expect(await mux.request({ op: "input", session: s.id, data: "a" })).toMatchObject({ op: "ack" });
    expect((await admin.post(`/v1/sessions/${s.id}/input`, { data: "c" })).status).toBe(200);
  });

  // Found by an adversarial pass: refused input spent the budget, so a client that retried while
  // someone else held control was rate limited as soon as it had control.
  it("input refused for control held elsewhere does not spend the connection's input budget", async () => {
    const clock = new ManualClock();
    const gw = await secGateway({ clock, config: { limits: { inputBytesPerSecond: 100 } } });
    const s = await catPty(gw, "admin");
    const holder = await Mux.open(gw, "admin");
    expect(await holder.request({ op: "control", session: s.id, action: "acquire" })).toMatchObject({ op: "ack" });
    const mux = await Mux.open(gw, "admin");
    const term = await WsClient.open(gw, `/ws/session/${s.id}`, "admin");
    await term.waitFor((f) => f["type"] === "connected", "connected");
    for (let i = 0; i < 3; i++) {
      const held = await mux.request({ op: "input", session: s.id, data: "a".repeat(90) });
      expect(held).toMatchObject({ op: "error", code: "CONTROL_HELD" });
      const from = term.frames.length;
      term.send({ type: "stdin", data: "b".repeat(90) });
      expect(await term.waitFor((f) => f["type"] === "error", "the refusal", from)).toMatchObject({
        code: "CONTROL_HELD",
      });
    }
    expect(await holder.request({ op: "control", session: s.id, action: "release" })).toMatchObject({ op: "ack" });
    // Within the same second: the refused 270 bytes of each did not count.
    expect(await mux.request({ op: "input", session: s.id, data: "a".repeat(90) })).toMatchObject({ op: "ack" });
    term.send({ type: "stdin", data: "b".repeat(90) });
    const inputs = await waitFor(
      async () => {
        const evs = (await eventsOf(gw, s.id)).filter((e) => e.type === "input");
        return evs.length === 2 ? evs : undefined;
      },
      5_000,
      "both inputs",
    );
    expect(inputs.map((e) => (e as { bytes: number }).bytes)).toEqual([90, 90]);
  });

  it("limits running sessions per gateway (limits.sessions) and per token (limits.sessionsPerToken)", async () => {
    const gw = await secGateway({ config: { limits: { sessions: 3, sessionsPerToken: 2 } } });
    const a1 = await createSession(gw, { kind: "stream" }, TOKENS.alice);
    await createSession(gw, { kind: "stream" }, TOKENS.alice);
    const perToken = await http(gw, "alice").post("/v1/sessions", { kind: "stream" });
    expect(errorOf(perToken)).toMatchObject({
      status: 429,
      code: "LIMIT_EXCEEDED",
      message:
        "alice runs at most 2 sessions at once (limits.sessionsPerToken): stop one that is no longer needed (DELETE /v1/sessions/:id, switchboard kill), or raise the limit in the config",
    });
    await createSession(gw, { kind: "stream" }, TOKENS.bob);
    const perGateway = await http(gw, "bob").post("/v1/sessions", { command: ["cat"] });
    expect(errorOf(perGateway)).toMatchObject({
      status: 429,
      code: "LIMIT_EXCEEDED",
      message: expect.stringContaining("limits.sessions)"),
    });
    expect((await http(gw, "admin").get("/v1/sessions")).json.sessions).toHaveLength(3);
    // Ended sessions do not count.
    await http(gw, "alice").post(`/v1/sessions/${a1.id}/events`, { type: "exit", data: {} });
    expect((await http(gw, "alice").post("/v1/sessions", { kind: "stream" })).status).toBe(201);
  });

  it("limits subscriptions per connection (limits.subscriptionsPerConnection)", async () => {
    const gw = await secGateway({ config: { limits: { subscriptionsPerConnection: 2 } } });
    const ids = await Promise.all(
      [1, 2, 3].map(async () => (await createSession(gw, { kind: "stream" }, TOKENS.admin)).id),
    );
    const mux = await Mux.open(gw, "admin");
    expect(await mux.request({ op: "subscribe", session: ids[0] })).toMatchObject({ op: "subscribed" });
    expect(await mux.request({ op: "subscribe", session: ids[1] })).toMatchObject({ op: "subscribed" });
    const third = await mux.request({ op: "subscribe", session: ids[2] });
    expect(third).toMatchObject({
      op: "error",
      code: "LIMIT_EXCEEDED",
      message: expect.stringContaining("limits.subscriptionsPerConnection"),
    });
    // Moving an existing subscription is not a new one; unsubscribing frees a slot.
    expect(await mux.request({ op: "subscribe", session: ids[1], since: 0 })).toMatchObject({ op: "subscribed" });
    await mux.request({ op: "unsubscribe", session: ids[0] });
    expect(await mux.request({ op: "subscribe", session: ids[2] })).toMatchObject({ op: "subscribed" });
  });

  it("limits WebSocket connections per token (limits.connectionsPerToken) with 429 before the upgrade", async () => {
    const gw = await secGateway({ config: { limits: { connectionsPerToken: 2 } } });
    const s = await createSession(gw, { kind: "stream" }, TOKENS.alice);
    const first = await Mux.open(gw, "alice");
    await Mux.open(gw, "alice");
    const refused = await WsClient.open(gw, "/v1/ws", "alice").catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 429 });
    expect(JSON.parse((refused as { body: string }).body).error).toMatchObject({
      code: "LIMIT_EXCEEDED",
      message: expect.stringContaining("limits.connectionsPerToken"),
    });
    // Other tokens are not affected; a closed connection frees its slot.
    await Mux.open(gw, "bob");
    await first.client.close();
    await waitFor(async () => Mux.open(gw, "alice").catch(() => undefined), 5_000, "a free slot");
    // The terminal endpoint shares the count.
    await expect(WsClient.open(gw, `/ws/session/${s.id}`, "alice")).rejects.toMatchObject({ status: 429 });
    // An operator sees the refusals (they are not in the HTTP request counts).
    const metrics = (await http(gw, "admin").get("/metrics")).text;
    expect(metrics).toContain('switchboard_ws_upgrades_refused_total{code="LIMIT_EXCEEDED"} 2');
  });

  it("counts /v1/ws, /ws/session and SSE together toward limits.connectionsPerToken", async () => {
    const gw = await secGateway({ config: { limits: { connectionsPerToken: 2 } } });
    const s = await createSession(gw, { kind: "stream" }, TOKENS.alice);
    await Mux.open(gw, "alice");
    const sse = new AbortController();
    const stream = await fetch(`${gw.url}/v1/sessions/${s.id}/stream`, {
      headers: { authorization: `Bearer ${TOKENS.alice}` },
      signal: sse.signal,
    });
    expect(stream.status).toBe(200);
    try {
      await expect(WsClient.open(gw, `/ws/session/${s.id}`, "alice")).rejects.toMatchObject({ status: 429 });
    } finally {
      sse.abort();
    }
  });

  it("limits events per append call (limits.eventsPerAppend), appending none of a refused batch", async () => {
    const gw = await secGateway({ config: { limits: { eventsPerAppend: 5 } } });
    const s = await createSession(gw, { kind: "stream" }, TOKENS.admin);
    const batch = (n: number) => Array.from({ length: n }, (_, i) => ({ type: "note", data: i }));
    const refused = await http(gw, "admin").post(`/v1/sessions/${s.id}/events`, batch(6));
    expect(errorOf(refused)).toMatchObject({
      status: 413,
      code: "PAYLOAD_TOO_LARGE",
      message: expect.stringContaining("limits.eventsPerAppend"),
    });
    expect(await eventsOf(gw, s.id)).toEqual([]);
    expect((await http(gw, "admin").post(`/v1/sessions/${s.id}/events`, batch(5))).json).toMatchObject({
      appended: 5,
      head: 5,
    });
  });

  // Regression (adversarial review): a page was bounded by count only (10,000 events), so one
  // request made the gateway assemble a session's whole retained log (256 MiB by default) as one
  // string, and a viewer could make it do that in as many requests at once as it liked.
  it("bounds a page of GET /events by bytes (LIMITS.EVENTS_PAGE_BYTES); next pages through the rest", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "stream", name: "shared-big" }, TOKENS.admin);
    const big = "x".repeat(1_000_000);
    for (let i = 0; i < 12; i++)
      expect((await http(gw, "admin").post(`/v1/sessions/${s.id}/events`, { type: "blob", data: big })).status).toBe(
        200,
      );
    const seen: number[] = [];
    let since = 0;
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThan(12);
      const page = await http(gw, "vera").get(`/v1/sessions/${s.id}/events?since=${since}&limit=10000`);
      expect(page.status).toBe(200);
      // Whole events: a page stops at the first event that reaches the bound.
      expect(page.text.length).toBeLessThan(LIMITS.EVENTS_PAGE_BYTES + 1_100_000);
      seen.push(...(page.json.events as Array<{ seq: number }>).map((e) => e.seq));
      if (page.json.next >= page.json.head) break;
      since = page.json.next;
    }
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  // Regression (adversarial review): limits.sessionsPerToken counts running sessions, and ended
  // ones are kept until deleted (retention.endedSessions is off by default), but each ended session
  // kept its hot ring — up to 4 MiB of events in memory. Creating, filling and ending sessions in a
  // loop grew the gateway without bound (measured: +196 MB of heap for 40 sessions, 2 at a time).
  it("keeps no events of ended sessions in memory, so ending sessions in a loop cannot grow the gateway", async () => {
    const gw = await secGateway({ config: { limits: { sessionsPerToken: 2 } } });
    const data = "x".repeat(900_000);
    const ended: string[] = [];
    for (let n = 0; n < 3; n++) {
      const s = await createSession(gw, { kind: "stream" }, TOKENS.mallory);
      for (let i = 0; i < 3; i++) {
        const batch = [
          { type: "output", data: { data: "y".repeat(100_000) } },
          { type: "blob", data },
        ];
        expect((await http(gw, "mallory").post(`/v1/sessions/${s.id}/events`, batch)).status).toBe(200);
      }
      expect(gw.core.events.get(s.id)!.hotBytes).toBeGreaterThan(3_000_000);
      expect((await http(gw, "mallory").post(`/v1/sessions/${s.id}/events`, { type: "exit", data: {} })).status).toBe(
        200,
      );
      ended.push(s.id);
    }
    for (const id of ended) {
      expect(gw.core.events.get(id)!.hotBytes).toBe(0);
      // Everything is still there, read from the store.
      const events = (await http(gw, "mallory").get(`/v1/sessions/${id}/events`)).json.events as Array<{
        type: string;
      }>;
      expect(events.map((e) => e.type)).toEqual(["output", "custom", "output", "custom", "output", "custom", "exit"]);
      expect((await http(gw, "mallory").get(`/v1/sessions/${id}/output`)).text).toBe("y".repeat(300_000));
    }
  });

  // Regression (adversarial review): every client frame gets an answer (pong, ack, error) that is
  // queued however much the client has left unread. A client that sends small frames and never
  // reads made the gateway queue ~20 bytes of answers per byte it sent (measured: +145 MB for
  // 300,000 pings and bad frames, 2.4 MB sent), without end; unsolicited pongs keep it from being
  // taken for dead. Any token may do it, a viewer's too. (Now: +4 MB of heap for the same flood.)
  it("stops reading a WebSocket that leaves its answers unread, and reads on once it drains", async () => {
    const queueBytes = 256 * 1024;
    const gw = await secGateway({ config: { limits: { queueBytes } } });
    const s = await createSession(gw, { kind: "stream", name: "shared-flood" }, TOKENS.admin);
    // 6 MB of output the client replays from the start without reading it: it fills the loopback
    // socket buffers (about 4 MB here), which would take the answers alone some 60,000 frames.
    // Output stays below both bounds (its feed waits at one budget): what pauses reads is answers.
    const chunk = { type: "output", data: { data: "o".repeat(16 * 1024) } };
    for (let i = 0; i < 6; i++)
      expect((await http(gw, "admin").post(`/v1/sessions/${s.id}/events`, new Array(60).fill(chunk))).status).toBe(200);
    const paused = async (endpoint: string) =>
      Number(
        new RegExp(`switchboard_ws_reads_paused_total\\{endpoint="${endpoint}"\\} (\\d+)`).exec(
          (await http(gw, "admin").get("/metrics")).text,
        )?.[1] ?? 0,
      );
    /** The pongs and errors among the frames the client received (counted once each as they come). */
    const answerCounter = (client: WsClient) => {
      const counts = { pong: 0, error: 0 };
      let seen = 0;
      return () => {
        for (; seen < client.frames.length; seen++) {
          const kind = (client.frames[seen]!.op ?? client.frames[seen]!.type) as string;
          if (kind === "pong" || kind === "error") counts[kind]++;
        }
        return counts;
      };
    };
    for (const [endpoint, path, ping] of [
      ["multiplex", "/v1/ws", { op: "ping", t: 1 }],
      ["terminal", `/ws/session/${s.id}?since=0`, { type: "ping" }],
    ] as const) {
      const client = await WsClient.open(gw, path, "vera");
      const socket = (client.ws as unknown as { _socket: Socket })._socket;
      socket.pause();
      if (endpoint === "multiplex") client.send({ op: "subscribe", session: s.id, since: 0 });
      await sleep(50);
      // The output alone has not paused reads.
      expect(await paused(endpoint)).toBe(0);
      // Pings and bad frames (each answered: pong, error) at about the rate the gateway takes
      // them, until it stops reading; then more, which wait unread in the socket.
      let sent = 0;
      const flood = (n: number) => {
        for (let end = sent + n; sent < end; sent++) client.send(sent % 2 === 0 ? ping : "x");
      };
      while (sent < 100_000 && (await paused(endpoint)) === 0) {
        flood(256);
        await sleep(50);
      }
      await waitFor(async () => (await paused(endpoint)) >= 1, 30_000, `${endpoint} reads paused`);
      flood(2048);
      // The gateway reads on once the client does, and answers every frame (one per turn of its
      // event loop: about 10,000 a second on a shared machine).
      socket.resume();
      const pings = Math.ceil(sent / 2);
      const answers = answerCounter(client);
      await client.until(() => answers().pong >= pings && answers().error >= sent - pings, "every answer", 60_000);
      expect(answers()).toEqual({ pong: pings, error: sent - pings });
      expect(client.closeCode).toBeUndefined();
      client.ws.terminate();
    }
  }, 150_000);

  // Regression (adversarial review): an agent session queued up to 100 prompts of up to 256 KiB
  // each, kept in memory until they run: 25 MiB per session, 1.6 GiB for one operator's 64
  // sessions behind an agent that takes its time.
  it("limits the text of the prompts queued in one agent session (MAX_QUEUED_PROMPT_CHARS)", async () => {
    const gw = await secGateway();
    const agent = await createSession(
      gw,
      {
        kind: "agent",
        agent: { adapter: "command", command: ["sleep", "600"] },
      },
      TOKENS.mallory,
    );
    const text = "p".repeat(250_000);
    const answers: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await http(gw, "mallory").post(`/v1/sessions/${agent.id}/prompt`, { text });
      answers.push(r.status === 202 ? "queued" : errorOf(r).code);
    }
    const queued = answers.filter((a) => a === "queued").length;
    // The first one runs; the queue behind it holds at most MAX_QUEUED_PROMPT_CHARS of text.
    expect((queued - 1) * text.length).toBeLessThanOrEqual(MAX_QUEUED_PROMPT_CHARS);
    expect(answers.slice(queued)).toEqual(new Array(30 - queued).fill("LIMIT_EXCEEDED"));
    const refused = await http(gw, "mallory").post(`/v1/sessions/${agent.id}/prompt`, { text });
    expect(errorOf(refused).message).toContain("MAX_QUEUED_PROMPT_CHARS");
    // A short prompt still fits.
    expect((await http(gw, "mallory").post(`/v1/sessions/${agent.id}/prompt`, { text: "hi" })).status).toBe(202);
  });

  it("closes connections past limits.anonymousConnectionsPerAddress that have not presented a valid credential", async () => {
    const gw = await secGateway({
      config: { limits: { anonymousConnectionsPerAddress: 3 } },
      countLoopbackConnections: true,
    });
    const port = Number(new URL(gw.url).port);
    const sockets: RawConnection[] = [];
    const open = async () => {
      const c = await RawConnection.open(port);
      sockets.push(c);
      return c;
    };
    try {
      // Three that say nothing (a slowloris), and one that only sends a bad token: all count.
      const idle = [await open(), await open()];
      const guessing = await open();
      expect(await guessing.request("/v1/sessions", "sec-wrong-token-0123456789abcdef")).toMatch(/^HTTP\/1\.1 401 /);
      const refused = await (await open()).closedWith();
      expect(refused).toMatch(/^HTTP\/1\.1 429 /);
      expect(refused).toContain('"code":"LIMIT_EXCEEDED"');
      expect(refused).toContain("limits.anonymousConnectionsPerAddress");
      // A credential on one of them frees its place; the connection goes on serving.
      expect(await idle[0]!.request("/v1/sessions", TOKENS.admin)).toMatch(/^HTTP\/1\.1 200 /);
      const next = await open();
      expect(await next.request("/healthz")).toMatch(/^HTTP\/1\.1 200 /);
      expect(await (await open()).closedWith()).toMatch(/^HTTP\/1\.1 429 /);
      // So does closing one.
      idle[1]!.socket.destroy();
      await waitFor(
        async () => {
          const c = await open();
          return (await c.request("/healthz").catch(() => "")).startsWith("HTTP/1.1 200 ");
        },
        5_000,
        "a place freed by the close",
      );
      expect(await idle[0]!.request("/v1/sessions", TOKENS.admin)).toMatch(/^HTTP\/1\.1 200 /);
      // (Loopback counts in this gateway: free the places before asking for the metrics over a new connection.)
      for (const c of sockets) c.socket.destroy();
      const metrics = await waitFor(
        async () => {
          const answer = await http(gw, "admin").get("/metrics");
          return answer.status === 200 ? answer.text : undefined;
        },
        5_000,
        "the metrics once the raw connections are gone",
      );
      expect(metrics).toMatch(/switchboard_connections_refused_total\{reason="anonymous_per_address"\} [2-9]/);
    } finally {
      for (const c of sockets) c.socket.destroy();
    }
  });

  it("closes a refused connection after REFUSED_LINGER_MS even when it keeps sending", async () => {
    const gw = await secGateway({
      config: { limits: { anonymousConnectionsPerAddress: 1 } },
      countLoopbackConnections: true,
    });
    const port = Number(new URL(gw.url).port);
    const idle = await RawConnection.open(port);
    // Half-open: it does not end its side when the gateway ends its own, and learns that the
    // gateway closed only when a write is reset.
    const refused = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    let answer = "";
    refused.on("data", (d: Buffer) => (answer += d.toString()));
    let closedAt = 0;
    refused.on("error", () => undefined);
    refused.once("close", () => (closedAt = performance.now()));
    try {
      const opened = performance.now();
      // A request whose headers come a byte every 200 ms: never quiet for as long as the linger.
      refused.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
      while (closedAt === 0 && performance.now() - opened < REFUSED_LINGER_MS + 5_000) {
        refused.write("a");
        await sleep(200);
      }
      expect(answer).toMatch(/^HTTP\/1\.1 429 /);
      expect(closedAt, "closed by the gateway").toBeGreaterThan(0);
      expect(closedAt - opened).toBeGreaterThan(REFUSED_LINGER_MS - 500);
      expect(closedAt - opened).toBeLessThan(REFUSED_LINGER_MS + 2_000);
    } finally {
      idle.socket.destroy();
      refused.destroy();
    }
  }, 20_000);

  it("slows down an address after repeated auth failures on every transport (429), then lets it in again", async () => {
    const clock = new ManualClock();
    const gw = await secGateway({ clock });
    const bad = "sec-wrong-token-1f2e3d4c5b6a79880716253443";
    for (let i = 0; i < AUTH_FAILURES_ALLOWED; i++) {
      const via = i % 3;
      if (via === 0)
        expect((await fetch(`${gw.url}/v1/sessions`, { headers: { authorization: `Bearer ${bad}` } })).status).toBe(
          401,
        );
      else if (via === 1)
        await expect(
          WsClient.open(gw, "/v1/ws", null, { protocols: [`switchboard.bearer.${bad}`] }),
        ).rejects.toMatchObject({ status: 401 });
      else expect((await http(gw, null).post("/v1/login", { token: bad })).status).toBe(401);
    }
    const slowed = await fetch(`${gw.url}/v1/sessions`, { headers: { authorization: `Bearer ${bad}` } });
    expect(slowed.status).toBe(ERROR_CODES.RATE_LIMITED.status);
    // When to try again, for clients that back off by it (it had no Retry-After).
    expect(slowed.headers.get("retry-after")).toBe("60");
    expect(((await slowed.json()) as { error: { code: string; retryAfterSeconds: number } }).error).toMatchObject({
      code: "RATE_LIMITED",
      retryAfterSeconds: 60,
    });
    clock.advance(30_000);
    expect(
      (await fetch(`${gw.url}/v1/sessions`, { headers: { authorization: `Bearer ${bad}` } })).headers.get(
        "retry-after",
      ),
    ).toBe("30");
    await expect(WsClient.open(gw, "/v1/ws", null, { protocols: [`switchboard.bearer.${bad}`] })).rejects.toMatchObject(
      { status: 429 },
    );
    const session = (await http(gw, "admin").post("/v1/sessions", { kind: "stream" })).json as { id: string };
    await expect(
      WsClient.open(gw, `/ws/session/${session.id}`, null, { protocols: [`switchboard.bearer.${bad}`] }),
    ).rejects.toMatchObject({ status: 429 });
    expect((await http(gw, null).post("/v1/login", { token: bad })).status).toBe(429);
    expect((await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${bad}` } })).status).toBe(429);
    // No credentials is no guess: answered 401 as always (a browser's sign-in page), not counted.
    expect((await fetch(`${gw.url}/metrics`)).status).toBe(401);
    // Valid credentials are never refused for their address (all local users share 127.0.0.1).
    expect((await http(gw, "admin").get("/v1/sessions")).status).toBe(200);
    (await WsClient.open(gw, "/v1/ws", "admin")).close();
    expect((await http(gw, null).post("/v1/login", { token: TOKENS.admin })).status).toBe(200);
    // Liveness stays open.
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    clock.advance(AUTH_FAILURE_WINDOW_MS + 1);
    expect((await fetch(`${gw.url}/v1/sessions`, { headers: { authorization: `Bearer ${bad}` } })).status).toBe(401);
    expect((await http(gw, "admin").get("/metrics")).text).toMatch(/switchboard_auth_failures_total \d+/);
  });

  it("answers bad tokens at /v1/login with 429 once the address is slowed down, and still lets a good one in", async () => {
    const gw = await secGateway();
    for (let i = 0; i < AUTH_FAILURES_ALLOWED; i++)
      await http(gw, null).post("/v1/login", { token: `sec-wrong-token-${i}-xxxxxxxxxxxx` });
    expect((await http(gw, null).post("/v1/login", { token: "sec-wrong-token-again-xxxxxxxx" })).status).toBe(429);
    expect((await http(gw, null).post("/v1/login", { token: TOKENS.admin })).status).toBe(200);
  });
});
