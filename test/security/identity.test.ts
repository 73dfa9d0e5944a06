/**
 * Identities from `auth.tokens`, roles and `sessions` globs, enforced on every
 * HTTP route, the SSE stream, every /v1/ws frame, the /ws/session upgrade and frames, and the list.
 * A session the caller may not see answers 404 exactly like one that does not exist.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import {
  MAX_COOKIES,
  MAX_COOKIES_PER_IDENTITY,
  TokenRegistry,
  canSee,
  canSteer,
  globMatch,
} from "../../src/server/identity/auth.js";
import type { Identity } from "../../src/server/identity/identity.js";
import { parseConfig } from "../../src/server/config/config.js";
import { UI_SESSIONS_FILE } from "../../src/server/gateway.js";
import {
  Mux,
  TOKENS,
  WsClient,
  authTokens,
  catPty,
  errorOf,
  changesOf,
  eventsOf,
  http,
  secGateway,
  sha256Hex,
  writeSecConfig,
} from "./helpers.js";
import type { Who } from "./helpers.js";
import { browserSignIn, createSession } from "../helpers/gateway.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

/** Every HTTP route that names a session, with a body that would be valid for it. */
const SESSION_ROUTES: ReadonlyArray<[method: string, suffix: string, body: unknown, kind: "read" | "steer"]> = [
  ["GET", "", undefined, "read"],
  ["GET", "/events", undefined, "read"],
  ["GET", "/output", undefined, "read"],
  ["GET", "/stream", undefined, "read"],
  ["POST", "/input", { data: "x" }, "steer"],
  ["POST", "/signal", { signal: "WINCH" }, "steer"],
  ["POST", "/resize", { cols: 100, rows: 30 }, "steer"],
  ["POST", "/control", { action: "acquire" }, "steer"],
  ["POST", "/events", { type: "note", data: 1 }, "steer"],
  ["POST", "/prompt", { text: "hi" }, "steer"],
  ["POST", "/abort", {}, "steer"],
  ["POST", "/permission", { requestId: "r", optionId: "o" }, "steer"],
  ["POST", "/elicitation", { requestId: "r", action: "decline" }, "steer"],
  ["DELETE", "", undefined, "steer"],
];

/** Every /v1/ws op that names a session, with valid fields. */
const SESSION_FRAMES: ReadonlyArray<[frame: Record<string, unknown>, kind: "read" | "steer"]> = [
  [{ op: "subscribe" }, "read"],
  [{ op: "input", data: "x" }, "steer"],
  [{ op: "signal", signal: "WINCH" }, "steer"],
  [{ op: "resize", cols: 100, rows: 30 }, "steer"],
  [{ op: "control", action: "acquire" }, "steer"],
  [{ op: "control", action: "acquire", force: true }, "steer"],
  [{ op: "prompt", text: "hi" }, "steer"],
  [{ op: "abort" }, "steer"],
  [{ op: "permission", requestId: "r", optionId: "o" }, "steer"],
  [{ op: "elicitation", requestId: "r", action: "decline" }, "steer"],
];

