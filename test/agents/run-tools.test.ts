import { describe, expect, it } from "vitest";
import { AgentSession, MAX_TRACKED_TOOL_CALLS, MemoryLog } from "../../src/agents/index.js";
import type { AdapterRun, AgentAdapter, RunOutcome, ToolUpdate } from "../../src/agents/index.js";
import { ManualClock } from "../../src/core/clock.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { nextTick } from "./helpers/wait.js";

/** An adapter whose run sends `updates` to its sink, in order, and ends. */
class ToolAdapter implements AgentAdapter {
  readonly dead = false;
  constructor(private readonly updates: ToolUpdate[]) {}

  run(run: AdapterRun): Promise<RunOutcome> {
    for (const update of this.updates) run.sink.tool(update);
    return Promise.resolve({ kind: "final", stopReason: "end_turn" });
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

async function toolEvents(updates: ToolUpdate[]): Promise<Extract<SessionEvent, { type: "tool" }>[]> {
  const clock = new ManualClock(0);
  const log = new MemoryLog("s", { clock });
  const session = new AgentSession({
    sessionId: "s",
    log,
    spec: { adapter: "echo" },
    clock,
    adapter: () => new ToolAdapter(updates),
  });
  session.prompt("go", { name: "tester", role: "operator" });
  await nextTick();
  clock.advance(1_000);
  await nextTick();
  await session.dispose();
  return log.events.filter((e): e is Extract<SessionEvent, { type: "tool" }> => e.type === "tool");
}

describe("a run's tool calls", () => {
  // Exploratory test: the run remembered its first 1000 calls and no others, so from the 1001st
  // call on, updates that carry only a status (as agents send them) lost the title and kind.
  it("carries a call's title, kind and status over to its later updates past the first 1000 calls", async () => {
    const calls = MAX_TRACKED_TOOL_CALLS + 100;
    const updates: ToolUpdate[] = [
      // A call that stays open while all the others come and go.
      { toolCallId: "long", title: "Run the test suite", kind: "execute", status: "in_progress" },
    ];
    for (let i = 0; i < calls; i++) {
      updates.push({ toolCallId: `t${i}`, title: `Read f${i}.ts`, kind: "read", status: "pending" });
      updates.push({ toolCallId: `t${i}`, content: [] });
      updates.push({ toolCallId: `t${i}`, status: "completed" });
    }
    updates.push({ toolCallId: "long", content: [] });
    updates.push({ toolCallId: "long", status: "completed" });
    const events = await toolEvents(updates);
    expect(events).toHaveLength(updates.length);
    for (let i = 0; i < calls; i++) {
      const [first, middle, last] = events.filter((e) => e.toolCallId === `t${i}`);
      expect({ first, middle, last }).toMatchObject({
        first: { title: `Read f${i}.ts`, kind: "read", status: "pending" },
        middle: { title: `Read f${i}.ts`, kind: "read", status: "pending" },
        last: { title: `Read f${i}.ts`, kind: "read", status: "completed" },
      });
    }
    expect(events.slice(-2)).toMatchObject([
      { toolCallId: "long", title: "Run the test suite", kind: "execute", status: "in_progress" },
      { toolCallId: "long", title: "Run the test suite", kind: "execute", status: "completed" },
    ]);
  });
});

/** An adapter whose run never answers until aborted; it may ask one permission first. */
class SilentAdapter implements AgentAdapter {
  readonly dead = false;
  constructor(private readonly ask: boolean) {}

  run(run: AdapterRun): Promise<RunOutcome> {
    if (this.ask)
      void run.sink.requestPermission({ title: "Go?", options: [{ optionId: "y", name: "Yes", kind: "allow_once" }] });
    return new Promise((resolve) =>
      run.signal.addEventListener("abort", () => resolve({ kind: "final", stopReason: "cancelled" })),
    );
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

describe("a run whose agent says nothing", () => {
  async function silence(ask: boolean, ms: number): Promise<readonly SessionEvent[]> {
    const clock = new ManualClock(0);
    const log = new MemoryLog("s", { clock });
    const session = new AgentSession({
      sessionId: "s",
      log,
      spec: { adapter: "echo" },
      clock,
      stallNoticeMs: 30_000,
      adapter: () => new SilentAdapter(ask),
    });
    session.prompt("go", { name: "tester", role: "operator" });
    await nextTick();
    clock.advance(ms);
    await nextTick();
    await session.dispose();
    return log.events;
  }

  // Regression: a dead model API was minutes of "working" and nothing else (Claude Code retried 151 s).
  it("gets one run.notice saying so once stallNoticeMs passed without a word", async () => {
    expect((await silence(false, 29_000)).filter((e) => e.type === "run.notice")).toEqual([]);
    const notices = (await silence(false, 31_000)).filter((e) => e.type === "run.notice");
    expect(notices).toMatchObject([
      { level: "warning", text: expect.stringMatching(/^no update from the agent for 30 s/) },
    ]);
  });

  it("gets none while it waits for a permission answer", async () => {
    expect((await silence(true, 120_000)).filter((e) => e.type === "run.notice")).toEqual([]);
  });
});
