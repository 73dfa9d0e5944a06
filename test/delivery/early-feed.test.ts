/**
 * A feed that takes output before it is durable (SessionFeed `early`, a held session's
 * `/ws/session` viewer): whatever the order of appends, commits, a sink that fills and drains
 * and non-output events between, the viewer's bytes are the log's output in order, each once
 * (docs/architecture.md, "Output shown before its commit").
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog } from "../../src/log/index.js";
import type { LogEntry, StoredEntry } from "../../src/log/index.js";
import { SessionFeed } from "../../src/server/ws/feed.js";
import { ManualStore } from "../helpers/store-stub.js";

type Op =
  | { kind: "output"; bytes: number }
  | { kind: "input" }
  | { kind: "soon" }
  | { kind: "linger" }
  | { kind: "ack"; n: number }
  | { kind: "fill" }
  | { kind: "drain" };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 30 }).map((bytes) => ({ kind: "output" as const, bytes })) },
  { weight: 1, arbitrary: fc.constant({ kind: "input" as const }) },
  // A held key's input: its append waits for its echo and the linger (SessionLog.appendSoon).
  { weight: 2, arbitrary: fc.constant({ kind: "soon" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "linger" as const }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 4 }).map((n) => ({ kind: "ack" as const, n })) },
  { weight: 1, arbitrary: fc.constant({ kind: "fill" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "drain" as const }) },
);

const TYPES: ReadonlySet<string> = new Set(["output", "exit", "lost"]);
const BUDGET = 64;

describe("a feed that takes output before it is durable", () => {
  it("gives the log's output bytes in order, each once, whatever the appends, commits and sink (property)", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 80 }), (ops) => {
        const store = new ManualStore();
        const events = new EventLog({ store, clock: new ManualClock(), ringMaxEntries: 10_000, ringMaxBytes: 1 << 24 });
        const log = events.create("s");
        log.showOutputEarly();
        const got: number[] = [];
        let written = 0;
        const sink = {
          queued: 0,
          get queuedBytes() {
            return this.queued;
          },
          deliver(entries: readonly LogEntry[]) {
            for (const e of entries) {
              const out = e as StoredEntry & { bytes?: Uint8Array };
              if (out.bytes !== undefined) got.push(...out.bytes);
            }
          },
          trimmed() {
            throw new Error("nothing is trimmed here");
          },
        };
        const feed = new SessionFeed(log, 0, sink, { budgetBytes: BUDGET, types: TYPES, early: true });
        feed.pump();
        for (const o of ops) {
          if (o.kind === "output") {
            const bytes = Uint8Array.from({ length: o.bytes }, (_, i) => (written + i) % 251);
            written += o.bytes;
            log.appendOutputBytes("pty", bytes, false);
          } else if (o.kind === "input") log.append({ type: "input", by: { name: "t", role: "operator" }, bytes: 1 });
          else if (o.kind === "soon") log.appendSoon({ type: "input", by: { name: "t", role: "operator" }, bytes: 1 });
          else if (o.kind === "linger") log.appendSoonNow();
          else if (o.kind === "ack") store.ack(o.n);
          else if (o.kind === "fill") sink.queued = BUDGET;
          else {
            sink.queued = 0;
            feed.pump();
          }
        }
        log.appendSoonNow();
        store.flush();
        sink.queued = 0;
        feed.pump();
        expect(got).toEqual(Array.from({ length: written }, (_, i) => i % 251));
      }),
      { numRuns: 300 },
    );
  });
});