/** An HTTP call that reads only the status and first bytes (SSE streams do not end). */
async function statusOf(
  gw: Awaited<ReturnType<typeof secGateway>>,
  who: Who,
  method: string,
  path: string,
  body?: unknown,
) {
  const controller = new AbortController();
  const res = await fetch(gw.url + path, {
    method,
    signal: controller.signal,
    headers: {
      authorization: `Bearer ${TOKENS[who]}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if ((res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    controller.abort();
    return { status: res.status, json: undefined };
  }
  const text = await res.text();
  return {
    status: res.status,
    json:
      text && res.headers.get("content-type")?.startsWith("application/json")
        ? (JSON.parse(text) as { error?: { code: string; message: string } })
        : undefined,
  };
}

describe("identity and roles", () => {
  it("answers 404 SESSION_NOT_FOUND over every transport for another operator's session, like a missing one", async () => {
    const gw = await secGateway();
    const alices = await catPty(gw, "alice", "alice-private");
    const missing = "AAAAAAAAAAAAAAAAAAAAAA";
    for (const [method, suffix, body] of SESSION_ROUTES) {
      for (const id of [alices.id, missing]) {
        const r = await statusOf(gw, "bob", method, `/v1/sessions/${id}${suffix}`, body);
        expect(r.status, `bob ${method} ${suffix}`).toBe(404);
        expect(r.json?.error).toEqual({ code: "SESSION_NOT_FOUND", message: `no session ${id}` });
      }
    }
    const bob = await Mux.open(gw, "bob");
    for (const [frame] of SESSION_FRAMES) {
      for (const id of [alices.id, missing]) {
        const answer = await bob.request({ ...frame, session: id });
        expect(answer, `${String(frame["op"])} ${id}`).toMatchObject({
          op: "error",
          code: "SESSION_NOT_FOUND",
          session: id,
          message: `no session ${id}`,
        });
      }
    }
    for (const query of ["", "?since=0", "?control=acquire", "?control=force"]) {
      const refused = await WsClient.open(gw, `/ws/session/${alices.id}${query}`, "bob").catch((e: unknown) => e);
      expect(refused, query).toMatchObject({ status: 404 });
      expect(JSON.parse((refused as { body: string }).body)).toEqual({
        error: { code: "SESSION_NOT_FOUND", message: `no session ${alices.id}` },
      });
    }
    // Nothing bob tried reached alice's session.
    expect(await changesOf(gw, alices.id)).toEqual([]);
    expect((await http(gw, "admin").get(`/v1/sessions/${alices.id}`)).json).toMatchObject({
      state: "running",
      controller: null,
      viewers: 0,
    });
  });

  it("lets a viewer read but not steer: 403 FORBIDDEN over HTTP, /v1/ws frames and /ws/session", async () => {
    const gw = await secGateway();
    const s = await catPty(gw, "bob", "shared-build");
    await http(gw, "bob").post(`/v1/sessions/${s.id}/input`, { data: "hello\n" });
    for (const [method, suffix, body, kind] of SESSION_ROUTES) {
      const r = await statusOf(gw, "vera", method, `/v1/sessions/${s.id}${suffix}`, body);
      if (kind === "read") expect(r.status, `${method} ${suffix}`).toBe(200);
      else expect(r.json?.error?.code, `${method} ${suffix}`).toBe("FORBIDDEN");
      if (kind === "steer") expect(r.status).toBe(403);
    }
    const vera = await Mux.open(gw, "vera");
    for (const [frame, kind] of SESSION_FRAMES) {
      const answer = await vera.request({ ...frame, session: s.id });
      if (kind === "read") expect(answer).toMatchObject({ op: "subscribed", session: s.id });
      else expect(answer, String(frame["op"])).toMatchObject({ op: "error", code: "FORBIDDEN", session: s.id });
    }
    await vera.client.waitFor((f) => f["op"] === "event" || f["op"] === "events", "events for the viewer");

    const term = await WsClient.open(gw, `/ws/session/${s.id}?since=0`, "vera");
    await term.waitFor((f) => f["type"] === "connected", "connected");
    for (const frame of [
      { type: "stdin", data: "x" },
      { type: "signal", signal: "INT" },
      { type: "resize", cols: 90, rows: 20 },
    ]) {
      const from = term.frames.length;
      term.send(frame);
      expect(await term.waitFor((f) => f["type"] === "error", frame.type, from)).toMatchObject({ code: "FORBIDDEN" });
    }
    for (const control of ["acquire", "force"]) {
      await expect(WsClient.open(gw, `/ws/session/${s.id}?control=${control}`, "vera")).rejects.toMatchObject({
        status: 403,
      });
    }
    const create = await http(gw, "vera").post("/v1/sessions", { kind: "stream" });
    expect(errorOf(create)).toMatchObject({ status: 403, code: "FORBIDDEN" });

    const steering = (await changesOf(gw, s.id)).filter((e) =>
      ["input", "signal", "resize", "control", "custom"].includes(e.type),
    );
    expect(steering).toEqual([
      expect.objectContaining({ type: "input", by: expect.objectContaining({ name: "bob" }) }),
    ]);
    expect((await http(gw, "admin").get("/v1/sessions")).json.sessions).toHaveLength(1);
  });

  it("lists only the sessions each identity may see; the admin sees all", async () => {
    const gw = await secGateway();
    const a = await createSession(gw, { kind: "stream", name: "alice-notes" }, TOKENS.alice);
    const b = await createSession(gw, { kind: "stream", name: "shared-ci" }, TOKENS.bob);
    const m = await createSession(gw, { kind: "stream", name: "mallory-own" }, TOKENS.mallory);
    const x = await createSession(gw, { kind: "stream", name: "shared-admin" }, TOKENS.admin);
    const y = await createSession(gw, { kind: "stream" }, TOKENS.admin);
    const visible = async (who: Who) =>
      ((await http(gw, who).get("/v1/sessions")).json.sessions as Array<{ id: string; owner: string }>)
        .map((s) => s.id)
        .sort();
    expect(await visible("alice")).toEqual([a.id]);
    expect(await visible("bob")).toEqual([b.id]);
    expect(await visible("mallory")).toEqual([m.id]);
    expect(await visible("carol")).toEqual([b.id, x.id].sort());
    expect(await visible("vera")).toEqual([b.id, x.id].sort());
    expect(await visible("admin")).toEqual([a.id, b.id, m.id, x.id, y.id].sort());
    // Sessions record their owner.
    expect(a).toMatchObject({ owner: "alice" });
    expect(x).toMatchObject({ owner: "admin" });
  });

  it("grants steering through `sessions` globs, and the admin steers everything", async () => {
    const gw = await secGateway();
    const shared = await catPty(gw, "bob", "shared-deploy");
    const priv = await catPty(gw, "bob", "bob-private");
    // carol (operator, shared-*) steers bob's shared session, by name glob; not his private one.
    expect((await http(gw, "carol").post(`/v1/sessions/${shared.id}/input`, { data: "x" })).status).toBe(200);
    expect(errorOf(await http(gw, "carol").post(`/v1/sessions/${priv.id}/input`, { data: "x" })).code).toBe(
      "SESSION_NOT_FOUND",
    );
    for (const s of [shared, priv])
      expect((await http(gw, "admin").post(`/v1/sessions/${s.id}/resize`, { cols: 81, rows: 25 })).status).toBe(200);
    const admin = await Mux.open(gw, "admin");
    expect(await admin.request({ op: "input", session: priv.id, data: "y" })).toMatchObject({ op: "ack" });
    const del = await http(gw, "carol").del(`/v1/sessions/${shared.id}`);
    expect(del.json).toMatchObject({ state: "exited" });
  });

  it("matches globs against names, and an id only when written whole, with * and ? the only wildcards", () => {
    const record = { id: "Zk3q9VwYb2Xr8TnC4mLp1A", name: "a.b", owner: "bob", ownerId: "token:bob", createdAt: 1 };
    const viewer: Identity = {
      principal: "token:idfan",
      name: "idfan",
      role: "viewer",
      sessions: ["Zk3q9VwYb2Xr8TnC4mLp1A"],
      legacy: { owner: "idfan", since: 0 },
    };
    expect(canSee(viewer, record)).toBe(true);
    // Ids are random: a wildcard over them would grant sessions by chance (security audit).
    for (const glob of ["Zk3q9*", "Z*", "*A", "Zk3q9VwYb2Xr8TnC4mLp1?"])
      expect(canSee({ ...viewer, sessions: [glob] }, { ...record, name: null }), glob).toBe(false);
    expect(canSee({ ...viewer, sessions: ["*"] }, { ...record, name: null })).toBe(true);
    expect(canSteer(viewer, record)).toBe(false);
    expect(canSteer({ ...viewer, role: "operator" }, record)).toBe(true);
    expect(canSee({ ...viewer, sessions: ["a?b"] }, record)).toBe(true);
    expect(
      canSee({ ...viewer, sessions: ["a\\.b", "a+b", "(a).b", "[a].b", "a.b$", "^a.b"] }, { ...record, name: "axb" }),
    ).toBe(false);
    expect(canSee({ ...viewer, sessions: ["shared-*"] }, { ...record, name: null })).toBe(false);
    expect(canSee({ ...viewer, sessions: [] }, record)).toBe(false);
    // Owned by principal: the name alone is no owner.
    expect(canSee({ ...viewer, sessions: [] }, { ...record, owner: "idfan" })).toBe(false);
    expect(canSee({ ...viewer, sessions: [] }, { ...record, ownerId: "token:idfan" })).toBe(true);
    // Stored before principal ids (no ownerId): the owner name the identity claims.
    expect(canSee({ ...viewer, sessions: [] }, { ...record, owner: "idfan", ownerId: undefined })).toBe(true);
    expect(
      canSee({ ...viewer, sessions: [], legacy: undefined }, { ...record, owner: "idfan", ownerId: undefined }),
    ).toBe(false);
  });

  it("accepts tokenSha256 entries and never a configured hash as a token", async () => {
    const gw = await secGateway();
    expect((await http(gw, "carol").get("/v1/whoami")).json).toEqual({
      name: "carol",
      role: "operator",
      id: "token:carol",
    });
    const hashAsToken = await fetch(`${gw.url}/v1/whoami`, {
      headers: { authorization: `Bearer ${sha256Hex(TOKENS.carol)}` },
    });
    expect(hashAsToken.status).toBe(401);
    expect((await http(gw, "admin").get("/v1/whoami")).json).toEqual({
      name: "admin",
      role: "admin",
      id: "token:admin",
    });
    expect((await http(gw, "vera").get("/v1/whoami")).json).toEqual({ name: "vera", role: "viewer", id: "token:vera" });
    expect(errorOf(await http(gw, null).get("/v1/whoami"))).toMatchObject({ status: 401, code: "UNAUTHORIZED" });
  });

  it("authenticates every transport: bearer header, WebSocket subprotocol, login cookie", async () => {
    const gw = await secGateway();
    const s = await createSession(gw, { kind: "stream", name: "shared-auth" }, TOKENS.bob);
    // Subprotocol (non-browser clients that cannot set headers).
    const viaProtocol = await WsClient.open(gw, "/v1/ws", null, {
      protocols: ["switchboard.v1", `switchboard.bearer.${TOKENS.vera}`],
    });
    await viaProtocol.waitFor((f) => f["op"] === "hello", "hello");
    const term = await WsClient.open(gw, `/ws/session/${s.id}`, null, {
      protocols: ["switchboard.v1", `switchboard.bearer.${TOKENS.vera}`],
    });
    await term.waitFor((f) => f["type"] === "connected", "connected");
    // Cookie from /v1/login, with the key its answer gave (header, or subprotocol on WebSockets).
    const login = await browserSignIn(gw.url, TOKENS.vera);
    const { cookie } = login;
    const keyed = login.headers;
    expect((await http(gw, null).get("/v1/sessions", keyed)).json.sessions).toHaveLength(1);
    const viaCookie = await WsClient.open(gw, "/v1/ws", null, {
      headers: { cookie, origin: gw.url },
      protocols: ["switchboard.v1", `switchboard.cookie-key.${login.key}`],
    });
    await viaCookie.waitFor((f) => f["op"] === "hello", "hello");
    expect(viaCookie.ws.protocol).toBe("switchboard.v1");
    // Another scheme's Authorization is a proxy's in front (nginx auth_basic passes the browser's
    // on): the cookie counts. A Bearer without a token is still a bad one.
    const basic = { ...keyed, authorization: `Basic ${Buffer.from("ops:secret").toString("base64")}` };
    expect((await http(gw, null).get("/v1/sessions", basic)).json.sessions).toHaveLength(1);
    const behindBasic = await WsClient.open(gw, "/v1/ws", null, { headers: { ...basic, origin: gw.url } });
    await behindBasic.waitFor((f) => f["op"] === "hello", "hello");
    expect((await http(gw, null).get("/v1/sessions", { ...keyed, authorization: "Bearer" })).status).toBe(401);
    // A cookie does not make a viewer an operator.
    expect(errorOf(await http(gw, null).post(`/v1/sessions/${s.id}/events`, { type: "x" }, keyed)).code).toBe(
      "FORBIDDEN",
    );
    // Logout revokes it.
    await http(gw, null).post("/v1/logout", {}, keyed);
    expect((await http(gw, null).get("/v1/sessions", keyed)).status).toBe(401);
    // No credentials on WebSocket endpoints: 401 before the upgrade.
    await expect(WsClient.open(gw, "/v1/ws", null)).rejects.toMatchObject({ status: 401 });
    await expect(WsClient.open(gw, `/ws/session/${s.id}`, null)).rejects.toMatchObject({ status: 401 });
    await expect(
      WsClient.open(gw, "/v1/ws", null, { protocols: ["switchboard.bearer.not-a-valid-token-at-all"] }),
    ).rejects.toMatchObject({ status: 401 });
  });

  it("expires login cookies after their lifetime", async () => {
    const clock = new ManualClock();
    const gw = await secGateway({ clock });
    const { headers } = await browserSignIn(gw.url, TOKENS.alice);
    expect((await http(gw, null).get("/v1/whoami", headers)).status).toBe(200);
    // A jump, not advance(): a week of periodic timers run one by one (the fd monitor's, before it
    // ran on real time) held the event loop for seconds, on a loaded machine past the server's 5 s
    // keep-alive timeout, which then closed the connection the next request went out on (ECONNRESET).
    clock.jump(7 * 24 * 60 * 60 * 1000);
    expect((await http(gw, null).get("/v1/whoami", headers)).status).toBe(401);
  });

  // Regression (adversarial review): sign-ins are bounded (MAX_COOKIES) by dropping the oldest, of
  // whoever it was, and any valid token may log in as often as it likes: a viewer logging in in a
  // loop signed every other browser out, the admin's included. 10,000 logins take minutes (each
  // rewrites the sign-in file), so the file of a previous run holds the viewer's first 9,999.
  it("lets an identity that logs in in a loop end only its own oldest sign-ins, never another's", async () => {
    const adminCookie = "admin-browser-cookie-value-0123456789abcdefghij";
    const adminKey = "admin-browser-cookie-key-0123456789abcdefghijk";
    const expires = Date.now() + 24 * 60 * 60 * 1000;
    let file = "";
    const gw = await secGateway({
      beforeStart: (dataDir) => {
        file = join(dataDir, UI_SESSIONS_FILE);
        const saved = [
          { cookie: sha256Hex(adminCookie), token: sha256Hex(TOKENS.admin), key: sha256Hex(adminKey), expires },
        ];
        for (let i = 1; i < MAX_COOKIES; i++) {
          const key = sha256Hex(`vera-key-${i}`);
          saved.push({ cookie: sha256Hex(`vera-cookie-${i}`), token: sha256Hex(TOKENS.vera), key, expires });
        }
        writeFileSync(file, JSON.stringify(saved), { mode: 0o600 });
      },
    });
    const asAdmin = { cookie: `sb_session=${adminCookie}`, "x-switchboard-cookie-key": adminKey };
    expect((await http(gw, null).get("/v1/whoami", asAdmin)).json).toMatchObject({ name: "admin" });
    const vera = await browserSignIn(gw.url, TOKENS.vera);
    expect((await http(gw, null).get("/v1/whoami", vera.headers)).json).toMatchObject({ name: "vera" });
    expect((await http(gw, null).get("/v1/whoami", asAdmin)).json).toMatchObject({ name: "admin" });
    // Vera is down to her own maximum; the admin's sign-in is untouched.
    const saved = JSON.parse(readFileSync(file, "utf8")) as Array<{ token: string }>;
    expect(saved.filter((e) => e.token === sha256Hex(TOKENS.vera))).toHaveLength(MAX_COOKIES_PER_IDENTITY);
    expect(saved.filter((e) => e.token === sha256Hex(TOKENS.admin))).toHaveLength(1);
  });

  it("keeps a viewer's subscription from leaking sessions it cannot see", async () => {
    const gw = await secGateway();
    const hidden = await createSession(gw, { kind: "stream", name: "alice-secret" }, TOKENS.alice);
    const shared = await createSession(gw, { kind: "stream", name: "shared-feed" }, TOKENS.bob);
    const vera = await Mux.open(gw, "vera");
    await vera.request({ op: "subscribe", session: shared.id });
    await http(gw, "alice").post(`/v1/sessions/${hidden.id}/events`, {
      type: "output",
      data: { data: "secret-payload" },
    });
    await http(gw, "bob").post(`/v1/sessions/${shared.id}/events`, {
      type: "output",
      data: { data: "public-payload" },
    });
    await vera.client.waitFor((f) => JSON.stringify(f).includes("public-payload"), "shared output");
    await sleep(50);
    const seen = JSON.stringify(vera.frames);
    expect(seen).not.toContain("secret-payload");
    expect(seen).not.toContain(hidden.id);
  });
});

describe("identity on agent and plugin routes", () => {
  it("keeps viewers and other operators off agent sessions and inbound messages", async () => {
    const gw = await secGateway();
    const mine = await createSession(gw, { kind: "agent", agent: "echo", name: "alice-agent" }, TOKENS.alice);
    const shared = await createSession(gw, { kind: "agent", agent: "echo", name: "shared-agent" }, TOKENS.alice);
    for (const [route, body] of [
      ["prompt", { text: "hi" }],
      ["abort", {}],
      ["permission", { requestId: "r", optionId: "o" }],
      ["elicitation", { requestId: "r", action: "decline" }],
    ] as const) {
      expect(
        errorOf(await http(gw, "bob").post(`/v1/sessions/${mine.id}/${route}`, body)),
        `bob ${route}`,
      ).toMatchObject({ status: 404, code: "SESSION_NOT_FOUND" });
      expect(
        errorOf(await http(gw, "vera").post(`/v1/sessions/${shared.id}/${route}`, body)),
        `vera ${route}`,
      ).toMatchObject({ status: 403, code: "FORBIDDEN" });
    }
    const vera = await Mux.open(gw, "vera");
    expect(await vera.request({ op: "prompt", session: shared.id, text: "hi" })).toMatchObject({ code: "FORBIDDEN" });
    expect(errorOf(await http(gw, "vera").post("/v1/sessions", { kind: "agent", agent: "echo" }))).toMatchObject({
      status: 403,
      code: "FORBIDDEN",
    });
    expect(errorOf(await http(gw, "vera").post("/v1/messages", { channel: "webhook", text: "hi" }))).toMatchObject({
      status: 403,
      code: "FORBIDDEN",
    });
    for (const id of [mine.id, shared.id])
      expect((await eventsOf(gw, id)).filter((e) => e.type === "run.queued")).toEqual([]);
  });

  /** A gateway with the header-echo plugin running: its HTTP hook answers with the headers it got. */
  async function headerEchoGateway(): ReturnType<typeof secGateway> {
    const path = fileURLToPath(new URL("./fixtures/header-echo", import.meta.url));
    const gw = await secGateway({ config: { plugins: { entries: { echo: { path } } } } });
    await waitFor(
      async () => (await http(gw, "admin").get("/v1/plugins")).json.plugins?.[0]?.state === "running",
      10_000,
      "plugin running",
    );
    return gw;
  }

  // A plugin is sandboxed and less trusted than the gateway: it must never see the caller's
  // token or cookie (src/plugins/host.ts strips credential headers before the hook runs).
  it("does not hand the caller's credentials to a plugin's HTTP hook", async () => {
    const gw = await headerEchoGateway();
    const r = await http(gw, "alice").post(
      "/v1/plugins/echo/http/hook",
      { x: 1 },
      { cookie: "sb_session=cookie-secret-value", "x-switchboard-cookie-key": "cookie-key-secret-value" },
    );
    expect(r.status).toBe(200);
    expect(r.json.headers["content-type"]).toBe("application/json");
    expect(JSON.stringify(r.json)).not.toContain(TOKENS.alice);
    expect(JSON.stringify(r.json)).not.toContain("cookie-secret-value");
    expect(JSON.stringify(r.json)).not.toContain("cookie-key-secret-value");
  });

  // Regression: the gateway takes a token from Sec-WebSocket-Protocol (switchboard.bearer.<token>)
  // on any request, and a POST to a hook authenticated that way handed the token to the plugin.
  it("does not hand a token sent as a WebSocket subprotocol to a plugin's HTTP hook", async () => {
    const gw = await headerEchoGateway();
    const r = await http(gw, null).post(
      "/v1/plugins/echo/http/hook",
      { x: 1 },
      { "sec-websocket-protocol": `switchboard.v1, switchboard.bearer.${TOKENS.alice}` },
    );
    expect(r.status).toBe(200);
    expect(r.json.headers["content-type"]).toBe("application/json");
    expect(r.json.headers).not.toHaveProperty("sec-websocket-protocol");
    expect(JSON.stringify(r.json)).not.toContain(TOKENS.alice);
  });
});

describe("token configuration", () => {
  const entry = (name: string, role: "admin" | "operator" | "viewer", token: string) => ({ name, role, token });

  it("refuses duplicate token names and duplicate tokens in auth.tokens", () => {
    expect(() =>
      parseConfig({ auth: { tokens: [entry("x", "viewer", TOKENS.alice), entry("x", "operator", TOKENS.bob)] } }),
    ).toThrow(/auth\.tokens.*name x/);
    const sameToken = parseConfig({
      auth: { tokens: [entry("x", "viewer", TOKENS.alice), entry("y", "operator", TOKENS.alice)] },
    });
    expect(() => new TokenRegistry(sameToken.auth.tokens, TOKENS.admin)).toThrow(/same token/);
    const sameAsHash = parseConfig({
      auth: {
        tokens: [
          entry("x", "viewer", TOKENS.alice),
          { name: "y", role: "operator", tokenSha256: sha256Hex(TOKENS.alice) },
        ],
      },
    });
    expect(() => new TokenRegistry(sameAsHash.auth.tokens, TOKENS.admin)).toThrow(/same token/);
  });

  // Exploratory test (new user): the README's placeholder token had "…" in it; the config took it,
  // and no HTTP client could then send it (401, or fetch refusing to), only the UI's sign-in.
  it("refuses a configured token that cannot travel in an HTTP header, saying which character", () => {
    expect(() => parseConfig({ auth: { tokens: [entry("ci", "operator", "…at least 16 characters…")] } })).toThrow(
      "it has U+2026 at character 1: a token travels in an HTTP header, so it may hold printable ASCII only (no spaces)",
    );
    expect(() => parseConfig({ auth: { tokens: [entry("ci", "operator", "with a space in it, long")] } })).toThrow(
      /it has a space at character 5/,
    );
    expect(parseConfig({ auth: { tokens: [entry("ci", "operator", TOKENS.bob)] } }).auth.tokens).toHaveLength(1);
  });

  it("refuses sessions globs on an admin, which they would not narrow (exploratory test: accepted and ignored)", () => {
    expect(() =>
      parseConfig({ auth: { tokens: [{ ...entry("scoped", "admin", TOKENS.alice), sessions: ["ci-*"] }] } }),
    ).toThrow(/sessions globs do not narrow an admin.*use role operator/);
    // `*` says what an admin sees anyway: allowed, as is a scoped operator.
    expect(
      parseConfig({ auth: { tokens: [{ ...entry("all", "admin", TOKENS.alice), sessions: ["*"] }] } }).auth.tokens,
    ).toHaveLength(1);
    expect(
      parseConfig({ auth: { tokens: [{ ...entry("ci", "operator", TOKENS.bob), sessions: ["ci-*"] }] } }).auth.tokens,
    ).toHaveLength(1);
  });

  it("reserves the admin token's name, so a configured token cannot pose as the owner of admin sessions", () => {
    const posing = parseConfig({ auth: { tokens: [entry("admin", "viewer", TOKENS.vera)] } });
    expect(() => new TokenRegistry(posing.auth.tokens, TOKENS.admin)).toThrow(/admin.*reserved/);
    const reuseAdmin = parseConfig({ auth: { tokens: [entry("ops", "operator", TOKENS.admin)] } });
    // Found by a reliability pass: it said "admin and ops use the same token", naming neither
    // where the first came from nor what to do.
    expect(() => new TokenRegistry(reuseAdmin.auth.tokens, TOKENS.admin)).toThrow(
      "the gateway's admin token (--token, SWITCHBOARD_TOKEN or the data directory's token file) is also the token of ops in auth.tokens; give ops another token, or start the gateway with another admin token",
    );
    // The configured admin given again as the gateway's token (a shell exporting
    // SWITCHBOARD_TOKEN for the CLI restarts serve): the same identity, taken once. It was
    // refused: "admin and admin use the same token".
    const sameAdmin = parseConfig({ auth: { tokens: [entry("admin", "admin", TOKENS.admin)] } });
    const registry = new TokenRegistry(sameAdmin.auth.tokens, TOKENS.admin);
    expect(registry.verify(TOKENS.admin)).toMatchObject({ name: "admin", role: "admin" });
    // Without a gateway token the name is free, and an admin may carry it.
    expect(new TokenRegistry(posing.auth.tokens, undefined).verify(TOKENS.vera)).toMatchObject({
      name: "admin",
      role: "viewer",
    });
    const admin = parseConfig({ auth: { tokens: [entry("admin", "admin", TOKENS.alice)] } });
    expect(new TokenRegistry(admin.auth.tokens, TOKENS.admin).verify(TOKENS.alice)).toMatchObject({
      name: "admin",
      role: "admin",
    });
  });

  it("matches globs in linear time (no regex backtracking on hostile names)", () => {
    const pattern = `${"*a".repeat(40)}*b`;
    const value = "a".repeat(200);
    const started = performance.now();
    expect(globMatch(pattern, value)).toBe(false);
    expect(performance.now() - started).toBeLessThan(50);
    expect(globMatch("a*b?d", "aXXbcd")).toBe(true);
    expect(globMatch("a*b?d", "aXXbd")).toBe(false);
    expect(globMatch("*", "")).toBe(true);
    expect(globMatch("", "")).toBe(true);
    expect(globMatch("a.c", "abc")).toBe(false);
  });
});

describe("revocation", () => {
  // Regression (adversarial review): a config reload applied new tokens to new requests only, and
  // WebSocket and SSE connections kept the identity they opened with for as long as they stayed
  // up (the gateway's own pings keep them up): removing a leaked token from the config, or making
  // an operator a viewer, did not stop an open /v1/ws connection from reading and steering.
  it("closes the streaming connections of a token that a reload removed or changed, and keeps the others", async () => {
    const gw = await secGateway({ configFile: true });
    const pty = await catPty(gw, "bob");
    const bobMux = await Mux.open(gw, "bob");
    expect(await bobMux.request({ op: "subscribe", session: pty.id })).toMatchObject({ op: "subscribed" });
    const bobTerminal = await WsClient.open(gw, `/ws/session/${pty.id}`, "bob");
    await bobTerminal.waitFor((f) => f["type"] === "connected", "connected");
    const sse = new AbortController();
    onTestFinished(() => sse.abort());
    const stream = await fetch(`${gw.url}/v1/sessions/${pty.id}/stream`, {
      headers: { authorization: `Bearer ${TOKENS.bob}` },
      signal: sse.signal,
    });
    expect(stream.status).toBe(200);
    const sseEnded = (async () => {
      const reader = stream.body!.getReader();
      while (!(await reader.read()).done);
      return "ended";
    })().catch(() => "aborted");
    // bob holds the session's control over HTTP (by token name, not by connection); alice holds her own's.
    expect((await http(gw, "bob").post(`/v1/sessions/${pty.id}/control`, { action: "acquire" })).json).toMatchObject({
      controller: "bob",
    });
    const alices = await catPty(gw, "alice");
    expect(
      (await http(gw, "alice").post(`/v1/sessions/${alices.id}/control`, { action: "acquire" })).json,
    ).toMatchObject({ controller: "alice" });
    const malloryMux = await Mux.open(gw, "mallory");
    const aliceMux = await Mux.open(gw, "alice");
    // A browser signed in with a cookie, for an unchanged token.
    const vera = await browserSignIn(gw.url, TOKENS.vera);
    const veraMux = await Mux.open(gw, null, { headers: vera.headers });

    // bob's token is removed, mallory becomes a viewer; alice (and the rest) are unchanged.
    writeSecConfig(
      gw,
      authTokens()!
        .filter((t) => t.name !== "bob")
        .map((t) => (t.name === "mallory" ? { ...t, role: "viewer" as const } : t)),
    );
    expect(gw.reload()).toMatchObject({ ok: true });

    const closed = (client: WsClient) => Promise.race([client.closed, sleep(3000).then(() => "still open")]);
    for (const client of [bobMux.client, malloryMux.client]) {
      expect(await closed(client)).toMatchObject({ code: 1008 });
      expect(client.frames.at(-1)).toMatchObject({ op: "error", code: "UNAUTHORIZED" });
    }
    expect(await closed(bobTerminal)).toMatchObject({ code: 1008 });
    expect(bobTerminal.frames.at(-1)).toMatchObject({ type: "error", code: "UNAUTHORIZED" });
    expect(await Promise.race([sseEnded, sleep(3000).then(() => "still open")])).toBe("ended");
    // Nothing bob sent after the reload could reach the session: his connections are gone.
    expect((await changesOf(gw, pty.id)).filter((e) => e.type === "input")).toEqual([]);
    expect((await http(gw, "bob").get("/v1/sessions")).status).toBe(401);
    // bob's HTTP lease went with his token (recorded as a disconnect); alice's stays.
    expect((await http(gw, "admin").get(`/v1/sessions/${pty.id}`)).json).toMatchObject({ controller: null });
    expect((await changesOf(gw, pty.id)).filter((e) => e.type === "control").at(-1)).toMatchObject({
      action: "disconnected",
      holder: null,
      previous: expect.objectContaining({ name: "bob" }),
    });
    expect((await http(gw, "admin").get(`/v1/sessions/${alices.id}`)).json).toMatchObject({ controller: "alice" });
    // alice's and vera's connections go on.
    for (const mux of [aliceMux, veraMux]) {
      const from = mux.frames.length;
      mux.client.send({ op: "ping", t: 7 });
      await mux.client.waitFor((f) => f["op"] === "pong" && f["t"] === 7, "pong", from);
      expect(mux.client.closeCode).toBeUndefined();
    }
  });
});
