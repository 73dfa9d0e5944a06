import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog, SqliteEventStore } from "../../src/log/index.js";
import { afterTest } from "../helpers/cleanup.js";
import { tempDir } from "../helpers/tmp.js";
import { openLog } from "./helpers.js";

const custom = (i: number) => ({ type: "custom" as const, name: "n", data: `${i}`.padStart(50, "x") });

describe("retention edges", () => {
  it("count retention of events already out of the hot ring keeps byte retention exact", () => {
    // maxEvents beyond the ring: trims by count drop events only the store has.
    const events = openLog(tempDir(), { maxEvents: 100, maxBytes: 200 * 120 }, { entries: 8, bytes: 1 << 20 });
    const log = events.create("s1");
    for (let batch = 0; batch < 50; batch++) {
      for (let i = 0; i < 20; i++) log.append(custom(batch * 20 + i));
      events.flush();
    }
    // 1000 events of ~100 bytes: count retention keeps 100 (~10 KB), under maxBytes (24 KB).
    expect(log.head).toBe(1000);
    expect(log.first).toBe(901);
    const retained = log.read(log.first - 1).entries;
    expect(retained.length).toBe(100);
  });
});

describe("retention on restart", () => {
  it("applies lowered retention (maxEvents, maxBytes) to sessions that append nothing after the restart", () => {
    const dir = tempDir();
    const first = openLog(dir, { maxEvents: 1_000_000, maxBytes: 1 << 30 });
    const log = first.create("s1");
    first.saveSession({ id: "s1", kind: "stream", state: "exited", createdAt: 1, meta: {} });
    for (let i = 0; i < 500; i++) log.append(custom(i));
    first.close();

    const second = openLog(dir, { maxEvents: 100, maxBytes: 1 << 30 });
    const [loaded] = second.load();
    expect(loaded!.log.head).toBe(500);
    expect(loaded!.log.first).toBe(401);
    expect(() => loaded!.log.read(0)).toThrowError(/dropped by retention/);
    second.close();

    const third = openLog(dir, { maxEvents: 1_000_000, maxBytes: 50 * 100 });
    const [again] = third.load();
    const retained = again!.log.read(again!.log.first - 1).entries;
    expect(retained.reduce((n, e) => n + e.size, 0)).toBeLessThanOrEqual(50 * 100);
    expect(retained.length).toBeGreaterThan(40);
    expect(retained.at(-1)!.seq).toBe(500);
    third.close();
    // And the rows are gone from the file, not just hidden.
    const db = new Database(join(dir, "log.db"), { readonly: true });
    afterTest(() => db.close());
    expect((db.prepare("SELECT COUNT(*) FROM events").pluck().get() as number) < 100).toBe(true);
  });
});

describe("a log's position at a restart", () => {
  /** Makes every event row of `s1` 1000 bytes longer behind the log's back: a read of them would count it. */
  const padRows = (dir: string) => {
    const db = new Database(join(dir, "log.db"));
    db.prepare("UPDATE events SET body = body || ? WHERE session_id = 's1' AND data IS NULL").run(" ".repeat(1000));
    db.close();
  };

  it("comes from the session's record when the log still holds what the record says: a start does not read its events", () => {
    const dir = tempDir();
    const first = openLog(dir);
    const log = first.create("s1");
    for (let i = 0; i < 300; i++) log.append(custom(i));
    log.appendOutputBytes("stdout", Buffer.from("hello world\n"), false);
    // The record as a session writes it when it ends, after its last event.
    first.saveSession({ id: "s1", kind: "stream", state: "exited", createdAt: 1, meta: { outputBytes: 12 } });
    const before = log.storedState;
    first.close();

    padRows(dir);
    const second = openLog(dir);
    const [loaded] = second.load();
    expect(loaded!.log.storedState).toEqual(before);
    expect(loaded!.log.head).toBe(301);
    expect(loaded!.log.outputBytes).toBe(12);
    // The record's meta is the session's, without the saved state.
    expect(loaded!.session.meta).toEqual({ outputBytes: 12 });
  });

  it("is read from the events when the record is older than them (a crash, an older version), and saved for the next start", () => {
    const dir = tempDir();
    const first = openLog(dir);
    const log = first.create("s1");
    // Written when the session started; the gateway then died while it appended.
    first.saveSession({ id: "s1", kind: "stream", state: "running", createdAt: 1, meta: {} });
    for (let i = 0; i < 300; i++) log.append(custom(i));
    const before = log.storedState;
    first.close();

    const second = openLog(dir);
    expect(second.load()[0]!.log.storedState).toEqual(before);
    second.close();

    padRows(dir);
    const third = openLog(dir);
    expect(third.load()[0]!.log.storedState).toEqual(before);
  });
});

describe("output offsets across trims and restarts", () => {
  it("a restarted log knows its output's end when retention dropped every output event (offsets are never reused)", () => {
    const dir = tempDir();
    const first = openLog(dir, { maxEvents: 10, maxBytes: 1 << 30 });
    const log = first.create("s1");
    // The record as a session writes it when it starts: no output yet.
    first.saveSession({ id: "s1", kind: "terminal", state: "running", createdAt: 1, meta: { outputBytes: 0 } });
    log.appendOutputBytes("stdout", Buffer.from("hello world\n"), false);
    for (let i = 0; i < 20; i++) log.append({ type: "input", data: "x" } as never);
    first.flush();
    expect(log.outputBytes).toBe(12);
    // A crash: what was committed stays, the record is not written again.
    first.close();

    const second = openLog(dir, { maxEvents: 10, maxBytes: 1 << 30 });
    const [loaded] = second.load();
    expect(loaded!.log.head).toBe(21);
    expect(loaded!.log.outputBytes).toBe(12);
    const next = loaded!.log.appendOutputBytes("stdout", Buffer.from("more"), false);
    expect(next.outStart).toBe(12);
    second.close();
  });
});

