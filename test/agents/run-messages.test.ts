// A run's messages (ACP `messageId`): a new message that starts over right after another one's
// text abandons it (a retry), one after a tool call goes on the answer; and what the agent says
// between runs is logged within MAX_IDLE_AGENT_EVENTS.
import { describe, expect, it } from "vitest";
import { AgentSession, MAX_IDLE_AGENT_EVENTS, MemoryLog } from "../../src/agents/index.js";
import type { AdapterContext, AdapterRun, AgentAdapter, RunOutcome, RunSink } from "../../src/agents/index.js";
import { ManualClock } from "../../src/core/clock.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { nextTick } from "./helpers/wait.js";

/** An adapter whose run plays `script` on its sink and ends; `context` is kept for calls between runs. */
class ScriptAdapter implements AgentAdapter {
  readonly dead = false;
  context: AdapterContext | undefined;
  constructor(private readonly script: (sink: RunSink) => void) {}

  run(run: AdapterRun): Promise<RunOutcome> {
    this.script(run.sink);
    return Promise.resolve({ kind: "final", stopReason: "end_turn" });
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

interface Played {
  events: SessionEvent[];
  log: MemoryLog;
  session: AgentSession;
  adapter: ScriptAdapter;
  /** Prompts once more and lets that run end. */
  again(): Promise<void>;
}

async function play(
  script: (sink: RunSink) => void,
  onTestFinished: (fn: () => Promise<void>) => void,
): Promise<Played> {
  const clock = new ManualClock(0);
  const log = new MemoryLog("s", { clock });
  const adapter = new ScriptAdapter(script);
  const session = new AgentSession({
    sessionId: "s",
    log,
    spec: { adapter: "echo" },
    clock,
    adapter: (context) => {
      adapter.context = context;
      return adapter;
    },
  });
  onTestFinished(() => session.dispose());
  const again = async (): Promise<void> => {
    session.prompt("go", { name: "tester", role: "operator" });
    await nextTick();
    clock.advance(1_000);
    await nextTick();
  };
  await again();
  return { events: [...log.events], log, session, adapter, again };
}

const final = (events: SessionEvent[]) => events.find((e) => e.type === "chat.final") as { text: string } | undefined;

describe("a run's messages", () => {
  it("abandons a message a new one starts over right after, and leaves it out of chat.final", async ({
    onTestFinished,
  }) => {
    const { events } = await play((sink) => {
      sink.text("w000 w001 ", "a");
      sink.notice("warning", "Retrying");
      sink.text("w000 w001 w002", "b");
    }, onTestFinished);
    expect(events.filter((e) => e.type === "chat.abandoned")).toEqual([
      expect.objectContaining({ messageId: "a", chars: 10 }),
    ]);
    expect(final(events)?.text).toBe("w000 w001 w002");
    // The abandoned message's deltas were logged before the event that abandons them.
    const types = events.map((e) => e.type);
    expect(types.indexOf("chat.delta")).toBeLessThan(types.indexOf("chat.abandoned"));
  });

  it("keeps a message followed by a tool call, and text of agents that name no message", async ({ onTestFinished }) => {
    const { events } = await play((sink) => {
      sink.text("Let me look. ", "a");
      sink.tool({ toolCallId: "t", status: "completed" });
      sink.text("Found it.", "b");
      sink.text(" And more.");
    }, onTestFinished);
    expect(events.some((e) => e.type === "chat.abandoned")).toBe(false);
    expect(final(events)?.text).toBe("Let me look. Found it. And more.");
    expect(events.filter((e) => e.type === "chat.delta").map((e) => (e as { messageId?: string }).messageId)).toEqual([
      "a",
      "b",
    ]);
  });

  it("does not abandon a message that only thought", async ({ onTestFinished }) => {
    const { events } = await play((sink) => {
      sink.thought("hmm", "a");
      sink.text("answer", "b");
    }, onTestFinished);
    expect(events.some((e) => e.type === "chat.abandoned")).toBe(false);
    expect(final(events)?.text).toBe("answer");
  });

  it("logs what the agent says of itself between runs, at most MAX_IDLE_AGENT_EVENTS until the next run", async ({
    onTestFinished,
  }) => {
    const played = await play(() => undefined, onTestFinished);
    const context = played.adapter.context!;
    const usages = (): SessionEvent[] => played.log.events.filter((e) => e.type === "agent.usage");
    for (let i = 0; i < MAX_IDLE_AGENT_EVENTS + 50; i++) context.agentEvent({ type: "agent.usage", used: i, size: 10 });
    expect(usages()).toHaveLength(MAX_IDLE_AGENT_EVENTS);
    expect(usages().every((e) => (e as { runId?: string }).runId === undefined)).toBe(true);
    // A run starts a new pause's budget.
    await played.again();
    context.agentEvent({ type: "agent.usage", used: -1, size: 10 });
    expect(usages()).toHaveLength(MAX_IDLE_AGENT_EVENTS + 1);
  });
});
