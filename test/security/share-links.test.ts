/**
 * Share links: a link opens exactly one session, read-only unless it may ask for control; every
 * other route and session answers 403; it expires, is revocable (its connections close within
 * 1 s on every transport), persists hashed across restarts, and what it does is attributed to it.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import type { GatewayCore } from "../../src/server/context.js";
import type { Gateway } from "../../src/server/gateway.js";
import { SHARE_CONTROL_ROUTES, SHARE_READ_ROUTES } from "../../src/server/identity/share-access.js";
import { SHARES_FILE } from "../../src/server/identity/share-links.js";
import { Router } from "../../src/server/http/router.js";
import { registerRoutes } from "../../src/server/routes/index.js";
import { api, browserSignIn, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { Mux, UpgradeRefused, WsClient, catPty, eventsOf, http, secGateway } from "./helpers.js";
import type { Defer, Who } from "./helpers.js";

/** Time a revoked link's connections may stay open (the promise). */
const REVOKE_WITHIN_MS = 1000;

const cleanups: Array<() => unknown> = [];
const defer: Defer = (fn) => cleanups.push(fn);
afterAll(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

let gw: Gateway;
let own: string;
let other: string;

beforeAll(async () => {
  gw = await secGateway({ defer });
  own = (await catPty(gw, "alice", "shared-demo")).id;
  other = (await catPty(gw, "alice", "private")).id;
});

interface Made {
  id: string;
  url: string;
  token: string;
  expiresAt: number;
  share: Record<string, unknown>;
}

async function share(session: string, body: Record<string, unknown> = {}, who: Who = "alice") {
  const r = await http(gw, who).post(`/v1/sessions/${session}/shares`, body);
  expect(r.status, r.text).toBe(201);
  return r.json as Made;
}

/** Every registered route as `METHOD PATH`, with a concrete path: the walk covers a new route by itself. */
function everyRoute(): Array<{ route: string; method: string; path: (id: string) => string }> {
  const router = new Router();
  registerRoutes(router, {} as GatewayCore);
  return router.list().map(({ method, path }) => ({
    route: `${method} ${path}`,
    method,
    path: (id: string) =>
      path
        .replace(":id", encodeURIComponent(id))
        .replace(/:[a-zA-Z]+/g, "x1")
        .replace(/\*$/, "x1"),
  }));
}

/** The routes that refuse `token` as a share link (403 from the share guard), calling each on `session`. */
async function refusedRoutes(token: string, session: string, only = (_route: string) => true): Promise<Set<string>> {
  const refused = new Set<string>();
  for (const { route, method, path } of everyRoute().filter((r) => only(r.route))) {
    const hasBody = method !== "GET" && method !== "DELETE";
    const res = await fetch(gw.url + path(session), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(hasBody ? { "content-type": "application/json" } : {}) },
      ...(hasBody ? { body: "{}" } : {}),
    });
    // An allowed stream (SSE, a transcript) is not read: its status is the answer.
    if (res.status !== 403) {
      await res.body?.cancel();
      expect(res.status, route).not.toBe(500);
      continue;
    }
    const body = (await res.json()) as { error?: { message?: string } };
    if (/a share link opens/.test(String(body.error?.message))) refused.add(route);
  }
  return refused;
}

