import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog, LOG_BACKLOG_PAUSE_BYTES, LOG_BACKLOG_RESUME_BYTES, SqliteEventStore } from "../../src/log/index.js";
import { FILTERED_SCAN_EVENTS } from "../../src/log/log-reader.js";
import { RING_IDLE_MS } from "../../src/log/session-log.js";
import { OutputEntry } from "../../src/log/output-entry.js";
import { PIECE_BYTES, BufferPool } from "../../src/core/buffer-pool.js";
import { SwitchboardError } from "../../src/protocol/index.js";
import { afterTest } from "../helpers/cleanup.js";
import { tempDir } from "../helpers/tmp.js";
import { openLog } from "./helpers.js";

const custom = (i: number) => ({ type: "custom" as const, name: "n", data: i });

describe("session log", () => {
  it("assigns contiguous seqs from 1 and reads after a position", () => {
    const events = openLog(tempDir());
    const log = events.create("s1");
    for (let i = 0; i < 10; i++) log.append(custom(i));
    events.flush();
    const { entries, head, next } = log.read(4);
    expect(entries.map((e) => e.seq)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(JSON.parse(entries[0]!.json)).toMatchObject({ seq: 5, type: "custom", data: 4 });
    expect(head).toBe(10);
    expect(next).toBe(10);
  });

  it("hands a tap the published events of its types only, and makes no event object for a tap that does not want it", () => {
    const events = openLog(tempDir());
    const errors: Array<[string, string]> = [];
    const all: string[] = [];
    events.tap((sessionId, event) => errors.push([sessionId, event.type]), new Set(["chat.error"]));
    const built = vi.spyOn(OutputEntry.prototype, "event");
    const log = events.create("s1");
    log.appendOutputBytes("stdout", new TextEncoder().encode("hello"), false);
    log.append({ type: "chat.error", runId: "r", code: "AGENT_FAILED", message: "no" });
    events.flush();
    expect(errors).toEqual([["s1", "chat.error"]]);
    // Output is a JSON object only when someone asks (a PTY flood must not pay for a chat.error tap).
    expect(built).not.toHaveBeenCalled();
    const untap = events.tap((_sessionId, event) => all.push(event.type));
    log.appendOutputBytes("stdout", new TextEncoder().encode("again"), false);
    events.flush();
    expect(all).toEqual(["output"]);
    expect(built).toHaveBeenCalledTimes(1);
    untap();
    built.mockRestore();
  });

  it("pages with limit and filters by type while advancing next past other types", () => {
    const events = openLog(tempDir());
    const log = events.create("s1");
    for (let i = 0; i < 5; i++) {
      log.append(custom(i));
      log.append({ type: "exit", exitCode: i, signal: null });
    }
    events.flush();
    const page = log.read(0, { limit: 2, types: new Set(["exit"]) });
    expect(page.entries.map((e) => e.seq)).toEqual([2, 4]);
    expect(page.next).toBe(4);
    const rest = log.read(page.next, { types: new Set(["exit"]) });
    expect(rest.entries.map((e) => e.seq)).toEqual([6, 8, 10]);
    expect(rest.next).toBe(10);
  });

  it("examines a bounded stretch per filtered read: a sparse filter over a long log answers with pages that move on", () => {
    const events = openLog(tempDir(), undefined, { entries: 16, bytes: 64 * 1024 });
    const log = events.create("s1");
    const total = 2 * FILTERED_SCAN_EVENTS + 100;
    for (let i = 0; i < total; i++) log.append(custom(i));
    log.append({ type: "exit", exitCode: 0, signal: null });
    events.flush();
    const exitOnly = new Set(["exit"]);
    const first = log.read(0, { types: exitOnly });
    expect(first).toMatchObject({ entries: [], next: FILTERED_SCAN_EVENTS, head: total + 1 });
    const pages = [first];
    while (pages.at(-1)!.next < log.head) pages.push(log.read(pages.at(-1)!.next, { types: exitOnly }));
    expect(pages.map((p) => p.next)).toEqual([FILTERED_SCAN_EVENTS, 2 * FILTERED_SCAN_EVENTS, total + 1]);
    expect(pages.flatMap((p) => p.entries.map((e) => e.seq))).toEqual([total + 1]);
    // Unfiltered, and filtered where the filter matches: pages end by limit as before.
    expect(log.read(0, { limit: 3 }).next).toBe(3);
    expect(log.read(0, { limit: 3, types: new Set(["custom"]) }).next).toBe(3);
  });

  it("gives back the hot ring of a log that appended nothing for a while; everything is still read, from the store", () => {
    const clock = new ManualClock();
    const events = new EventLog({ store: new SqliteEventStore(join(tempDir(), "log.db")), clock });
    afterTest(() => events.close());
    const log = events.create("s1");
    const busy = events.create("s2");
    const burst = (l: typeof log) => {
      for (let i = 0; i < 100; i++) l.appendOutputBytes("stdout", Buffer.from(`line ${i}\n`), false);
      events.flush();
    };
    burst(log);
    burst(busy);
    const hot = log.hotBytes;
    expect(hot).toBeGreaterThan(0);
    clock.advance(RING_IDLE_MS);
    // Appended since the previous check (none): kept.
    expect(log.hotBytes).toBe(hot);
    burst(busy);
    clock.advance(RING_IDLE_MS);
    expect(log.hotBytes).toBe(0);
    expect(busy.hotBytes).toBeGreaterThan(0);
    const text = log
      .read(0)
      .entries.map((e) => (e as OutputEntry).bytes.toString())
      .join("");
    expect(text).toBe(Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(""));
    // A log that appends again keeps a ring again, from there.
    burst(log);
    expect(log.hotBytes).toBe(hot);
    expect(log.read(0).entries).toHaveLength(200);
    clock.advance(RING_IDLE_MS);
    expect(busy.hotBytes).toBe(0);
  });

  it("keeps in a copy's hot ring only what the store has not written, and reads the rest from the store, every byte once", () => {
    const events = openLog(tempDir());
    const owner = events.create("s1");
    const copy = events.create("s2");
    copy.markCopy(() => new SwitchboardError("WRONG_SESSION_KIND", "a copy"));
    const lines = Array.from({ length: 100 }, (_, i) => `line ${i}\n`);
    for (const line of lines) owner.appendOutputBytes("stdout", Buffer.from(line), false);
    events.flush();
    for (const e of owner.read(0, { limit: 1000 }).entries) copy.appendCopy(e as OutputEntry);
    // Appended, not written yet: the ring holds it (nowhere else has it).
    expect(copy.hotBytes).toBeGreaterThan(0);
    events.flush();
    expect(owner.hotBytes).toBeGreaterThan(0);
    expect(copy.hotBytes).toBe(0);
    const text = copy
      .read(0, { limit: 1000 })
      .entries.map((e) => (e as OutputEntry).bytes.toString())
      .join("");
    expect(text).toBe(lines.join(""));
  });

  it("counts the bytes not yet durable, and tells when the durable position moves", () => {
    const events = openLog(tempDir());
    const log = events.create("s1");
    let told = 0;
    const stop = log.backlog.onDurable(() => told++);
    const sizes: number[] = [];
    for (let i = 0; i < 3000; i++) sizes.push(log.appendOutputBytes("pty", new Uint8Array(100 + (i % 7)), false).size);
    log.append(custom(1));
    const expected = sizes.reduce((a, b) => a + b, 0);
    expect(log.backlog.bytes).toBeGreaterThan(expected);
    events.flush();
    expect(log.backlog.bytes).toBe(0);
    expect(told).toBeGreaterThan(0);
    // Count retention trims entries before they are durable: the count still drains to 0.
    const small = openLog(tempDir(), { maxEvents: 10, maxBytes: 1 << 30 });
    const trimmed = small.create("s2");
    for (let i = 0; i < 100; i++) trimmed.append(custom(i));
    expect(trimmed.backlog.bytes).toBeGreaterThan(0);
    small.flush();
    expect(trimmed.backlog.bytes).toBe(0);
    stop();
  });

  it("caughtUp() waits while the backlog is over the bound, until the store is down to the resume mark", async () => {
    const events = openLog(tempDir());
    const log = events.create("s1");
    await log.backlog.caughtUp(); // nothing behind: at once
    const piece = new Uint8Array(1024 * 1024).fill(0x61);
    for (let i = 0; i < 17; i++) log.appendOutputBytes("stdout", piece, false);
    expect(log.backlog.bytes).toBeGreaterThan(LOG_BACKLOG_PAUSE_BYTES);
    let done = false;
    const waiting = log.backlog.caughtUp().then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    events.flush();
    await waiting;
    expect(log.backlog.bytes).toBeLessThanOrEqual(LOG_BACKLOG_RESUME_BYTES);
  });

  it("a removed log refuses appends, releases producers waiting for the store and is deleted with the next commit", async () => {
    const dir = tempDir();
    const events = openLog(dir);
    const log = events.create("gone");
    events.create("kept").append(custom(1));
    const piece = new Uint8Array(1024 * 1024).fill(0x61);
    for (let i = 0; i < 17; i++) log.appendOutputBytes("stdout", piece, false);
    const waiting = log.backlog.caughtUp();
    events.remove("gone");
    await waiting; // without the release it would wait for a durable mark that never comes
    expect(() => log.append(custom(2))).toThrow(SwitchboardError);
    expect(events.get("gone")).toBeUndefined();
    events.close();
    const db = new Database(join(dir, "log.db"), { readonly: true });
    const rows = db.prepare("SELECT session_id, COUNT(*) AS n FROM events GROUP BY session_id").all();
    db.close();
    expect(rows).toEqual([{ session_id: "kept", n: 1 }]);
  });

  it("assigns output offsets from the byte counter", () => {
    const events = openLog(tempDir());
    const log = events.create("s1");
    const a = log.appendOutput("stdout", "héllo");
    const b = log.appendOutput("stderr", "//8=", "base64");
    expect(a).toMatchObject({ offset: 0, data: "héllo" });
    expect(b).toMatchObject({ offset: 6, enc: "base64" });
    expect(log.appendedOutputBytes).toBe(8);
    // Readers see output once it is durable.
    expect(log.outputBytes).toBe(0);
    events.flush();
    expect(log.outputBytes).toBe(8);
    const slices = log.readOutput(3);
    expect(Buffer.concat(slices.map((s) => s.bytes))).toEqual(
      Buffer.concat([Buffer.from("héllo").subarray(3), Buffer.from([0xff, 0xff])]),
    );
  });

  it("keeps short output given as text or base64 in memory of its own size, not a view of Node's shared buffer pool (regression: each entry in the hot ring held an 8 KiB slab)", () => {
    const events = openLog(tempDir());
    const log = events.create("s1");
    log.appendOutput("stdout", "k");
    log.appendOutput("stdout", "héllo\n");
    log.appendOutput("stderr", "//8=", "base64");
    events.flush();
    const kept = log.read(0).entries as OutputEntry[];
    expect(kept.map((e) => e instanceof OutputEntry)).toEqual([true, true, true]);
    expect(kept.map((e) => e.bytes.buffer.byteLength)).toEqual([1, 7, 2]);
    expect(kept.map((e) => e.data)).toEqual(["k", "héllo\n", "//8="]);
  });

  it("stores output given as views of part of a larger buffer exactly, as the coalescer hands it over", () => {
    const dir = tempDir();
    const first = openLog(dir, undefined, { entries: 2, bytes: 1 << 20 });
    const log = first.create("s1");
    first.saveSession({ id: "s1", kind: "terminal", state: "running", createdAt: 1, meta: {} });
    const expected: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      // A 64 KiB buffer of which the piece is a part, as OutputCoalescer fills it.
      const memory = new Uint8Array(64 * 1024);
      memory.fill(0x21 + i);
      const piece = memory.subarray(i, 40_000 + i * 1000);
      log.appendOutputBytes("pty", piece, false);
      expected.push(Buffer.from(piece));
    }
    first.close();
    const again = openLog(dir).load()[0]!.log;
    const slices = again.readOutput(0);
    expect(slices.map((s) => s.bytes.length)).toEqual(expected.map((b) => b.length));
    expect(Buffer.concat(slices.map((s) => s.bytes))).toEqual(Buffer.concat(expected));
  });

  it("keeps output as bytes: JSON only on demand, the same after a restart, and reads bounded by bytes", () => {
    const dir = tempDir();
    const first = openLog(dir, undefined, { entries: 4, bytes: 1 << 20 });
    const log = first.create("s1");
    first.saveSession({ id: "s1", kind: "terminal", state: "running", createdAt: 1, meta: {} });
    const text = log.appendOutputBytes("pty", Buffer.from('a "quoted" line\r\n\u001b[0m'), false);
    const binary = log.appendOutputBytes("pty", Uint8Array.of(0xff, 0xfe, 0x41), true);
    for (let i = 0; i < 20; i++) log.appendOutputBytes("stdout", Buffer.alloc(1000, 0x30 + (i % 10)), false);
    first.flush();
    const expectJson = (json: string, offset: number) => {
      expect(JSON.parse(json)).toEqual({
        seq: 1,
        ts: 1_700_000_000_000,
        type: "output",
        stream: "pty",
        offset,
        data: 'a "quoted" line\r\n\u001b[0m',
      });
    };
    expectJson(text.json, 0);
    expect(JSON.parse(binary.json)).toMatchObject({
      seq: 2,
      offset: 21,
      enc: "base64",
      data: Buffer.from([0xff, 0xfe, 0x41]).toString("base64"),
    });
    first.close();

    const again = openLog(dir, undefined, { entries: 4, bytes: 1 << 20 }).load()[0]!.log;
    // Read back from SQLite (the ring of a restarted log is empty): the same events, the same JSON.
    const read = again.read(0).entries;
    expect(read).toHaveLength(22);
    expectJson(read[0]!.json, 0);
    expect(read[1]!.json).toBe(binary.json);
    // Bounded reads: whole events until the bytes asked for are covered, from the middle of one.
    const page = again.readOutput(100, 2500);
    expect(page.map((s) => s.offset)).toEqual([100, 1024, 2024]);
    expect(Buffer.concat(page.map((s) => s.bytes))).toEqual(
      Buffer.concat([Buffer.alloc(924, 0x30), Buffer.alloc(1000, 0x31), Buffer.alloc(1000, 0x32)]),
    );
  });

  it("never returns a gap in output, even when the store's read stops at its row cap before the ring", () => {
    const events = openLog(tempDir(), undefined, { entries: 8, bytes: 1 << 20 });
    const log = events.create("s1");
    const n = 10_050; // more tiny events than one store read visits (OUTPUT_SCAN_MAX_ROWS)
    for (let i = 0; i < n; i++) log.appendOutputBytes("stdout", Uint8Array.of(0x61 + (i % 26)), false);
    events.flush();
    let offset = 0;
    const got: Uint8Array[] = [];
    while (offset < n) {
      const slices = log.readOutput(offset, 1 << 20);
      expect(slices.length).toBeGreaterThan(0);
      for (const slice of slices) {
        expect(slice.offset).toBe(offset);
        got.push(slice.bytes);
        offset += slice.bytes.length;
      }
    }
    expect(Buffer.concat(got)).toEqual(Buffer.from(Array.from({ length: n }, (_, i) => 0x61 + (i % 26))));
  });

  it("reads logs written before output was stored as bytes (JSON in body, no data column)", () => {
    const dir = tempDir();
    const old = new Database(join(dir, "log.db"));
    old.exec(`
      CREATE TABLE sessions (id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL, meta TEXT NOT NULL);
      INSERT INTO sessions VALUES ('s1', 'stream', 'running', 1, '{}');
      CREATE TABLE events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, out_start INTEGER, out_end INTEGER, body TEXT NOT NULL, PRIMARY KEY (session_id, seq)) WITHOUT ROWID;
    `);
    const insert = old.prepare("INSERT INTO events VALUES ('s1', ?, 'output', ?, ?, ?)");
    insert.run(1, 0, 5, JSON.stringify({ seq: 1, ts: 7, type: "output", stream: "stdout", offset: 0, data: "héllo" }));
    // The old layout had `enc` after `data`.
    insert.run(
      2,
      6,
      8,
      JSON.stringify({ seq: 2, ts: 8, type: "output", stream: "stdout", offset: 6, data: "//8=", enc: "base64" }),
    );
    old.close();

    const events = openLog(dir);
    const log = events.load()[0]!.log;
    expect(log.outputBytes).toBe(8);
    expect(log.read(0).entries.map((e) => JSON.parse(e.json) as unknown)).toMatchObject([
      { data: "héllo" },
      { enc: "base64" },
    ]);
    expect(Buffer.concat(log.readOutput(1).map((s) => s.bytes))).toEqual(
      Buffer.concat([Buffer.from("héllo").subarray(1), Buffer.from([0xff, 0xff])]),
    );
    log.appendOutputBytes("stdout", Buffer.from("new"), false);
    events.flush();
    expect(Buffer.concat(log.readOutput(6).map((s) => s.bytes)).toString("latin1")).toBe("\xff\xffnew");
    events.close();
  });

  it("reads across the store and the ring once old entries are evicted", () => {
    const events = openLog(tempDir(), undefined, { entries: 8, bytes: 1 << 20 });
    const log = events.create("s1");
    for (let i = 0; i < 100; i++) {
      log.append(custom(i));
      if (i % 7 === 0) events.flush();
    }
    events.flush();
    const all = log.read(0).entries.map((e) => e.seq);
    expect(all).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(log.read(50, { limit: 5 }).entries.map((e) => e.seq)).toEqual([51, 52, 53, 54, 55]);
  });

  it("keeps every event across a restart", () => {
    const dir = tempDir();
    const first = openLog(dir);
    const log = first.create("s1");
    first.saveSession({ id: "s1", kind: "stream", state: "running", createdAt: 1, meta: { name: "x" } });
    for (let i = 0; i < 20; i++) log.appendOutput("stdout", `line ${i}\n`);
    first.close();

    const second = openLog(dir);
    const [loaded] = second.load();
    expect(loaded!.session).toMatchObject({ id: "s1", meta: { name: "x" } });
    expect(loaded!.log.head).toBe(20);
    expect(loaded!.log.outputBytes).toBe(log.outputBytes);
    const next = loaded!.log.append(custom(99));
    expect(next.seq).toBe(21);
    second.flush();
    expect(loaded!.log.read(18).entries.map((e) => e.seq)).toEqual([19, 20, 21]);
    second.close();
  });

  it("trims by count and answers HISTORY_TRIMMED for positions before the retained range", () => {
    const events = openLog(tempDir(), { maxEvents: 10, maxBytes: 1 << 30 });
    const log = events.create("s1");
    for (let i = 0; i < 25; i++) log.append(custom(i));
    events.flush();
    expect(log.first).toBe(16);
    expect(log.read(15).entries.map((e) => e.seq)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
    const err = (() => {
      try {
        log.read(3);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(SwitchboardError);
    expect(err).toMatchObject({ code: "HISTORY_TRIMMED", details: { first: 16, head: 25 } });
  });

  it("answers HISTORY_TRIMMED with where output starts now (first) and ends (head) for an output offset retention dropped", () => {
    const events = openLog(tempDir(), { maxEvents: 3, maxBytes: 1 << 30 });
    const log = events.create("s1");
    for (let i = 0; i < 6; i++) log.appendOutput("stdout", "abcd");
    events.flush();
    let err: unknown;
    try {
      log.readOutput(0);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "HISTORY_TRIMMED", details: { first: 12, head: 24 } });
  });

  it("trims by bytes once entries are durable and survives a restart with the trimmed range", () => {
    const dir = tempDir();
    const events = openLog(dir, { maxEvents: 1_000_000, maxBytes: 2000 }, { entries: 4, bytes: 1 << 20 });
    const log = events.create("s1");
    events.saveSession({ id: "s1", kind: "stream", state: "running", createdAt: 1, meta: {} });
    for (let i = 0; i < 50; i++) {
      log.append({ type: "custom", name: "n", data: "x".repeat(100) });
      events.flush();
    }
    expect(log.first).toBeGreaterThan(1);
    const retained = log.read(log.first - 1).entries;
    const bytes = retained.reduce((n, e) => n + e.json.length, 0);
    expect(bytes).toBeLessThanOrEqual(2000);
    expect(retained.at(-1)!.seq).toBe(50);
    events.close();
    const again = openLog(dir);
    const [loaded] = again.load();
    expect(loaded!.log.first).toBe(log.first);
    expect(loaded!.log.head).toBe(50);
    again.close();
  });

  it("trims output by bytes to the configured size, however many trims ran (regression: row sizes counted apart from entry sizes drifted until only the newest event was kept)", () => {
    const maxBytes = 20_000;
    const events = openLog(tempDir(), { maxEvents: 1_000_000, maxBytes }, { entries: 4, bytes: 1 << 20 });
    const log = events.create("s1");
    for (let batch = 0; batch < 40; batch++) {
      for (let i = 0; i < 100; i++) log.appendOutputBytes("stdout", Buffer.from(`line ${batch}-${i}\n`), false);
      events.flush();
    }
    const retained = log.read(log.first - 1).entries;
    const bytes = retained.reduce((n, e) => n + e.size, 0);
    expect(bytes).toBeLessThanOrEqual(maxBytes);
    // Within one entry of the limit: retention keeps what the policy allows, not less.
    expect(bytes).toBeGreaterThan(maxBytes - retained[0]!.size - 1);
    expect(retained.at(-1)!.seq).toBe(4000);
  });

  it("rejects a position past the head", () => {
    const log = openLog(tempDir()).create("s1");
    log.append(custom(1));
    expect(() => log.read(5)).toThrowError(/past the head/);
  });

  it("reads exactly what was appended, whatever the flushes, ring size and page size (property)", () => {
    // One store for every run, a session of its own each, as a gateway's store holds many: a
    // store per run started (and on close waited for) a writer thread each, most of this test's time.
    const store = new SqliteEventStore(join(tempDir(), "property.db"));
    let n = 0;
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant("append" as const), fc.constant("flush" as const)), {
          minLength: 1,
          maxLength: 200,
        }),
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 50 }),
        (ops, ringEntries, page) => {
          // Not closed: closing an EventLog closes its store, which the next runs write to.
          const events = new EventLog({
            store,
            clock: new ManualClock(),
            ringMaxEntries: ringEntries,
            ringMaxBytes: 1 << 20,
          });
          const log = events.create(`s${n++}`);
          let appended = 0;
          for (const op of ops) {
            if (op === "append") log.append(custom(appended++));
            else events.flush();
          }
          events.flush();
          const seen: number[] = [];
          let since = 0;
          for (;;) {
            const r = log.read(since, { limit: page });
            seen.push(...r.entries.map((e) => (JSON.parse(e.json) as { data: number }).data));
            if (r.entries.length === 0 || r.next === since) break;
            since = r.next;
          }
          expect(seen).toEqual(Array.from({ length: appended }, (_, i) => i));
        },
      ),
      { numRuns: 60 },
    );
    store.close();
  }, 120_000);
});

