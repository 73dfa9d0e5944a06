import { existsSync } from "node:fs";
import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ACP_MAX_MESSAGE_BYTES, createAgentSession, MemoryLog } from "../../src/agents/index.js";
import type { Actor, EventOf } from "../../src/protocol/index.js";
import { deltaText, waitForEvent, waitForRunEnd } from "./helpers/wait.js";

const RAW_AGENT = fileURLToPath(new URL("./fixtures/raw-agent.mjs", import.meta.url));
const actor: Actor = { name: "alice", role: "operator" };

function rawSession(onTestFinished: (fn: () => Promise<void>) => void, cwd?: string) {
  const log = new MemoryLog("raw");
  const agent = createAgentSession({
    sessionId: "raw",
    log,
    spec: { adapter: "acp", command: [process.execPath, RAW_AGENT] },
    ...(cwd !== undefined ? { cwd } : {}),
  });
  onTestFinished(() => agent.dispose());
  return {
    log,
    agent,
    async ask(text: string) {
      const { runId } = agent.prompt(text, actor);
      const end = await waitForRunEnd(log, runId);
      return { runId, end, text: deltaText(log, runId) };
    },
  };
}

describe("ACP adapter against an agent that breaks the rules", () => {
  it("says that the agent sent a message over the size limit, instead of blaming a crash, and the next prompt works", async ({
    onTestFinished,
  }) => {
    const s = rawSession(onTestFinished);
    const { end, text } = await s.ask(`huge:${ACP_MAX_MESSAGE_BYTES + 1024}`);
    expect(text).toBe("");
    expect(end).toMatchObject({ type: "chat.error", code: "AGENT_EXITED" });
    const message = (end as EventOf<"chat.error">).message;
    expect(message).toContain(`larger than ${ACP_MAX_MESSAGE_BYTES} bytes`);
    expect(message).not.toMatch(/^\S+ was killed by SIGTERM/);
    expect((await s.ask("hello")).end).toMatchObject({ type: "chat.final", text: "echo:hello" });
  }, 30_000);
  // Exploratory test: "node was killed by SIGTERM", as if someone had killed it.
  it("says that an agent closed its output while still running, and that the gateway stopped it", async ({
    onTestFinished,
  }) => {
    const s = rawSession(onTestFinished);
    const { end } = await s.ask("close-stdout");
    expect(end).toMatchObject({
      type: "chat.error",
      code: "AGENT_EXITED",
      message: `${process.execPath} closed its output (the ACP connection) while still running, so the gateway stopped it (SIGTERM): closing`,
    });
    expect((await s.ask("hello")).end).toMatchObject({ type: "chat.final", text: "echo:hello" });
  }, 30_000);
});

describe("ACP adapter after an abort", () => {
  it("refuses a file write the agent asks for after the run was aborted", async ({ onTestFinished }) => {
    const dir = await realpath(await mkdtemp(path.join(tmpdir(), "sb-raw-")));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const s = rawSession(onTestFinished, dir);
    const target = path.join(dir, "late.txt");
    const { runId } = s.agent.prompt(`write-after-cancel:${target}`, actor);
    await waitForEvent(s.log, "chat.delta", (e) => e.runId === runId && e.text === "ready");
    s.agent.abort({}, actor);
    expect(await waitForRunEnd(s.log, runId)).toMatchObject({ type: "chat.aborted" });
    // The next run starts once the agent has finished the cancelled turn (its write answered).
    const { text } = await s.ask("answers");
    expect(text).toMatch(/^error -32600 .*aborted/);
    expect(existsSync(target)).toBe(false);
  });
});
