import { statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  LOG_CHECKPOINT_BYTES,
  LOG_INPUT_LINGER_MS,
  LOG_STREAMING_BYTES,
  SqliteEventStore,
} from "../../src/log/index.js";
import type { StoredEntry } from "../../src/log/index.js";
import { OutputEntry } from "../../src/log/output-entry.js";
import { tempDir } from "../helpers/tmp.js";

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
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

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
      await until(() => commits.length === 2, "the lone input's commit");
      expect(performance.now() - queued).toBeGreaterThanOrEqual(LOG_INPUT_LINGER_MS - 1);
      expect(commits[1]).toEqual({ durable: new Map([["s", 3]]), writes: 1 });
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
      await until(() => commits.length === 1, "the commit once the lock is free");
      expect(commits[0]!.durable).toEqual(new Map([["s", 1]]));
      expect(store.readAfter("s", 0, 10).map((e) => e.seq)).toEqual([1]);
    } finally {
      other.close();
      store.close();
    }
  });

  it("checkpoints on its own thread while open: the database file takes the WAL's pages without a flush or close", async () => {
    const file = join(tempDir(), "log.db");
    const store = new SqliteEventStore(file);
    const commits = listen(store);
    try {
      const chunk = 64 * 1024;
      const total = 3 * LOG_CHECKPOINT_BYTES;
      let last = 0;
      for (let offset = 0; offset < total; offset += chunk) {
        store.enqueue("flood", output(++last, offset, chunk));
        if (last % 8 === 0) await sleep(1);
      }
      await until(() => commits.some((c) => c.durable.get("flood") === last), "every write");
      // Neither writing connection checkpoints (wal_autocheckpoint = 0): only the checkpointer can fill the file.
      await until(() => statSync(file).size >= LOG_CHECKPOINT_BYTES, "the database file to grow");
      const rows = store.readOutputFrom("flood", 0, total);
      expect(rows.reduce((n, e) => n + (e.outEnd! - e.outStart!), 0)).toBe(total);
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
          await until(() => [...heads].every(([session, head]) => published.get(session) === head), "every write");
          expect(violations).toEqual([]);
        } finally {
          store.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});
