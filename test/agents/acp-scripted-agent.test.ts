import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ABORT_SETTLE_TIMEOUT_MS, createAgentSession, MAX_AGENT_RESTARTS, MemoryLog } from "../../src/agents/index.js";
import type { AgentSession, ChildTerminalFactory } from "../../src/agents/index.js";
import type { Actor, EventOf, SessionEvent } from "../../src/protocol/index.js";
import { ManualClock } from "../../src/core/clock.js";
import { ProcessTerminals } from "./helpers/process-terminals.js";
import { deltaText, runEvents, waitForEvent, waitForRunEnd } from "./helpers/wait.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("./fixtures/scripted-agent.mjs", import.meta.url));
const actor: Actor = { name: "alice", role: "operator" };

let base: string;
let cwd: string;
let outside: string;

beforeAll(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), "sb-agents-")));
  cwd = path.join(base, "work");
  outside = path.join(base, "outside");
  await mkdir(path.join(cwd, "notes"), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(cwd, "notes", "a.txt"), "hello\nworld\n!");
  await writeFile(path.join(outside, "secret.txt"), "top secret");
  await symlink(path.join(outside, "secret.txt"), path.join(cwd, "link-out.txt"));
  await symlink(outside, path.join(cwd, "dir-out"));
  await symlink(path.join(cwd, "notes", "a.txt"), path.join(cwd, "link-in.txt"));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

interface Scripted {
  log: MemoryLog;
  agent: AgentSession;
  terminals: ProcessTerminals;
  /** Prompts a script and waits for the run's terminal event. */
  ask(script: object): Promise<{ runId: string; end: SessionEvent; text: string }>;
}

