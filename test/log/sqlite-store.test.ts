import { statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  LOG_CHECKPOINT_BYTES,
  LOG_INPUT_LINGER_MS,
  LOG_REPLICA_LINGER_MS,
  LOG_STREAMING_BYTES,
  LOG_WRITER_LINGER_MS,
  LOG_WRITER_MIN_BYTES,
  OUTPUT_MARK_BYTES,
  OUTPUT_MARK_EVENTS,
  SqliteEventStore,
} from "../../src/log/index.js";
import { OUTPUT_FILE_MIN_ENTRY } from "../../src/log/output-files.mjs";
import type { StoredEntry } from "../../src/log/index.js";
import { OutputEntry } from "../../src/log/output-entry.js";
import { tempDir } from "../helpers/tmp.js";
import { restartingStore, writerOf } from "./helpers.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

/** The store's commits as its listeners hear them. */
function listen(store: SqliteEventStore) {
  const commits: Array<{ durable: Map<string, number>; writes: number }> = [];
  store.onFlushed((durable, stats) => commits.push({ durable: new Map(durable), writes: stats.writes }));
  return commits;
}

const event = (seq: number, type = "custom"): StoredEntry => {
  const json = JSON.stringify({ seq, type, ts: 0 });
  return { seq, type: type as "custom", json, size: json.length };
};
const output = (seq: number, offset: number, bytes: number): OutputEntry =>
  new OutputEntry(seq, 0, "stdout", offset, new Uint8Array(bytes).fill(0x61 + (seq % 26)), false);

/** Lets the microtasks queued so far run (the store commits small writes in one). */
const endOfTick = () => new Promise<void>((resolve) => queueMicrotask(resolve));

