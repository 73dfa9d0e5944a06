/**
 * SessionLog.appendSoon: a held key's input event takes its seq at once and is appended later,
 * with the output shown early meanwhile (its echo), so that the key's bookkeeping runs after the
 * echo was sent. Whatever comes between — other appends, output a viewer waits to see committed,
 * publish waiters, commits, the linger — every entry is published once, at the seq it was given,
 * in order, and an early viewer gets every output byte once (docs/benchmarks.md, "Keystroke echo").
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog } from "../../src/log/index.js";
import { OutputEntry } from "../../src/log/output-entry.js";
import type { LogEntry } from "../../src/log/index.js";
import { LOG_INPUT_LINGER_MS } from "../../src/log/commit-limits.js";
import type { NewEvent } from "../../src/protocol/index.js";
import { ManualStore } from "../helpers/store-stub.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";
import { openLog } from "./helpers.js";

const input = (bytes: number): NewEvent => ({ type: "input", by: { name: "t", role: "operator" }, bytes });

type Op =
  | { kind: "soon"; bytes: number }
  | { kind: "output"; bytes: number }
  | { kind: "append" }
  | { kind: "linger" }
  | { kind: "ack"; n: number }
  | { kind: "watch" }
  | { kind: "unwatch" }
  | { kind: "wait" };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 9 }).map((bytes) => ({ kind: "soon" as const, bytes })) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 9 }).map((bytes) => ({ kind: "output" as const, bytes })) },
  { weight: 1, arbitrary: fc.constant({ kind: "append" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "linger" as const }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 5 }).map((n) => ({ kind: "ack" as const, n })) },
  { weight: 1, arbitrary: fc.constant({ kind: "watch" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "unwatch" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "wait" as const }) },
);

describe("an event appended soon", () => {
  it("every entry is published once, in order, at the seq it was given; early viewers get each output byte once (property)", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        const store = new ManualStore();
        const errors: unknown[] = [];
        const events = new EventLog({
          store,
          clock: new ManualClock(),
          ringMaxEntries: 10_000,
          ringMaxBytes: 1 << 24,
          onListenerError: (error) => errors.push(error),
        });
        const log = events.create("s");
        log.showOutputEarly();
        /** What each seq was given to, as the test appended it. */
        const expected: string[] = [];
        const published: string[] = [];
        const describeEntry = (e: LogEntry) =>
          e instanceof OutputEntry ? `output:${Buffer.from(e.bytes).toString()}` : `${e.type}:${e.json}`;
        log.subscribe((e) => published.push(`${e.seq} ${describeEntry(e)}`), { background: true });
        // A /ws/session viewer: told of output early, and of everything once published.
        log.subscribe(() => {});
        const early: string[] = [];
        log.subscribeEarly((e) => early.push(Buffer.from((e as OutputEntry).bytes).toString()));
        const watchers: Array<() => void> = [];
        let waited = 0;
        let text = 0;
        for (const o of ops) {
          if (o.kind === "soon") {
            const seq = log.appendSoon(input(o.bytes));
            expect(seq).toBe(expected.length + 1);
            expect(log.appendedHead).toBe(seq);
            expected.push(`input:${o.bytes}`);
          } else if (o.kind === "output") {
            const bytes = String.fromCharCode(...Array.from({ length: o.bytes }, () => 0x61 + (text++ % 26)));
            const entry = log.appendOutputBytes("pty", Buffer.from(bytes), false);
            expect(entry.seq).toBe(expected.length + 1);
            expected.push(`output:${bytes}`);
          } else if (o.kind === "append") {
            const e = log.append({ type: "resize", cols: 80, rows: expected.length + 1 } as NewEvent);
            expect(e.seq).toBe(expected.length + 1);
            expected.push(`resize:${expected.length + 1}`);
          } else if (o.kind === "linger") log.appendSoonNow();
          else if (o.kind === "ack") store.ack(o.n);
          else if (o.kind === "watch") watchers.push(log.subscribe(() => {}));
          else if (o.kind === "unwatch") watchers.pop()?.();
          else {
            waited++;
            log.afterPublished(log.appendedHead, log.drops, () => waited--);
          }
        }
        log.appendSoonNow();
        store.flush();
        expect(errors).toEqual([]);
        expect(waited).toBe(0);
        expect(published.map((p) => Number(p.split(" ")[0]))).toEqual(expected.map((_, i) => i + 1));
        const got = published.map((p) => {
          const body = p.slice(p.indexOf(" ") + 1);
          if (body.startsWith("output:")) return body;
          const json = JSON.parse(body.slice(body.indexOf(":") + 1)) as { type: string; bytes?: number; rows?: number };
          return json.type === "input" ? `input:${json.bytes}` : `resize:${json.rows}`;
        });
        expect(got).toEqual(expected);
        const outputs = expected.filter((e) => e.startsWith("output:")).map((e) => e.slice("output:".length));
        expect(early.join("")).toBe(outputs.join(""));
        events.close();
      }),
      { numRuns: 300 },
    );
  });

  it("waits for the echo, then goes with it after the linger: input first, at the seq the holder was told", async () => {
    const log = openLog(tempDir()).create("s");
    log.showOutputEarly();
    log.subscribe(() => {});
    const early: number[] = [];
    log.subscribeEarly((e) => early.push(e.seq));
    const seq = log.appendSoon(input(1));
    expect([seq, log.appendedHead, log.head]).toEqual([1, 1, 0]);
    const echo = log.appendOutputBytes("pty", Buffer.from("x"), false);
    // The echo is shown at once; neither is appended to the store yet.
    expect([echo.seq, early, log.head]).toEqual([2, [2], 0]);
    const from = performance.now();
    await waitFor(() => log.head === 2, 5_000, "the key's input and echo published");
    expect(performance.now() - from).toBeGreaterThanOrEqual(LOG_INPUT_LINGER_MS - 0.5);
    expect(log.read(0).entries.map((e) => e.type)).toEqual(["input", "output"]);
  });

  it("an early listener that appends while the echo it is told of waits for its input is refused, and the log stays in order", () => {
    const store = new ManualStore();
    const errors: unknown[] = [];
    const events = new EventLog({ store, clock: new ManualClock(), onListenerError: (error) => errors.push(error) });
    const log = events.create("s");
    log.showOutputEarly();
    log.subscribe(() => {});
    log.subscribeEarly(() => log.append({ type: "resize", cols: 1, rows: 1 } as NewEvent));
    log.appendSoon(input(1));
    log.appendOutputBytes("pty", Buffer.from("x"), false);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/an early listener appended/);
    log.appendSoonNow();
    store.flush();
    expect(log.read(0).entries.map((e) => [e.seq, e.type])).toEqual([
      [1, "input"],
      [2, "output"],
    ]);
    events.close();
  });
});
