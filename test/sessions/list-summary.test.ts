/**
 * `GET /v1/sessions` answers from each session's kept list entry (sessions/list-summary.ts): the
 * entry must change with everything the list shows. The oracle is the session's info serialised
 * afresh (`listedJson(info())`), what every request did before the entries were kept.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ManualClock } from "../../src/core/clock.js";
import { ATTENTION_REASONS } from "../../src/protocol/index.js";
import type { Actor, SessionInfo } from "../../src/protocol/index.js";
import { startGateway } from "../../src/server/gateway.js";
import type { Gateway } from "../../src/server/gateway.js";
import { createLogger } from "../../src/server/ops/logger.js";
import { listedJson } from "../../src/sessions/list-summary.js";
import type { Session } from "../../src/sessions/session.js";
import type { StreamSession } from "../../src/sessions/stream-session.js";
import type { TerminalSession } from "../../src/sessions/terminal-session.js";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

let gw: Gateway;
/**
 * The gateway's clock moves only when a test says: a change in the same millisecond as the last
 * one keeps `lastActivityAt`, so a change the session does not tell its entry of is seen stale.
 */
const clock = new ManualClock();
let http: ReturnType<typeof api>;

beforeAll(async () => {
  // One gateway for the file.
  gw = await startGateway({
    host: "127.0.0.1",
    port: 0,
    token: TEST_TOKEN,
    dataDir: tempDir(),
    logger: createLogger({ level: "silent" }),
    clock,
    config: { limits: { sessions: 500, sessionsPerToken: 500 } },
  });
  http = api(gw.url);
});

/** The session's list entry afresh: the oracle. */
function fresh(id: string): SessionInfo {
  const session = gw.core.sessions.get(id);
  if (session === undefined) throw new Error(`no session ${id}`);
  return JSON.parse(listedJson(session.info())) as SessionInfo;
}

/** Every session's list entry afresh, in the list's order. */
function freshList(): SessionInfo[] {
  return gw.core.sessions
    .list()
    .sort((a, b) => a.record.createdAt - b.record.createdAt || (a.id < b.id ? -1 : 1))
    .map((s) => JSON.parse(listedJson(s.info())) as SessionInfo);
}

async function listed(): Promise<SessionInfo[]> {
  const r = await http.get("/v1/sessions?limit=1000");
  expect(r.status, r.text).toBe(200);
  return (r.json as { sessions: SessionInfo[] }).sessions;
}

/**
 * Waits until the session's fresh entry shows `shows` (what the step changed, once its events
 * are published), then until a list taken while the fresh entry held still (the PTY's echo and
 * the program's output come apart) shows the same entry: a kept entry left stale never does.
 */
async function nextListShows(id: string, shows: (info: SessionInfo) => boolean, what: string): Promise<void> {
  await waitFor(
    () => {
      // Output is taken in pieces on the clock (OutputCoalescer).
      clock.advance(5);
      return shows(fresh(id));
    },
    10_000,
    what,
  );
  await waitFor(
    async () => {
      const before = fresh(id);
      const entry = (await listed()).find((s) => s.id === id);
      expect(fresh(id)).toEqual(before);
      expect(entry, what).toEqual(before);
      return true;
    },
    10_000,
    what,
  );
}

