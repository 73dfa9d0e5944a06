import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createAgentSession, MemoryLog } from "../../src/agents/index.js";
import type { AgentSession } from "../../src/agents/index.js";
import type { Actor, EventOf } from "../../src/protocol/index.js";
import { deltaText, runEvents, waitForEvent, waitForRunEnd } from "./helpers/wait.js";

// The offline ACP peer: the example agent shipped in @agentclientprotocol/sdk@1.9.0 (installed
// as the aliased dev dependency acp-example-agent). Each of its turns sleeps 1 s between steps:
// text, a read tool call, more text, an edit tool call that asks permission, then text.
// (The package's exports map hides dist/examples, so the file is found by path.)
const EXAMPLE_AGENT = fileURLToPath(
  new URL("../../node_modules/acp-example-agent/dist/examples/agent.js", import.meta.url),
);
const actor: Actor = { name: "alice", role: "operator", connId: "conn-1" };

/** A session on the example agent, disposed when the test (possibly one of several running concurrently) ends. */
function exampleSession(onTestFinished: (fn: () => Promise<void>) => void): { log: MemoryLog; agent: AgentSession } {
  const log = new MemoryLog("example");
  const agent = createAgentSession({
    sessionId: "example",
    log,
    spec: { adapter: "acp", command: [process.execPath, EXAMPLE_AGENT] },
    cwd: process.cwd(),
  });
  onTestFinished(() => agent.dispose());
  return { log, agent };
}

const shape = (log: MemoryLog, runId: string): string[] =>
  runEvents(log, runId).map((e) => (e.type === "tool" ? `tool:${e.toolCallId}:${e.status}` : e.type));

describe.concurrent("ACP adapter against the SDK 1.9.0 example agent", () => {
  it("runs a full turn: text, tool calls, permission allowed, final text equal to the deltas", async ({
    onTestFinished,
  }) => {
    const { log, agent } = exampleSession(onTestFinished);
    const { runId } = agent.prompt("please change the config", actor);
    const request = await waitForEvent(log, "permission.request", (e) => e.runId === runId);
    expect(request).toMatchObject({
      title: "Modifying critical configuration file",
      toolCallId: "call_2",
      options: [
        { optionId: "allow", name: "Allow this change", kind: "allow_once" },
        { optionId: "reject", name: "Skip this change", kind: "reject_once" },
      ],
    });
    expect(agent.state()).toBe("waiting");
    agent.answerPermission(request.requestId, "allow", actor);
    const end = await waitForRunEnd(log, runId);
    expect(shape(log, runId)).toEqual([
      "run.queued",
      "run.started",
      "chat.delta",
      "tool:call_1:pending",
      "tool:call_1:completed",
      "chat.delta",
      "tool:call_2:pending",
      "permission.request",
      "permission.resolved",
      "tool:call_2:completed",
      "chat.delta",
      "chat.final",
    ]);
    const final = end as EventOf<"chat.final">;
    expect(final.stopReason).toBe("end_turn");
    expect(final.text).toBe(deltaText(log, runId));
    expect(final.text).toMatch(/^I'll help you with that\..*Perfect! I've successfully updated the configuration\./);
    const tool = runEvents(log, runId).find((e): e is EventOf<"tool"> => e.type === "tool" && e.status === "completed");
    expect(tool).toMatchObject({
      title: "Reading project files",
      kind: "read",
      rawOutput: { content: expect.any(String) },
    });
    expect(log.events.find((e) => e.type === "permission.resolved")).toMatchObject({
      outcome: "selected",
      optionId: "allow",
      by: actor,
    });
    expect(agent.state()).toBe("idle");
  });

  it("reject: the agent skips the change and says so", async ({ onTestFinished }) => {
    const { log, agent } = exampleSession(onTestFinished);
    const { runId } = agent.prompt("please change the config", actor);
    const request = await waitForEvent(log, "permission.request", (e) => e.runId === runId);
    agent.answerPermission(request.requestId, "reject", actor);
    const end = await waitForRunEnd(log, runId);
    expect(end).toMatchObject({ type: "chat.final", stopReason: "end_turn" });
    const final = end as EventOf<"chat.final">;
    expect(final.text).toContain("I'll skip the configuration update.");
    expect(final.text).toBe(deltaText(log, runId));
    expect(
      runEvents(log, runId)
        .filter((e) => e.type === "tool" && e.toolCallId === "call_2")
        .map((e) => (e.type === "tool" ? e.status : "")),
    ).toEqual(["pending", "failed"]); // the agent never finished the call: it ends with the run
  });

  it("cancel mid-turn: exactly one chat.aborted, session/cancel stops the agent, the queued prompt runs next", async ({
    onTestFinished,
  }) => {
    const { log, agent } = exampleSession(onTestFinished);
    const first = agent.prompt("first", actor).runId;
    const second = agent.prompt("second", actor).runId;
    await waitForEvent(log, "chat.delta", (e) => e.runId === first);
    const abortedAt = Date.now();
    expect(agent.abort({}, actor)).toEqual({ runId: first, cleared: 0 });
    // Without session/cancel the example agent would go on to its permission request and the
    // next run would wait for the abort settle timeout (10 s); with it the agent stops within
    // its current 1 s step.
    await waitForEvent(log, "run.started", (e) => e.runId === second);
    expect(Date.now() - abortedAt).toBeLessThan(3000);
    await waitForEvent(log, "chat.delta", (e) => e.runId === second);
    const ends = runEvents(log, first).filter(
      (e) => e.type === "chat.aborted" || e.type === "chat.final" || e.type === "chat.error",
    );
    expect(ends.map((e) => e.type)).toEqual(["chat.aborted"]);
    expect(runEvents(log, first).at(-1)!.type).toBe("chat.aborted");
    expect(runEvents(log, first).filter((e) => e.type === "tool")).toEqual([]);
  });

  it("abort while the agent waits for permission: the request is cancelled, then the run ends with chat.aborted", async ({
    onTestFinished,
  }) => {
    const { log, agent } = exampleSession(onTestFinished);
    const { runId } = agent.prompt("change it", actor);
    const request = await waitForEvent(log, "permission.request", (e) => e.runId === runId);
    agent.abort({}, actor);
    // The call the request was about never finished: it ends with the run, before its end.
    expect(shape(log, runId).slice(-3)).toEqual(["permission.resolved", "tool:call_2:failed", "chat.aborted"]);
    expect(log.events.find((e) => e.type === "permission.resolved")).toMatchObject({
      requestId: request.requestId,
      outcome: "cancelled",
    });
    // The agent hears "cancelled", finishes its turn, and the session is ready for the next prompt.
    const next = agent.prompt("again", actor).runId;
    await waitForEvent(log, "chat.delta", (e) => e.runId === next);
    expect(runEvents(log, runId).at(-1)!.type).toBe("chat.aborted");
  });
});