describe("SQLite event store: where and when commits happen", () => {
  it("commits a small write at the end of the tick it was queued in, on this thread: readable and published before any timer or I/O", async () => {
    const store = new SqliteEventStore(join(tempDir(), "log.db"));
    const commits = listen(store);
    try {
      store.enqueue("s", event(1));
      expect(commits).toEqual([]);
      await endOfTick();
      expect(commits).toEqual([{ durable: new Map([["s", 1]]), writes: 1 }]);
      expect(store.readAfter("s", 0, 10).map((e) => e.seq)).toEqual([1]);
    } finally {
      store.close();
    }
  });

  it("an input event waits for company: the echo that follows goes in the same commit; alone, it is committed after the linger", async () => {
    const store = new SqliteEventStore(join(tempDir(), "log.db"));
    const commits = listen(store);
    try {
      store.enqueue("s", event(1, "input"));
      await endOfTick();
      expect(commits).toEqual([]);
      store.enqueue("s", output(2, 0, 1));
      await endOfTick();
      expect(commits).toEqual([{ durable: new Map([["s", 2]]), writes: 2 }]);

      store.enqueue("s", event(3, "input"));
      const queued = performance.now();
      await waitFor(() => commits.length === 2, 10_000, "the lone input's commit");
      expect(performance.now() - queued).toBeGreaterThanOrEqual(LOG_INPUT_LINGER_MS - 1);
      expect(commits[1]).toEqual({ durable: new Map([["s", 3]]), writes: 1 });
    } finally {
      store.close();
    }
  });

  it("an urgent entry (held input) alone is committed before enqueue returns; queued beside others, with them at the end of the tick", async () => {
    const store = new SqliteEventStore(join(tempDir(), "log.db"));
    const commits = listen(store);
    const urgent = (seq: number): StoredEntry => ({ ...event(seq, "input"), urgent: true });
    try {
      store.enqueue("s", urgent(1));
      expect(commits).toEqual([{ durable: new Map([["s", 1]]), writes: 1 }]);
      // Something else is queued this tick: one commit for both, at its end.
      store.enqueue("t", event(1));
      store.enqueue("s", urgent(2));
      expect(commits).toHaveLength(1);
      await endOfTick();
      expect(commits[1]).toEqual({
        durable: new Map([
          ["s", 2],
          ["t", 1],
        ]),
        writes: 2,
      });
      expect(store.readAfter("s", 0, 10).map((e) => e.seq)).toEqual([1, 2]);
    } finally {
      store.close();
    }
  });

  it("a cluster node's replica rows wait for company up to the linger, and go at the end of the tick once someone hurries them", async () => {
    const store = new SqliteEventStore(join(tempDir(), "log.db"));
    const commits = listen(store);
    try {
      store.enqueue("s", event(1), { replica: true });
      const queued = performance.now();
      await endOfTick();
      store.enqueue("s", event(2), { replica: true });
      await sleep(LOG_REPLICA_LINGER_MS / 5);
      expect(commits).toEqual([]);
      await waitFor(() => commits.length === 1, 10_000, "the replica rows' commit");
      expect(performance.now() - queued).toBeGreaterThanOrEqual(LOG_REPLICA_LINGER_MS - 1);
      expect(commits[0]).toEqual({ durable: new Map([["s", 2]]), writes: 2 });

      store.enqueue("s", event(3), { replica: true });
      store.hurry();
      expect(commits).toHaveLength(1);
      await endOfTick();
      expect(commits[1]).toEqual({ durable: new Map([["s", 3]]), writes: 1 });
    } finally {
      store.close();
    }
  });

  it("a flood's output goes to the writer thread in batches: under LOG_WRITER_MIN_BYTES it waits up to LOG_WRITER_LINGER_MS for more", async () => {
    // The rate clock stands still: the flood counts as streaming however slow this machine is
    // today (with real time, a first batch that took over two rate windows ended it).
    const store = new SqliteEventStore(join(tempDir(), "log.db"), { rateClock: () => 0 });
    const commits = listen(store);
    try {
      store.enqueue("other", event(1));
      await waitFor(() => commits.length === 1, 10_000, "a first commit");
      // Past LOG_STREAMING_BYTES in one tick: streaming, and past LOG_WRITER_MIN_BYTES: goes at once, as one batch.
      const piece = 64 * 1024;
      expect(3 * piece).toBeGreaterThan(Math.max(LOG_STREAMING_BYTES, LOG_WRITER_MIN_BYTES));
      for (let i = 0; i < 3; i++) store.enqueue("f", output(i + 1, i * piece, piece));
      await waitFor(() => commits.length === 2, 10_000, "the flood's first batch");
      expect(commits[1]).toEqual({ durable: new Map([["f", 3]]), writes: 3 });

      // A small piece of the same flood waits for company; the next one, a moment later, joins it.
      const queued = performance.now();
      store.enqueue("f", output(4, 3 * piece, 1000));
      await new Promise((resolve) => setImmediate(resolve));
      store.enqueue("f", output(5, 3 * piece + 1000, 1000));
      await waitFor(() => commits.length === 3, 10_000, "the small pieces' batch");
      expect(performance.now() - queued).toBeGreaterThanOrEqual(LOG_WRITER_LINGER_MS - 0.5);
      expect(commits[2]).toEqual({ durable: new Map([["f", 5]]), writes: 2 });
    } finally {
      store.close();
    }
  });

  it("when another connection holds the write lock, a small write waits for it on the writer thread instead of failing or blocking this one", async () => {
    const file = join(tempDir(), "log.db");
    const store = new SqliteEventStore(file);
    const commits = listen(store);
    const other = new Database(file);
    try {
      await waitFor(() => writerOf(store).ready, 10_000, "the writer thread to start");
      other.exec("BEGIN IMMEDIATE");
      store.enqueue("s", event(1));
      const before = performance.now();
      await endOfTick();
      // This thread did not wait for the lock (busy timeout 0): the write went to the writer thread.
      expect(performance.now() - before).toBeLessThan(50);
      await sleep(100);
      expect(commits).toEqual([]);
      expect(store.readAfter("s", 0, 10)).toEqual([]);
      other.exec("COMMIT");
      await waitFor(() => commits.length === 1, 10_000, "the commit once the lock is free");
      expect(commits[0]!.durable).toEqual(new Map([["s", 1]]));
      expect(store.readAfter("s", 0, 10).map((e) => e.seq)).toEqual([1]);
    } finally {
      other.close();
      store.close();
    }
  });

  // Found in CI: a gateway whose data directory was removed before its writer thread opened the
  // file took 30 s to stop (close waited for a thread that had died at start), and a flood's
  // batches posted to that thread would have waited forever, unwritten and unreported.
  it("when its writer thread stops, says so, commits here from then on (retrying while the file is locked), refuses nothing for it, and closes at once", async () => {
    const file = join(tempDir(), "log.db");
    const errors: Error[] = [];
    // (Started again only after the test: see the next one.)
    const store = new SqliteEventStore(file, {
      retryMs: 20,
      writerRestartMs: 60_000,
      onError: (error) => errors.push(error),
    });
    const commits = listen(store);
    const other = new Database(file);
    try {
      await waitFor(() => writerOf(store).ready, 10_000, "the writer thread to start");
      await writerOf(store).kill();
      await waitFor(() => errors.length > 0, 10_000, "the store to report its writer stopped");
      expect(errors).toEqual([
        expect.objectContaining({
          code: "LOG_WRITER_STOPPED",
          message:
            "the event log's writer thread stopped (it exited): it is started again in 60 s (later while that fails), and the log commits on the gateway's main thread meanwhile, slower under floods",
        }),
      ]);
      expect(store.writeFailure).toBeUndefined();

      // More small events of one session than a batch takes (LOG_BATCH_MAX_BYTES): all of them,
      // batch after batch (CI: the rest stayed queued, and the append waited for it forever).
      const many = Array.from({ length: 400 }, (_, i): StoredEntry => {
        const json = JSON.stringify({ seq: i + 1, type: "custom", ts: 0, data: "n".repeat(1000) });
        return { seq: i + 1, type: "custom", json, size: json.length };
      });
      for (const e of many) store.enqueue("m", e);
      await waitFor(() => commits.some((c) => c.durable.get("m") === 400), 10_000, "every one of the 400 events");
      commits.length = 0;

      // A flood's pieces, which went to the writer thread, are committed here.
      const piece = 64 * 1024;
      for (let i = 0; i < 3; i++) store.enqueue("f", output(i + 1, i * piece, piece));
      await waitFor(() => commits.length === 1, 10_000, "the flood's commit");
      expect(commits[0]!.durable).toEqual(new Map([["f", 3]]));

      // Locked by someone else: kept and tried again until it goes in.
      other.exec("BEGIN IMMEDIATE");
      store.enqueue("s", event(1));
      await sleep(100);
      expect(commits).toHaveLength(1);
      other.exec("COMMIT");
      await waitFor(() => commits.length === 2, 10_000, "the retried commit");
      expect(commits[1]!.durable).toEqual(new Map([["s", 1]]));
      // The lock is gone: so is the failure it caused (new work is taken again).
      expect(store.writeFailure).toBeUndefined();

      // Locked at close: not written, and said so (not dropped in silence).
      other.exec("BEGIN IMMEDIATE");
      store.enqueue("s", event(2));
      const closing = performance.now();
      store.close();
      expect(performance.now() - closing).toBeLessThan(2_000);
      expect(errors.at(-1)?.message).toMatch(
        /^1 events and records were not written before the log closed, and are lost/,
      );
      other.exec("COMMIT");
    } finally {
      other.close();
      store.close();
    }
    const reopened = new SqliteEventStore(file);
    try {
      expect(reopened.readAfter("s", 0, 10).map((e) => e.seq)).toEqual([1]);
      expect(reopened.readAfter("f", 0, 10).map((e) => e.seq)).toEqual([1, 2, 3]);
    } finally {
      reopened.close();
    }
  });

  it("starts its writer thread again once it stopped, and a flood's batches go to it again: said once when it stops, once when it runs", async () => {
    const file = join(tempDir(), "log.db");
    const { store, said } = restartingStore(file, 200);
    const errors = said.errors;
    const commits = listen(store);
    const piece = 64 * 1024;
    let seq = 0;
    try {
      await waitFor(() => writerOf(store).ready, 10_000, "the writer thread to start");
      await writerOf(store).kill();
      await waitFor(() => errors.length === 1, 10_000, "the store to report its writer stopped");
      expect(errors[0]).toMatchObject({ code: "LOG_WRITER_STOPPED" });
      expect(writerOf(store).ready).toBe(false);
      // Meanwhile: committed here.
      for (let i = 0; i < 3; i++, seq++) store.enqueue("f", output(seq + 1, seq * piece, piece));
      await waitFor(() => commits.length === 1, 10_000, "the flood's commit here");

      await waitFor(() => said.restarted === 1, 5_000, "the writer thread to run again");
      expect(writerOf(store).ready).toBe(true);
      // Back on the writer thread: this thread's commits answer within the microtasks that follow
      // (the commit is queued as one); the thread's only with a message, a later task.
      for (let i = 0; i < 3; i++, seq++) store.enqueue("f", output(seq + 1, seq * piece, piece));
      for (let i = 0; i < 10; i++) await Promise.resolve();
      expect(commits).toHaveLength(1);
      await waitFor(() => commits.length === 2, 10_000, "the writer thread's commit");
      expect(commits[1]!.durable).toEqual(new Map([["f", 6]]));
      expect(errors).toHaveLength(1);
    } finally {
      store.close();
    }
    const reopened = new SqliteEventStore(file);
    try {
      expect(reopened.readAfter("f", 0, 10).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      reopened.close();
    }
  });

  it("checkpoints on its own thread while open: the database file takes the WAL's pages without a flush or close", async () => {
    const file = join(tempDir(), "log.db");
    const store = new SqliteEventStore(file);
    const commits = listen(store);
    try {
      // Output small enough to stay in SQLite (bigger pieces go to output files, not through the WAL).
      const chunk = OUTPUT_FILE_MIN_ENTRY / 2;
      const total = 3 * LOG_CHECKPOINT_BYTES;
      let last = 0;
      for (let offset = 0; offset < total; offset += chunk) {
        store.enqueue("flood", output(++last, offset, chunk));
        if (last % 128 === 0) await sleep(1);
      }
      await waitFor(() => commits.some((c) => c.durable.get("flood") === last), 10_000, "every write");
      // Neither writing connection checkpoints (wal_autocheckpoint = 0): only the checkpointer can fill the file.
      await waitFor(() => statSync(file).size >= LOG_CHECKPOINT_BYTES, 10_000, "the database file to grow");
      const rows = store.readOutputFrom("flood", 0, total);
      expect(rows.reduce((n, e) => n + (e.outEnd! - e.outStart!), 0)).toBe(total);
    } finally {
      store.close();
    }
  });

  it("keeps the WAL bounded while this thread commits small writes all along beside a flood: each checkpoint lets the WAL start over", async () => {
    const file = join(tempDir(), "log.db");
    const store = new SqliteEventStore(file);
    // (Until its writer thread runs, the store commits here and cannot checkpoint: ~40 ms at start.)
    await waitFor(() => writerOf(store).ready, 10_000, "the writer thread to start");
    let flooded = 0;
    store.onFlushed((durable) => (flooded = durable.get("flood") ?? flooded));
    let peak = 0;
    const tick = async () => {
      await new Promise((resolve) => setImmediate(resolve));
      peak = Math.max(peak, statSync(`${file}-wal`).size);
    };
    try {
      // A flood in pieces small enough to stay in SQLite rows (the writer thread commits them, at
      // the pace it can), and another session's events committed on this thread every tick, while
      // checkpoints run. SQLite starts a WAL over only once all of it is copied: before, the frames
      // this thread committed while a PASSIVE checkpoint ran were never all copied, and the WAL
      // kept growing (to 88-118 MiB here; 7-12 MiB since).
      const chunk = 1024;
      const total = 10 * LOG_CHECKPOINT_BYTES;
      let last = 0;
      let small = 0;
      for (let offset = 0; offset < total; offset += chunk) {
        store.enqueue("flood", output(++last, offset, chunk));
        if (last % 16 === 0) {
          store.enqueue("chat", event(++small));
          await tick();
          while (last - flooded > 512) await tick();
        }
      }
      while (flooded < last) await tick();
      // 7-12 MiB here; room for one checkpoint that found the lock busy on a loaded machine.
      expect(peak).toBeLessThan(6 * LOG_CHECKPOINT_BYTES);
    } finally {
      store.close();
    }
  });

  it("whatever the mix of floods and small writes across sessions and ticks: each session's commits come in order, none is published before it is readable, and all of it is there in the end (property)", async () => {
    const dir = tempDir();
    let files = 0;
    const step = fc.record({
      session: fc.constantFrom("a", "b", "c"),
      kind: fc.constantFrom("small", "input", "big"),
      tick: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 60 }), async (steps) => {
        const store = new SqliteEventStore(join(dir, `p${files++}.db`));
        const heads = new Map<string, number>();
        const offsets = new Map<string, number>();
        const published = new Map<string, number>();
        const violations: string[] = [];
        store.onFlushed((durable) => {
          for (const [session, seq] of durable) {
            const before = published.get(session) ?? 0;
            if (seq <= before) violations.push(`${session}: ${seq} after ${before}`);
            published.set(session, seq);
            const read = store.readAfter(session, before, 100_000).map((e) => e.seq);
            const expected = Array.from({ length: seq - before }, (_, i) => before + 1 + i);
            if (read.join() !== expected.join()) violations.push(`${session}: published ${seq}, read ${read.join()}`);
          }
        });
        try {
          for (const s of steps) {
            const seq = (heads.get(s.session) ?? 0) + 1;
            heads.set(s.session, seq);
            if (s.kind === "big") {
              // More than a streaming session appends in a window: this goes to the writer thread.
              const offset = offsets.get(s.session) ?? 0;
              store.enqueue(s.session, output(seq, offset, LOG_STREAMING_BYTES + 1));
              offsets.set(s.session, offset + LOG_STREAMING_BYTES + 1);
            } else {
              store.enqueue(s.session, event(seq, s.kind === "input" ? "input" : "custom"));
            }
            if (s.tick) await (seq % 2 ? endOfTick() : sleep(0));
          }
          await waitFor(
            () => [...heads].every(([session, head]) => published.get(session) === head),
            10_000,
            "every write",
          );
          expect(violations).toEqual([]);
        } finally {
          store.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe("SQLite event store: reads by byte offset", () => {
  /** The bytes `output(seq, offset, n)` holds. */
  const bytesOf = (rows: StoredEntry[], from: number): Buffer =>
    Buffer.concat(rows.map((r) => (r as OutputEntry).bytes.subarray(Math.max(0, from - r.outStart!))));

  it("from any offset, the rows from the one holding it on, whatever the sizes (in SQLite or output files), events between, trims and restarts (property)", async () => {
    const dir = tempDir();
    let files = 0;
    const step = fc.oneof(
      { weight: 12, arbitrary: fc.record({ kind: fc.constant("output" as const), bytes: fc.constantFrom(1, 7, 300) }) },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant("output" as const), bytes: fc.constantFrom(70_000, 400_000) }),
      },
      {
        weight: 4,
        arbitrary: fc.record({ kind: fc.constant("event" as const), count: fc.integer({ min: 1, max: 40 }) }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant("trim" as const), keep: fc.integer({ min: 1, max: 600 }) }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: "restart" as const }) },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 120 }),
        fc.array(fc.nat(), { minLength: 20, maxLength: 20 }),
        async (steps, picks) => {
          const file = join(dir, `o${files++}.db`);
          // Small output files, so the output moves on from file to file and trims remove some.
          const options = { outputFileBytes: 200_000 };
          let store = new SqliteEventStore(file, options);
          let seq = 0;
          let end = 0;
          // Output rows as appended: their seq and byte range (trimmed ones removed).
          let rows: Array<{ seq: number; start: number; end: number }> = [];
          try {
            for (const s of steps) {
              if (s.kind === "output") {
                store.enqueue("s", output(++seq, end, s.bytes));
                rows.push({ seq, start: end, end: end + s.bytes });
                end += s.bytes;
              } else if (s.kind === "event") {
                for (let i = 0; i < s.count; i++) store.enqueue("s", event(++seq));
              } else if (s.kind === "trim") {
                const first = Math.max(1, seq - s.keep);
                store.enqueueTrim("s", first);
                rows = rows.filter((r) => r.seq >= first);
              } else {
                store.close();
                store = new SqliteEventStore(file, options);
              }
            }
            store.flush();
            if (rows.length === 0) return;
            const retained = rows[0]!.start;
            for (const pick of picks) {
              const offset = retained + (pick % (end - retained));
              const maxBytes = 1 + (pick % 500_000);
              const got = store.readOutputFrom("s", offset, maxBytes);
              const holding = rows.findIndex((r) => r.end > offset);
              // The row holding the offset, then the rows after it, until about maxBytes are covered.
              expect(got.map((r) => r.seq)).toEqual(rows.slice(holding, holding + got.length).map((r) => r.seq));
              const bytes = bytesOf(got, offset);
              expect(bytes.length).toBeGreaterThanOrEqual(Math.min(maxBytes, end - offset));
              const expected = Buffer.concat(
                rows
                  .slice(holding, holding + got.length)
                  .map((r) => Buffer.alloc(r.end - r.start, 0x61 + (r.seq % 26))),
              ).subarray(offset - rows[holding]!.start);
              expect(bytes.equals(expected)).toBe(true);
            }
            // Before what retention kept: from the first row kept.
            if (retained > 0) expect(store.readOutputFrom("s", 0, 1)[0]?.seq).toBe(rows[0]!.seq);
          } finally {
            store.close();
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it("marks an output row every OUTPUT_MARK_EVENTS events or OUTPUT_MARK_BYTES bytes, and a log from before the marks gets them in place of its index", () => {
    const file = join(tempDir(), "log.db");
    let store = new SqliteEventStore(file);
    let offset = 0;
    const n = 3 * OUTPUT_MARK_EVENTS + 10;
    for (let seq = 1; seq <= n; seq++) {
      store.enqueue("s", output(seq, offset, 10));
      offset += 10;
    }
    // Two big rows: each starts a mark of its own (a megabyte since the last one).
    store.enqueue("s", output(n + 1, offset, OUTPUT_MARK_BYTES));
    store.enqueue("s", output(n + 2, offset + OUTPUT_MARK_BYTES, 10));
    store.enqueue("s", output(n + 3, offset + OUTPUT_MARK_BYTES + 10, 10));
    store.close();

    const raw = new Database(file);
    const marks = () => raw.prepare("SELECT seq FROM output_marks WHERE session_id = 's' ORDER BY seq").pluck().all();
    expect(marks()).toEqual([1, 1 + OUTPUT_MARK_EVENTS, 1 + 2 * OUTPUT_MARK_EVENTS, 1 + 3 * OUTPUT_MARK_EVENTS, n + 2]);
    // What a log written before the marks looks like: no marks, an index on every output row.
    raw.exec(
      "DELETE FROM output_marks; CREATE INDEX events_output ON events (session_id, out_end) WHERE out_end IS NOT NULL;",
    );
    raw.close();

    store = new SqliteEventStore(file);
    try {
      const check = new Database(file, { readonly: true });
      expect(
        check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'events_output'").all(),
      ).toEqual([]);
      expect(check.prepare("SELECT seq FROM output_marks ORDER BY seq").pluck().all()).toEqual([
        1,
        1 + OUTPUT_MARK_EVENTS,
        1 + 2 * OUTPUT_MARK_EVENTS,
        1 + 3 * OUTPUT_MARK_EVENTS,
      ]);
      check.close();
      const from = 2 * OUTPUT_MARK_EVENTS * 10 + 5;
      const rows = store.readOutputFrom("s", from, 30);
      expect(rows.map((r) => r.seq)).toEqual([
        2 * OUTPUT_MARK_EVENTS + 1,
        2 * OUTPUT_MARK_EVENTS + 2,
        2 * OUTPUT_MARK_EVENTS + 3,
        2 * OUTPUT_MARK_EVENTS + 4,
      ]);
    } finally {
      store.close();
    }
  });
});