describe("the session list's kept entries", () => {
  it("shows in the next list each change of a terminal and a stream: output, control, attention, viewers, size, exit", async () => {
    const cat = await http.post("/v1/sessions", { command: ["cat"], pty: true, cols: 80, rows: 24 });
    expect(cat.status, cat.text).toBe(201);
    const id = cat.json.id as string;
    await listed(); // every entry kept once before the changes
    const post = async (path: string, body: unknown) => {
      const r = await http.post(`/v1/sessions/${id}${path}`, body);
      expect(r.status, r.text).toBeLessThan(300);
    };

    await post("/input", { data: "first line\n" });
    await nextListShows(id, (s) => s.lastLine === "first line", "a new output line");
    await post("/control", { action: "acquire" });
    await nextListShows(id, (s) => s.controller !== null, "a control holder");
    await post("/input", { data: "\x07\n" });
    await nextListShows(id, (s) => s.attention?.reason === "bell", "attention (a bell)");
    await post("/seen", {});
    await nextListShows(id, (s) => s.attention === undefined, "attention seen");
    const viewer = new WebSocket(`${gw.url.replace("http", "ws")}/ws/session/${id}`, {
      headers: { authorization: `Bearer ${gw.token}` },
    });
    await nextListShows(id, (s) => s.viewers === 1 && s.watchers.length === 1, "a viewer");
    viewer.close();
    await nextListShows(id, (s) => s.viewers === 0 && s.watchers.length === 0, "the viewer gone");
    await post("/resize", { cols: 100, rows: 30 });
    await nextListShows(id, (s) => s.cols === 100 && s.rows === 30, "a resize");
    await post("/control", { action: "release" });
    await nextListShows(id, (s) => s.controller === null, "control released");
    await post("/input", { eof: true });
    await nextListShows(id, (s) => s.state === "exited" && s.exitCode === 0, "its exit");

    const stream = await http.post("/v1/sessions", { kind: "stream", name: "feed" });
    const streamId = stream.json.id as string;
    await listed();
    const append = async (body: unknown) => {
      const r = await http.post(`/v1/sessions/${streamId}/events`, body);
      expect(r.status, r.text).toBeLessThan(300);
    };
    await append({ type: "output", data: { data: "built\n" } });
    await nextListShows(streamId, (s) => s.lastLine === "built", "a stream's output line");
    await append({ type: "progress", data: { done: 1 } });
    await nextListShows(streamId, (s) => s.head === fresh(streamId).head && s.head >= 2, "a custom event");
    await append({ type: "exit", data: { exitCode: 3 } });
    await nextListShows(streamId, (s) => s.state === "exited" && s.exitCode === 3, "a stream's exit");
  });

  it("lists what every session's info gives afresh after any run of session operations", async () => {
    const owner = { id: "token:admin", name: "admin" };
    const by: Actor = { name: "admin", role: "admin" };
    const cat = await http.post("/v1/sessions", { command: ["cat"], pty: true });
    const terminal = gw.core.sessions.get(cat.json.id as string) as TerminalSession;
    const unwatch: Array<() => void> = [];

    // One of the newest few: the operations of a run meet on the same sessions.
    const pick = <S extends Session>(sessions: S[], n: number): S | undefined =>
      sessions.length === 0 ? undefined : sessions[sessions.length - 1 - (n % Math.min(3, sessions.length))];
    const streams = () =>
      gw.core.sessions.list().filter((s): s is StreamSession => s.record.kind === "stream" && s.running);
    const everyEntryIsFresh = () => {
      for (const s of gw.core.sessions.list()) expect(s.listEntry().toString(), s.id).toBe(listedJson(s.info()));
    };

    type Op = { run: () => unknown };
    const op = fc.oneof(
      fc.string({ maxLength: 8 }).map((name): Op => ({ run: () => gw.core.sessions.createStream(owner, `p-${name}`) })),
      fc.tuple(fc.nat(), fc.string({ maxLength: 12 }), fc.boolean()).map(([n, text, line]): Op => ({
        run: () => pick(streams(), n)?.appendOutput("stdout", line ? `${text}\n` : text),
      })),
      fc.nat().map((n): Op => ({ run: () => pick(streams(), n)?.appendExternal([{ type: "tick", data: n }]) })),
      fc
        .tuple(fc.nat(), fc.integer({ min: 0, max: 255 }))
        .map(([n, code]): Op => ({ run: () => pick(streams(), n)?.end(code, null) })),
      fc.nat().map((n): Op => ({
        run: () => {
          const ended = gw.core.sessions.list().filter((s) => !s.running);
          const s = pick(ended, n);
          return s && gw.core.sessions.remove(s.id, by);
        },
      })),
      fc
        .tuple(fc.nat(), fc.constantFrom("alice", "bob"))
        .map(([n, name]): Op => ({ run: () => unwatch.push(pick(gw.core.sessions.list(), n)!.watch(name)) })),
      fc.nat().map((n): Op => ({ run: () => unwatch.splice(n % Math.max(1, unwatch.length), 1)[0]?.() })),
      fc.tuple(fc.nat(), fc.constantFrom("alice", "bob")).map(([n, name]): Op => ({
        run: () =>
          pick(gw.core.sessions.list(), n)?.lease.acquire({ key: name, actor: { name, role: "operator" } }, true),
      })),
      fc
        .tuple(fc.nat(), fc.constantFrom("alice", "bob"))
        .map(([n, name]): Op => ({ run: () => pick(gw.core.sessions.list(), n)?.lease.release(name) })),
      fc
        .tuple(fc.nat(), fc.constantFrom(...ATTENTION_REASONS), fc.option(fc.string({ maxLength: 10 })))
        .map(([n, reason, text]): Op => ({
          run: () => pick(gw.core.sessions.list(), n)?.setAttention(reason, text ?? undefined),
        })),
      fc.nat().map((n): Op => ({ run: () => pick(gw.core.sessions.list(), n)?.seen(by) })),
      fc.string({ maxLength: 10 }).map((text): Op => ({
        run: () => terminal.running && terminal.write(new TextEncoder().encode(`${text}\n`), by),
      })),
      fc
        .tuple(fc.integer({ min: 20, max: 200 }), fc.integer({ min: 5, max: 60 }))
        .map(([cols, rows]): Op => ({ run: () => terminal.running && terminal.resize(cols, rows, by) })),
      // Time for the log to publish (head, output bytes) and the PTY to echo; the clock moves.
      fc.integer({ min: 1, max: 30 }).map((ms): Op => ({ run: () => new Promise((r) => setTimeout(r, ms)) })),
      fc.integer({ min: 1, max: 50 }).map((ms): Op => ({ run: () => clock.advance(ms) })),
    );

    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        everyEntryIsFresh();
        for (const o of ops) {
          // Checked at once too: the log publishes what was appended a moment later (a microtask,
          // or once the store is free), and the list must show the new last line before that.
          const done = o.run();
          everyEntryIsFresh();
          if (done instanceof Promise) {
            await done;
            everyEntryIsFresh();
          }
        }
        for (const done of unwatch.splice(0)) done();
        // Once nothing moves (published, echoed), the list over HTTP is the fresh one.
        await waitFor(
          async () => {
            clock.advance(5);
            const before = JSON.stringify(freshList());
            const answer = await listed();
            return JSON.stringify(answer) === before && JSON.stringify(freshList()) === before;
          },
          10_000,
          "the listed sessions to be the fresh ones",
        );
      }),
      { numRuns: 40 },
    );
  });
});

afterAll(async () => {
  await gw?.close({ sessions: "end" });
});
