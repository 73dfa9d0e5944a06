import { afterEach, describe, expect, it } from "vitest";
import {
  ABORT_SETTLE_TIMEOUT_MS,
  AGENT_RESTART_WINDOW_MS,
  AgentSession,
  createAgentSession,
  DEFAULT_PERMISSION_TIMEOUT_MS,
  MAX_AGENT_RESTARTS,
  MAX_QUEUED_RUNS,
  MemoryLog,
} from "../../src/agents/index.js";
import type { AdapterRun, AgentAdapter, AgentSessionState, RunOutcome } from "../../src/agents/index.js";
import { ManualClock } from "../../src/core/clock.js";
import { SwitchboardError } from "../../src/protocol/index.js";
import type { Actor, ErrorCode, EventOf } from "../../src/protocol/index.js";
import { deltaText, nextTick, runEvents } from "./helpers/wait.js";

const alice: Actor = { name: "alice", role: "operator", connId: "c1" };
const bob: Actor = { name: "bob", role: "operator", connId: "c2" };
const STEP_MS = 10;

let sessions: AgentSession[] = [];
afterEach(async () => {
  await Promise.all(sessions.map((s) => s.dispose()));
  sessions = [];
});

function echoSession(): { clock: ManualClock; log: MemoryLog; agent: AgentSession; states: AgentSessionState[] } {
  const clock = new ManualClock(0);
  const log = new MemoryLog("s1", { clock });
  const agent = createAgentSession({ sessionId: "s1", log, spec: { adapter: "echo" }, clock });
  const states: AgentSessionState[] = [];
  agent.onStateChange((s) => states.push(s));
  sessions.push(agent);
  return { clock, log, agent, states };
}

/** Moves the clock in small steps, letting the echo agent's async steps run in between. */
async function drive(clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += STEP_MS) {
    clock.advance(STEP_MS);
    await nextTick();
  }
}

