import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AgentSession, MemoryLog } from "../../src/agents/index.js";
import type { AdapterRun, AgentAdapter, RunOutcome } from "../../src/agents/index.js";
import { ManualClock } from "../../src/core/clock.js";
import type { Actor, SessionEvent } from "../../src/protocol/index.js";
import { nextTick } from "./helpers/wait.js";

const actor: Actor = { name: "tester", role: "operator" };

type Op = { gap: number; kind: "text" | "thought"; text: string } | { gap: number; kind: "tool" };

/**
 * An adapter that plays a script on the clock: every op is a timer, so ManualClock.advance
 * interleaves the script and the pacer's timers exactly by time, with no async in between.
 * Each tool event carries the text produced before it, so "flush before tool" can be checked.
 */
class ScriptAdapter implements AgentAdapter {
  readonly dead = false;
  produced = "";
  /** Everything produced while the run was open, in order: text, thoughts, tool calls. */
  readonly sequence: Array<{ kind: "text" | "thought" | "tool"; text: string }> = [];
  constructor(
    private readonly clock: ManualClock,
    private readonly ops: Op[],
    private readonly outcome: RunOutcome,
  ) {}

  run(run: AdapterRun): Promise<RunOutcome> {
    return new Promise((resolve) => {
      let at = 0;
      let tools = 0;
      for (const op of this.ops) {
        at += op.gap;
        this.clock.setTimeout(() => {
          if (run.signal.aborted) return;
          this.sequence.push({ kind: op.kind, text: op.kind === "tool" ? "" : op.text });
          if (op.kind === "text") {
            this.produced += op.text;
            run.sink.text(op.text);
          } else if (op.kind === "thought") run.sink.thought(op.text);
          else
            run.sink.tool({ toolCallId: `t${++tools}`, status: "completed", rawInput: { textBefore: this.produced } });
        }, at);
      }
      this.clock.setTimeout(
        () => resolve(run.signal.aborted ? { kind: "final", stopReason: "cancelled" } : this.outcome),
        at + 1,
      );
    });
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      gap: fc.integer({ min: 0, max: 90 }),
      kind: fc.constant("text" as const),
      text: fc.string({ minLength: 1, maxLength: 5 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      gap: fc.integer({ min: 0, max: 90 }),
      kind: fc.constant("thought" as const),
      text: fc.string({ minLength: 1, maxLength: 5 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ gap: fc.integer({ min: 0, max: 90 }), kind: fc.constant("tool" as const) }) },
);

const TERMINAL = new Set(["chat.final", "chat.error", "chat.aborted"]);

describe("run pacing (property, ManualClock)", () => {
  it("random delta timings: one delta per window, flush before tools and the end, no text lost, one terminal event", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(10, 50),
        fc.array(opArb, { maxLength: 30 }),
        fc.constantFrom("final", "error", "abort"),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (throttle, ops, ending, abortAt) => {
          const clock = new ManualClock(0);
          const log = new MemoryLog("s", { clock });
          const outcome: RunOutcome =
            ending === "error"
              ? { kind: "error", code: "AGENT_FAILED", message: "boom" }
              : { kind: "final", stopReason: "end_turn" };
          const adapter = new ScriptAdapter(clock, ops, outcome);
          const session = new AgentSession({
            sessionId: "s",
            log,
            spec: { adapter: "echo" },
            clock,
            deltaThrottleMs: throttle,
            adapter: () => adapter,
          });
          const { runId } = session.prompt("go", actor);
          const total = ops.reduce((sum, o) => sum + o.gap, 0) + 1;
          if (ending === "abort") {
            clock.advance(Math.floor(total * abortAt));
            session.abort({}, actor);
            clock.advance(total);
          } else {
            clock.advance(total);
          }
          await nextTick();
          await session.dispose();

          const events = log.events.filter(
            (e): e is SessionEvent & { runId: string } => "runId" in e && e.runId === runId,
          );
          const terminals = events.filter((e) => TERMINAL.has(e.type));
          expect(terminals).toHaveLength(1);
          expect(events.at(-1)).toBe(terminals[0]);
          const expectedEnd = ending === "abort" ? "chat.aborted" : ending === "error" ? "chat.error" : "chat.final";
          expect(terminals[0]!.type).toBe(expectedEnd);

          const deltas = events.filter((e) => e.type === "chat.delta");
          const deltaTexts = deltas.map((e) => (e.type === "chat.delta" ? e.text : ""));
          // No text lost: everything produced while the run was open reached the log.
          expect(deltaTexts.join("")).toBe(adapter.produced);
          const end = terminals[0]!;
          if (end.type === "chat.final") expect(end.text).toBe(deltaTexts.join(""));

          // Pacing: a delta closer than `throttle` to the previous one must be a flush, i.e. be
          // followed at the same instant by the tool or terminal event it was flushed for, or
          // next by the other kind of text (a thought after answer text, or answer text after a
          // thought: the switch flushes what came before it).
          for (const kind of ["chat.delta", "chat.thought"] as const) {
            const other = kind === "chat.delta" ? "chat.thought" : "chat.delta";
            let prev: SessionEvent | undefined;
            for (let i = 0; i < events.length; i++) {
              const e = events[i]!;
              if (e.type !== kind) continue;
              if (prev && e.ts - prev.ts < throttle) {
                const after = events.slice(i + 1).find((x) => x.type !== kind);
                const flushedFor =
                  after !== undefined &&
                  (after.type === other || ((after.type === "tool" || TERMINAL.has(after.type)) && after.ts === e.ts));
                expect(flushedFor).toBe(true);
              }
              prev = e;
            }
          }

          // Order: thoughts, answer text and tool calls reach the log in the order they were
          // produced (exploratory test: a thought's last piece came after the answer began, and
          // the page showed "Thinking", a word of the answer, "Thinking" again).
          const merge = (items: Array<{ kind: string; text: string }>) =>
            items.reduce<Array<{ kind: string; text: string }>>((out, item) => {
              const last = out.at(-1);
              if (last && last.kind === item.kind && item.kind !== "tool") last.text += item.text;
              else out.push({ ...item });
              return out;
            }, []);
          const logged = events.flatMap((e) =>
            e.type === "chat.delta"
              ? [{ kind: "text", text: e.text }]
              : e.type === "chat.thought"
                ? [{ kind: "thought", text: e.text }]
                : e.type === "tool"
                  ? [{ kind: "tool", text: "" }]
                  : [],
          );
          expect(merge(logged)).toEqual(merge(adapter.sequence));

          // Flush before tool: at each tool event the log holds exactly the text produced before it.
          for (let i = 0; i < events.length; i++) {
            const e = events[i]!;
            if (e.type !== "tool") continue;
            const before = events
              .slice(0, i)
              .map((x) => (x.type === "chat.delta" ? x.text : ""))
              .join("");
            expect(before).toBe((e.rawInput as { textBefore: string }).textBefore);
          }
          expect(clock.pending).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