describe("session log: pooled output buffers", () => {
  /** A full-size piece from `pool` whose every byte is `fill`. */
  const piece = (pool: BufferPool, fill: number): Uint8Array => pool.take().fill(fill);

  it("gives an entry's buffer back once it is durable, published and out of the hot ring — not before", () => {
    const events = openLog(tempDir(), undefined, { entries: 2, bytes: 64 * PIECE_BYTES });
    const log = events.create("s1");
    const pool = new BufferPool({ max: 8 });
    const published: number[] = [];
    log.subscribe((e) => published.push(e.seq));
    const entries = [1, 2, 3, 4, 5].map((n) => log.appendOutputBytes("pty", piece(pool, 0x60 + n), false, pool));
    // Queued, not yet durable: the store's queue and the listeners still need every one.
    expect(pool.size).toBe(0);
    events.flush();
    expect(published).toEqual([1, 2, 3, 4, 5]);
    // The ring keeps the newest 2: the 3 before them went back, and reading one of those is a bug.
    expect(pool.size).toBe(3);
    expect(() => entries[0]!.bytes).toThrow(/read after its bytes were released/);
    expect(entries[0]!.size).toBe(PIECE_BYTES + 96);
    expect(entries[0]!.outEnd).toBe(PIECE_BYTES);
    expect(entries[4]!.bytes[0]).toBe(0x65);
    // The log still has all of it: the older ones come back from the store.
    const read = log.readOutput(0, 8 * PIECE_BYTES);
    expect(
      Buffer.concat(read.map((s) => s.bytes)).equals(
        Buffer.concat([1, 2, 3, 4, 5].map((n) => Buffer.alloc(PIECE_BYTES, 0x60 + n))),
      ),
    ).toBe(true);
  });

  it("keeps a held entry's buffer after it left the ring, until the hold is released", () => {
    const events = openLog(tempDir(), undefined, { entries: 1, bytes: 64 * PIECE_BYTES });
    const log = events.create("s1");
    const pool = new BufferPool({ max: 8 });
    const held = log.appendOutputBytes("pty", piece(pool, 0x61), false, pool);
    held.hold();
    log.appendOutputBytes("pty", piece(pool, 0x62), false, pool);
    events.flush();
    expect(pool.size).toBe(0);
    expect(held.bytes.every((b) => b === 0x61)).toBe(true);
    held.release();
    expect(pool.size).toBe(1);
    expect(() => held.bytes).toThrow(/released/);
    // Its memory is the next piece's now; a release too many gives nothing back twice.
    held.release();
    expect(pool.size).toBe(1);
  });

  it("leaves output that is not pooled to the GC: it stays readable after it left the ring", () => {
    const events = openLog(tempDir(), undefined, { entries: 1, bytes: 64 * PIECE_BYTES });
    const log = events.create("s1");
    const first = log.appendOutputBytes("pty", Buffer.from("hello"), false);
    log.appendOutputBytes("pty", Buffer.from("world"), false);
    events.flush();
    first.release();
    expect(Buffer.from(first.bytes).toString()).toBe("hello");
  });
});
