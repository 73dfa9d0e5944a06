/**
 * The delivery guarantees (docs/architecture.md, 1, 2 and 4) proven once, on the Viewer every
 * transport uses: a consumer that reads at random moments, stalls, reconnects from the position
 * it holds, is overtaken by retention and (lag: "screen") jumps to the screen gets every event or
 * byte once, in order, each gap told, and ends at the head. Both ways a viewer starts: after a seq
 * (SSE, /v1/ws, plugins) and at an output byte (/ws/session).
 */
import fc from "fast-check";
import { describe, expect, it, onTestFinished } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { outputOf } from "../../src/log/output-entry.js";
import type { LogEntry, StoredEntry } from "../../src/log/index.js";
import type { Gateway } from "../../src/server/gateway.js";
import type { ViewerScreen } from "../../src/server/ws/screen-frame.js";
import { Viewer } from "../../src/server/ws/viewer.js";
import type { OutputSink } from "../../src/server/ws/sink.js";
import type { Session } from "../../src/sessions/session.js";
import { startTestGateway } from "./helpers.js";
import type { Defer } from "./helpers.js";
import { createSession } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const defer: Defer = (fn) => onTestFinished(async () => void (await fn()));

/** Small enough that a few appends fill it and the viewer leaves live delivery. */
const BUDGET_BYTES = 16 * 1024;

type Step =
  | { kind: "append"; pieces: number; bytes: number }
  | { kind: "event" }
  | { kind: "read"; items: number }
  | { kind: "reconnect" }
  | { kind: "settle" };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      pieces: fc.integer({ min: 1, max: 8 }),
      bytes: fc.constantFrom(10, 900, 8_000, 70_000),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "event" as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("read" as const), items: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reconnect" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "settle" as const }) },
);

const FLOOD: Step = { kind: "append", pieces: 8, bytes: 70_000 };
const READ: Step = { kind: "read", items: 6 };

/** A queued item and what it costs the sink's budget. */
type Item = { bytes: number; apply: () => void };

/**
 * One consumer: a queue the test reads at its own pace (the socket), and the position it holds —
 * a seq, or an output byte. Every check of the guarantees is made as an item is read.
 */
class Consumer {
  private queue: Item[] = [];
  private queued = 0;
  /** The last seq held (seq mode) or the next output byte (offset mode). */
  position: number;
  /** A retention gap or a screen was told since the last delivery: the next position may jump. */
  private jumpFrom: number | undefined;
  private jumpTo: number | undefined;
  viewer: Viewer | undefined;
  readonly seen: number[] = [];
  screens = 0;
  gaps = 0;
  /** Events (seq mode) or bytes (offset mode) delivered. */
  delivered = 0;

  constructor(
    readonly mode: "seq" | "offset",
    start: number,
    private readonly expected: { event: Map<number, unknown>; bytes: () => Buffer },
  ) {
    this.position = start;
  }

  get queuedBytes(): number {
    return this.queued;
  }

  private push(bytes: number, apply: () => void): void {
    this.queue.push({ bytes, apply });
    this.queued += bytes;
  }

  /** Reads up to `n` items, then pumps the viewer as a drained socket does. */
  read(n: number): void {
    for (let i = 0; i < n && this.queue.length > 0; i++) {
      const item = this.queue.shift()!;
      this.queued -= item.bytes;
      item.apply();
    }
    if (this.queued < BUDGET_BYTES / 2) this.viewer?.pump();
  }

  /** The socket closed: what was queued is lost; the client comes back with what it holds. */
  dropQueue(): void {
    this.queue = [];
    this.queued = 0;
    this.jumpFrom = this.jumpTo = undefined;
  }

  private arrive(at: number, length: number): void {
    if (this.jumpTo !== undefined) {
      // A gap is told where the consumer was, and continues where it says (or, for a screen, after).
      expect(at).toBeGreaterThanOrEqual(this.jumpTo);
      if (this.mode === "seq") expect(at).toBe(this.jumpTo);
    } else expect(at).toBe(this.mode === "seq" ? this.position + 1 : this.position);
    this.jumpFrom = this.jumpTo = undefined;
    this.position = this.mode === "seq" ? at : at + length;
    this.delivered += length;
  }

  private entry(e: LogEntry): void {
    if (this.mode === "seq") {
      this.arrive(e.seq, 1);
      this.seen.push(e.seq);
      expect(JSON.parse(e.json)).toEqual(this.expected.event.get(e.seq));
      return;
    }
    if (e.type !== "output") return;
    const out = outputOf(e as StoredEntry);
    this.arrive(out.offset, out.bytes.length);
    const want = this.expected.bytes().subarray(out.offset, out.offset + out.bytes.length);
    expect(Buffer.from(out.bytes).equals(want)).toBe(true);
  }

  sink(): OutputSink {
    const queued = () => this.queued;
    return {
      get queuedBytes() {
        return queued();
      },
      deliver: (entries) => {
        for (const e of entries) this.push(e.size, () => this.entry(e));
      },
      trimmed: (first, _head, from) =>
        this.push(1, () => {
          this.gaps++;
          if (this.mode === "seq") expect(from).toBe(this.position);
          this.jumpFrom = this.position;
          this.jumpTo = this.mode === "seq" ? first : this.position;
        }),
      screen: (screen: ViewerScreen) =>
        this.push(1, () => {
          this.screens++;
          // A screen replaces what the viewer shows: it goes on right after it.
          this.position = this.mode === "seq" ? screen.seq : screen.frame.offset;
          this.jumpFrom = this.jumpTo = undefined;
        }),
      replay: (from, chunks, size) =>
        this.push(size, () => {
          this.arrive(from, size);
          const got = Buffer.concat(chunks, size);
          expect(got.equals(this.expected.bytes().subarray(from, from + size))).toBe(true);
        }),
      trimmedOutput: (from, to) =>
        this.push(1, () => {
          this.gaps++;
          expect(from).toBe(this.position);
          expect(to).toBeGreaterThan(from);
          this.position = to;
        }),
      joined: () => true,
    };
  }
}

