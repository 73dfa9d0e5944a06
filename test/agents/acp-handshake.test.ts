import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  ACP_CANCEL_ANSWER_MS,
  ACP_START_TIMEOUT_MS,
  createAgentSession,
  MAX_AGENT_RESTARTS,
  MemoryLog,
  MAX_NOISE_LINES_KEPT,
} from "../../src/agents/index.js";
import type { AgentLogger, AgentSpec } from "../../src/agents/index.js";
import { ManualClock } from "../../src/core/clock.js";
import type { Actor, EventOf } from "../../src/protocol/index.js";
import { deltaText, waitForRunEnd } from "./helpers/wait.js";
import { waitFor } from "../helpers/wait-for.js";

const RAW_AGENT = fileURLToPath(new URL("./fixtures/raw-agent.mjs", import.meta.url));
const actor: Actor = { name: "alice", role: "operator" };

interface Logged {
  level: string;
  obj: Record<string, unknown>;
  msg: string;
}

function capturingLogger(into: Logged[]): AgentLogger {
  const at =
    (level: string) =>
    (obj: Record<string, unknown>, msg: string): void => {
      into.push({ level, obj, msg });
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

function handshakeSession(
  onTestFinished: (fn: () => Promise<void>) => void,
  mode: string,
  options: { clock?: ManualClock; spec?: Partial<AgentSpec> } = {},
) {
  const log = new MemoryLog("hs", options.clock ? { clock: options.clock } : {});
  const logged: Logged[] = [];
  const command = [process.execPath, RAW_AGENT, `--handshake=${mode}`];
  const agent = createAgentSession({
    sessionId: "hs",
    log,
    spec: { adapter: "acp", command, ...options.spec } as AgentSpec,
    logger: capturingLogger(logged),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  onTestFinished(() => agent.dispose());
  return {
    log,
    agent,
    logged,
    command,
    async ask(text: string) {
      const { runId } = agent.prompt(text, actor);
      const end = await waitForRunEnd(log, runId);
      return { runId, end: end as EventOf<"chat.error">, text: deltaText(log, runId) };
    },
  };
}

describe("ACP handshake failures say what the agent said", () => {
  // Exploratory test (claude-code-acp as root): the session showed only "ACP handshake failed:
  // Internal error"; the reason was in the error's data and on the agent's stderr.
  it("a session/new error carries the error's data and the last lines of the agent's stderr", async ({
    onTestFinished,
  }) => {
    const s = handshakeSession(onTestFinished, "internal");
    const { end } = await s.ask("hello");
    expect(end).toMatchObject({
      type: "chat.error",
      code: "AGENT_FAILED",
      message:
        "ACP handshake failed: the agent answered session/new with error -32603: Internal error: Query closed before response received; " +
        "its stderr ends: starting | --dangerously-skip-permissions cannot be used with root/sudo privileges",
    });
  });

  it("-32000 at session/new is AGENT_AUTH_REQUIRED, naming each login method as something to do", async ({
    onTestFinished,
  }) => {
    const s = handshakeSession(onTestFinished, "auth");
    const { end } = await s.ask("hello");
    expect(end.code).toBe("AGENT_AUTH_REQUIRED");
    expect(end.message).toBe(
      "the agent needs a login before it can work (it answered error -32000: Authentication required). To log in: " +
        `"Log in with Raw" (Run \`raw /login\` in the terminal): run \`${s.command.join(" ")} --login\` in a terminal as the user the gateway runs as; ` +
        `or "Raw key" (Use the key in RAW_KEY): set the agent's "authMethod" to "raw-key" in the gateway config (with what that method needs, e.g. a key in the agent's env) and the gateway authenticates with it. ` +
        "Then prompt again",
    );
  });

  it("-32000 answering a prompt is AGENT_AUTH_REQUIRED too, and the agent stays up", async ({ onTestFinished }) => {
    const s = handshakeSession(onTestFinished, "prompt-auth");
    const first = await s.ask("hello");
    expect(first.end).toMatchObject({
      code: "AGENT_AUTH_REQUIRED",
      message: expect.stringMatching(/^the agent needs a login .*it offers no login method over ACP/),
    });
    const pid = s.agent.pid();
    expect(pid).toBeGreaterThan(0);
    expect((await s.ask("again")).end.code).toBe("AGENT_AUTH_REQUIRED");
    expect(s.agent.pid()).toBe(pid);
  });

  it("a configured authMethod is sent with ACP authenticate before session/new", async ({ onTestFinished }) => {
    const s = handshakeSession(onTestFinished, "auth", { spec: { authMethod: "raw-key" } });
    const { end, text } = await s.ask("hello");
    expect(end.type).toBe("chat.final");
    expect(text).toBe("authed");
  });

  it("an authMethod the agent does not offer is CONFIG_INVALID naming the ones it does", async ({ onTestFinished }) => {
    const s = handshakeSession(onTestFinished, "auth", { spec: { authMethod: "sso" } });
    const { end } = await s.ask("hello");
    expect(end).toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringContaining(`"sso" is not one the agent offers (it offers "terminal-login", "raw-key")`),
    });
  });

  it(`repeated handshake failures say "failed its handshake N times" and keep their code`, async ({
    onTestFinished,
  }) => {
    const s = handshakeSession(onTestFinished, "auth");
    for (let i = 0; i <= MAX_AGENT_RESTARTS; i++) expect((await s.ask("hello")).end.code).toBe("AGENT_AUTH_REQUIRED");
    const refused = await s.ask("hello");
    expect(refused.end.code).toBe("AGENT_AUTH_REQUIRED");
    expect(refused.end.message).toMatch(
      new RegExp(
        `^the agent failed its handshake ${MAX_AGENT_RESTARTS + 1} times within 60 s \\(last: AGENT_AUTH_REQUIRED: the agent needs a login`,
      ),
    );
  });
});

describe("an agent that prints something else than ACP on stdout", () => {
  it("has those lines logged (bounded) and named in the start timeout's message", async ({ onTestFinished }) => {
    const clock = new ManualClock(Date.now());
    const s = handshakeSession(onTestFinished, "noise", { clock });
    const { runId } = s.agent.prompt("hello", actor);
    // The banner is read while the manual clock stands still; then the start times out.
    await waitFor(() => s.logged.filter((l) => l.msg.includes("not an ACP message")).length === 2);
    clock.advance(ACP_START_TIMEOUT_MS);
    // Then the gateway waits (ACP_CANCEL_ANSWER_MS) for an answer to its $/cancel_request of initialize.
    const ticking = setInterval(() => clock.advance(ACP_CANCEL_ANSWER_MS), 50);
    const end = (await waitForRunEnd(s.log, runId).finally(() => clearInterval(ticking))) as EventOf<"chat.error">;
    expect(end).toMatchObject({
      code: "AGENT_FAILED",
      message:
        `the agent did not answer initialize/session/new within ${ACP_START_TIMEOUT_MS} ms; it printed 2 line(s) on stdout that are not ACP messages ` +
        `(is it started in its ACP mode? ACP needs stdout for JSON-RPC alone): "Welcome to the raw agent v1", "Usage: raw-agent [--acp]"`,
    });
    expect(s.logged.filter((l) => l.msg.includes("not an ACP message")).map((l) => l.obj["line"])).toEqual([
      "Welcome to the raw agent v1",
      "Usage: raw-agent [--acp]",
    ]);
    expect(MAX_NOISE_LINES_KEPT).toBeGreaterThanOrEqual(2);
  });
});

describe("an ACP agent's process", () => {
  // Exploratory test: "ACP input failed: Invalid state: Controller is already closed" was logged
  // at every agent's end.
  it("ends without an input error logged, and its pid is shown while it runs", async ({ onTestFinished }) => {
    const s = handshakeSession(onTestFinished, "none");
    const changes: number[] = [];
    s.agent.onStateChange(() => changes.push(s.agent.pid() ?? 0));
    expect(s.agent.pid()).toBeNull();
    expect((await s.ask("hello")).text).toBe("echo:hello");
    const pid = s.agent.pid();
    expect(pid).toBeGreaterThan(0);
    expect(changes).toContain(pid);
    await s.agent.dispose();
    expect(s.agent.pid()).toBeNull();
    expect(s.logged.filter((l) => l.level === "warn" || l.level === "error")).toEqual([]);
  });
});
