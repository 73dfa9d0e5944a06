import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog } from "../../src/log/index.js";
import type { LogEntry, AppendMark, SessionLog, StoredEntry } from "../../src/log/index.js";
import { StoreStub } from "../helpers/store-stub.js";

/** A store in memory whose commits the test acknowledges by hand, one queued entry at a time. */
class ManualStore extends StoreStub {
  readonly queued: Array<{ sessionId: string; entry: StoredEntry }> = [];
  readonly committed: StoredEntry[] = [];

  enqueue(sessionId: string, entry: StoredEntry): void {
    this.queued.push({ sessionId, entry });
  }
  /** Acknowledges the oldest `n` queued entries as one commit. */
  ack(n: number): void {
    const batch = this.queued.splice(0, n);
    for (const { entry } of batch) this.committed.push(entry);
    this.acknowledge(batch);
  }
  flush(): number {
    const n = this.queued.length;
    this.ack(n);
    return n;
  }
  override readAfter(
    _id: string,
    since: number,
    limit: number,
    _types?: ReadonlySet<string>,
    upTo = Infinity,
  ): LogEntry[] {
    return this.committed.filter((e) => e.seq > since && e.seq <= upTo).slice(0, limit);
  }
  override readOutputFrom(_id: string, offset: number): StoredEntry[] {
    return this.committed.filter((e) => e.outEnd !== undefined && e.outEnd > offset);
  }
}

type Op = { kind: "event" } | { kind: "output"; bytes: number } | { kind: "ack"; n: number } | { kind: "subscribe" };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ kind: "event" as const }),
  fc.integer({ min: 1, max: 40 }).map((bytes) => ({ kind: "output" as const, bytes })),
  fc.integer({ min: 0, max: 5 }).map((n) => ({ kind: "ack" as const, n })),
  fc.constant({ kind: "subscribe" as const }),
);

describe("publication", () => {
  it("gives an entry to listeners and readers only once the store acknowledged it, in order, exactly once (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 1, max: 8 }),
        async (ops, ring) => {
          const store = new ManualStore();
          const events = new EventLog({ store, clock: new ManualClock(), ringMaxEntries: ring, ringMaxBytes: 1 << 20 });
          const log = events.create("s");
          const acked = () => store.committed.length;
          /** Each subscriber joins as a feed does: a read and a subscription in one tick. */
          const subscribers: number[][] = [];
          const join = () => {
            const got = log.read(0).entries.map((e) => e.seq);
            subscribers.push(got);
            log.subscribe((entry) => {
              // Never before the store acknowledged it.
              expect(entry.seq).toBeLessThanOrEqual(acked());
              got.push(entry.seq);
            });
          };
          join();
          let bytes = 0;
          const published: Array<Promise<void>> = [];
          for (const o of ops) {
            if (o.kind === "event") log.append({ type: "custom", name: "n", data: null });
            else if (o.kind === "output") {
              log.appendOutput("stdout", "x".repeat(o.bytes));
              bytes += o.bytes;
            } else if (o.kind === "ack") store.ack(o.n);
            else join();
            if (o.kind !== "ack") published.push(log.whenPublished());
            // Readers answer at the acknowledged position.
            expect(log.head).toBe(acked());
            expect(log.read(0).entries.map((e) => e.seq)).toEqual(store.committed.map((e) => e.seq));
            const durableBytes = store.committed.reduce((n, e) => Math.max(n, e.outEnd ?? 0), 0);
            expect(log.outputBytes).toBe(durableBytes);
            expect(() => log.readOutput(durableBytes + 1)).toThrow(/past the end/);
            expect(log.settled).toBe(store.queued.length === 0);
          }
          for (const got of subscribers) expect(got).toEqual(Array.from({ length: acked() }, (_, i) => i + 1));
          store.flush();
          await Promise.all(published);
          expect(log.outputBytes).toBe(bytes);
          for (const got of subscribers) expect(got).toEqual(Array.from({ length: log.appendedHead }, (_, i) => i + 1));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("holds an answer (events.published) until what was appended is durable", async () => {
    const store = new ManualStore();
    const events = new EventLog({ store, clock: new ManualClock() });
    const log = events.create("s");
    const appended = new Map<SessionLog, AppendMark>();
    expect(events.published(appended)).toBeUndefined();
    events.tracking(appended, () => log.append({ type: "custom", name: "n", data: 1 }));
    // Another log's backlog is not waited for.
    events.create("other").append({ type: "custom", name: "n", data: 2 });
    expect(appended.get(log)).toEqual({ seq: 1, drops: 0 });
    expect(appended.size).toBe(1);
    let done = false;
    const wait = events.published(appended)!.then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    store.ack(1);
    await wait;
    expect(events.published(appended)).toBeUndefined();
    expect(done).toBe(true);
    expect(log.read(0).entries.map((e) => e.seq)).toEqual([1]);
  });

  it("notes what each tracked call appends after its awaits, however the calls overlap", async () => {
    const events = new EventLog({ store: new ManualStore(), clock: new ManualClock() });
    const [a, b] = [events.create("a"), events.create("b")];
    const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
    const first = new Map<SessionLog, AppendMark>();
    const second = new Map<SessionLog, AppendMark>();
    const one = events.tracking(first, async () => {
      await tick();
      a.append({ type: "custom", name: "n", data: 1 });
    });
    const two = events.tracking(second, async () => {
      await tick();
      await tick();
      await tick();
      // The first call settled meanwhile: this one's scope is still in force.
      b.append({ type: "custom", name: "n", data: 2 });
    });
    await one;
    expect([...first.keys()]).toEqual([a]);
    await two;
    expect([...second.keys()]).toEqual([b]);
    // Untracked (no call in flight: the scope is off), and tracked again afterwards.
    a.append({ type: "custom", name: "n", data: 3 });
    expect(first.get(a)!.seq).toBe(1);
    const third = new Map<SessionLog, AppendMark>();
    await events.tracking(third, async () => {
      await tick();
      a.append({ type: "custom", name: "n", data: 4 });
    });
    expect(third.get(a)).toEqual({ seq: 3, drops: 0 });
    expect(() =>
      events.tracking(new Map(), () => {
        throw new Error("refused");
      }),
    ).toThrow("refused");
    const fourth = new Map<SessionLog, AppendMark>();
    events.tracking(fourth, () => b.append({ type: "custom", name: "n", data: 5 }));
    expect(fourth.get(b)).toEqual({ seq: 2, drops: 0 });
  });
});
