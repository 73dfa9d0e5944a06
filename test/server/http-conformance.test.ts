/**
 * Conformance of the HTTP edges with docs/protocol.md ("Authentication and the edges", "HTTP
 * routes"): methods (HEAD, 405 with Allow), content types, query parameters given twice or
 * empty, request targets that start with `//`, and HEAD on the SSE stream. Each case was found
 * answering otherwise by a conformance pass against a running gateway.
 */
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import type { Gateway } from "../../src/server/gateway.js";
import { TOKENS, UpgradeRefused, WsClient, errorOf, http, secGateway } from "../security/helpers.js";
import { createSession } from "../helpers/gateway.js";

/** Writes `requests` on one keep-alive connection and collects what comes back for `ms`. */
function rawExchange(gw: Gateway, requests: string[], ms = 1000): Promise<string> {
  const { hostname, port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let text = "";
    socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
    socket.on("error", reject);
    socket.on("connect", () => socket.write(requests.join("")));
    setTimeout(() => {
      socket.destroy();
      resolve(text);
    }, ms);
  });
}

const request = (method: string, path: string) =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKENS.admin}\r\n\r\n`;

describe("HTTP conformance", () => {
  it("answers HEAD on an SSE stream with its headers and ends it, so the connection goes on", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "stream" }, TOKENS.admin);
    // Before: HEAD opened a live stream that never ended (a HEAD answer has no body), holding a
    // viewer and the keep-alive connection: the request after it was never answered.
    const text = await rawExchange(gw, [request("HEAD", `/v1/sessions/${s.id}/stream`), request("GET", "/v1/whoami")]);
    const statuses = text.match(/^HTTP\/1\.1 \d+/gm) ?? [];
    expect(statuses).toEqual(["HTTP/1.1 200", "HTTP/1.1 200"]);
    expect(text).toMatch(/content-type: text\/event-stream/i);
    expect(text).toContain('{"name":"admin","role":"admin","id":"token:admin"}');
    expect(text).not.toContain("retry:");
    expect((await http(gw, "admin").get(`/v1/sessions/${s.id}`)).json.viewers).toBe(0);
  });

  it("answers HEAD on streamed pages (output, events) with their headers alone, so the connection goes on", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "stream" }, TOKENS.admin);
    const log = gw.core.sessions.get(s.id)!.log;
    // Pages longer than one read: streamed a read per step, not sent at once.
    for (let i = 0; i < 8; i++) log.appendOutput("stdout", "x".repeat(100_000));
    await gw.core.sessions.get(s.id)!.log.whenPublished();
    const text = await rawExchange(gw, [
      request("HEAD", `/v1/sessions/${s.id}/output`),
      request("HEAD", `/v1/sessions/${s.id}/events`),
      request("GET", "/v1/whoami"),
    ]);
    expect(text.match(/^HTTP\/1\.1 \d+/gm) ?? []).toEqual(["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200"]);
    expect(text).toMatch(/content-length: 800000/i);
    expect(text).toMatch(/x-switchboard-next-offset: 800000/i);
    expect(text).not.toContain("xxxx");
    expect(text).toContain('{"name":"admin","role":"admin","id":"token:admin"}');
  });

  it("lists HEAD in Allow wherever GET is, and answers only GET and HEAD on /healthz", async () => {
    const gw = await secGateway();
    const put = await http(gw, "admin").call("PUT", "/v1/sessions");
    expect(errorOf(put)).toMatchObject({ status: 405, code: "METHOD_NOT_ALLOWED" });
    expect(put.headers.get("allow")).toBe("POST, GET, HEAD");
    const input = await http(gw, "admin").call("GET", "/v1/sessions/x/input");
    expect(input.headers.get("allow")).toBe("POST");
    // Before: every method answered 200 {ok: true}.
    for (const method of ["POST", "PUT", "DELETE"]) {
      const r = await http(gw, null).call(method, "/healthz");
      expect(errorOf(r), method).toMatchObject({ status: 405, code: "METHOD_NOT_ALLOWED" });
      expect(r.headers.get("allow"), method).toBe("GET, HEAD");
    }
    expect((await http(gw, null).call("HEAD", "/healthz")).status).toBe(200);
    expect((await http(gw, null).get("/healthz")).json).toEqual({ ok: true });
  });

  it("takes application/json only, and no charset but UTF-8", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "stream" }, TOKENS.admin);
    const append = (type: string) =>
      http(gw, "admin").call("POST", `/v1/sessions/${s.id}/events`, '{"type":"note","data":1}', {
        "content-type": type,
      });
    // Before: any type starting with `application/json` and a word boundary passed, and a
    // declared Latin-1 body was decoded as UTF-8.
    for (const type of ["application/json-patch+json", "application/jsonl", "application/json; charset=latin1"]) {
      expect(errorOf(await append(type)), type).toMatchObject({ status: 415, code: "UNSUPPORTED_MEDIA_TYPE" });
    }
    for (const type of ["application/json", 'Application/JSON; Charset="UTF-8"', "application/json;charset=utf-8"]) {
      expect((await append(type)).status, type).toBe(200);
    }
    expect((await http(gw, "admin").get(`/v1/sessions/${s.id}/events`)).json.head).toBe(3);
  });

  // Found by a client author: `curl -X POST …/abort` (all of its fields are optional) was refused
  // 415, and with the JSON type but no body 400 "the body is empty".
  it("takes a POST without a body as {} where every field is optional (abort), and only there", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "agent", agent: "echo" }, TOKENS.admin);
    const bare = (path: string, headers = "") =>
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKENS.admin}\r\n${headers}\r\n`;
    const text = await rawExchange(gw, [
      bare(`/v1/sessions/${s.id}/abort`),
      bare(`/v1/sessions/${s.id}/abort`, "Content-Type: application/json\r\nContent-Length: 0\r\n"),
      bare(`/v1/sessions/${s.id}/signal`),
    ]);
    // (No run is active: what the abort itself answers, once its body was taken.)
    expect(text.match(/HTTP\/1\.1 \d+/g)).toEqual(["HTTP/1.1 409", "HTTP/1.1 409", "HTTP/1.1 415"]);
    expect(text.match(/"code":"\w+"/g)).toEqual([
      '"code":"RUN_NOT_ACTIVE"',
      '"code":"RUN_NOT_ACTIVE"',
      '"code":"UNSUPPORTED_MEDIA_TYPE"',
    ]);
    // A body still needs its type.
    const typeless = await http(gw, "admin").call("POST", `/v1/sessions/${s.id}/abort`, '{"all":true}', {
      "content-type": "text/plain",
    });
    expect(errorOf(typeless)).toMatchObject({ status: 415, code: "UNSUPPORTED_MEDIA_TYPE" });
  });

  it("says what a WebSocket endpoint is to a plain GET (it said 'no route GET /v1/ws')", async () => {
    const gw = await secGateway();
    for (const path of ["/v1/ws", "/ws/session/abc"]) {
      expect(errorOf(await http(gw, "admin").get(path)), path).toEqual({
        status: 400,
        code: "BAD_REQUEST",
        message: `${path} is a WebSocket endpoint: open it with a WebSocket client (a GET with Upgrade: websocket), see docs/protocol.md`,
      });
    }
  });

  // Found by a client author: zod's words ("(root): Unrecognized key: \"bogus\"", "Invalid option:
  // expected one of \"a\"|\"b\"") read like an error inside the gateway.
  it("names unknown fields and the allowed values in its own words", async () => {
    const gw = await secGateway();
    const admin = http(gw, "admin");
    expect(errorOf(await admin.post("/v1/sessions", { command: ["true"], bogus: 1, other: 2 }))).toEqual({
      status: 400,
      code: "VALIDATION_FAILED",
      message: 'unknown fields "bogus", "other"',
    });
    const s = await createSession(gw, { kind: "stream" }, TOKENS.admin);
    expect(
      errorOf(await admin.post(`/v1/sessions/${s.id}/events`, { type: "exit", data: { exitCode: 0, extra: 1 } })),
    ).toMatchObject({
      message: 'data: unknown field "extra"',
    });
    expect(errorOf(await admin.post(`/v1/sessions/${s.id}/control`, { action: "grab" }))).toMatchObject({
      message: 'action: must be one of "acquire", "release"',
    });
  });

  it("refuses a query parameter given twice with BAD_REQUEST naming it, on every route and upgrade", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "stream" }, TOKENS.admin);
    const admin = http(gw, "admin");
    await admin.post(`/v1/sessions/${s.id}/events`, [
      { type: "output", data: { data: "hi" } },
      { type: "note", data: 1 },
    ]);
    // Before: the first value counted and the second was dropped silently (types=output&types=custom
    // filtered on output only).
    for (const [path, name] of [
      [`/v1/sessions/${s.id}/events?types=output&types=custom`, "types"],
      [`/v1/sessions/${s.id}/events?since=1&since=0`, "since"],
      [`/v1/sessions/${s.id}/events?limit=1&limit=2`, "limit"],
      [`/v1/sessions/${s.id}/output?max=1&max=2`, "max"],
      [`/v1/sessions/${s.id}/stream?since=0&since=1`, "since"],
      ["/v1/sessions?limit=1&limit=2", "limit"],
      ["/v1/sessions?state=running&state=exited", "state"],
    ] as const) {
      const r = await admin.get(path);
      expect(errorOf(r), path).toMatchObject({ status: 400, code: "BAD_REQUEST" });
      expect(errorOf(r).message, path).toContain(`${name} is given 2 times`);
    }
    const del = await admin.call("DELETE", `/v1/sessions/${s.id}?purge=true&purge=false`);
    expect(errorOf(del)).toMatchObject({ status: 400, code: "BAD_REQUEST" });
    expect((await admin.get(`/v1/sessions/${s.id}`)).status).toBe(200);
    const refused = await WsClient.open(gw, `/ws/session/${s.id}?output=json&output=binary`, "admin").catch(
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(UpgradeRefused);
    expect((refused as UpgradeRefused).status).toBe(400);
    expect((refused as UpgradeRefused).body).toContain("output is given 2 times");
    // Unknown parameters are ignored (a cache buster, a newer client's option).
    expect((await admin.get(`/v1/sessions/${s.id}/events?_=1&_=2`)).json.head).toBe(2);
  });

  it("takes an empty query parameter on /ws/session as absent, as HTTP routes do", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "stream" }, TOKENS.admin);
    // Before: `since=` answered 400 "since must be a byte offset", `control=` 400.
    const ws = await WsClient.open(gw, `/ws/session/${s.id}?since=&control=&output=`, "admin");
    const connected = await ws.waitFor((f) => f["type"] === "connected", "connected");
    expect(connected).toMatchObject({ type: "connected", offset: 0 });
    expect(ws.frames.some((f) => f["type"] === "replay" || f["type"] === "error")).toBe(false);
  });

  it("routes a request target that starts with // as a path", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "stream" }, TOKENS.admin);
    // Before: `//v1/...` was parsed as a scheme-relative URL with host `v1`: 404 "no route GET //sessions/…".
    const text = await rawExchange(gw, [request("GET", `//v1/sessions/${s.id}`)], 500);
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toContain(`"id":"${s.id}"`);
  });

  it("names Last-Event-ID, not since, when it is past the head", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "stream" }, TOKENS.admin);
    const r = await http(gw, "admin").get(`/v1/sessions/${s.id}/stream`, { "last-event-id": "5" });
    expect(errorOf(r)).toMatchObject({ status: 400, code: "BAD_REQUEST" });
    expect(errorOf(r).message).toBe("Last-Event-ID 5 is past the head (0) of this session");
    expect(r.json.error).toMatchObject({ head: 0, first: 1 });
  });

  it("names the login body's own limit, not limits.bodyBytes", async () => {
    const gw = await secGateway();
    const r = await http(gw, null).post("/v1/login", { token: "x".repeat(5000) });
    expect(errorOf(r)).toMatchObject({ status: 413, code: "PAYLOAD_TOO_LARGE" });
    expect(errorOf(r).message).not.toContain("limits.bodyBytes");
  });
});
