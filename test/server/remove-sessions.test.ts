import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import WebSocket from "ws";
import { beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { sessionDirName } from "../../src/log/output-files.mjs";
import { createTerminalSession } from "../../src/sessions/terminal-session.js";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { endedPipe, listedIds } from "../helpers/ended-sessions.js";
import { alive } from "../sessions/process-helpers.js";

/** Rows the SQLite log still holds for `id` (read after the gateway closed it). */
function storedRows(dataDir: string, id: string): { sessions: number; events: number } {
  const db = new Database(join(dataDir, "switchboard.db"), { readonly: true });
  try {
    const count = (sql: string) => (db.prepare(sql).get(id) as { n: number }).n;
    return {
      sessions: count("SELECT COUNT(*) AS n FROM sessions WHERE id = ?"),
      events: count("SELECT COUNT(*) AS n FROM events WHERE session_id = ?"),
    };
  } finally {
    db.close();
  }
}

/**
 * One gateway for the tests that remove only sessions of their own and read no gateway-wide state
 * (the session list, metrics, a restart): a start and a stop cost about 0.3-0.5 s of CPU each.
 */
let shared: Awaited<ReturnType<typeof testGateway>>;
beforeAll(async () => {
  shared = await testGateway();
});

describe("removing sessions (DELETE ?purge)", () => {
  it("forgets an ended session: record, events and output are gone, also after a restart", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const keep = await endedPipe(http, "echo keep me", "keep");
    const gone = await endedPipe(http, "echo forget me; exit 4", "gone");
    expect((await http.get(`/v1/sessions/${gone}/output`)).text).toBe("forget me\n");
    // Output big enough to be kept in an output file, not in SQLite.
    const big = await endedPipe(http, "yes forget me | head -c 300000", "big");
    expect((await http.get(`/v1/sessions/${big}/output`)).text).toHaveLength(300000);
    expect(readdirSync(join(gw.dataDir, "switchboard.db-output"))).toEqual([sessionDirName(big)]);
    expect((await http.del(`/v1/sessions/${big}?purge=true`)).status).toBe(200);

    const r = await http.del(`/v1/sessions/${gone}?purge=true`);
    expect(r.status).toBe(200);
    expect(r.json.removed).toHaveLength(1);
    expect(r.json.removed[0]).toMatchObject({ id: gone, name: "gone", state: "exited", exitCode: 4 });

    for (const path of [`/v1/sessions/${gone}`, `/v1/sessions/${gone}/events`, `/v1/sessions/${gone}/output`]) {
      const after = await http.get(path);
      expect(after.status, path).toBe(404);
      expect(after.json.error.code).toBe("SESSION_NOT_FOUND");
    }
    expect(await listedIds(http)).toEqual([keep]);
    // Twice: the second finds nothing.
    expect((await http.del(`/v1/sessions/${gone}?purge=1`)).status).toBe(404);
    expect((await http.get(`/v1/sessions/${keep}/output`)).text).toBe("keep me\n");

    const dataDir = gw.dataDir;
    await gw.close();
    expect(storedRows(dataDir, gone)).toEqual({ sessions: 0, events: 0 });
    // Not left readable in free space either (secure_delete, incremental vacuum, WAL emptied), nor in output files.
    expect(readdirSync(join(dataDir, "switchboard.db-output"))).toEqual([]);
    for (const file of readdirSync(dataDir, { recursive: true, encoding: "utf8" })) {
      if (!statSync(join(dataDir, file)).isFile()) continue;
      expect(readFileSync(join(dataDir, file)).includes("forget me"), file).toBe(false);
    }
    expect(storedRows(dataDir, keep).events).toBeGreaterThan(0);
    const again = await testGateway({ dataDir });
    const http2 = api(again.url);
    expect(await listedIds(http2)).toEqual([keep]);
    expect((await http2.get(`/v1/sessions/${keep}/output`)).text).toBe("keep me\n");
  });

  it("refuses a running session unless force=true, which terminates it first", async () => {
    const gw = shared;
    const http = api(gw.url);
    const created = await http.post("/v1/sessions", { command: ["sleep", "300"] });
    const id = created.json.id as string;
    const pid = created.json.pid as number;

    const refused = await http.del(`/v1/sessions/${id}?purge=true`);
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe("SESSION_RUNNING");
    expect(refused.json.error.message).toContain("force=true");
    expect((await http.get(`/v1/sessions/${id}`)).json.state).toBe("running");
    expect(alive(pid)).toBe(true);

    const bad = await http.del(`/v1/sessions/${id}?purge=maybe`);
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe("BAD_REQUEST");

    const forced = await http.del(`/v1/sessions/${id}?purge=true&force=true`);
    expect(forced.status).toBe(200);
    expect(forced.json.removed[0]).toMatchObject({ id, state: "exited", signal: "SIGTERM" });
    expect(alive(pid)).toBe(false);
    expect((await http.get(`/v1/sessions/${id}`)).status).toBe(404);
  });

  it("a forced remove while a viewer follows over SSE ends the stream and the gateway stays up (regression: write after end crashed it, and the remove was lost)", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const id = (await http.post("/v1/sessions", { command: ["sleep", "300"] })).json.id as string;
    const res = await fetch(`${gw.url}/v1/sessions/${id}/stream?since=0`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = "";
    const read = async (until: (t: string) => boolean) => {
      while (!until(text)) {
        const { value, done } = await reader.read();
        if (done) return true;
        text += new TextDecoder().decode(value);
      }
      return false;
    };
    await read((t) => t.includes("retry:"));
    const removed = await http.del(`/v1/sessions/${id}?purge=true&force=true`);
    expect(removed.status).toBe(200);
    // The stream ends: with the exit event (and the reset for the removal, if it came first).
    expect(await read(() => false)).toBe(true);
    expect(text).toMatch(/"type":"exit"|event: reset/);
    expect((await http.get("/healthz")).status).toBe(200);
    const dataDir = gw.dataDir;
    await gw.close();
    // The removal was committed: gone after a restart too.
    const again = await testGateway({ dataDir });
    expect((await api(again.url).get(`/v1/sessions/${id}`)).status).toBe(404);
  });

  it("two removes at once: one removes, the other finds nothing", async () => {
    const gw = shared;
    const http = api(gw.url);
    // TERM is ignored: the first remove waits out the grace before KILL, and the second comes meanwhile.
    const { json: s } = await http.post("/v1/sessions", { command: ["sh", "-c", "trap '' TERM; echo up; sleep 30"] });
    await waitFor(async () => (await http.get(`/v1/sessions/${s.id}/output`)).text === "up\n", 5000, "trap set");
    const [a, b] = await Promise.all([
      http.del(`/v1/sessions/${s.id}?purge=true&force=true`),
      new Promise((r) => setTimeout(r, 200)).then(() => http.del(`/v1/sessions/${s.id}?purge=true&force=true`)),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 404]);
    const ok = a.status === 200 ? a : b;
    expect(ok.json.removed).toEqual([expect.objectContaining({ id: s.id, signal: "SIGKILL" })]);
  });

  it("a viewer may not remove; the owner's other sessions stay", async () => {
    const VIEWER = "viewer-token-0123456789abcdef0123";
    const gw = await testGateway({
      config: { auth: { tokens: [{ name: "vera", token: VIEWER, role: "viewer", sessions: ["*"] }] } },
    });
    const http = api(gw.url);
    const id = await endedPipe(http, "true");
    const r = await api(gw.url, VIEWER).del(`/v1/sessions/${id}?purge=true`);
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe("FORBIDDEN");
    expect((await http.get(`/v1/sessions/${id}`)).status).toBe(200);
  });

  it("tells every consumer: /v1/ws gets reset 'deleted', /ws/session closes 4004, SSE ends with a reset", async () => {
    const gw = shared;
    const http = api(gw.url);
    const other = (await http.post("/v1/sessions", { kind: "stream", name: "other" })).json.id as string;
    // 20 MB of history: more than a consumer's queue budget (4 MiB), so consumers that do not
    // read are still in the middle of it when the session is removed.
    const id = await endedPipe(http, "head -c 20000000 /dev/zero | tr '\\0' a");
    const head = (await http.get(`/v1/sessions/${id}`)).json.head as number;

    const ws = new WebSocket(`${gw.url.replace("http", "ws")}/v1/ws`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    const frames: Array<Record<string, unknown>> = [];
    ws.on("message", (d) => frames.push(JSON.parse(String(d)) as Record<string, unknown>));
    await new Promise((r) => ws.once("open", r));
    ws.send(JSON.stringify({ op: "subscribe", session: other, since: 0 }));
    ws.send(JSON.stringify({ op: "subscribe", session: id, since: head, types: ["custom"] }));
    await waitFor(() => frames.filter((f) => f.op === "subscribed").length === 2, 5_000, "subscribed");

    const term = new WebSocket(`${gw.url.replace("http", "ws")}/ws/session/${id}?since=0`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    const termFrames: string[] = [];
    term.on("message", (d) => termFrames.push(String(d).slice(0, 40)));
    const termClosed = new Promise<number>((r) => term.once("close", (code) => r(code)));
    await new Promise((r) => term.once("open", r));
    const termSocket = (term as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    termSocket.pause();

    const sse = await fetch(`${gw.url}/v1/sessions/${id}/stream?since=0`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    await waitFor(async () => (await http.get(`/v1/sessions/${id}`)).json.viewers === 3, 5_000, "3 viewers");

    expect((await http.del(`/v1/sessions/${id}?purge=true`)).status).toBe(200);

    const reset = await waitFor(() => frames.find((f) => f.op === "reset"), 5_000, "reset frame");
    expect(reset).toEqual({ op: "reset", session: id, reason: "deleted", head, first: 1 });
    termSocket.resume();
    expect(await termClosed).toBe(4004);
    expect(termFrames.some((f) => f.includes('"exit"'))).toBe(false);
    const text = await sse.text();
    expect(text).toContain('"type":"output"');
    expect(text).not.toContain('"type":"exit"');
    expect(text.trimEnd().endsWith(`event: reset\ndata: {"reason":"deleted","first":1,"head":${head}}`)).toBe(true);

    // The subscription has ended: unsubscribe says so, and re-subscribing finds no session.
    frames.length = 0;
    ws.send(JSON.stringify({ op: "unsubscribe", session: id, ref: 1 }));
    ws.send(JSON.stringify({ op: "subscribe", session: id, since: 0, ref: 2 }));
    await waitFor(() => frames.length >= 2, 5_000, "answers");
    expect(frames[0]).toMatchObject({ op: "error", ref: 1, code: "NOT_SUBSCRIBED" });
    expect(frames[1]).toMatchObject({ op: "error", ref: 2, code: "SESSION_NOT_FOUND" });
    // The other subscription is untouched.
    await http.post(`/v1/sessions/${other}/events`, { type: "custom", data: { name: "still", data: 1 } });
    await waitFor(() => frames.some((f) => f.op === "event" && f.session === other), 5_000, "other session's event");
    ws.close();
  });

  it("a /v1/ws connection stops watching the control of a removed session it never subscribed to (regression: the watch held the session and its log until the connection closed)", async () => {
    const gw = shared;
    const http = api(gw.url);
    const ws = new WebSocket(`${gw.url.replace("http", "ws")}/v1/ws`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    const frames: Array<Record<string, unknown>> = [];
    ws.on("message", (d) => frames.push(JSON.parse(String(d)) as Record<string, unknown>));
    await new Promise((r) => ws.once("open", r));
    const id = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;
    const session = gw.core.sessions.get(id)!;
    const leaseWatchers = () => (session as unknown as { leaseListeners: Set<unknown> }).leaseListeners.size;

    ws.send(JSON.stringify({ op: "control", session: id, action: "acquire", ref: 1 }));
    const ack = await waitFor(() => frames.find((f) => f.ref === 1), 5_000, "control ack");
    expect(ack).toEqual({ op: "ack", ref: 1, result: { controller: "admin" } });
    expect(leaseWatchers()).toBe(1);

    expect((await http.del(`/v1/sessions/${id}?purge=true&force=true`)).status).toBe(200);
    expect(session.removed).toBe(true);
    expect(leaseWatchers()).toBe(0);
    // The connection goes on.
    ws.send(JSON.stringify({ op: "ping", ref: 2 }));
    expect(await waitFor(() => frames.find((f) => f.ref === 2), 5_000, "pong")).toMatchObject({ op: "pong" });
    ws.close();
  });

  it("removes an agent's child sessions with it", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const parent = (await http.post("/v1/sessions", { kind: "stream", name: "parent" })).json.id as string;
    const child = await createTerminalSession(
      gw.core.sessions,
      { kind: "terminal", command: ["sleep", "300"] },
      { id: "token:admin", name: "admin" },
      {
        parent,
      },
    );
    const unrelated = await endedPipe(http, "true");
    await http.post(`/v1/sessions/${parent}/events`, { type: "exit", data: { exitCode: 0 } });

    const refused = await http.del(`/v1/sessions/${parent}?purge=true`);
    expect(refused.status).toBe(409);
    expect(refused.json.error.message).toContain(`running child ${child.id}`);

    const r = await http.del(`/v1/sessions/${parent}?purge=true&force=true`);
    expect(r.status).toBe(200);
    expect((r.json.removed as Array<{ id: string }>).map((s) => s.id)).toEqual([child.id, parent]);
    expect(alive(child.record.pid!)).toBe(false);
    expect(await listedIds(http)).toEqual([unrelated]);
  });
});

describe("retention.endedSessions", () => {
  it("keeps the newest maxCount ended sessions and never touches running ones", async () => {
    const gw = await testGateway({ config: { retention: { endedSessions: { maxCount: 2 } } } });
    const http = api(gw.url);
    const running = (await http.post("/v1/sessions", { command: ["sleep", "300"] })).json.id as string;
    const ended: string[] = [];
    for (let i = 0; i < 4; i++) ended.push(await endedPipe(http, `echo ${i}`));
    await waitFor(async () => (await listedIds(http)).length === 3, 5_000, "pruning to 2 ended");
    expect((await listedIds(http)).sort()).toEqual([running, ended[2]!, ended[3]!].sort());
    // The count goes up once the removal is committed, a moment after the list has changed.
    await waitFor(
      async () =>
        /switchboard_sessions_removed_total\{reason="retention"\} 2\n/.test((await http.get("/metrics")).text),
      5_000,
      "retention counted",
    );
  });

  it("keeps an ended session while a child of it still runs, and removes both once it has ended", async () => {
    const gw = await testGateway({ config: { retention: { endedSessions: { maxCount: 0 } } }, pruneIntervalMs: 50 });
    const http = api(gw.url);
    const parent = (await http.post("/v1/sessions", { kind: "stream", name: "parent" })).json.id as string;
    const child = await createTerminalSession(
      gw.core.sessions,
      { kind: "terminal", command: ["sleep", "300"] },
      { id: "token:admin", name: "admin" },
      {
        parent,
      },
    );
    await http.post(`/v1/sessions/${parent}/events`, { type: "exit", data: { exitCode: 0 } });
    await new Promise((r) => setTimeout(r, 300));
    expect((await listedIds(http)).sort()).toEqual([parent, child.id].sort());
    expect(alive(child.record.pid!)).toBe(true);
    await http.del(`/v1/sessions/${child.id}`);
    await waitFor(async () => (await listedIds(http)).length === 0, 5_000, "both to be removed");
  });

  it("removes sessions that ended more than maxAgeMs ago, at start and as time passes", async () => {
    const HOUR = 3_600_000;
    const rule = { retention: { endedSessions: { maxAgeMs: HOUR } } };
    const clock = new ManualClock();
    const first = await testGateway({ clock, config: rule });
    const old = await endedPipe(api(first.url), "echo old");
    const dataDir = first.dataDir;
    await first.close();

    // Started an hour later: pruned before the gateway listened.
    clock.advance(HOUR);
    const gw = await testGateway({ dataDir, clock, config: rule, pruneIntervalMs: 50 });
    const http = api(gw.url);
    expect(await listedIds(http)).toEqual([]);
    expect((await http.get(`/v1/sessions/${old}`)).status).toBe(404);

    const fresh = await endedPipe(http, "echo fresh");
    const running = (await http.post("/v1/sessions", { command: ["sleep", "300"] })).json.id as string;
    clock.advance(HOUR - 1);
    await new Promise((r) => setTimeout(r, 200)); // a few passes of the pruner
    expect((await listedIds(http)).sort()).toEqual([fresh, running].sort());
    clock.advance(1);
    await waitFor(async () => !(await listedIds(http)).includes(fresh), 5_000, "the fresh one to age out");
    expect(await listedIds(http)).toEqual([running]);
  });

  // Found by a soak test: with maxAgeMs 60 s, ended sessions stayed up to 120 s (a pass a minute).
  it("checks a short maxAgeMs often enough that a session goes soon after its age is up", async () => {
    const gw = await testGateway({ config: { retention: { endedSessions: { maxAgeMs: 2_000 } } } });
    const http = api(gw.url);
    const ended = await endedPipe(http, "echo brief");
    const endedAt = Date.now();
    await waitFor(async () => !(await listedIds(http)).includes(ended), 10_000, "the ended session to go");
    expect(Date.now() - endedAt).toBeGreaterThanOrEqual(1_900);
  });

  it("rejects a bad rule at start with the field's path", async () => {
    await expect(testGateway({ config: { retention: { endedSessions: { maxAgeMs: -1 } } } })).rejects.toThrow(
      /retention\.endedSessions\.maxAgeMs/,
    );
  });
});
