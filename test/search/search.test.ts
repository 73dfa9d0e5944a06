import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SearchAnswer } from "../../src/protocol/index.js";
import { startGateway } from "../../src/server/gateway.js";
import type { Gateway } from "../../src/server/gateway.js";
import { createLogger } from "../../src/server/ops/logger.js";
import { cli } from "../cli/helpers.js";
import { join } from "node:path";
import { systemClock } from "../../src/core/clock.js";
import { EventLog, SqliteEventStore } from "../../src/log/index.js";
import { SearchEngine } from "../../src/log/search/search-engine.js";
import { SearchIndex } from "../../src/log/search/search-index.js";
import type { IndexBatch } from "../../src/log/search/search-messages.js";
import { SEARCH_DB_FILE, SearchStore } from "../../src/log/search/search-store.js";
import { api } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

/**
 * `GET /v1/search` on a real gateway (127.0.0.1:0, real SQLite): what the index finds in the
 * logs (output across chunks, ANSI stripped, agent messages), who may find it, paging, pruning,
 * and catching up after a restart from each session's cursor.
 */
const ADMIN = "search-admin-token-0123456789abcdef";
const ALICE = "search-alice-token-0123456789abcdef";
const VERA = "search-vera-token-0123456789abcdefgh";
const TOKENS = [
  { name: "alice", token: ALICE, role: "operator" as const },
  { name: "vera", token: VERA, role: "viewer" as const, sessions: ["shared-*"] },
];

function start(dataDir: string): Promise<Gateway> {
  return startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    token: ADMIN,
    config: { auth: { tokens: TOKENS } },
    logger: createLogger({ level: process.env["SEARCH_LOG"] === "1" ? "error" : "silent" }),
  });
}

let gw: Gateway;
let dataDir: string;
const ids: string[] = [];

async function stream(name: string, token = ADMIN): Promise<string> {
  const r = await api(gw.url, token).post("/v1/sessions", { kind: "stream", name });
  expect(r.status).toBe(201);
  return (r.json as { id: string }).id;
}

function print(id: string, text: string): number {
  return gw.core.events.get(id)!.appendOutput("stdout", text).seq;
}

/** Waits until what every log appended is published and indexed. */
async function indexed(): Promise<void> {
  for (const id of ids) await gw.core.events.get(id)?.whenPublished();
  await waitFor(() => gw.core.search.indexer.idle, 10_000, "the index caught up");
}

async function search(q: string, token = ADMIN, params = ""): Promise<SearchAnswer> {
  const r = await api(gw.url, token).get(`/v1/search?q=${encodeURIComponent(q)}${params}`);
  expect(r.status, r.text).toBe(200);
  return r.json as SearchAnswer;
}

beforeAll(async () => {
  dataDir = tempDir("switchboard-search-");
  gw = await start(dataDir);
  for (let i = 0; i < 40; i++) ids.push(await stream(i < 2 ? `shared-${i}` : `plain-${i}`));
  for (const [i, id] of ids.entries()) print(id, `session ${i} prints common words and a line\r\n`);
});

afterAll(async () => {
  await gw.close();
});