function expectCode(fn: () => unknown, code: ErrorCode): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SwitchboardError);
    expect((err as SwitchboardError).code).toBe(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

const types = (log: MemoryLog, runId: string): string[] => runEvents(log, runId).map((e) => e.type);

describe("agent session run lane", () => {
  it("echo streams the prompt back in several paced deltas and ends with one chat.final whose text is their concatenation", async () => {
    const { clock, log, agent } = echoSession();
    const text = "Hello, streaming world! 👋 with some more words";
    const { runId } = agent.prompt(text, alice);
    await drive(clock, 2000);
    const events = runEvents(log, runId);
    expect(events[0]).toMatchObject({ type: "run.queued", runId, text, by: alice, position: 0 });
    expect(events[1]).toMatchObject({ type: "run.started", runId });
    const deltas = events.filter((e) => e.type === "chat.delta");
    expect(deltas.length).toBeGreaterThan(2);
    const final = events.at(-1) as EventOf<"chat.final">;
    expect(final).toMatchObject({ type: "chat.final", stopReason: "end_turn", text });
    expect(deltaText(log, runId)).toBe(text);
    expect(agent.info()).toEqual({ active: null, queued: 0 });
  });

  it("queues prompts in order and runs them one at a time", async () => {
    const { clock, log, agent, states } = echoSession();
    const a = agent.prompt("first", alice).runId;
    const b = agent.prompt("second", bob).runId;
    const c = agent.prompt("third", alice).runId;
    expect(agent.info()).toEqual({ active: a, queued: 2 });
    const queued = log.events.filter((e) => e.type === "run.queued");
    expect(queued.map((e) => [e.runId, e.position, e.by.name])).toEqual([
      [a, 0, "alice"],
      [b, 0, "bob"],
      [c, 1, "alice"],
    ]);
    await drive(clock, 3000);
    const order = log.events
      .filter((e) => e.type === "run.started" || e.type === "chat.final")
      .map((e) => `${e.type}:${"runId" in e ? e.runId : ""}`);
    expect(order).toEqual([
      `run.started:${a}`,
      `chat.final:${a}`,
      `run.started:${b}`,
      `chat.final:${b}`,
      `run.started:${c}`,
      `chat.final:${c}`,
    ]);
    expect([a, b, c].map((id) => deltaText(log, id))).toEqual(["first", "second", "third"]);
    expect(states).toEqual(["working", "idle"]);
  });

  it("abort ends the active run with exactly one chat.aborted and the queue goes on", async () => {
    const { clock, log, agent } = echoSession();
    const a = agent.prompt("a long answer that will be cut short by the abort", alice).runId;
    const b = agent.prompt("next", alice).runId;
    await drive(clock, 100);
    expect(agent.abort({}, bob)).toEqual({ runId: a, cleared: 0 });
    expect(agent.info()).toEqual({ active: null, queued: 1 });
    await drive(clock, 1000);
    expect(types(log, a).filter((t) => t.startsWith("chat.") && t !== "chat.delta")).toEqual(["chat.aborted"]);
    expect(runEvents(log, a).at(-1)).toMatchObject({ type: "chat.aborted", by: bob });
    expect(types(log, b)).toContain("chat.final");
    expect(deltaText(log, b)).toBe("next");
    expectCode(() => agent.abort({}, alice), "RUN_NOT_ACTIVE");
  });

  it("abort with all ends the active run and every queued run, and nothing starts afterwards", async () => {
    const { clock, log, agent } = echoSession();
    const ids = ["the first long answer", "two", "three"].map((t) => agent.prompt(t, alice).runId);
    await drive(clock, 50);
    expect(agent.abort({ all: true }, alice)).toEqual({ runId: ids[0], cleared: 2 });
    expect(agent.info()).toEqual({ active: null, queued: 0 });
    await drive(clock, 1000);
    for (const id of ids) {
      expect(types(log, id).filter((t) => t === "chat.aborted" || t === "chat.final" || t === "chat.error")).toEqual([
        "chat.aborted",
      ]);
    }
    expect(types(log, ids[1]!)).toEqual(["run.queued", "chat.aborted"]);
    expect(log.events.filter((e) => e.type === "run.started")).toHaveLength(1);
    expect(agent.state()).toBe("idle");
  });

  it("refuses abort when nothing runs and prompts past the queue bound", () => {
    const { agent } = echoSession();
    expectCode(() => agent.abort({}, alice), "RUN_NOT_ACTIVE");
    expectCode(() => agent.abort({ all: true }, alice), "RUN_NOT_ACTIVE");
    for (let i = 0; i <= MAX_QUEUED_RUNS; i++) agent.prompt(`p${i}`, alice);
    expectCode(() => agent.prompt("one too many", alice), "LIMIT_EXCEEDED");
    // (It said only "100 prompts are already queued".)
    expect(() => agent.prompt("one too many", alice)).toThrow(
      `${MAX_QUEUED_RUNS} prompts are already queued (MAX_QUEUED_RUNS): wait for them to run, or abort them`,
    );
  });

  it("permission: a bad option changes nothing, the first valid answer wins, a second answer is refused", async () => {
    const { clock, log, agent, states } = echoSession();
    const { runId } = agent.prompt("/permission go ahead", alice);
    await drive(clock, 50);
    const request = log.events.find((e) => e.type === "permission.request");
    expect(request).toMatchObject({ runId, options: [{ optionId: "allow" }, { optionId: "reject" }] });
    if (request?.type !== "permission.request") throw new Error("no permission.request");
    expect(request.requestId).toMatch(/^[0-9a-f]{32}$/);
    expect(request.expiresAt).toBe(request.ts + DEFAULT_PERMISSION_TIMEOUT_MS);
    expect(agent.state()).toBe("waiting");
    // The tool event comes first, flushed, then the request.
    expect(types(log, runId).slice(-2)).toEqual(["tool", "permission.request"]);

    expectCode(() => agent.answerPermission(request.requestId, "maybe", bob), "INVALID_OPTION");
    expectCode(() => agent.answerPermission("0".repeat(32), "allow", bob), "PERMISSION_REQUEST_NOT_FOUND");
    expect(log.events.filter((e) => e.type === "permission.resolved")).toHaveLength(0);
    agent.answerPermission(request.requestId, "allow", bob);
    expectCode(() => agent.answerPermission(request.requestId, "reject", alice), "PERMISSION_REQUEST_NOT_FOUND");
    await drive(clock, 1000);
    const resolved = log.events.filter((e) => e.type === "permission.resolved");
    expect(resolved).toEqual([
      expect.objectContaining({ requestId: request.requestId, outcome: "selected", optionId: "allow", by: bob }),
    ]);
    expect(runEvents(log, runId).at(-1)).toMatchObject({ type: "chat.final", text: "Allowed. go ahead" });
    // The echo agent asks at once, so the session goes from idle straight to waiting.
    expect(states).toEqual(["waiting", "working", "idle"]);
  });

  it("permission: rejecting makes the agent skip the tool", async () => {
    const { clock, log, agent } = echoSession();
    const { runId } = agent.prompt("/permission", alice);
    await drive(clock, 50);
    const request = log.events.find((e): e is EventOf<"permission.request"> => e.type === "permission.request")!;
    agent.answerPermission(request.requestId, "reject", alice);
    await drive(clock, 500);
    const tools = runEvents(log, runId).filter((e) => e.type === "tool");
    expect(tools.map((t) => (t.type === "tool" ? t.status : ""))).toEqual(["pending", "failed"]);
    expect(runEvents(log, runId).at(-1)).toMatchObject({ type: "chat.final", text: "Rejected." });
  });

  it("permission: an unanswered request is rejected at its timeout, by rule:timeout", async () => {
    const { clock, log, agent } = echoSession();
    const { runId } = agent.prompt("/permission", alice);
    await drive(clock, 50);
    const request = log.events.find((e): e is EventOf<"permission.request"> => e.type === "permission.request")!;
    clock.advance(DEFAULT_PERMISSION_TIMEOUT_MS);
    await drive(clock, 500);
    expect(log.events.find((e) => e.type === "permission.resolved")).toMatchObject({
      requestId: request.requestId,
      outcome: "selected",
      optionId: "reject",
      by: { name: "rule:timeout", role: "system", id: "rule:timeout" },
    });
    expect(runEvents(log, runId).at(-1)).toMatchObject({ type: "chat.final", text: "Rejected." });
    expectCode(() => agent.answerPermission(request.requestId, "allow", alice), "PERMISSION_REQUEST_NOT_FOUND");
  });

  it("aborting while a permission waits cancels it before the one chat.aborted", async () => {
    const { clock, log, agent } = echoSession();
    const { runId } = agent.prompt("/permission", alice);
    await drive(clock, 50);
    agent.abort({}, bob);
    await drive(clock, 500);
    // The call the request was about never finished: it ends with the run, before its end.
    expect(types(log, runId).slice(-3)).toEqual(["permission.resolved", "tool", "chat.aborted"]);
    expect(log.events.find((e) => e.type === "permission.resolved")).toMatchObject({ outcome: "cancelled", by: bob });
    expect(agent.state()).toBe("idle");
  });

  it("echo tricks: /tool, /plan, /think and /fail show their event kinds", async () => {
    const { clock, log, agent } = echoSession();
    const tool = agent.prompt("/tool count me", alice).runId;
    const plan = agent.prompt("/plan read; write", alice).runId;
    const think = agent.prompt("/think hard", alice).runId;
    const fail = agent.prompt("/fail bye", alice).runId;
    await drive(clock, 5000);
    expect(runEvents(log, tool).filter((e) => e.type === "tool")).toEqual([
      expect.objectContaining({ status: "in_progress", title: "Count characters", rawInput: { text: "count me" } }),
      expect.objectContaining({ status: "completed", title: "Count characters", rawOutput: { characters: 8 } }),
    ]);
    expect(deltaText(log, tool)).toBe("count me");
    const plans = runEvents(log, plan).filter((e): e is EventOf<"plan"> => e.type === "plan");
    expect(plans[0]!.entries.map((e) => [e.content, e.status])).toEqual([
      ["read", "pending"],
      ["write", "pending"],
    ]);
    expect(plans.at(-1)!.entries.every((e) => e.status === "completed")).toBe(true);
    const thoughts = runEvents(log, think).filter((e): e is EventOf<"chat.thought"> => e.type === "chat.thought");
    expect(thoughts.map((t) => t.text).join("")).toBe('Thinking about "hard"…');
    expect(runEvents(log, fail).at(-1)).toMatchObject({ type: "chat.error", code: "AGENT_FAILED" });
    expect(deltaText(log, fail)).toBe("bye");
  });

  it("dispose is idempotent and ends active and queued runs with chat.aborted; prompts are refused after", async () => {
    const { clock, log, agent } = echoSession();
    const a = agent.prompt("a", alice).runId;
    const b = agent.prompt("b", alice).runId;
    await drive(clock, 10);
    await Promise.all([agent.dispose(), agent.dispose()]);
    await agent.dispose();
    expect(types(log, a).at(-1)).toBe("chat.aborted");
    expect(types(log, b)).toEqual(["run.queued", "chat.aborted"]);
    expect(clock.pending).toBe(0);
    expectCode(() => agent.prompt("c", alice), "SESSION_NOT_RUNNING");
  });

  it("stops a run that streams more text than maxRunTextBytes with one chat.error, tells the agent, and goes on", async () => {
    const clock = new ManualClock(0);
    const log = new MemoryLog("s3", { clock });
    const signals: AbortSignal[] = [];
    const agent = new AgentSession({
      sessionId: "s3",
      log,
      spec: { adapter: "echo" },
      clock,
      maxRunTextBytes: 1000,
      adapter: () => ({
        dead: false,
        run(run: AdapterRun): Promise<RunOutcome> {
          signals.push(run.signal);
          if (run.text === "flood") {
            // Thoughts count too; an agent that keeps printing after the stop is ignored.
            run.sink.thought("t".repeat(400));
            for (let i = 0; i < 50; i++) run.sink.text("é".repeat(50)); // 100 bytes each
          } else {
            run.sink.text(run.text);
          }
          return Promise.resolve({ kind: "final", stopReason: "end_turn" });
        },
        dispose: () => Promise.resolve(),
      }),
    });
    sessions.push(agent);
    const flood = agent.prompt("flood", alice).runId;
    const next = agent.prompt("after", alice).runId;
    await drive(clock, 200);
    const events = runEvents(log, flood);
    expect(events.filter((e) => e.type === "chat.error")).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ type: "chat.error", code: "LIMIT_EXCEEDED" });
    expect((events.at(-1) as EventOf<"chat.error">).message).toContain("limits.runTextBytes");
    // Exactly what fit under the limit was kept: 400 bytes of thought and 6 chunks of 100.
    expect(deltaText(log, flood)).toBe("é".repeat(300));
    expect(signals[0]!.aborted).toBe(true);
    expect(runEvents(log, next).at(-1)).toMatchObject({ type: "chat.final", text: "after" });
  });

  it("an agent that never finishes an aborted turn is replaced after the settle timeout, and the queue goes on", async () => {
    const clock = new ManualClock(0);
    const log = new MemoryLog("s2", { clock });
    const made: Array<{ disposed: boolean; runs: string[] }> = [];
    const agent = new AgentSession({
      sessionId: "s2",
      log,
      spec: { adapter: "echo" },
      clock,
      adapter: () => {
        const record = { disposed: false, runs: [] as string[] };
        made.push(record);
        const adapter: AgentAdapter = {
          dead: false,
          run(run: AdapterRun): Promise<RunOutcome> {
            record.runs.push(run.text);
            if (run.text === "hang") return new Promise(() => undefined); // ignores the abort
            run.sink.text(run.text);
            return Promise.resolve({ kind: "final", stopReason: "end_turn" });
          },
          dispose() {
            record.disposed = true;
            return Promise.resolve();
          },
        };
        return adapter;
      },
    });
    sessions.push(agent);
    const stuck = agent.prompt("hang", alice).runId;
    const next = agent.prompt("after", alice).runId;
    agent.abort({}, alice);
    await nextTick();
    expect(types(log, next)).toEqual(["run.queued"]);
    // Meanwhile nothing runs: a second abort says why the queued run waits, and how to drop it.
    expect(() => agent.abort({}, alice)).toThrowError(
      /no run is active: 1 queued run\(s\) wait for the agent to finish the aborted turn; abort with all: true/,
    );
    clock.advance(ABORT_SETTLE_TIMEOUT_MS);
    await nextTick();
    expect(types(log, stuck).at(-1)).toBe("chat.aborted");
    expect(runEvents(log, next).at(-1)).toMatchObject({ type: "chat.final", text: "after" });
    expect(made.map((m) => [m.runs, m.disposed])).toEqual([
      [["hang"], true],
      [["after"], false],
    ]);
  });

  /** An agent that dies in every run it is given, with `failure` as the run's outcome; counts how often it was made. */
  function dyingAgent(failure: { code: ErrorCode; message: string }): {
    clock: ManualClock;
    log: MemoryLog;
    agent: AgentSession;
    made: () => number;
  } {
    const clock = new ManualClock(0);
    const log = new MemoryLog("s4", { clock });
    let made = 0;
    const agent = new AgentSession({
      sessionId: "s4",
      log,
      spec: { adapter: "echo" },
      clock,
      adapter: () => {
        made++;
        let dead = false;
        return {
          get dead() {
            return dead;
          },
          run(): Promise<RunOutcome> {
            dead = true;
            return Promise.resolve({ kind: "error", ...failure });
          },
          dispose: () => Promise.resolve(),
        };
      },
    });
    sessions.push(agent);
    return { clock, log, agent, made: () => made };
  }

  it("past the restart bound, the refusal quotes the last failure and says when a prompt starts the agent again (an agent that cannot start is not said to have exited)", async () => {
    const { clock, log, agent, made } = dyingAgent({
      code: "SPAWN_FAILED",
      message: "cannot start /nonexistent/agent: spawn /nonexistent/agent ENOENT",
    });
    for (let i = 0; i <= MAX_AGENT_RESTARTS; i++) {
      const { runId } = agent.prompt("hi", alice);
      await drive(clock, 1000);
      expect(runEvents(log, runId).at(-1)).toMatchObject({ type: "chat.error", code: "SPAWN_FAILED" });
    }
    expect(made()).toBe(MAX_AGENT_RESTARTS + 1);
    const refused = agent.prompt("hi", alice).runId;
    await nextTick();
    const end = runEvents(log, refused).at(-1) as EventOf<"chat.error">;
    expect(end).toMatchObject({ type: "chat.error", code: "SPAWN_FAILED" });
    expect(end.message).toBe(
      `the agent failed to start ${MAX_AGENT_RESTARTS + 1} times within ${AGENT_RESTART_WINDOW_MS / 1000} s ` +
        "(last: SPAWN_FAILED: cannot start /nonexistent/agent: spawn /nonexistent/agent ENOENT); " +
        `not restarting it yet: a prompt in ${AGENT_RESTART_WINDOW_MS / 1000 - 3} s starts it again`,
    );
    expect(made()).toBe(MAX_AGENT_RESTARTS + 1);
    // Once the first restart has left the window, the next prompt starts the agent again.
    clock.advance(AGENT_RESTART_WINDOW_MS - 3000);
    const retried = agent.prompt("hi", alice).runId;
    await nextTick();
    expect(made()).toBe(MAX_AGENT_RESTARTS + 2);
    expect(runEvents(log, retried).at(-1)).toMatchObject({
      code: "SPAWN_FAILED",
      message: expect.stringMatching(/ENOENT/),
    });
  });

  it("past the restart bound, a crashing agent's refusal is AGENT_EXITED and quotes how it last ended", async () => {
    const { clock, log, agent } = dyingAgent({ code: "AGENT_EXITED", message: "node exited with code 3: boom" });
    for (let i = 0; i <= MAX_AGENT_RESTARTS; i++) {
      agent.prompt("hi", alice);
      await drive(clock, 10);
    }
    const refused = agent.prompt("hi", alice).runId;
    await nextTick();
    const end = runEvents(log, refused).at(-1) as EventOf<"chat.error">;
    expect(end).toMatchObject({ type: "chat.error", code: "AGENT_EXITED" });
    expect(end.message).toMatch(
      /^the agent exited 4 times within 60 s \(last: AGENT_EXITED: node exited with code 3: boom\); not restarting it yet: a prompt in 60 s starts it again$/,
    );
  });

  it("rejects an acp or command spec without a command at creation", () => {
    const log = new MemoryLog("s");
    expectCode(() => createAgentSession({ sessionId: "s", log, spec: { adapter: "acp" } }), "CONFIG_INVALID");
    expectCode(() => createAgentSession({ sessionId: "s", log, spec: { adapter: "command" } }), "CONFIG_INVALID");
  });
});