describe("reads around the retained range (property)", () => {
  it("a read from any position gives exactly the events after it, or HISTORY_TRIMMED when retention dropped some; retention keeps within its bounds", () => {
    const dir = tempDir();
    let n = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("event" as const), size: fc.integer({ min: 1, max: 300 }) }),
            fc.record({ op: fc.constant("output" as const), size: fc.integer({ min: 1, max: 20_000 }) }),
            fc.record({ op: fc.constant("flush" as const) }),
            fc.record({ op: fc.constant("restart" as const) }),
          ),
          { minLength: 1, maxLength: 120 },
        ),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 200, max: 200_000 }),
        fc.integer({ min: 1, max: 8 }),
        (ops, maxEvents, maxBytes, ringEntries) => {
          const file = join(dir, `p${n++}.db`);
          const retention = { maxEvents, maxBytes };
          const open = () =>
            new EventLog({
              store: new SqliteEventStore(file, { outputFileBytes: 64 * 1024 }),
              clock: new ManualClock(),
              retention,
              ringMaxEntries: ringEntries,
              ringMaxBytes: 1 << 20,
            });
          let events = open();
          let log = events.create("s");
          events.saveSession({ id: "s", kind: "stream", state: "running", createdAt: 1, meta: {} });
          const appended: string[] = [];
          let outputEnd = 0;
          const sizes: number[] = [];
          try {
            for (const o of ops) {
              if (o.op === "event") {
                sizes.push(JSON.stringify(log.append({ type: "custom", name: "n", data: "e".repeat(o.size) })).length);
              } else if (o.op === "output") {
                const entry = log.appendOutputBytes(
                  "stdout",
                  Buffer.alloc(o.size, 0x61 + (log.appendedHead % 26)),
                  false,
                );
                sizes.push(entry.size);
                expect(entry.outStart).toBe(outputEnd);
                outputEnd += o.size;
              } else if (o.op === "flush") {
                events.flush();
                continue;
              } else {
                events.close();
                events = open();
                log = events.load()[0]!.log;
                expect(log.appendedOutputBytes).toBe(outputEnd);
                continue;
              }
              appended.push("x");
            }
            events.flush();
            const head = log.head;
            expect(head).toBe(appended.length);
            const first = log.first;
            // Within bounds (the newest event is always kept).
            const kept = log.read(first - 1).entries;
            expect(kept.map((e) => e.seq)).toEqual(Array.from({ length: head - first + 1 }, (_, i) => first + i));
            expect(kept.map((e) => e.size)).toEqual(sizes.slice(first - 1));
            expect(kept.length).toBeLessThanOrEqual(maxEvents);
            const keptBytes = sizes.slice(first - 1).reduce((a, b) => a + b, 0);
            if (kept.length > 1) expect(keptBytes).toBeLessThanOrEqual(maxBytes);
            // Retention keeps all it may: fewer than maxEvents only when one more would be over maxBytes.
            if (kept.length < Math.min(maxEvents, head))
              expect(keptBytes + sizes[first - 2]!).toBeGreaterThan(maxBytes);
            for (let since = 0; since <= head; since++) {
              if (since + 1 < first) {
                expect(() => log.read(since)).toThrowError(/dropped by retention/);
                continue;
              }
              let at = since;
              const seen: number[] = [];
              for (;;) {
                const page = log.read(at, { limit: 3, maxBytes: 30_000 });
                seen.push(...page.entries.map((e) => e.seq));
                if (page.next === at || page.entries.length === 0) break;
                at = page.next;
              }
              expect(seen).toEqual(Array.from({ length: head - since }, (_, i) => since + 1 + i));
            }
          } finally {
            events.close();
          }
        },
      ),
      { numRuns: 40 },
    );
    // 40 logs on SQLite, each restarted at random: 13 s on a quiet host, past 30 s on a loaded one.
  }, 120_000);
});

describe("byte retention with characters beyond the BMP", () => {
  // Regression: an event's size was its JSON's string length, which counts an emoji twice, while
  // the store counts what a trim drops in characters (SQLite's length()): every trim of such
  // events left the difference in the retained count, and byte retention trimmed too much.
  it("counts what a trim drops as the appends counted it", () => {
    const events = openLog(tempDir(), { maxEvents: 100, maxBytes: 1 << 30 }, { entries: 8, bytes: 1 << 20 });
    const log = events.create("s1");
    for (let batch = 0; batch < 20; batch++) {
      for (let i = 0; i < 20; i++) log.append({ type: "custom", name: "n", data: `${"😀".repeat(30)}é✓${i}` });
      events.flush();
    }
    expect(log.first).toBe(301);
    const kept = log.read(log.first - 1).entries;
    expect(kept).toHaveLength(100);
    expect(log.storedState.retainedBytes).toBe(kept.reduce((sum, e) => sum + e.size, 0));
    expect(kept[0]!.size).toBe([...kept[0]!.json].length);
  });
});