describe("share links", () => {
  it("answers {id, url, token, expiresAt} and lists links without their secret", async () => {
    const before = Date.now();
    const made = await share(own, { name: "teammate" });
    expect(made.url).toBe(`${gw.url}/#token=${made.token}`);
    expect(made.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(made.expiresAt - before).toBeGreaterThanOrEqual(24 * 3600_000 - 5000);
    expect(made.expiresAt - before).toBeLessThanOrEqual(24 * 3600_000 + 5000);
    const listed = await http(gw, "alice").get(`/v1/sessions/${own}/shares`);
    expect(listed.status).toBe(200);
    expect(listed.json.shares).toContainEqual(
      expect.objectContaining({ id: made.id, name: "teammate", identity: "share:teammate", allowControl: false }),
    );
    expect(listed.text).not.toContain(made.token);
    const me = (await api(gw.url, made.token).get("/v1/whoami")).json;
    expect(me).toMatchObject({ name: "share:teammate", role: "viewer", id: `share:${made.id}` });
    expect(me.share).toMatchObject({ session: own, allowControl: false });
  });

  it("reads its one session and is refused every other route (walked from the router) and session", async () => {
    const { token } = await share(own, { name: "walker" });
    const all = everyRoute().map((r) => r.route);
    const expected = new Set(all.filter((r) => !SHARE_READ_ROUTES.has(r)));
    expect(await refusedRoutes(token, own)).toEqual(expected);
    // On another session every route naming a session is refused, existing or not, with the same answer.
    const naming = (route: string) => route.includes(":id");
    const onOther = await refusedRoutes(token, other, naming);
    const onMissing = await refusedRoutes(token, "no-such-session", naming);
    for (const route of all.filter(naming)) {
      expect(onOther.has(route), route).toBe(true);
      expect(onMissing.has(route), route).toBe(true);
    }
    const link = api(gw.url, token);
    expect((await link.get(`/v1/sessions/${own}`)).json.id).toBe(own);
    expect((await link.get("/v1/sessions")).json.sessions.map((s: { id: string }) => s.id)).toEqual([own]);
    // A control link may call the steering routes on top, and nothing else.
    const control = await share(own, { name: "walker-control", allowControl: true });
    const steering = await refusedRoutes(control.token, own);
    expect(steering).toEqual(new Set(all.filter((r) => !SHARE_READ_ROUTES.has(r) && !SHARE_CONTROL_ROUTES.has(r))));
    expect(steering.has("POST /v1/sessions/:id/shares")).toBe(true);
    // Over WebSocket: another session is not found, and a terminal socket to it is refused.
    const mux = await Mux.open(gw, null, { headers: { authorization: `Bearer ${token}` }, defer });
    expect((await mux.request({ op: "subscribe", session: other })).code).toBe("SESSION_NOT_FOUND");
    expect((await mux.request({ op: "subscribe", session: own })).op).toBe("subscribed");
    expect((await mux.request({ op: "input", session: own, data: "x" })).code).toBe("FORBIDDEN");
    await expect(
      WsClient.open(gw, `/ws/session/${other}`, null, { headers: { authorization: `Bearer ${token}` }, defer }),
    ).rejects.toThrow(UpgradeRefused);
  });

  it("lets admins and the session's operators share, never its viewers nor a link", async () => {
    const shared = (await catPty(gw, "alice", "shared-ops")).id;
    expect((await http(gw, "admin").post(`/v1/sessions/${shared}/shares`, {})).status).toBe(201);
    expect((await http(gw, "carol").post(`/v1/sessions/${shared}/shares`, {})).status).toBe(201);
    expect((await http(gw, "vera").post(`/v1/sessions/${shared}/shares`, {})).json.error.code).toBe("FORBIDDEN");
    // bob cannot see alice's session: not found, as for any session he cannot see.
    expect((await http(gw, "bob").post(`/v1/sessions/${shared}/shares`, {})).json.error.code).toBe("SESSION_NOT_FOUND");
    const link = await share(shared);
    expect((await api(gw.url, link.token).post(`/v1/sessions/${shared}/shares`, {})).status).toBe(403);
    expect((await http(gw, "alice").post(`/v1/sessions/${shared}/shares`, { ttlMs: 8 * 24 * 3600_000 })).status).toBe(
      400,
    );
  });

  it("closes its WebSockets, terminal socket and event stream within 1 s of revocation", async () => {
    const made = await share(own, { name: "revoked" });
    const bearer = { authorization: `Bearer ${made.token}` };
    const mux = await Mux.open(gw, null, { headers: bearer, defer });
    expect((await mux.request({ op: "subscribe", session: own })).op).toBe("subscribed");
    const term = await WsClient.open(gw, `/ws/session/${own}`, null, { headers: bearer, defer });
    const sse = await fetch(`${gw.url}/v1/sessions/${own}/stream`, { headers: bearer });
    expect(sse.status).toBe(200);
    const sseEnded = (async () => {
      const reader = sse.body!.getReader();
      for (;;) {
        const { done } = await reader.read().catch(() => ({ done: true }));
        if (done) return Date.now();
      }
    })();
    const browser = await browserSignIn(gw.url, made.token);
    expect((await api(gw.url, "").get("/v1/whoami", browser.headers)).status).toBe(200);
    // Presence: the session shows the link by name while it watches.
    expect((await http(gw, "alice").get(`/v1/sessions/${own}`)).json.watchers).toContain("share:revoked");

    const started = Date.now();
    const revoked = await http(gw, "alice").del(`/v1/sessions/${own}/shares/${made.id}`);
    expect(revoked.status, revoked.text).toBe(200);
    const [muxClosed, termClosed, sseAt] = await Promise.all([mux.client.closed, term.closed, sseEnded]);
    const muxAt = Date.now();
    expect(muxClosed.code).toBe(1008);
    expect(termClosed.code).toBe(1008);
    expect(muxAt - started).toBeLessThan(REVOKE_WITHIN_MS);
    expect(sseAt - started).toBeLessThan(REVOKE_WITHIN_MS);
    expect(mux.frames.some((f) => f["op"] === "error" && /revoked/.test(String(f["message"])))).toBe(true);
    expect((await api(gw.url, made.token).get("/v1/whoami")).status).toBe(401);
    expect((await api(gw.url, "").get("/v1/whoami", browser.headers)).status).toBe(401);
    expect((await http(gw, "alice").get(`/v1/sessions/${own}`)).json.watchers).not.toContain("share:revoked");
    expect((await http(gw, "alice").del(`/v1/sessions/${own}/shares/${made.id}`)).json.error.code).toBe(
      "SHARE_NOT_FOUND",
    );
  });

  it("attributes a control link's control change and input to the link, and never lets it force", async () => {
    const made = await share(own, { name: "pair", allowControl: true });
    const link = api(gw.url, made.token);
    // Read-only until it holds control.
    expect((await link.post(`/v1/sessions/${own}/input`, { data: "early\n" })).json.error.code).toBe("FORBIDDEN");
    expect((await link.post(`/v1/sessions/${own}/control`, { action: "acquire", force: true })).status).toBe(403);
    const acquired = await link.post(`/v1/sessions/${own}/control`, { action: "acquire" });
    expect(acquired.status, acquired.text).toBe(200);
    const typed = await link.post(`/v1/sessions/${own}/input`, { data: "from-link\n" });
    expect(typed.status, typed.text).toBe(200);
    expect((await link.post(`/v1/sessions/${own}/control`, { action: "release" })).status).toBe(200);
    const events = await eventsOf(gw, own);
    const by = { name: "share:pair", id: `share:${made.id}`, role: "viewer" };
    expect(events).toContainEqual(
      expect.objectContaining({ type: "input", bytes: 10, by: expect.objectContaining(by) }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({ type: "control", action: "acquired", holder: expect.objectContaining(by) }),
    );
    expect(events.some((e) => e.type === "input" && e.bytes === 6 && e.by.id === `share:${made.id}`)).toBe(false);
  });

  it("attributes a control link's prompt and permission answer to the link", async () => {
    const agent = (await http(gw, "alice").post("/v1/sessions", { kind: "agent", agent: "echo", name: "agent" })).json;
    const made = await share(agent.id as string, { name: "reviewer", allowControl: true });
    const link = api(gw.url, made.token);
    expect((await link.post(`/v1/sessions/${agent.id}/control`, { action: "acquire" })).status).toBe(200);
    const prompted = await link.post(`/v1/sessions/${agent.id}/prompt`, { text: "/permission rm -rf build" });
    expect(prompted.status, prompted.text).toBe(202);
    const request = await waitFor(
      async () => (await eventsOf(gw, agent.id as string)).find((e) => e.type === "permission.request"),
      10_000,
      "the permission request",
    );
    if (request.type !== "permission.request") throw new Error("not a permission request");
    const answered = await link.post(`/v1/sessions/${agent.id}/permission`, {
      requestId: request.requestId,
      optionId: request.options[0]!.optionId,
    });
    expect(answered.status, answered.text).toBe(200);
    const resolved = await waitFor(
      async () => (await eventsOf(gw, agent.id as string)).find((e) => e.type === "permission.resolved"),
      10_000,
      "the answer",
    );
    expect(resolved).toMatchObject({ by: { name: "share:reviewer", id: `share:${made.id}` } });
  });

  it("caps the live links of a session", async () => {
    const capped = (await catPty(gw, "alice", "capped")).id;
    for (let i = 0; i < 20; i++) await share(capped, { name: `l${i}` });
    const over = await http(gw, "alice").post(`/v1/sessions/${capped}/shares`, {});
    expect(over.json.error.code).toBe("LIMIT_EXCEEDED");
  });
});

describe("share links over time", () => {
  it("expire: the token stops and its connections close when the time is up", async () => {
    const clock = new ManualClock(Date.now());
    const g = await testGateway({ clock });
    const { id } = (await api(g.url).post("/v1/sessions", { command: ["cat"], pty: true })).json;
    const made = (await api(g.url).post(`/v1/sessions/${id}/shares`, { ttlMs: 60_000 })).json as Made;
    // Close to the end before the link connects, so that no heartbeat of its socket is due in the last step.
    clock.advance(59_000);
    const mux = await Mux.open(g, null, { headers: { authorization: `Bearer ${made.token}` } });
    expect((await mux.request({ op: "subscribe", session: id })).op).toBe("subscribed");
    clock.advance(1_001);
    expect((await mux.client.closed).code).toBe(1008);
    expect(mux.frames.some((f) => f["op"] === "error" && /expired/.test(String(f["message"])))).toBe(true);
    expect((await api(g.url, made.token).get("/v1/whoami")).status).toBe(401);
    expect((await api(g.url).get(`/v1/sessions/${id}/shares`)).json.shares).toEqual([]);
  });

  it("are stored as hashes in the data dir, mode 0600, and survive a restart", async () => {
    const first = await testGateway();
    const { id } = (await api(first.url).post("/v1/sessions", { command: ["cat"], pty: true })).json;
    const made = (await api(first.url).post(`/v1/sessions/${id}/shares`, { name: "kept" })).json as Made;
    const file = join(first.dataDir, SHARES_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain(made.token);
    expect(text).toContain(made.id);
    await first.close();
    const second = await testGateway({ dataDir: first.dataDir });
    const me = await api(second.url, made.token).get("/v1/whoami");
    expect(me.status, me.text).toBe(200);
    expect(me.json.name).toBe("share:kept");
    expect((await api(second.url, made.token).get(`/v1/sessions/${id}`)).json.id).toBe(id);
  });
});