describe("GET /v1/search", () => {
  it("finds a word printed in one of many sessions, at its seq, with the match marked", async () => {
    const seq = print(ids[17]!, "the build said \x1b[1mzebrafish42\x1b[0m and stopped\n");
    await indexed();
    const { hits } = await search("zebrafish42");
    expect(hits.map((h) => [h.sessionId, h.seq, h.kind, h.name])).toEqual([[ids[17], seq, "output", "plain-17"]]);
    const [start, end] = hits[0]!.marks[0]!;
    expect(hits[0]!.snippet.slice(start, end)).toBe("zebrafish42");
    // Prefix search with a trailing *.
    expect((await search("zebrafi*")).hits.map((h) => h.sessionId)).toEqual([ids[17]]);
  });

  it("switchboard grep prints session:seq: snippet lines, and exits 1 on no match", async () => {
    const env = { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: ADMIN };
    const { hits } = await search("zebrafish42");
    const found = await cli(["grep", "zebrafish42"], env);
    expect([found.code, found.stdout]).toEqual([
      0,
      `plain-17:${hits[0]!.seq}: ${hits[0]!.snippet.replace(/\s+/g, " ").trim()}\n`,
    ]);
    const none = await cli(["grep", "--session", "plain-3", "zebrafish42"], env);
    expect([none.code, none.stdout]).toEqual([1, ""]);
  });

  it("finds a word split between two chunks of output", async () => {
    const first = print(ids[3]!, "a long line that ends in hyper");
    await indexed();
    print(ids[3]!, "cubeword and goes on\n");
    await indexed();
    const { hits } = await search("hypercubeword");
    expect(hits.map((h) => [h.sessionId, h.seq])).toEqual([[ids[3], first]]);
    expect((await search("cubeword")).hits).toEqual([]);
  });

  it("strips ANSI sequences, even cut between chunks", async () => {
    print(ids[4]!, "\x1b]0;title\x07\x1b[31mred\x1b[0mfox then \x1b[3");
    await indexed();
    print(ids[4]!, "2mgreenowl\x1b[0m\x1b[2K\rdone\n");
    await indexed();
    expect((await search("redfox")).hits.map((h) => h.sessionId)).toEqual([ids[4]]);
    expect((await search("greenowl")).hits.map((h) => h.sessionId)).toEqual([ids[4]]);
    expect((await search("2mgreenowl")).hits).toEqual([]);
    expect((await search("title")).hits).toEqual([]);
  });

  it("indexes an agent's message whole, not per delta, and a finished tool call", async () => {
    const log = gw.core.events.get(ids[5]!)!;
    const first = log.append({ type: "chat.delta", runId: "r1", text: "The quick brown" }).seq;
    log.append({ type: "chat.delta", runId: "r1", text: "ish marmot jumps" });
    log.append({ type: "tool", runId: "r1", toolCallId: "t1", status: "completed", title: "Read notes.txt" });
    log.append({ type: "chat.final", runId: "r1", text: "The quick brownish marmot jumps", stopReason: "end_turn" });
    await indexed();
    const { hits } = await search("brownish marmot");
    expect(hits.map((h) => [h.sessionId, h.seq, h.kind])).toEqual([[ids[5], first, "message"]]);
    expect((await search("notes.txt")).hits.map((h) => h.kind)).toEqual(["tool"]);
  });

  it("never returns a session the caller may not see, and filters before the limit", async () => {
    const mine = await stream("alices", ALICE);
    ids.push(mine);
    for (const id of ids.slice(0, 30)) print(id, "secretword everywhere\n");
    print(mine, "secretword in alice's own\n");
    await indexed();
    expect((await search("secretword", ALICE, "&limit=1")).hits.map((h) => h.sessionId)).toEqual([mine]);
    const vera = await search("secretword", VERA);
    expect(vera.hits.map((h) => h.sessionId).sort()).toEqual([ids[0], ids[1]].sort());
    expect((await search("secretword", ADMIN, "&limit=100")).hits).toHaveLength(31);
    // One session asked for by id: its own hits only; another's answers as if it did not exist.
    expect((await search("secretword", ADMIN, `&session=${ids[7]}`)).hits.map((h) => h.sessionId)).toEqual([ids[7]]);
    const other = await api(gw.url, ALICE).get(`/v1/search?q=secretword&session=${ids[7]}`);
    expect([other.status, other.json?.error?.code]).toEqual([404, "SESSION_NOT_FOUND"]);
  });

  it("hostile query strings never throw nor leak (property)", async () => {
    const words = [
      "secretword",
      "zebrafish42",
      "NEAR(",
      ")",
      '"',
      "*",
      "^",
      ":",
      "AND",
      "OR",
      "NOT",
      "-",
      "{",
      "}",
      "+",
      "'",
      "\\",
      "\0",
      "é",
      "💥",
    ];
    const q = fc
      .array(fc.oneof(fc.constantFrom(...words), fc.string({ maxLength: 6 })), { maxLength: 10 })
      .map((a) => a.join(fc.sample(fc.constantFrom(" ", "", "\t"), 1)[0]));
    await fc.assert(
      fc.asyncProperty(q, async (text) => {
        const r = await api(gw.url, VERA).get(`/v1/search?q=${encodeURIComponent(text.slice(0, 256))}`);
        expect(r.status, `${JSON.stringify(text)}: ${r.text}`).toBe(200);
        for (const h of (r.json as SearchAnswer).hits) expect(h.name).toMatch(/^shared-/);
      }),
      { numRuns: 80 },
    );
    const long = await api(gw.url, ADMIN).get(`/v1/search?q=${"a".repeat(257)}`);
    expect([long.status, long.json?.error?.code]).toEqual([400, "BAD_REQUEST"]);
  });

  it("pages through hits newest first with cursor, without duplicates", async () => {
    for (const id of ids.slice(10, 35)) print(id, "pagingword here\n");
    await indexed();
    const seen: string[] = [];
    let cursor = "";
    let pages = 0;
    for (; pages < 10; pages++) {
      const page = await search("pagingword", ADMIN, `&limit=10${cursor}`);
      seen.push(...page.hits.map((h) => h.sessionId));
      if (page.next === undefined) break;
      cursor = `&cursor=${page.next}`;
    }
    expect(pages).toBe(2);
    expect(seen).toEqual(ids.slice(10, 35).reverse());
  });

  it("removing a session removes its hits and its index rows", async () => {
    const id = await stream("doomed");
    ids.push(id);
    print(id, "doomedword printed\n");
    await indexed();
    expect((await search("doomedword")).hits).toHaveLength(1);
    const del = await api(gw.url, ADMIN).del(`/v1/sessions/${id}?purge=true&force=true`);
    expect(del.status, del.text).toBeLessThan(300);
    await indexed();
    expect((await search("doomedword")).hits).toEqual([]);
    expect(await gw.core.search.cursor(id)).toBeUndefined();
    expect((await gw.core.search.search("doomedword", { sessions: [id], limit: 5 })).hits).toEqual([]);
  });

  it("a batch sent again after a restart is indexed once, and retention's gap is skipped", () => {
    const dir = tempDir("switchboard-search-engine-");
    const store = new SearchStore(join(dir, SEARCH_DB_FILE));
    const engine = new SearchEngine(store);
    try {
      const text = (seq: number, t: string) => ({ seq, json: JSON.stringify({ type: "run.queued", seq, text: t }) });
      const batch = (since: number, first: number, entries: Array<{ seq: number; json: string }>): IndexBatch => ({
        t: "index",
        sessionId: "s",
        since,
        first,
        settle: true,
        entries,
        bytes: new Uint8Array(0),
      });
      expect(engine.index(batch(0, 1, [text(1, "alpha"), text(2, "bravo")]))).toBe(2);
      // The same batch again (the thread restarted before its answer arrived), and one that overlaps it.
      expect(engine.index(batch(0, 1, [text(1, "alpha"), text(2, "bravo")]))).toBe(2);
      expect(engine.index(batch(1, 1, [text(2, "bravo"), text(3, "charlie")]))).toBe(3);
      // A batch past the cursor that retention does not explain is refused: the loop reads again from 3.
      expect(engine.index(batch(5, 1, [text(6, "delta")]))).toBe(3);
      const all = (w: string) =>
        store.search(`"${w}"`, { sessions: undefined, before: Number.MAX_SAFE_INTEGER, limit: 5 }).map((h) => h.seq);
      expect([all("alpha"), all("bravo"), all("charlie"), all("delta")]).toEqual([[1], [2], [3], []]);
      // Retention dropped 4..9: indexing goes on at 10 and the documents before it are deleted.
      expect(engine.index(batch(9, 10, [text(10, "echo")]))).toBe(10);
      engine.finish();
      expect([all("alpha"), all("echo")]).toEqual([[], [10]]);
    } finally {
      store.close();
    }
  });

  it("a batch that fails is reported and its session kept for the next try, not dropped", async () => {
    const dir = tempDir("switchboard-search-fail-");
    const events = new EventLog({ store: new SqliteEventStore(join(dir, "log.db")), clock: systemClock });
    const errors: unknown[] = [];
    const index = new SearchIndex({ dataDir: dir, events, clock: systemClock, onError: (e) => errors.push(e) });
    try {
      const log = events.create("failing");
      index.indexer.start(["failing"]);
      log.appendOutput("stdout", "alpha beta\n");
      await log.whenPublished();
      await waitFor(() => index.indexer.idle, 10_000, "indexed");
      // What the thread answers when its commit failed (a full disk, say).
      index.indexer.take({ t: "indexed", sessionId: "failing", cursor: 0, error: "disk I/O error" });
      expect(String(errors[0])).toContain("disk I/O error");
      expect(index.indexer.idle).toBe(false);
    } finally {
      index.close();
      events.close();
    }
  });

  it("a search thread killed while it indexes is started again, and nothing is lost nor indexed twice", async () => {
    const dir = tempDir("switchboard-search-kill-");
    const events = new EventLog({ store: new SqliteEventStore(join(dir, "log.db")), clock: systemClock });
    const stops: string[] = [];
    const index = new SearchIndex({
      dataDir: dir,
      events,
      clock: systemClock,
      restartMs: 20,
      onThreadStopped: (reason) => stops.push(reason),
    });
    try {
      const logs = Array.from({ length: 4 }, (_, i) => events.create(`k-${i}`));
      index.indexer.start(logs.map((l) => l.sessionId));
      // ~60 KiB an entry: each is a batch of its own, so the thread is mid-way when it is killed.
      const filler = "lorem ipsum dolor sit amet\n".repeat(2200);
      const words: Array<[string, string]> = [];
      const write = (from: number, to: number) => {
        for (let round = from; round < to; round++) {
          for (const [i, log] of logs.entries()) {
            words.push([`w${i}x${round}`, log.sessionId]);
            log.appendOutput("stdout", `w${i}x${round} ${filler}`);
          }
        }
      };
      // Killed right after its first answer: the other batches posted to it are in it, unanswered.
      const take = index.indexer.take.bind(index.indexer);
      let killed: Promise<number> | undefined;
      index.indexer.take = (reply) => {
        take(reply);
        if (reply.t === "indexed" && killed === undefined) killed = index.killThread();
      };
      write(0, 12);
      await Promise.all(logs.map((l) => l.whenPublished()));
      await waitFor(() => killed, 10_000, "the thread's first answer");
      expect(index.indexer.idle).toBe(false);
      await killed;
      write(12, 16);
      await Promise.all(logs.map((l) => l.whenPublished()));
      await waitFor(() => index.indexer.idle, 20_000, "indexed after the restart");
      // A question asked of a query thread that dies is asked again of the next one.
      const asked = index.search("w1x3", { sessions: ["k-1"], limit: 5 });
      await index.killThread("query");
      expect((await asked).hits.map((h) => h.sessionId)).toEqual(["k-1"]);
      expect(stops).toHaveLength(2);
      for (const [word, sessionId] of words) {
        const { hits } = await index.search(word, { sessions: ["k-0", "k-1", "k-2", "k-3"], limit: 5 });
        expect(
          hits.map((h) => h.sessionId),
          word,
        ).toEqual([sessionId]);
      }
    } finally {
      index.close();
      events.close();
    }
  });

  it("after a restart, indexes from each session's cursor what it missed, once", async () => {
    print(ids[20]!, "beforestop word\n");
    await indexed();
    // The indexer stops; the log goes on; the gateway stops with that unindexed.
    gw.core.search.indexer.close();
    print(ids[20]!, "whilestopped word\n");
    await gw.close();
    gw = await start(dataDir);
    await indexed();
    expect((await search("whilestopped")).hits.map((h) => h.sessionId)).toEqual([ids[20]]);
    expect((await search("beforestop")).hits.map((h) => h.sessionId)).toEqual([ids[20]]);
  });
});
