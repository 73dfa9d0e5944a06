import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog } from "../../src/log/index.js";
import { SwitchboardError } from "../../src/protocol/index.js";
import type { LogEntry, SessionLog, StoredEntry } from "../../src/log/index.js";
import { StoreStub } from "../helpers/store-stub.js";

/**
 * A store in memory that commits what is queued on `flush`, until it is fenced: from then on it
 * drops what it is handed of the fenced session, as the Redis store does after a refused append.
 */
class FencingStore extends StoreStub {
  private queued: Array<{ sessionId: string; entry: StoredEntry }> = [];
  readonly committed = new Map<string, StoredEntry[]>();
  fenced: string | undefined;

  enqueue(sessionId: string, entry: StoredEntry): void {
    this.queued.push({ sessionId, entry });
  }
  fence(sessionId: string): void {
    this.fenced = sessionId;
    this.queued = this.queued.filter((q) => q.sessionId !== sessionId);
  }
  /** Entries of a fenced session come as copies from now on: committed again. */
  follow(): void {
    this.fenced = undefined;
  }
  flush(): number {
    const batch = this.queued.filter((q) => q.sessionId !== this.fenced);
    this.queued = [];
    for (const { sessionId, entry } of batch)
      this.committed.set(sessionId, [...(this.committed.get(sessionId) ?? []), entry]);
    this.acknowledge(batch);
    return batch.length;
  }
  override readAfter(id: string, since: number, limit: number, _t?: ReadonlySet<string>, upTo = Infinity): LogEntry[] {
    return (this.committed.get(id) ?? []).filter((e) => e.seq > since && e.seq <= upTo).slice(0, limit);
  }
  override readOutputFrom(id: string, offset: number): StoredEntry[] {
    return (this.committed.get(id) ?? []).filter((e) => e.outEnd !== undefined && e.outEnd > offset);
  }
}

type Entry = { kind: "event"; n: number } | { kind: "output"; text: string };
const entry: fc.Arbitrary<Entry> = fc.oneof(
  fc.integer({ min: 0, max: 1000 }).map((n) => ({ kind: "event" as const, n })),
  fc.string({ minLength: 1, maxLength: 30 }).map((text) => ({ kind: "output" as const, text })),
);

function append(log: SessionLog, e: Entry): void {
  if (e.kind === "event") log.append({ type: "custom", name: "n", data: e.n });
  else log.appendOutput("stdout", e.text);
}

/** What a reader sees of a log: every entry's JSON, in order. */
function readAll(log: SessionLog): string[] {
  const out: string[] = [];
  for (let since = 0; ;) {
    const { entries, next } = log.read(since, { limit: 1000 });
    if (entries.length === 0) return out;
    for (const e of entries) out.push(e.json);
    since = next;
  }
}

describe("a fenced session's log follows the new owner's", () => {
  it("drops what the shared log refused and goes on with the new owner's entries: readers and listeners see the shared log, each entry once (property)", async () => {
    const refusals: Array<Promise<string[]>> = [];
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 20 }),
        fc.array(entry, { maxLength: 20 }),
        fc.array(entry, { maxLength: 20 }),
        (written, refused, theirs) => {
          const clock = new ManualClock();
          const store = new FencingStore();
          const events = new EventLog({ store, clock });
          try {
            // This node's log: what the shared log took, then what it refused after the fence.
            const log = events.create("s");
            const published: number[] = [];
            log.subscribe((e) => published.push(e.seq));
            for (const e of written) append(log, e);
            events.flush();
            store.fence("s");
            const waits: Array<Promise<string>> = [];
            // Called back at once, not in a later turn: each sees the log as the drop left it.
            const told: Array<{ code: string | undefined; head: number }> = [];
            for (const e of refused) {
              append(log, e);
              log.afterPublished(log.appendedHead, log.drops, (refusal) =>
                told.push({ code: refusal?.code, head: log.appendedHead }),
              );
              // Whoever waits for a refused entry is refused, never told it was published.
              waits.push(
                log.whenPublished(log.appendedHead).then(
                  () => "published",
                  (err: Error) => err.message,
                ),
              );
            }
            events.flush();

            // The shared log: the same first entries, then the new owner's.
            const owner = events.create("owner");
            for (const e of written) append(owner, e);
            for (const e of theirs) append(owner, e);
            events.flush();

            expect(log.dropUnwritten(() => new SwitchboardError("FENCED", "fenced"))).toBe(refused.length);
            expect(told).toEqual(refused.map(() => ({ code: "FENCED", head: written.length })));
            expect([log.head, log.appendedHead, log.outputBytes]).toEqual([
              written.length,
              written.length,
              (store.committed.get("s") ?? []).reduce((n, e) => n + ((e.outEnd ?? 0) - (e.outStart ?? 0)), 0),
            ]);
            refusals.push(Promise.all(waits));
            store.follow();
            for (const e of owner.read(written.length, { limit: 1000 }).entries) log.appendCopy(e as StoredEntry);
            events.flush();

            expect(readAll(log)).toEqual(readAll(owner));
            expect([log.head, log.outputBytes]).toEqual([owner.head, owner.outputBytes]);
            expect(published).toEqual(readAll(owner).map((_, i) => i + 1));
          } finally {
            events.close();
          }
        },
      ),
      { numRuns: 200 },
    );
    for (const answers of await Promise.all(refusals)) expect(answers.every((a) => a === "fenced")).toBe(true);
    expect((await Promise.all(refusals)).flat().length).toBeGreaterThan(0);
  });
});