function scriptedSession(
  onTestFinished: (fn: () => Promise<void>) => void,
  options: { children?: ChildTerminalFactory | null; command?: string[] } = {},
): Scripted {
  const log = new MemoryLog("scripted");
  const terminals = new ProcessTerminals();
  const children = options.children === null ? undefined : (options.children ?? terminals);
  const agent = createAgentSession({
    sessionId: "scripted",
    log,
    spec: { adapter: "acp", command: options.command ?? [process.execPath, SCRIPTED_AGENT] },
    cwd,
    ...(children ? { children } : {}),
  });
  onTestFinished(async () => {
    await agent.dispose();
    await terminals.dispose();
  });
  return {
    log,
    agent,
    terminals,
    async ask(script) {
      const { runId } = agent.prompt(JSON.stringify(script), actor);
      const end = await waitForRunEnd(log, runId);
      return { runId, end, text: deltaText(log, runId) };
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // ESRCH: no such process — exactly what a test of cleanup wants to see.
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

describe.concurrent("ACP adapter against a scripted agent", () => {
  it("applies a burst of chunks and the prompt response that follows them back to back in wire order", async ({
    onTestFinished,
  }) => {
    const s = scriptedSession(onTestFinished);
    for (let round = 0; round < 3; round++) {
      const chunks = Array.from({ length: 200 }, (_, i) => `${round}:${i} `);
      const { end, text } = await s.ask({ op: "say", chunks });
      expect(end).toMatchObject({ type: "chat.final", stopReason: "end_turn", text: chunks.join("") });
      expect(text).toBe(chunks.join(""));
    }
  });

  it("maps thoughts, plans, text and tool calls to their events, flushing text before the tool", async ({
    onTestFinished,
  }) => {
    const s = scriptedSession(onTestFinished);
    const { runId, end } = await s.ask({ op: "mixed" });
    const events = runEvents(s.log, runId).slice(2);
    expect(events.map((e) => e.type)).toEqual([
      "chat.thought",
      "plan",
      "chat.delta",
      "tool",
      "tool",
      "chat.delta",
      "chat.final",
    ]);
    expect(events[0]).toMatchObject({ text: "hmm" });
    expect(events[1]).toMatchObject({ entries: [{ content: "look", priority: "high", status: "in_progress" }] });
    expect(events[2]).toMatchObject({ text: "before tool" });
    expect(events[4]).toMatchObject({
      toolCallId: "t-1",
      status: "completed",
      title: "Look",
      kind: "read",
      rawOutput: { ok: true },
    });
    expect(end).toMatchObject({ text: "before tool after tool" });
  });

  it("advertises fs and terminal capabilities in initialize (terminal only with a child factory)", async ({
    onTestFinished,
  }) => {
    const withTerminals = scriptedSession(onTestFinished);
    const without = scriptedSession(onTestFinished, { children: null });
    const [a, b] = await Promise.all([withTerminals.ask({ op: "caps" }), without.ask({ op: "caps" })]);
    expect(JSON.parse(a.text)).toMatchObject({ fs: { readTextFile: true, writeTextFile: true }, terminal: true });
    expect(JSON.parse(b.text)).toMatchObject({ fs: { readTextFile: true, writeTextFile: true }, terminal: false });
    // Notices and compactions have events of their own (acp-agent-state.test.ts), not answer text.
    expect(JSON.parse(a.text)).toMatchObject({ session: { notices: {}, compaction: {} } });
    // Elicitation: form and url mode, both served (test/gateway/acp-elicitation.test.ts).
    expect(JSON.parse(a.text).elicitation).toEqual({ form: {}, url: {} });
  });

  it("fs: reads and writes inside the session's cwd (lines, new directories, symlinks that stay inside)", async ({
    onTestFinished,
  }) => {
    const s = scriptedSession(onTestFinished);
    expect((await s.ask({ op: "read", path: path.join(cwd, "notes", "a.txt") })).text).toBe("OK hello\nworld\n!");
    expect((await s.ask({ op: "read", path: path.join(cwd, "notes", "a.txt"), line: 2, limit: 1 })).text).toBe(
      "OK world",
    );
    expect((await s.ask({ op: "read", path: path.join(cwd, "link-in.txt") })).text).toBe("OK hello\nworld\n!");
    const target = path.join(cwd, "out", "deeper", "new.txt");
    expect((await s.ask({ op: "write", path: target, content: "written ✓" })).text).toBe("OK");
    expect(await readFile(target, "utf8")).toBe("written ✓");
    const missing = await s.ask({ op: "read", path: path.join(cwd, "nope.txt") });
    expect(missing.text).toMatch(/^ERR -32002 .*does not exist/);
  });

  it("fs: refuses .. traversal, absolute paths outside and symlinks pointing outside", async ({ onTestFinished }) => {
    const s = scriptedSession(onTestFinished);
    const refusals = [
      { op: "read", path: path.join(cwd, "..", "outside", "secret.txt") },
      { op: "read", path: `${cwd}/notes/../../outside/secret.txt` },
      { op: "read", path: path.join(outside, "secret.txt") },
      { op: "read", path: path.join(cwd, "link-out.txt") },
      { op: "read", path: path.join(cwd, "dir-out", "secret.txt") },
      { op: "write", path: `${cwd}/../evil.txt`, content: "x" },
      { op: "write", path: path.join(outside, "evil.txt"), content: "x" },
      { op: "write", path: path.join(cwd, "link-out.txt"), content: "overwritten" },
      { op: "write", path: path.join(cwd, "dir-out", "evil.txt"), content: "x" },
      { op: "write", path: path.join(cwd, "dir-out", "sub", "evil.txt"), content: "x" },
    ];
    for (const script of refusals) {
      const { text, end } = await s.ask(script);
      expect(end.type).toBe("chat.final");
      expect(text, JSON.stringify(script)).toMatch(/^ERR -32602 /);
      expect(text).not.toContain("top secret");
    }
    expect(await readFile(path.join(outside, "secret.txt"), "utf8")).toBe("top secret");
    expect(existsSync(path.join(base, "evil.txt"))).toBe(false);
    expect(existsSync(path.join(outside, "evil.txt"))).toBe(false);
    expect(existsSync(path.join(outside, "sub"))).toBe(false);
  });

  it("terminal/create starts a real child terminal, linked from the tool event and as a child event", async ({
    onTestFinished,
  }) => {
    const s = scriptedSession(onTestFinished);
    const { runId, end, text } = await s.ask({
      op: "terminal",
      command: process.execPath,
      args: ["-e", "process.stdout.write('hi from child'); process.exit(4)"],
    });
    expect(end.type).toBe("chat.final");
    expect(text).toBe("exit=4 truncated=false output=hi from child");
    const child = runEvents(s.log, runId).find((e): e is EventOf<"child"> => e.type === "child");
    expect(child).toMatchObject({ runId, command: [process.execPath, "-e", expect.any(String)] });
    const tools = runEvents(s.log, runId).filter((e): e is EventOf<"tool"> => e.type === "tool");
    expect(tools[0]).toMatchObject({
      toolCallId: "term-1",
      status: "in_progress",
      terminalSessionIds: [child!.sessionId],
    });
    expect(tools[1]).toMatchObject({ status: "completed", terminalSessionIds: [child!.sessionId] });
    expect(s.terminals.created).toEqual([
      expect.objectContaining({ cwd, parent: { sessionId: "scripted", runId }, command: process.execPath }),
    ]);
    // The child event comes before the tool event that names it.
    const order = runEvents(s.log, runId).map((e) => e.type);
    expect(order.indexOf("child")).toBeLessThan(order.indexOf("tool"));
  });

  it("terminal output respects the agent's byte limit, keeping the tail", async ({ onTestFinished }) => {
    const s = scriptedSession(onTestFinished);
    const { text } = await s.ask({
      op: "terminal",
      command: process.execPath,
      args: ["-e", "process.stdout.write('0123456789abcdefghij')"],
      outputByteLimit: 10,
    });
    expect(text).toBe("exit=0 truncated=true output=abcdefghij");
  });

  it("terminal/create without a child factory is refused and the run fails cleanly", async ({ onTestFinished }) => {
    const s = scriptedSession(onTestFinished, { children: null });
    const { end } = await s.ask({ op: "terminal", command: "true" });
    expect(end).toMatchObject({ type: "chat.error", code: "AGENT_FAILED" });
  });

  it("permission over ACP: the agent gets the answer; the title falls back to the tool call's", async ({
    onTestFinished,
  }) => {
    const s = scriptedSession(onTestFinished);
    const { runId } = s.agent.prompt(JSON.stringify({ op: "permission" }), actor);
    const request = await waitForEvent(s.log, "permission.request", (e) => e.runId === runId);
    expect(request).toMatchObject({ title: "Delete everything", toolCallId: "perm-1" });
    const before = runEvents(s.log, runId).map((e) => e.type);
    expect(before.slice(-2)).toEqual(["tool", "permission.request"]);
    s.agent.answerPermission(request.requestId, "no", actor);
    await waitForRunEnd(s.log, runId);
    expect(deltaText(s.log, runId)).toBe("chose no");
  });

  // Regression: the request's toolCall (kind, rawInput, content, locations) was dropped, so a
  // file edit Gemini asked about showed "Writing to diff.txt — Allow / Reject" and no diff.
  it("a permission request carries the diff and paths the agent's request describes", async ({ onTestFinished }) => {
    const s = scriptedSession(onTestFinished);
    const diff = { type: "diff", path: "/w/diff.txt", oldText: "old line\n", newText: "new line\n" };
    const script = {
      op: "permission",
      update: { title: "Writing to diff.txt", kind: "edit" },
      toolCall: { content: [diff], locations: [{ path: "/w/diff.txt" }], rawInput: { file_path: "/w/diff.txt" } },
    };
    const { runId } = s.agent.prompt(JSON.stringify(script), actor);
    const request = await waitForEvent(s.log, "permission.request", (e) => e.runId === runId);
    expect(request).toMatchObject({ title: "Writing to diff.txt", toolCallId: "perm-1" });
    expect(request.toolCall).toEqual({
      kind: "edit",
      rawInput: { file_path: "/w/diff.txt" },
      content: [diff],
      locations: [{ path: "/w/diff.txt" }],
    });
    s.agent.answerPermission(request.requestId, "yes", actor);
    await waitForRunEnd(s.log, runId);
  });

  // Regression: Claude Code sends a shell command in its tool_call and only the call's id in the
  // request: the request showed the title alone.
  it("a permission request carries the command an earlier tool_call of the same call gave", async ({
    onTestFinished,
  }) => {
    const s = scriptedSession(onTestFinished);
    const update = { title: "rm -rf build", kind: "execute", rawInput: { command: "rm -rf build" } };
    const { runId } = s.agent.prompt(JSON.stringify({ op: "permission", update }), actor);
    const request = await waitForEvent(s.log, "permission.request", (e) => e.runId === runId);
    expect(request.toolCall).toEqual({ kind: "execute", rawInput: { command: "rm -rf build" } });
    s.agent.answerPermission(request.requestId, "no", actor);
    await waitForRunEnd(s.log, runId);
  });

  // Regression: a call the agent left pending (it asked, was refused, and ended its turn) stayed
  // "pending" in every viewer after the run ended.
  it("a tool call still open when its run ends gets a last tool event, failed, before the run's end", async ({
    onTestFinished,
  }) => {
    const s = scriptedSession(onTestFinished);
    const { runId } = s.agent.prompt(JSON.stringify({ op: "permission" }), actor);
    const request = await waitForEvent(s.log, "permission.request", (e) => e.runId === runId);
    s.agent.answerPermission(request.requestId, "no", actor);
    await waitForRunEnd(s.log, runId);
    const events = runEvents(s.log, runId);
    expect(events.filter((e) => e.type === "tool").map((e) => (e.type === "tool" ? e.status : ""))).toEqual([
      "pending",
      "failed",
    ]);
    expect(events.slice(-2).map((e) => e.type)).toEqual(["tool", "chat.final"]);
    expect(events.at(-2)).toMatchObject({ toolCallId: "perm-1", title: "Delete everything", kind: "delete" });
  });

  // Regression: Claude Code retried a dead model API for 151 s with nothing to show; its retry
  // notices come as session_info_update with an AIR sessionFailure in _meta.
  it("an agent's retry notice becomes a run.notice of its run", async ({ onTestFinished }) => {
    const s = scriptedSession(onTestFinished);
    const failure = { id: "f1", severity: "warning", title: "Retrying Claude, attempt 1 of 10.", actions: ["retry"] };
    const meta = { jetbrains: { air: { version: 1, sessionFailure: failure } } };
    const { runId, text } = await s.ask({ op: "notice", meta });
    expect(text).toBe("noticed");
    const notices = runEvents(s.log, runId).filter((e) => e.type === "run.notice");
    expect(notices).toMatchObject([{ level: "warning", text: "Retrying Claude, attempt 1 of 10." }]);
    const caps = JSON.parse((await s.ask({ op: "caps" })).text) as Record<string, unknown>;
    expect(caps._meta).toEqual({ jetbrains: { air: { version: 1, capabilities: ["sessionFailure"] } } });
  });

  // Exploratory test (UI): the page showed "the agent answered error -32603: Internal error";
  // the reason (a bad API key, say) was in the error's data, dropped.
  it("an agent's error answer is AGENT_FAILED with the reason its data carries", async ({ onTestFinished }) => {
    const s = scriptedSession(onTestFinished);
    const failed = await s.ask({ op: "throw", message: "invalid x-api-key" });
    expect(failed.end).toMatchObject({
      type: "chat.error",
      code: "AGENT_FAILED",
      message: "the agent answered error -32603: Internal error: invalid x-api-key",
    });
    expect((await s.ask({ op: "say", chunks: ["still here"] })).text).toBe("still here");
  });

  it("a crash mid-run ends the run with AGENT_EXITED, and the next prompt restarts the agent", async ({
    onTestFinished,
  }) => {
    const s = scriptedSession(onTestFinished);
    const firstPid = Number((await s.ask({ op: "pid" })).text.replace("pid=", ""));
    const crash = await s.ask({ op: "crash", chunks: ["partial answer"] });
    expect(crash.end).toMatchObject({ type: "chat.error", code: "AGENT_EXITED" });
    expect((crash.end as EventOf<"chat.error">).message).toMatch(/exited with code 3/);
    expect(crash.text).toBe("partial answer");
    expect(
      runEvents(s.log, crash.runId)
        .map((e) => e.type)
        .slice(-2),
    ).toEqual(["chat.delta", "chat.error"]);
    expect(s.agent.info()).toEqual({ active: null, queued: 0 });
    expect(s.agent.state()).toBe("idle");
    const secondPid = Number((await s.ask({ op: "pid" })).text.replace("pid=", ""));
    expect(secondPid).not.toBe(firstPid);
    expect(isAlive(firstPid)).toBe(false);
    await s.agent.dispose();
    expect(isAlive(secondPid)).toBe(false);
  });

  it(`restarts are bounded: after ${MAX_AGENT_RESTARTS} restarts in the window the next run fails without starting the agent`, async ({
    onTestFinished,
  }) => {
    const s = scriptedSession(onTestFinished);
    for (let i = 0; i <= MAX_AGENT_RESTARTS; i++) {
      expect((await s.ask({ op: "crash" })).end).toMatchObject({ type: "chat.error", code: "AGENT_EXITED" });
    }
    const refused = await s.ask({ op: "pid" });
    expect(refused.end).toMatchObject({
      type: "chat.error",
      code: "AGENT_EXITED",
      message: expect.stringMatching(/not restarting/),
    });
    expect(refused.text).toBe("");
  });

  it("an abort while the agent starts frees the lane at once: the next run gets the same agent once it is up, not a killed and restarted one", async ({
    onTestFinished,
  }) => {
    // An agent slow to start (npx fetching it, longer than ABORT_SETTLE_TIMEOUT_MS: the manual
    // clock stands for that): each start writes its pid to `starts`.
    const starts = path.join(base, "slow-starts.txt");
    const clock = new ManualClock(Date.now());
    const log = new MemoryLog("slow-start", { clock });
    const agent = createAgentSession({
      sessionId: "slow-start",
      log,
      clock,
      cwd,
      spec: {
        adapter: "acp",
        command: ["sh", "-c", `echo $$ >> '${starts}'; sleep 1; exec '${process.execPath}' '${SCRIPTED_AGENT}'`],
      },
    });
    onTestFinished(() => agent.dispose());
    const aborted = agent.prompt(JSON.stringify({ op: "pid" }), actor).runId;
    await new Promise((resolve) => setTimeout(resolve, 200));
    agent.abort({}, actor);
    const next = agent.prompt(JSON.stringify({ op: "pid" }), actor).runId;
    await new Promise((resolve) => setImmediate(resolve));
    // The agent is still starting when the abort settle timeout passes: it was killed then.
    clock.advance(ABORT_SETTLE_TIMEOUT_MS);
    await waitForRunEnd(log, next);
    const pids = (await readFile(starts, "utf8")).trim().split("\n");
    expect(pids).toHaveLength(1);
    expect(runEvents(log, next).at(-1)).toMatchObject({ type: "chat.final", text: `pid=${pids[0]}` });
    // The aborted run never reached the agent: nothing of it after its one chat.aborted.
    expect(runEvents(log, aborted).map((e) => e.type)).toEqual(["run.queued", "run.started", "chat.aborted"]);
  });

  it("an agent command that cannot start fails the run with SPAWN_FAILED", async ({ onTestFinished }) => {
    const s = scriptedSession(onTestFinished, { command: ["/nonexistent/agent-binary", "--acp"] });
    const { end } = await s.ask({ op: "pid" });
    expect(end).toMatchObject({ type: "chat.error", code: "SPAWN_FAILED", message: expect.stringMatching(/ENOENT/) });
  });
});
