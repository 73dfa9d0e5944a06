import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { systemClock } from "../src/core/clock.js";
import { EventLog, SQLITE_PAGE_SIZE, SqliteEventStore } from "../src/log/index.js";
import { SessionFeed } from "../src/server/ws/feed.js";
import type { BenchRow, BenchSection } from "./types.js";
import { fmt, percentile, sideBySide } from "./stats.js";

const EVENTS = 200_000;
const PAYLOAD = "x".repeat(1024 - 80); // ~1 KB serialized events

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-log-"));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Events/s appending through the session log (seq, ring, group commit), flushed to disk. */
function appendThroughput(): number {
  return withDir((dir) => {
    const events = new EventLog({ store: new SqliteEventStore(join(dir, "log.db")), clock: systemClock });
    const log = events.create("s");
    const t0 = performance.now();
    for (let i = 0; i < EVENTS; i++) log.append({ type: "custom", name: "bench", data: PAYLOAD });
    events.flush();
    const ms = performance.now() - t0;
    events.close();
    return (EVENTS / ms) * 1000;
  });
}

/** Baseline: the same rows inserted straight into SQLite (same schema and page size) in batches of the same size, nothing else. */
function rawSqliteInsert(): number {
  return withDir((dir) => {
    const db = new Database(join(dir, "raw.db"));
    db.pragma(`page_size = ${SQLITE_PAGE_SIZE}`);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec(
      "CREATE TABLE events (session_id TEXT, seq INTEGER, type TEXT, body TEXT, PRIMARY KEY (session_id, seq)) WITHOUT ROWID",
    );
    const insert = db.prepare("INSERT INTO events VALUES (?, ?, ?, ?)");
    const batch = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++)
        insert.run(
          "s",
          i + 1,
          "custom",
          JSON.stringify({ seq: i + 1, ts: 0, type: "custom", name: "bench", data: PAYLOAD }),
        );
    });
    const t0 = performance.now();
    for (let i = 0; i < EVENTS; i += 8192) batch(i, Math.min(EVENTS, i + 8192));
    const ms = performance.now() - t0;
    db.close();
    return (EVENTS / ms) * 1000;
  });
}

/** Events/s reading the whole log back from SQLite in catch-up pages (as a lagging client is fed). */
function catchUpRead(): { ours: number; raw: number } {
  return withDir((dir) => {
    const file = join(dir, "log.db");
    const events = new EventLog({ store: new SqliteEventStore(file), clock: systemClock, ringMaxEntries: 16 });
    const log = events.create("s");
    for (let i = 0; i < EVENTS; i++) log.append({ type: "custom", name: "bench", data: PAYLOAD });
    events.flush();
    const t0 = performance.now();
    let since = 0;
    let n = 0;
    for (;;) {
      const page = log.read(since, { limit: 512 });
      n += page.entries.length;
      if (page.entries.length === 0) break;
      since = page.next;
    }
    const ours = (n / (performance.now() - t0)) * 1000;
    const db = new Database(file, { readonly: true });
    const stmt = db.prepare(
      "SELECT seq, type, body FROM events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT 512",
    );
    const t1 = performance.now();
    let s = 0;
    let m = 0;
    for (;;) {
      const rows = stmt.all("s", s) as Array<{ seq: number }>;
      if (rows.length === 0) break;
      m += rows.length;
      s = rows[rows.length - 1]!.seq;
    }
    const raw = (m / (performance.now() - t1)) * 1000;
    db.close();
    events.close();
    return { ours, raw };
  });
}

/** Microseconds for a client resuming 10 events behind the head: validate, read, join live. */
function resumeFromTail(): { p50: number; p99: number } {
  return withDir((dir) => {
    const events = new EventLog({ store: new SqliteEventStore(join(dir, "log.db")), clock: systemClock });
    const log = events.create("s");
    for (let i = 0; i < 10_000; i++) log.append({ type: "custom", name: "bench", data: PAYLOAD });
    events.flush();
    const samples: number[] = [];
    let delivered = 0;
    const sink = {
      queuedBytes: 0,
      deliver: (e: readonly unknown[]) => void (delivered += e.length),
      trimmed: () => undefined,
    };
    for (let i = 0; i < 5000; i++) {
      const t0 = performance.now();
      const feed = new SessionFeed(log, log.head - 10, sink, { budgetBytes: 4 << 20 });
      feed.pump();
      samples.push((performance.now() - t0) * 1000);
      feed.close();
    }
    events.close();
    if (delivered !== 5000 * 10) throw new Error(`resume delivered ${delivered}`);
    samples.sort((a, b) => a - b);
    return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
  });
}

export async function run(): Promise<BenchSection> {
  const append = await sideBySide(3, rawSqliteInsert, appendThroughput);
  const reads = [catchUpRead(), catchUpRead(), catchUpRead()].sort((a, b) => a.ours - b.ours)[1]!;
  const resume = resumeFromTail();
  const rows: BenchRow[] = [
    {
      measure: `log append, 1 KB events, group commit`,
      ours: `${fmt(append.subject)} events/s`,
      baseline: `raw SQLite batched insert: ${fmt(append.baseline)} events/s`,
      ratio: append.ratio.toFixed(2),
      goal: `≥ 100,000 events/s`,
      met: append.subject >= 100_000,
    },
    {
      measure: `catch-up read (pages of 512)`,
      ours: `${fmt(reads.ours)} events/s`,
      baseline: `raw SQLite paged SELECT: ${fmt(reads.raw)} events/s`,
      ratio: (reads.ours / reads.raw).toFixed(2),
      goal: `≥ 250,000 events/s`,
      met: reads.ours >= 250_000,
    },
    {
      measure: `resume from tail (10 behind head)`,
      ours: `p50 ${fmt(resume.p50, 1)} µs, p99 ${fmt(resume.p99, 1)} µs`,
      goal: `p50 ≤ 100 µs`,
      met: resume.p50 <= 100,
    },
  ];
  return {
    title: "Event log",
    rows,
    method: [
      `${fmt(EVENTS)} events of ~1 KB in one session on a SQLite file in WAL mode. Each figure is the median of 3 runs, the baseline measured in the same process, alternating; a ratio is the median of each run's ratio to the baseline's run next to it.`,
    ],
  };
}
