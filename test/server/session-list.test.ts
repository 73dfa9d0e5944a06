/**
 * `GET /v1/sessions` in pages (`limit`, `after`, `state`, `next`), the SDK following `next`, and
 * session names refused when they would display as something else (Trojan Source: bidi
 * controls, invisible characters).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HttpClient } from "../../src/client/index.js";
import { ManualClock } from "../../src/core/clock.js";
import { LIMITS, SessionName } from "../../src/protocol/index.js";
import { parseConfig } from "../../src/server/config/config.js";
import { pageOf } from "../../src/server/http/session-list.js";
import type { SessionRecord } from "../../src/sessions/session.js";
import { childName } from "../../src/sessions/agent-child-terminals.js";
import { sessionTitle } from "../../web/src/format.js";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";

const OPS_TOKEN = "session-list-ops-token-0123456789";
const LOTS = { sessions: 5000, sessionsPerToken: 5000 };

type Api = ReturnType<typeof api>;

async function createStreams(http: Api, count: number, name = "s"): Promise<string[]> {
  const ids: string[] = [];
  // In order: the test's list of ids is the creation order the gateway must list them in.
  for (let i = 0; i < count; i++) {
    const r = await http.post("/v1/sessions", { kind: "stream", name: `${name}${i}` });
    expect(r.status, r.text).toBe(201);
    ids.push(r.json.id as string);
  }
  return ids;
}

function cursorOf(json: unknown): string {
  return Buffer.from(JSON.stringify(json)).toString("base64url");
}

describe("GET /v1/sessions in pages", () => {
  it("lists every visible session exactly once and in creation order, walking pages of random sizes while sessions are created and removed", async () => {
    // A clock that never moves: every session is created in the same millisecond, so the order
    // cannot come from the clock alone (random ids would put a new session before the cursor).
    const gw = await testGateway({
      clock: new ManualClock(),
      config: {
        auth: { tokens: [{ name: "ops", token: OPS_TOKEN, role: "operator" }] },
        limits: LOTS,
      },
    });
    const admin = api(gw.url);
    const ops = api(gw.url, OPS_TOKEN);
    const opsIds: string[] = [];
    const removed = new Set<string>();
    opsIds.push(...(await createStreams(ops, 3, "ops")));
    await createStreams(admin, 2, "admin");

    const step = fc.record({
      limit: fc.integer({ min: 1, max: 6 }),
      opsCreates: fc.integer({ min: 0, max: 2 }),
      adminCreates: fc.integer({ min: 0, max: 1 }),
      // Removes one of ops's sessions not listed yet (by its index among those), or none.
      remove: fc.option(fc.nat(), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), async (steps) => {
        const walked: string[] = [];
        // Sessions removed before the walk reached them are not listed; those listed stay listed.
        const skipped = new Set(removed);
        let after: string | undefined;
        for (let page = 0; ; page++) {
          // Changes only during the first pages: a walk that creates more than it reads never ends.
          const { limit, opsCreates, adminCreates, remove } =
            page < steps.length
              ? steps[page]!
              : { ...steps.at(-1)!, opsCreates: 0, adminCreates: 0, remove: undefined };
          const query = `?limit=${limit}${after !== undefined ? `&after=${after}` : ""}`;
          const r = await ops.get(`/v1/sessions${query}`);
          expect(r.status, r.text).toBe(200);
          const ids = (r.json.sessions as Array<{ id: string; owner: string }>).map((s) => s.id);
          expect(ids.length).toBeLessThanOrEqual(limit);
          walked.push(...ids);
          if (r.json.next === undefined) break;
          expect(ids).toHaveLength(limit);
          expect(typeof r.json.next).toBe("string");
          after = r.json.next as string;
          opsIds.push(...(await createStreams(ops, opsCreates, "ops")));
          await createStreams(admin, adminCreates, "admin");
          const notYet = opsIds.filter((id) => !walked.includes(id) && !removed.has(id));
          if (remove !== undefined && notYet.length > 0) {
            const id = notYet[remove % notYet.length]!;
            const d = await ops.del(`/v1/sessions/${id}?purge=true&force=true`);
            expect(d.status, d.text).toBe(200);
            removed.add(id);
            skipped.add(id);
          }
        }
        expect(walked).toEqual(opsIds.filter((id) => !skipped.has(id)));
      }),
      { numRuns: 30 },
    );
    // The admin sees everyone's, in the same order.
    const all = await admin.get(`/v1/sessions?limit=${LIMITS.SESSIONS_PAGE_MAX}`);
    const opsListed = (all.json.sessions as Array<{ id: string; owner: string }>)
      .filter((s) => s.owner === "ops")
      .map((s) => s.id);
    expect(opsListed).toEqual(opsIds.filter((id) => !removed.has(id)));
  });

  it("pages the same whether the sessions come in creation order (the sort is skipped) or not (property)", () => {
    const byCreation = (a: SessionRecord, b: SessionRecord) =>
      a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const session = fc
      .record({
        createdAt: fc.integer({ min: 1, max: 40 }),
        id: fc.stringMatching(/^[a-d]{1,3}$/),
        state: fc.constantFrom("running" as const, "exited" as const),
      })
      .map((r) => ({ record: r as unknown as SessionRecord }));
    fc.assert(
      fc.property(
        fc.uniqueArray(session, { selector: (s) => `${s.record.createdAt}/${s.record.id}`, maxLength: 30 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 8 }),
        fc.option(fc.record({ createdAt: fc.integer({ min: 0, max: 41 }), id: fc.stringMatching(/^[a-d]{0,3}$/) }), {
          nil: undefined,
        }),
        fc.option(fc.constant(["running" as const]), { nil: undefined }),
        (sessions, sort, limit, after, state) => {
          const given = sort ? [...sessions].sort((a, b) => byCreation(a.record, b.record)) : sessions;
          const page = pageOf(given, { limit, after, state });
          // The plain way: filter, sort all, cut.
          const matching = sessions.filter((s) => state === undefined || state.includes(s.record.state as "running"));
          const rest = matching
            .filter((s) => after === undefined || byCreation(s.record, after as SessionRecord) > 0)
            .sort((a, b) => byCreation(a.record, b.record));
          expect(page.sessions).toEqual(rest.slice(0, limit));
          expect(page.matched).toBe(matching.length);
          expect(page.next !== undefined).toBe(rest.length > limit);
        },
      ),
    );
  });

  it("filters by state and continues after a cursor whose session was removed meanwhile", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const [a, b, c, d] = await createStreams(http, 4);
    // b and d end: a stream session ends with an appended exit.
    for (const id of [b, d])
      expect((await http.post(`/v1/sessions/${id}/events`, { type: "exit", data: {} })).status).toBe(200);
    const ids = async (query: string) =>
      ((await http.get(`/v1/sessions${query}`)).json.sessions as Array<{ id: string }>).map((s) => s.id);
    expect(await ids("?state=running")).toEqual([a, c]);
    expect(await ids("?state=exited")).toEqual([b, d]);
    expect(await ids("?state=exited,lost,running")).toEqual([a, b, c, d]);
    expect(await ids("?state=lost")).toEqual([]);
    // Empty parameters are taken as absent, as everywhere else.
    expect(await ids("?limit=&after=&state=")).toEqual([a, b, c, d]);

    const first = await http.get("/v1/sessions?limit=2");
    expect(first.json.sessions.map((s: { id: string }) => s.id)).toEqual([a, b]);
    expect((await http.del(`/v1/sessions/${b}?purge=true`)).status).toBe(200);
    const second = await http.get(`/v1/sessions?limit=2&after=${first.json.next}`);
    expect(second.json.sessions.map((s: { id: string }) => s.id)).toEqual([c, d]);
    // The last page has no next, even when it is full.
    expect(second.json).not.toHaveProperty("next");
  });

  // Security audit: an operator's sessions with ~1 MB commands made a page of them past what one
  // string holds, and GET /v1/sessions answered 500 to everyone (the UI and `ls` with it).
  it("ends a page before LIMITS.SESSIONS_PAGE_BYTES of JSON, however big the sessions' commands: next gives the rest, each once", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    // (The system takes at most 128 KiB in one argument.)
    const bigArg = "x".repeat(130_000);
    const perSession = 7 * bigArg.length;
    const created: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await http.post("/v1/sessions", {
        command: ["true", ...Array<string>(7).fill(bigArg)],
        name: `big${i}`,
      });
      expect(r.status, r.text).toBe(201);
      created.push(r.json.id as string);
    }
    const listed: string[] = [];
    let query = "";
    let pages = 0;
    for (;;) {
      const r = await http.get(`/v1/sessions${query}`);
      expect(r.status, r.text).toBe(200);
      expect(r.text.length).toBeLessThanOrEqual(LIMITS.SESSIONS_PAGE_BYTES + perSession);
      const sessions = r.json.sessions as Array<{ id: string; command: string[] }>;
      expect(sessions.length).toBeGreaterThan(0);
      expect(sessions[0]!.command).toHaveLength(8);
      listed.push(...sessions.map((s) => s.id));
      pages++;
      if (r.json.next === undefined) break;
      query = `?after=${r.json.next as string}`;
    }
    expect(listed).toEqual(created);
    // About 0.9 MB each: 4 fit in a page of 4 MiB, not 7.
    expect(pages).toBeGreaterThan(1);
  });

  it("refuses a bad limit, cursor or state with BAD_REQUEST saying what to do", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    await createStreams(http, 2);
    const limitRule = `limit: must be an integer from 1 to ${LIMITS.SESSIONS_PAGE_MAX} (a page; follow next for the rest)`;
    for (const limit of ["0", "1001", "-1", "1.5", "abc", "1e3", "%205", "99999999999999999"]) {
      const r = await http.get(`/v1/sessions?limit=${limit}`);
      expect(r.status, limit).toBe(400);
      expect(r.json.error, limit).toEqual({ code: "BAD_REQUEST", message: limitRule });
    }
    const afterRule =
      "after: is not a cursor this gateway gave: pass the next of the previous page as it is, or leave after out to start from the first page";
    for (const after of [
      "not!base64",
      Buffer.from("not json").toString("base64url"),
      cursorOf([1]),
      cursorOf(["1", "id"]),
      cursorOf([1, ""]),
      cursorOf({ createdAt: 1, id: "x" }),
      "A".repeat(600),
    ]) {
      const r = await http.get(`/v1/sessions?after=${after}`);
      expect(r.status, after).toBe(400);
      expect(r.json.error, after).toEqual({ code: "BAD_REQUEST", message: afterRule });
    }
    for (const state of ["bogus", "running,", "Running"]) {
      const r = await http.get(`/v1/sessions?state=${state}`);
      expect(r.status, state).toBe(400);
      expect(r.json.error.code, state).toBe("BAD_REQUEST");
      expect(r.json.error.message, state).toContain("state");
      expect(r.json.error.message, state).toContain("running, exited, lost");
    }
  });

  it("answers at most 1000 without a limit, with next, and the SDK's listSessions follows next to the end", async () => {
    const gw = await testGateway({ config: { limits: LOTS } });
    const http = api(gw.url);
    const count = LIMITS.SESSIONS_PAGE_MAX + 5;
    const created: string[] = [];
    for (let i = 0; i < count; i += 50) {
      // Batches in parallel are fine here: the order checked below is the gateway's own.
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, count - i) }, (_, j) =>
          http.post("/v1/sessions", { kind: "stream", name: `n${i + j}` }),
        ),
      );
      for (const r of batch) created.push(r.json.id as string);
    }
    const first = await http.get("/v1/sessions");
    expect(first.json.sessions).toHaveLength(LIMITS.SESSIONS_PAGE_MAX);
    expect(typeof first.json.next).toBe("string");
    const rest = await http.get(`/v1/sessions?after=${first.json.next}`);
    expect(rest.json.sessions).toHaveLength(5);
    expect(rest.json).not.toHaveProperty("next");

    const sdk = new HttpClient({ url: gw.url, token: TEST_TOKEN });
    const listed = await sdk.listSessions();
    expect(listed.map((s) => s.id)).toEqual(
      [...first.json.sessions, ...rest.json.sessions].map((s: { id: string }) => s.id),
    );
    expect(new Set(listed.map((s) => s.id))).toEqual(new Set(created));
    const createdAts = listed.map((s) => s.createdAt);
    expect(createdAts).toEqual([...createdAts].sort((x, y) => x - y));
    // Pages of any size, and the state filter, through the SDK.
    const page = await sdk.sessionsPage({ limit: 3, after: (await sdk.sessionsPage({ limit: 2 })).next! });
    expect(page.sessions.map((s) => s.id)).toEqual(listed.slice(2, 5).map((s) => s.id));
    expect(await sdk.listSessions({ state: "exited" })).toEqual([]);
    expect(await sdk.listSessions({ state: ["running"] })).toHaveLength(count);
  });
});

/** Every bidirectional control character (Unicode's Bidi_Control property). */
const BIDI = [0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069];
/** Invisible ones: zero width space, word joiner, BOM, soft hyphen, a tag, Hangul filler, a joiner between ASCII. */
const INVISIBLE = [0x200b, 0x2060, 0xfeff, 0x00ad, 0xe0041, 0x3164, 0x200d];

