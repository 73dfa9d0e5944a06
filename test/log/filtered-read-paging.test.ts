import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog, SqliteEventStore } from "../../src/log/index.js";
import { FILTERED_SCAN_EVENTS } from "../../src/log/log-reader.js";
import { RING_IDLE_MS } from "../../src/log/session-log.js";
import type { LogEntry } from "../../src/log/types.js";
import { SessionFeed } from "../../src/server/ws/feed.js";
import type { Sink } from "../../src/server/ws/sink.js";
import { afterTest } from "../helpers/cleanup.js";
import { tempDir } from "../helpers/tmp.js";

// Review of 2f4feee/ce3ef9d: type-filtered reads examine at most FILTERED_SCAN_EVENTS events and
// answer pages that move on; idle logs give their hot rings back. Paging with `next` must still
// give exactly the matching events, whatever the ring holds, the limit and the byte bound.

const TYPES = ["custom", "exit", "signal"] as const;

function bigLog(ringEntries: number) {
  const clock = new ManualClock();
  const events = new EventLog({
    store: new SqliteEventStore(join(tempDir(), "log.db")),
    clock,
    ringMaxEntries: ringEntries,
    ringMaxBytes: 1 << 22,
  });
  afterTest(() => events.close());
  return { clock, events, log: events.create("s") };
}

/**
 * A committed log of `total` events, `exit` where `exitAt(i)` says and `custom` elsewhere, and
 * a feed of its exits from the start, pumped once: the seqs it delivered go to `got`.
 */
function exitsFeed(total: number, exitAt: (i: number) => boolean) {
  const { events, log } = bigLog(32);
  for (let i = 0; i < total; i++) {
    if (exitAt(i)) log.append({ type: "exit", exitCode: i, signal: null });
    else log.append({ type: "custom", name: "n", data: i });
  }
  events.flush();
  const got: number[] = [];
  const feed = new SessionFeed(log, 0, collecting(got), { budgetBytes: 1 << 20, types: new Set(["exit"]) });
  feed.pump();
  return { events, log, got, feed };
}

/** A feed's sink with room to spare that notes the seqs delivered to it in `got`. */
function collecting(got: number[]): Sink {
  return {
    queuedBytes: 0,
    deliver: (entries: readonly LogEntry[]) => {
      for (const e of entries) got.push(e.seq);
    },
    trimmed: () => {
      throw new Error("no reset expected");
    },
  };
}

describe("type-filtered reads over a long log (review)", () => {
  it("paging with next gives exactly the matching events, whatever the ring, limit and byte bound (property)", () => {
    const { clock, events, log } = bigLog(64);
    const total = 2 * FILTERED_SCAN_EVENTS + 500;
    const types: string[] = [];
    for (let i = 0; i < total; i++) {
      // Sparse: exit every 5000, signal every 7, else custom with a varying size.
      const type = i % 5000 === 4999 ? "exit" : i % 7 === 0 ? "signal" : "custom";
      if (type === "exit") log.append({ type: "exit", exitCode: i, signal: null });
      else if (type === "signal") log.append({ type: "signal", by: { name: "a", role: "operator" }, signal: "INT" });
      else log.append({ type: "custom", name: "n", data: "x".repeat(i % 97) });
      types.push(type);
      if (i % 1000 === 0) events.flush();
    }
    events.flush();
    fc.assert(
      fc.property(
        fc.subarray([...TYPES], { minLength: 1 }),
        fc.integer({ min: 20, max: 3000 }),
        fc.option(fc.integer({ min: 1, max: 200_000 }), { nil: undefined }),
        fc.integer({ min: 0, max: total }),
        fc.boolean(),
        (wanted, limit, maxBytes, start, release) => {
          if (release) {
            // The idle check twice: the ring is given back.
            clock.advance(RING_IDLE_MS);
            clock.advance(RING_IDLE_MS);
          }
          const set = new Set<string>(wanted);
          const expected = types.flatMap((t, i) => (i + 1 > start && set.has(t) ? [i + 1] : []));
          const seen: number[] = [];
          let since = start;
          // From the head itself there is nothing to read (the first draft asked anyway: a page
          // at the head does not move on, and the property failed for start = total).
          for (let n = 0; since < log.head; n++) {
            expect(n).toBeLessThanOrEqual(total + 1);
            const page = log.read(since, { limit, types: set, ...(maxBytes !== undefined ? { maxBytes } : {}) });
            for (const e of page.entries) expect(set.has(e.type)).toBe(true);
            seen.push(...page.entries.map((e) => e.seq));
            expect(page.next).toBeGreaterThan(since);
            if (page.entries.length > 0) expect(page.next).toBeGreaterThanOrEqual(page.entries.at(-1)!.seq);
            since = page.next;
          }
          expect(seen).toEqual(expected);
        },
      ),
      { numRuns: 10, examples: [[["custom"], 20, undefined, total, false]] },
    );
  }, 120_000);

  it("a filtered feed goes on by itself after empty pages, joins live without loss or duplicates while events are appended", async () => {
    const total = 3 * FILTERED_SCAN_EVENTS;
    const { events, log, got, feed } = exitsFeed(total, (i) => i % 40_000 === 39_999);
    expect(feed.mode).toBe("catchup");
    // Appends meanwhile, each flushed: some while the feed catches up, some after it joined.
    const appended: number[] = [];
    for (let round = 0; round < 20; round++) {
      await new Promise((resolve) => setImmediate(resolve));
      log.append({ type: "custom", name: "n", data: round });
      const e = log.append({ type: "exit", exitCode: round, signal: null });
      appended.push(e.seq);
      events.flush();
    }
    expect(feed.mode).toBe("live");
    const expected = [
      ...Array.from({ length: total }, (_, i) => i + 1).filter((seq) => (seq - 1) % 40_000 === 39_999),
      ...appended,
    ];
    expect(got).toEqual(expected);
    feed.close();
  });

  it("a filtered feed examines one stretch per turn of the event loop also when each stretch matches a little", async () => {
    // One exit in the middle of each stretch.
    const { got, feed } = exitsFeed(
      3 * FILTERED_SCAN_EVENTS,
      (i) => i % FILTERED_SCAN_EVENTS === FILTERED_SCAN_EVENTS / 2,
    );
    // The first stretch only: the whole log in one go was the stall this bounds.
    expect(got).toHaveLength(1);
    for (let turn = 0; turn < 10 && feed.mode !== "live"; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(feed.mode).toBe("live");
    expect(got).toHaveLength(3);
    feed.close();
  });
});
