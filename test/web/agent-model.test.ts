import { describe, expect, it } from "vitest";
import type { NewEvent, SessionEvent } from "../../src/protocol/index.js";
import { AgentModel, answerText } from "../../web/src/agent-model.js";

const admin = { name: "admin", role: "admin" as const };

/** Numbers events like the log does. */
function log(...events: NewEvent[]): SessionEvent[] {
  return events.map((e, i) => ({ ...e, seq: i + 1, ts: 1_000 + i }) as SessionEvent);
}

function feed(events: SessionEvent[]): AgentModel {
  const model = new AgentModel();
  for (const e of events) model.apply(e);
  return model;
}

describe("AgentModel (the agent view's conversation)", () => {
  it("joins streamed deltas into the answer and ends the run with its stop reason", () => {
    const model = feed(
      log(
        { type: "run.queued", runId: "r1", text: "hello", by: admin, position: 0 },
        { type: "run.started", runId: "r1" },
        { type: "chat.delta", runId: "r1", text: "hel" },
        { type: "chat.delta", runId: "r1", text: "lo" },
        { type: "chat.final", runId: "r1", text: "hello", stopReason: "end_turn" },
      ),
    );
    const run = model.get("r1")!;
    expect(run).toMatchObject({ prompt: "hello", by: "admin", status: "done", stopReason: "end_turn" });
    expect(run.items).toEqual([{ kind: "text", text: "hello" }]);
    expect(model.active).toBeUndefined();
  });

  it("keeps who wrote a routed message (its sender on its channel) beside who delivered it", () => {
    const bridge = { name: "plugin:hook", role: "plugin" as const };
    const model = feed(
      log(
        {
          type: "run.queued",
          runId: "r1",
          text: "hi",
          by: bridge,
          from: { channel: "discord", id: "u-7", name: "Ada" },
          position: 0,
        },
        {
          type: "run.queued",
          runId: "r2",
          text: "yo",
          by: bridge,
          from: { channel: "discord", id: "u-8" },
          position: 1,
        },
        { type: "run.queued", runId: "r3", text: "hey", by: admin, position: 2 },
      ),
    );
    expect(model.get("r1")).toMatchObject({ by: "plugin:hook", from: { name: "Ada", channel: "discord" } });
    expect(model.get("r2")).toMatchObject({ from: { name: "u-8", channel: "discord" } });
    expect(model.get("r3")).toMatchObject({ by: "admin", from: null });
  });

  it("keeps text, tool calls, plan and thoughts in the order they happened, updating tools in place", () => {
    const model = feed(
      log(
        { type: "run.queued", runId: "r1", text: "/tool x", by: admin, position: 0 },
        { type: "run.started", runId: "r1" },
        { type: "chat.thought", runId: "r1", text: "hmm " },
        { type: "chat.thought", runId: "r1", text: "ok" },
        { type: "tool", runId: "r1", toolCallId: "t1", status: "in_progress", title: "Run tests", kind: "execute" },
        { type: "chat.delta", runId: "r1", text: "running" },
        { type: "tool", runId: "r1", toolCallId: "t1", status: "completed", terminalSessionIds: ["child-1"] },
        { type: "plan", runId: "r1", entries: [{ content: "a", priority: "high", status: "pending" }] },
        { type: "plan", runId: "r1", entries: [{ content: "a", priority: "high", status: "completed" }] },
        { type: "child", runId: "r1", sessionId: "child-1", command: ["make", "test"] },
      ),
    );
    const run = model.get("r1")!;
    expect(run.items.map((i) => i.kind)).toEqual(["thought", "tool", "text", "plan", "child"]);
    expect(run.items[0]).toEqual({ kind: "thought", text: "hmm ok" });
    expect(run.tools.get("t1")).toMatchObject({
      title: "Run tests",
      kind: "execute",
      status: "completed",
      terminalSessionIds: ["child-1"],
    });
    expect(run.plan).toEqual([{ content: "a", priority: "high", status: "completed" }]);
  });

  it("shows an elicitation in its run, its answer, and cancels one left open when the session is lost", () => {
    const request = (requestId: string) => ({
      type: "elicitation.request" as const,
      runId: "r1",
      requestId,
      mode: "form" as const,
      message: "Which db?",
      requestedSchema: { type: "object" as const, properties: { db: { type: "string" as const, enum: ["pg"] } } },
      expiresAt: 9_000,
    });
    const model = feed(
      log(
        { type: "run.queued", runId: "r1", text: "go", by: admin, position: 0 },
        { type: "run.started", runId: "r1" },
        request("e1"),
        {
          type: "elicitation.resolved",
          runId: "r1",
          requestId: "e1",
          action: "accept",
          content: { db: "pg" },
          by: admin,
        },
        request("e2"),
        { type: "lost", reason: "the gateway stopped" },
      ),
    );
    const run = model.get("r1")!;
    expect(run.items).toEqual([
      { kind: "elicitation", requestId: "e1" },
      { kind: "elicitation", requestId: "e2" },
    ]);
    expect(run.elicitations.get("e1")).toMatchObject({
      message: "Which db?",
      resolved: { action: "accept", content: { db: "pg" }, by: "admin" },
    });
    expect(run.elicitations.get("e2")!.resolved).toEqual({
      action: "cancel",
      content: null,
      by: null,
      reason: "session-ended",
    });
  });

  it("shows a url elicitation with its url, and why it ended when nobody answered it", () => {
    const model = feed(
      log(
        { type: "run.queued", runId: "r1", text: "go", by: admin, position: 0 },
        { type: "run.started", runId: "r1" },
        {
          type: "elicitation.request",
          runId: "r1",
          requestId: "e1",
          mode: "url",
          message: "Sign in",
          url: "https://auth.example/x",
          expiresAt: 9_000,
        },
        {
          type: "elicitation.resolved",
          runId: "r1",
          requestId: "e1",
          action: "cancel",
          by: null,
          reason: "agent-cancelled",
        },
      ),
    );
    expect(model.get("r1")!.elicitations.get("e1")).toMatchObject({
      ask: { mode: "url", url: "https://auth.example/x" },
      resolved: { action: "cancel", by: null, reason: "agent-cancelled" },
    });
  });

  it("tracks queued prompts, a permission request and its resolution, and an abort", () => {
    const model = feed(
      log(
        { type: "run.queued", runId: "r1", text: "/permission go", by: admin, position: 0 },
        { type: "run.started", runId: "r1" },
        { type: "run.queued", runId: "r2", text: "next", by: admin, position: 0 },
        { type: "run.queued", runId: "r3", text: "later", by: admin, position: 1 },
        {
          type: "permission.request",
          runId: "r1",
          requestId: "p1",
          title: "Edit?",
          options: [
            { optionId: "allow", name: "Allow", kind: "allow_once" },
            { optionId: "reject", name: "Reject", kind: "reject_once" },
          ],
          expiresAt: 9_999,
        },
      ),
    );
    expect(model.queued.map((r) => r.runId)).toEqual(["r2", "r3"]);
    expect(model.openPermissions.map((p) => p.requestId)).toEqual(["p1"]);
    model.apply({
      seq: 6,
      ts: 2_000,
      type: "permission.resolved",
      runId: "r1",
      requestId: "p1",
      outcome: "selected",
      optionId: "allow",
      by: admin,
    });
    expect(model.openPermissions).toEqual([]);
    expect(model.get("r1")!.permissions.get("p1")!.resolved).toEqual({
      outcome: "selected",
      optionId: "allow",
      optionName: "Allow",
      by: "admin",
    });
    model.apply({ seq: 7, ts: 2_001, type: "chat.aborted", runId: "r1", by: admin });
    model.apply({ seq: 8, ts: 2_002, type: "chat.aborted", runId: "r3", by: admin });
    expect(model.get("r1")).toMatchObject({ status: "aborted", abortedBy: "admin" });
    expect(model.get("r3")).toMatchObject({ status: "aborted", startedAt: null });
    expect(model.queued.map((r) => r.runId)).toEqual(["r2"]);
  });

  it("trusts chat.final's text when deltas are missing (retention trimmed the start of a run)", () => {
    const model = feed(
      log(
        { type: "chat.delta", runId: "r9", text: "…end" },
        { type: "chat.final", runId: "r9", text: "the beginning …end", stopReason: "end_turn" },
      ),
    );
    const run = model.get("r9")!;
    expect(run.prompt).toBeNull();
    expect(answerText(run)).toBe("the beginning …end");
    expect(run.status).toBe("done");
  });

  it("ends open runs and cancels unanswered permission requests when the session is lost or exits (exploratory test: they stayed live)", () => {
    const request = {
      type: "permission.request" as const,
      runId: "r1",
      requestId: "p1",
      title: "Edit?",
      options: [{ optionId: "allow", name: "Allow", kind: "allow_once" }],
      expiresAt: 9_999,
    };
    const events = log(
      { type: "run.queued", runId: "r0", text: "first", by: admin, position: 0 },
      { type: "run.started", runId: "r0" },
      { type: "chat.final", runId: "r0", text: "", stopReason: "end_turn" },
      { type: "run.queued", runId: "r1", text: "/permission go", by: admin, position: 0 },
      { type: "run.started", runId: "r1" },
      request,
      { type: "run.queued", runId: "r2", text: "next", by: admin, position: 0 },
    );
    for (const end of [
      { type: "lost", reason: "the gateway stopped while this session was running" },
      { type: "exit", exitCode: null, signal: "SIGKILL" },
    ] as const) {
      const model = feed(events);
      const changed = model.apply({ ...end, seq: events.length + 1, ts: 5_000 });
      expect(changed.map((r) => r.runId)).toEqual(["r1", "r2"]);
      expect(model.get("r0")).toMatchObject({ status: "done", sessionEnd: null });
      for (const runId of ["r1", "r2"])
        expect(model.get(runId)).toMatchObject({ status: "interrupted", sessionEnd: end.type, endedAt: 5_000 });
      expect(model.active).toBeUndefined();
      expect(model.queued).toEqual([]);
      expect(model.openPermissions).toEqual([]);
      expect(model.get("r1")!.permissions.get("p1")!.resolved).toEqual({
        outcome: "cancelled",
        optionId: null,
        optionName: null,
        by: null,
      });
    }
  });

  it("shows runs the gateway ended itself at the session's end (chat.aborted without by) as interrupted by that end, not aborted by someone", () => {
    const events = log(
      { type: "run.queued", runId: "r1", text: "/permission go", by: admin, position: 0 },
      { type: "run.started", runId: "r1" },
      {
        type: "permission.request",
        runId: "r1",
        requestId: "p1",
        title: "Edit?",
        options: [{ optionId: "allow", name: "Allow", kind: "allow_once" }],
        expiresAt: 9_999,
      },
      { type: "run.queued", runId: "r2", text: "next", by: admin, position: 0 },
      { type: "run.queued", runId: "r3", text: "aborted by admin", by: admin, position: 1 },
      { type: "chat.aborted", runId: "r3", by: admin },
      // What the gateway appends when it stops the session, or restores a lost one:
      { type: "permission.resolved", runId: "r1", requestId: "p1", outcome: "cancelled", optionId: null, by: null },
      { type: "chat.aborted", runId: "r1" },
      { type: "chat.aborted", runId: "r2" },
    );
    for (const end of [
      { type: "lost", reason: "the gateway stopped while this session was running" },
      { type: "exit", exitCode: null, signal: null },
    ] as const) {
      const model = feed(events);
      expect(model.get("r1")).toMatchObject({ status: "aborted", abortedBy: null });
      model.apply({ ...end, seq: events.length + 1, ts: 5_000 });
      for (const runId of ["r1", "r2"])
        expect(model.get(runId)).toMatchObject({ status: "interrupted", sessionEnd: end.type });
      expect(model.get("r3")).toMatchObject({ status: "aborted", abortedBy: "admin" });
    }
  });

  it("cancels the tool calls a run left unfinished when it ends (exploratory test: they stayed pending after an abort)", () => {
    const tools = (runId: string): NewEvent[] => [
      { type: "run.queued", runId, text: "/tool x", by: admin, position: 0 },
      { type: "run.started", runId },
      { type: "tool", runId, toolCallId: `${runId}-done`, status: "in_progress", title: "Count" },
      { type: "tool", runId, toolCallId: `${runId}-done`, status: "completed" },
      { type: "tool", runId, toolCallId: `${runId}-failed`, status: "failed", title: "Lint" },
      { type: "tool", runId, toolCallId: `${runId}-pending`, status: "pending", title: "Edit" },
      { type: "tool", runId, toolCallId: `${runId}-running`, status: "in_progress", title: "Test" },
    ];
    const model = feed(
      log(
        ...tools("aborted"),
        { type: "chat.aborted", runId: "aborted", by: admin },
        ...tools("failed"),
        { type: "chat.error", runId: "failed", code: "AGENT_FAILED", message: "on purpose" },
        ...tools("interrupted"),
        { type: "exit", exitCode: null, signal: null },
      ),
    );
    for (const runId of ["aborted", "failed", "interrupted"]) {
      const statuses = Object.fromEntries([...model.get(runId)!.tools.values()].map((t) => [t.toolCallId, t.status]));
      expect(statuses, runId).toEqual({
        [`${runId}-done`]: "completed",
        [`${runId}-failed`]: "failed",
        [`${runId}-pending`]: "cancelled",
        [`${runId}-running`]: "cancelled",
      });
    }
  });

  it("reports errors with their code", () => {
    const model = feed(
      log(
        { type: "run.queued", runId: "r1", text: "/fail x", by: admin, position: 0 },
        { type: "run.started", runId: "r1" },
        { type: "chat.error", runId: "r1", code: "AGENT_FAILED", message: "on purpose" },
      ),
    );
    expect(model.get("r1")).toMatchObject({ status: "error", error: { code: "AGENT_FAILED", message: "on purpose" } });
  });

  it("shows the agent's notices and compactions in the run they came in, or under the latest run between runs", () => {
    const model = feed(
      log(
        { type: "agent.notice", level: "info", title: "before any run" },
        { type: "run.queued", runId: "r1", text: "go", by: admin, position: 0 },
        { type: "run.started", runId: "r1" },
        { type: "agent.notice", runId: "r1", level: "warning", title: "Rate limited", description: "retrying in 5 s" },
        { type: "agent.compaction", runId: "r1", compactionId: "c1", status: "in_progress" },
        { type: "agent.compaction", runId: "r1", compactionId: "c1", chunk: "summary text" },
        { type: "agent.compaction", runId: "r1", compactionId: "c1", status: "failed", error: "too long" },
        { type: "chat.final", runId: "r1", text: "", stopReason: "end_turn" },
        { type: "agent.notice", level: "custom", title: "<b>between</b> runs" },
      ),
    );
    expect(model.get("r1")!.items.filter((i) => i.kind === "notice")).toEqual([
      { kind: "notice", level: "warning", text: "Rate limited: retrying in 5 s" },
      { kind: "notice", level: "info", text: "The agent is compacting its context…" },
      { kind: "notice", level: "warning", text: "The agent could not compact its context: too long" },
      { kind: "notice", level: "info", text: "<b>between</b> runs" },
    ]);
  });
});