const hex = (cp: number) => `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;

describe("session names that would display as something else", () => {
  it("refuses every bidi control and invisible character, naming it and where it is, and creates nothing", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    for (const cp of [...BIDI, ...INVISIBLE]) {
      const name = `invoice${String.fromCodePoint(cp)}fdp.exe`;
      for (const body of [
        { kind: "stream", name },
        { command: ["true"], name },
        { kind: "agent", agent: "echo", name },
      ]) {
        const r = await http.post("/v1/sessions", body);
        expect(r.status, hex(cp)).toBe(400);
        expect(r.json.error.code, hex(cp)).toBe("VALIDATION_FAILED");
        const message = r.json.error.message as string;
        expect(message, hex(cp)).toMatch(
          new RegExp(`^name: contains ${hex(cp).replace("+", "\\+")}\\b.* at character 8: .*remove it$`),
        );
        expect(message).toContain(BIDI.includes(cp) ? "a bidirectional control character" : "an invisible character");
      }
    }
    const controls = await http.post("/v1/sessions", { kind: "stream", name: "evil\u001b]0;pwned\u0007" });
    expect(controls.json.error).toMatchObject({
      code: "VALIDATION_FAILED",
      message: expect.stringMatching(/^name: contains U\+001B ESCAPE, a control character, at character 5: /),
    });
    expect((await http.get("/v1/sessions")).json.sessions).toEqual([]);
  });

  it("accepts plain Unicode: accents, CJK, right-to-left scripts, emoji sequences and joiners where scripts need them", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const names = [
      "café 日本",
      "שלום עולם",
      "مرحبا بالعالم",
      "می\u200Cخواهم", // ZWNJ inside a Persian word
      "क्\u200Dष", // ZWJ in Devanagari
      "👩\u200D💻 dev",
      "🏳\uFE0F\u200D🌈",
      "1\uFE0F\u20E3 first",
      "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F} flag",
    ];
    for (const name of names) {
      const r = await http.post("/v1/sessions", { kind: "stream", name });
      expect(r.status, `${name}: ${r.text}`).toBe(201);
      expect(r.json.name).toBe(name);
    }
  });

  it("makes names it builds from unchecked text valid: an agent's child terminal, the UI's titles", () => {
    expect(childName("/tmp/invoice\u202Efdp.sh")).toBe("/tmp/invoice?fdp.sh (agent)");
    // A cut that splits a surrogate pair or a flag's tags still leaves a valid name.
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 400 }), (command) => {
        const name = childName(command);
        expect(SessionName.safeParse(name).success, JSON.stringify(name)).toBe(true);
      }),
      { numRuns: 300 },
    );
    expect(childName(`${"x".repeat(190)}👩\u200D💻`)).toBe(`${"x".repeat(190)}?… (agent)`);
    const info = { kind: "terminal", id: "AAAAAAAA", agent: null } as const;
    expect(sessionTitle({ ...info, name: "a\u202Eb", command: null })).toBe("a\uFFFDb");
    expect(sessionTitle({ ...info, name: null, command: ["cat", "x\u2067y"] })).toBe("cat x\uFFFDy");
    expect(sessionTitle({ ...info, name: "café 👩\u200D💻", command: null })).toBe("café 👩\u200D💻");
  });

  it("holds token names, shown as a session's owner and controller, to the same rule", () => {
    const entry = (name: string) => ({ auth: { tokens: [{ name, token: OPS_TOKEN, role: "operator" }] } });
    expect(() => parseConfig(entry("ops\u202Eadmin"))).toThrow(
      /auth\.tokens\.0\.name: contains U\+202E RIGHT-TO-LEFT OVERRIDE, a bidirectional control character, at character 4/,
    );
    expect(parseConfig(entry("café")).auth.tokens[0]!.name).toBe("café");
  });
});
