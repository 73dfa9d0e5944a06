/**
 * The HTTP read side as a client author pages through it: `/output` when retention dropped
 * every output event, and the error codes of query parameters (one code on every route).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LIMITS } from "../../src/protocol/index.js";
import { api, browserSignIn, testGateway } from "../helpers/gateway.js";

describe("GET /v1/sessions/:id/output after retention dropped every output event", () => {
  it("says the bytes are gone (410, where to go on) and reads from the end with since=0, instead of an empty page that never moves", async () => {
    const gw = await testGateway({ config: { retention: { maxEvents: 5 } } } as never);
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    await http.post(`/v1/sessions/${s.id}/events`, [{ type: "output", data: { data: "hello\n" } }]);
    // Events the retention keeps instead: the output (seq 1) is gone, its 6 bytes with it.
    await http.post(
      `/v1/sessions/${s.id}/events`,
      Array.from({ length: 8 }, (_, i) => ({ type: "n", data: i })),
    );
    expect((await http.get(`/v1/sessions/${s.id}`)).json).toMatchObject({ first: 5, head: 9, outputBytes: 6 });
    // From the start of what is kept: nothing, and the next offset is the end (before: 0, forever).
    for (const query of ["", "?since=0"]) {
      const out = await http.get(`/v1/sessions/${s.id}/output${query}`);
      expect(out.status, query).toBe(200);
      expect(out.text).toBe("");
      expect(out.headers.get("x-switchboard-output-start")).toBe("6");
      expect(out.headers.get("x-switchboard-next-offset")).toBe("6");
      expect(out.headers.get("x-switchboard-output-bytes")).toBe("6");
    }
    // A position inside what was dropped: 410 with where to go on (before: 200, empty, next = since).
    const trimmed = await http.get(`/v1/sessions/${s.id}/output?since=3`);
    expect(trimmed.status).toBe(410);
    expect(trimmed.json.error).toMatchObject({
      code: "HISTORY_TRIMMED",
      first: 6,
      head: 6,
      message: "output before byte 6 was dropped by retention; resume from since=6",
    });
    // At the end: an empty page, as before.
    const atEnd = await http.get(`/v1/sessions/${s.id}/output?since=6`);
    expect(atEnd.status).toBe(200);
    expect(atEnd.headers.get("x-switchboard-next-offset")).toBe("6");
    // New output is read from where it starts.
    await http.post(`/v1/sessions/${s.id}/events`, [{ type: "output", data: { data: "again\n" } }]);
    const more = await http.get(`/v1/sessions/${s.id}/output?since=6`);
    expect(more.text).toBe("again\n");
    expect(more.headers.get("x-switchboard-next-offset")).toBe("12");
    expect((await http.get(`/v1/sessions/${s.id}/output?since=0`)).text).toBe("again\n");
  });
});

describe("query parameters answer BAD_REQUEST on every route, naming the parameter", () => {
  it("GET /v1/sessions: limit, after and state", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const limitRule = `limit: must be an integer from 1 to ${LIMITS.SESSIONS_PAGE_MAX} (a page; follow next for the rest)`;
    for (const limit of ["0", "1001", "abc", "-1"]) {
      const r = await http.get(`/v1/sessions?limit=${limit}`);
      expect(r.status, limit).toBe(400);
      expect(r.json.error, limit).toEqual({ code: "BAD_REQUEST", message: limitRule });
    }
    const after = await http.get("/v1/sessions?after=not!base64");
    expect(after.json.error).toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/^after: /) });
    const state = await http.get("/v1/sessions?state=bogus");
    expect(state.json.error).toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/^state\b/) });
  });

  it("events, stream and output: limit, since, max and types", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    for (const path of [
      `/v1/sessions/${s.id}/events?limit=0`,
      `/v1/sessions/${s.id}/events?limit=10001`,
      `/v1/sessions/${s.id}/events?limit=ten`,
      `/v1/sessions/${s.id}/events?since=-1`,
      `/v1/sessions/${s.id}/events?since=5`,
      `/v1/sessions/${s.id}/events?types=output,bogus`,
      `/v1/sessions/${s.id}/stream?types=bogus`,
      `/v1/sessions/${s.id}/stream?since=x`,
      `/v1/sessions/${s.id}/output?max=0`,
      `/v1/sessions/${s.id}/output?since=1`,
    ]) {
      const r = await http.get(path);
      expect(r.status, path).toBe(400);
      expect(r.json.error.code, path).toBe("BAD_REQUEST");
    }
    // The types message is /v1/ws's subscribe wording (one schema checks both).
    const types = await http.get(`/v1/sessions/${s.id}/events?types=output,bogus`);
    expect(types.json.error.message).toMatch(/^types\.1: unknown event type "\w+"; the types are output, exit, /);
  });
});

describe("a types filter that names no type", () => {
  it("types=, (an empty list joined) is no filter, as types= and /v1/ws's types: [] are, not a filter that matches nothing", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    await http.post(`/v1/sessions/${s.id}/events`, [{ type: "n", data: 1 }]);
    for (const types of ["", ",", ",,"]) {
      const page = await http.get(`/v1/sessions/${s.id}/events?types=${types}`);
      expect(page.status, types).toBe(200);
      expect(
        page.json.events.map((e: { seq: number }) => e.seq),
        types,
      ).toEqual([1]);
    }
    await http.post(`/v1/sessions/${s.id}/events`, [{ type: "exit", data: {} }]);
    const sse = await fetch(`${gw.url}/v1/sessions/${s.id}/stream?types=,`, {
      headers: { authorization: `Bearer ${gw.token}` },
    });
    expect([...(await sse.text()).matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual([1, 2]);
  });
});

describe("SSE: how a browser authenticates, headers, and many streams", () => {
  it("EventSource (no headers) gets in with the login cookie and its key in the URL from its own origin, never with a token in the URL", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    await http.post(`/v1/sessions/${s.id}/events`, [{ type: "exit", data: {} }]);
    const { cookie, key } = await browserSignIn(gw.url, gw.token);
    const stream = (headers: Record<string, string>, query = "") =>
      fetch(`${gw.url}/v1/sessions/${s.id}/stream${query}`, { headers });
    const own = new URL(gw.url).origin;
    // The cookie alone is what every other server on the host name is sent: it is refused.
    const alone = await stream({ cookie, origin: own });
    expect(alone.status).toBe(401);
    expect(await alone.text()).toContain("sign in again");
    const ok = await stream({ cookie, origin: own }, `?cookieKey=${key}`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(ok.headers.get("cache-control")).toBe("no-store");
    expect(ok.headers.get("x-accel-buffering")).toBe("no");
    expect(ok.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await ok.text()).toMatch(/^retry: 2000\n\nid: 1\ndata: /);
    const foreign = await stream({ cookie, origin: "http://evil.example" }, `?cookieKey=${key}`);
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe("ORIGIN_NOT_ALLOWED");
    for (const query of [`?token=${gw.token}`, `?access_token=${gw.token}`]) {
      const r = await stream({}, query);
      expect(r.status, query).toBe(401);
    }
  });

  it("counts SSE streams toward limits.connectionsPerToken and gives the slot back when one closes", async () => {
    const gw = await testGateway({ config: { limits: { connectionsPerToken: 3 } } } as never);
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    const aborts = Array.from({ length: 3 }, () => new AbortController());
    const open = (signal: AbortSignal | null = null) =>
      fetch(`${gw.url}/v1/sessions/${s.id}/stream`, { headers: { authorization: `Bearer ${gw.token}` }, signal });
    const streams = await Promise.all(aborts.map((a) => open(a.signal)));
    expect(streams.map((r) => r.status)).toEqual([200, 200, 200]);
    const over = await open();
    expect(over.status).toBe(429);
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe("LIMIT_EXCEEDED");
    aborts[0]!.abort();
    const deadline = Date.now() + 5000;
    let again = await open();
    while (again.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      again = await open();
    }
    expect(again.status).toBe(200);
    await again.body?.cancel();
    for (const a of aborts) a.abort();
  });

  it("JSON and output answers are not cached and say what they are", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    for (const [path, type] of [
      [`/v1/sessions/${s.id}/events`, "application/json; charset=utf-8"],
      ["/v1/sessions", "application/json; charset=utf-8"],
      [`/v1/sessions/${s.id}/output`, "application/octet-stream"],
    ] as const) {
      const r = await http.get(path);
      expect(r.status, path).toBe(200);
      expect(r.headers.get("content-type"), path).toBe(type);
      expect(r.headers.get("cache-control"), path).toBe("no-store");
      expect(r.headers.get("x-content-type-options"), path).toBe("nosniff");
    }
  });
});

describe("GET /v1/sessions/:id/events paging", () => {
  it("property: pages from any since, any limit, any filter join to exactly the log's events after since (across the store and the hot ring)", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    // More than the hot ring holds (4096 entries): the oldest are read from the store.
    const TOTAL = 5000;
    for (let at = 0; at < TOTAL; at += 1000) {
      await http.post(
        `/v1/sessions/${s.id}/events`,
        Array.from({ length: 1000 }, (_, i) =>
          (at + i) % 7 === 0 ? { type: "n", data: at + i } : { type: "output", data: { data: `${at + i}\n` } },
        ),
      );
    }
    type Ev = { seq: number; type: string };
    const all: Ev[] = [];
    for (let since = 0; since < TOTAL;) {
      const page = await http.get(`/v1/sessions/${s.id}/events?since=${since}&limit=10000`);
      all.push(...(page.json.events as Ev[]));
      since = page.json.next as number;
    }
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: TOTAL }),
        fc.integer({ min: 1, max: 2500 }),
        fc.constantFrom(undefined, "custom", "output", "custom,output", "exit"),
        async (since, limit, types) => {
          const want = all.filter((e) => e.seq > since && (types === undefined || types.split(",").includes(e.type)));
          const got: Ev[] = [];
          let position = since;
          for (let pages = 0; ; pages++) {
            expect(pages).toBeLessThan(TOTAL);
            const q = `since=${position}&limit=${limit}${types ? `&types=${types}` : ""}`;
            const page = await http.get(`/v1/sessions/${s.id}/events?${q}`);
            expect(page.status, q).toBe(200);
            const events = page.json.events as Ev[];
            expect(events.length, q).toBeLessThanOrEqual(limit);
            got.push(...events);
            expect(page.json.next, q).toBeGreaterThanOrEqual(position);
            if (page.json.next >= page.json.head) break;
            // A page that stops short of the head holds something: a reader always moves on.
            expect(page.json.next, q).toBeGreaterThan(position);
            position = page.json.next;
          }
          expect(got.map((e) => e.seq)).toEqual(want.map((e) => e.seq));
        },
      ),
      { numRuns: 40 },
    );
  });
});
