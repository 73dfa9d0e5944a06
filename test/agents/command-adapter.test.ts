import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentSession, MemoryLog } from "../../src/agents/index.js";
import type { AgentSession, AgentSpec } from "../../src/agents/index.js";
import type { Actor, SessionEvent } from "../../src/protocol/index.js";
import { deltaText, waitForEvent, waitForRunEnd } from "./helpers/wait.js";

const actor: Actor = { name: "alice", role: "operator" };
const node = process.execPath;
let cwd: string;

beforeAll(async () => {
  cwd = await realpath(await mkdtemp(path.join(tmpdir(), "sb-command-")));
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

function commandSession(
  onTestFinished: (fn: () => Promise<void>) => void,
  command: string[],
  env?: Record<string, string>,
): {
  log: MemoryLog;
  agent: AgentSession;
  ask: (text: string) => Promise<{ runId: string; end: SessionEvent; text: string }>;
} {
  const log = new MemoryLog("cmd");
  const spec: AgentSpec = { adapter: "command", command, ...(env ? { env } : {}) };
  const agent = createAgentSession({ sessionId: "cmd", log, spec, cwd });
  onTestFinished(() => agent.dispose());
  return {
    log,
    agent,
    async ask(text) {
      const { runId } = agent.prompt(text, actor);
      const end = await waitForRunEnd(log, runId);
      return { runId, end, text: deltaText(log, runId) };
    },
  };
}

describe.concurrent("command adapter", () => {
  it("sends the prompt on stdin and streams stdout back; exit 0 is chat.final end_turn", async ({ onTestFinished }) => {
    const s = commandSession(onTestFinished, [node, "-e", "process.stdin.pipe(process.stdout)"]);
    const { end, text } = await s.ask("echo me\nplease");
    expect(end).toMatchObject({ type: "chat.final", stopReason: "end_turn", text: "echo me\nplease" });
    expect(text).toBe("echo me\nplease");
  });

  it("puts the prompt where {prompt} appears in the arguments", async ({ onTestFinished }) => {
    const s = commandSession(onTestFinished, [
      node,
      "-e",
      "process.stdout.write('got:' + process.argv[1])",
      "prompt={prompt}!",
    ]);
    expect((await s.ask("hello there")).text).toBe("got:prompt=hello there!");
  });

  it("decodes UTF-8 split across reads and runs in the session's cwd with the agent's env", async ({
    onTestFinished,
  }) => {
    const script = `
      const bytes = Buffer.from("héllo 👋 " + process.cwd() + " " + process.env.AGENT_FLAVOUR);
      let i = 0;
      const t = setInterval(() => { process.stdout.write(bytes.subarray(i, i + 1)); if (++i >= bytes.length) clearInterval(t); }, 1);`;
    const s = commandSession(onTestFinished, [node, "-e", script], { AGENT_FLAVOUR: "vanilla" });
    const { end, text } = await s.ask("go");
    expect(end.type).toBe("chat.final");
    expect(text).toBe(`héllo 👋 ${cwd} vanilla`);
  });

  it("a non-zero exit is chat.error AGENT_FAILED with the stderr tail", async ({ onTestFinished }) => {
    const s = commandSession(onTestFinished, [
      node,
      "-e",
      "process.stdout.write('partial'); console.error('bad thing happened'); process.exit(2)",
    ]);
    const { end, text } = await s.ask("go");
    expect(end).toMatchObject({
      type: "chat.error",
      code: "AGENT_FAILED",
      message: expect.stringMatching(/exited with code 2: bad thing happened/),
    });
    expect(text).toBe("partial");
  });

  it("abort kills the process: one chat.aborted, and the next prompt runs a new process", async ({
    onTestFinished,
  }) => {
    const s = commandSession(onTestFinished, [
      node,
      "-e",
      "process.stdout.write('pid=' + process.pid); setInterval(() => {}, 1000)",
    ]);
    const { runId } = s.agent.prompt("go", actor);
    const delta = await waitForEvent(s.log, "chat.delta", (e) => e.runId === runId);
    const pid = Number(delta.text.replace("pid=", ""));
    const next = s.agent.prompt("again", actor).runId;
    s.agent.abort({}, actor);
    await waitForEvent(s.log, "run.started", (e) => e.runId === next);
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: "ESRCH" }));
    expect(
      s.log.events.filter(
        (e) => "runId" in e && e.runId === runId && e.type.startsWith("chat.") && e.type !== "chat.delta",
      ),
    ).toEqual([expect.objectContaining({ type: "chat.aborted" })]);
  });

  it("a prompt with a NUL character for {prompt} is chat.error SPAWN_FAILED saying why, and the queue goes on", async ({
    onTestFinished,
  }) => {
    const s = commandSession(onTestFinished, [node, "-e", "process.stdout.write(process.argv[1])", "{prompt}"]);
    const { end } = await s.ask("before\0after");
    expect(end).toMatchObject({ type: "chat.error", code: "SPAWN_FAILED" });
    expect((end as { message: string }).message).toMatch(/NUL character.*\{prompt\}.*stdin/);
    expect((await s.ask("fine")).end).toMatchObject({ type: "chat.final", text: "fine" });
  });

  it("a command that cannot start is chat.error SPAWN_FAILED", async ({ onTestFinished }) => {
    const s = commandSession(onTestFinished, ["/nonexistent/agent-cli", "-p"]);
    expect((await s.ask("go")).end).toMatchObject({ type: "chat.error", code: "SPAWN_FAILED" });
  });
});