/** A PTY session whose output the test appends to its log (the screen thread parses it as any PTY's). */
async function ptySession(gw: Gateway): Promise<Session> {
  const { id } = await createSession(gw, { command: ["sleep", "600"], pty: true });
  const session = gw.core.sessions.get(id)!;
  return session;
}

describe("Viewer delivery guarantees", () => {
  for (const mode of ["seq", "offset"] as const)
    it(`property (${mode}): reads, stalls, reconnects, retention and screen jumps give every event once, each gap told`, async () => {
      // A clock that does not move: a jump always ends in its screen, however slow the screen thread is.
      const clock = new ManualClock(Date.now());
      const gw = await startTestGateway(defer, { clock, config: { retention: { maxEvents: 60 } } });
      const session = await ptySession(gw);
      const log = session.log;
      const event = new Map<number, unknown>();
      // The session's own events (its size) come first.
      await log.whenPublished();
      for (const e of log.read(0, {}).entries) event.set(e.seq, JSON.parse(e.json));
      // Every output byte appended, at its offset (a buffer that doubles: no copy per append).
      let written = Buffer.alloc(1 << 20);
      let writtenBytes = 0;
      const bytes = () => written.subarray(0, writtenBytes);
      const pacing = gw.core.catchUp.hold("viewer-property");
      defer(() => pacing.release());
      let letter = 0;
      const paths = { gaps: 0, screens: 0, delivered: 0 };
      await fc.assert(
        fc.asyncProperty(
          fc.array(step, { minLength: 5, maxLength: 40 }),
          fc.boolean(),
          fc.nat(),
          async (steps, lag, startAt) => {
            // Starts anywhere in what the log ever held: before its first kept event too.
            const start = mode === "seq" ? startAt % (log.head + 1) : startAt % (log.outputBytes + 1);
            const consumer = new Consumer(mode, start, { event, bytes });
            const open = () => {
              const at = consumer.position;
              const viewer = new Viewer({
                core: gw.core,
                log,
                session,
                ...(mode === "seq"
                  ? { seq: at, sink: consumer.sink() }
                  : {
                      offset: at,
                      sink: consumer.sink(),
                      pacing: { scheduler: gw.core.catchUp.scheduler, share: pacing.share },
                    }),
                budgetBytes: BUDGET_BYTES,
                types: mode === "offset" ? new Set(["output", "exit", "lost"]) : undefined,
                lag: lag ? { cols: 80, rows: 24 } : undefined,
              });
              consumer.viewer = viewer;
              viewer.start();
            };
            open();
            for (const s of steps) {
              switch (s.kind) {
                case "append":
                  for (let i = 0; i < s.pieces; i++) {
                    const text = String.fromCharCode(97 + (letter++ % 26)).repeat(s.bytes - 2) + "\r\n";
                    const e = log.appendOutput("stdout", text);
                    event.set(e.seq, e);
                    if (writtenBytes + text.length > written.length) {
                      const grown = Buffer.alloc(written.length * 2 + text.length);
                      written.copy(grown, 0, 0, writtenBytes);
                      written = grown;
                    }
                    writtenBytes += written.write(text, writtenBytes, "latin1");
                  }
                  break;
                case "event": {
                  const e = log.append({ type: "custom", name: "n", data: letter });
                  event.set(e.seq, e);
                  break;
                }
                case "read":
                  consumer.read(s.items);
                  break;
                case "reconnect":
                  consumer.viewer?.close();
                  consumer.dropQueue();
                  open();
                  break;
                case "settle":
                  await new Promise((r) => setTimeout(r, 5));
                  break;
              }
              await new Promise((r) => setImmediate(r));
            }
            // Everything published, then read to the end: the consumer reaches the head.
            await log.whenPublished();
            await waitFor(
              () => {
                consumer.read(64);
                return mode === "seq" ? consumer.position === log.head : consumer.position === log.outputBytes;
              },
              60_000,
              "the consumer at the head",
            );
            consumer.viewer?.close();
            paths.gaps += consumer.gaps;
            paths.screens += consumer.screens;
            paths.delivered += consumer.delivered;
          },
        ),
        // Besides 12 random runs, one that surely jumps (2.2 MB appended unread, then read) and one
        // that surely meets retention (more events than the log keeps, unread, from the start), so
        // the checks below never hang on chance. Examples count in numRuns.
        {
          numRuns: 14,
          examples: [
            [[...Array<Step>(4).fill(FLOOD), READ, READ, READ], true, 0],
            [[...Array<Step>(8).fill(FLOOD), READ, READ, READ], false, 0],
          ],
        },
      );
      // The runs crossed every path the guarantees must hold on: retention gaps and screen jumps.
      expect(paths.gaps).toBeGreaterThan(0);
      expect(paths.screens).toBeGreaterThan(0);
      expect(paths.delivered).toBeGreaterThan(0);
    }, 300_000);
});
