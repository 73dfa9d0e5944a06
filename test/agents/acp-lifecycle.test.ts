// The ACP session lifecycle the gateway drives, checked on what a scripted agent received
// (its --record file): session/resume where offered (else session/load), session/close when a
// session is deleted, $/cancel_request for the requests the gateway gives up on.
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ABORT_SETTLE_TIMEOUT_MS,
  ACP_CANCEL_ANSWER_MS,
  ACP_CLOSE_TIMEOUT_MS,
  ACP_START_TIMEOUT_MS,
  createAgentSession,
  MemoryLog,
} from "../../src/agents/index.js";
import type { AgentSession } from "../../src/agents/index.js";
import { ManualClock } from "../../src/core/clock.js";
import type { Actor } from "../../src/protocol/index.js";
import { deltaText, waitForEvent, waitForRunEnd } from "./helpers/wait.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("./fixtures/scripted-agent.mjs", import.meta.url));
const actor: Actor = { name: "alice", role: "operator" };

let base: string;
let files = 0;

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), "sb-acp-lifecycle-"));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

interface Received {
  id?: string | number;
  method?: string;
  params?: Record<string, unknown>;
}

/** What the agent received so far, in order. */
function received(file: string): Received[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Received);
}

async function until<T>(what: string, check: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function scripted(
  onTestFinished: (fn: () => Promise<void>) => void,
  flags: string[],
  options: { agentSessionId?: string; clock?: ManualClock } = {},
): { agent: AgentSession; log: MemoryLog; record: string } {
  const record = path.join(base, `record-${++files}.jsonl`);
  const log = new MemoryLog("lifecycle");
  const agent = createAgentSession({
    sessionId: "lifecycle",
    log,
    cwd: base,
    spec: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT, `--record=${record}`, ...flags] },
    ...(options.agentSessionId !== undefined ? { agentSessionId: options.agentSessionId } : {}),
    ...(options.clock !== undefined ? { clock: options.clock } : {}),
  });
  onTestFinished(() => agent.dispose());
  return { agent, log, record };
}

const methods = (file: string): string[] => received(file).flatMap((m) => (m.method !== undefined ? [m.method] : []));

describe.concurrent("ACP session lifecycle", () => {
  it("resumes a kept conversation with session/resume where the agent offers it, replaying nothing", async ({
    onTestFinished,
  }) => {
    const { agent, log, record } = scripted(onTestFinished, ["--resume", "--load-session"], {
      agentSessionId: "conv-1",
    });
    expect(await agent.resume()).toBe(true);
    const { runId } = agent.prompt(JSON.stringify({ op: "session" }), actor);
    await waitForRunEnd(log, runId);
    expect(deltaText(log, runId)).toBe("session=conv-1 loaded=conv-1");
    expect(methods(record)).toEqual(["initialize", "session/resume", "session/prompt"]);
    expect(received(record)[1]!.params).toMatchObject({ sessionId: "conv-1", cwd: base, mcpServers: [] });
  });

  it("falls back to session/load where the agent offers no session/resume", async ({ onTestFinished }) => {
    const { agent, record } = scripted(onTestFinished, ["--load-session"], { agentSessionId: "conv-2" });
    expect(await agent.resume()).toBe(true);
    expect(methods(record)).toEqual(["initialize", "session/load"]);
  });

  it("sends session/close when the session is ended for good, and only where the agent offers it", async ({
    onTestFinished,
  }) => {
    const offered = scripted(onTestFinished, ["--close"]);
    const stopped = scripted(onTestFinished, ["--close"]);
    const notOffered = scripted(onTestFinished, []);
    for (const s of [offered, stopped, notOffered]) {
      const { runId } = s.agent.prompt("hello", actor);
      await waitForRunEnd(s.log, runId);
    }
    await Promise.all([
      offered.agent.dispose({ close: true }),
      stopped.agent.dispose(),
      notOffered.agent.dispose({ close: true }),
    ]);
    const sessionId = received(offered.record).find((m) => m.method === "session/prompt")!.params!.sessionId;
    expect(received(offered.record).filter((m) => m.method === "session/close")).toMatchObject([
      { params: { sessionId } },
    ]);
    // A gateway stop (or a restart of the agent) keeps the conversation to resume later.
    expect(methods(stopped.record)).not.toContain("session/close");
    expect(methods(notOffered.record)).not.toContain("session/close");
  });

  it(`cancels a session/close the agent does not answer within ${ACP_CLOSE_TIMEOUT_MS} ms, then stops it`, async ({
    onTestFinished,
  }) => {
    const { agent, log, record } = scripted(onTestFinished, ["--close-hang"]);
    const { runId } = agent.prompt("hello", actor);
    await waitForRunEnd(log, runId);
    const started = Date.now();
    await agent.dispose({ close: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(ACP_CLOSE_TIMEOUT_MS - 50);
    const close = received(record).find((m) => m.method === "session/close")!;
    expect(received(record).filter((m) => m.method === "$/cancel_request")).toEqual([
      { jsonrpc: "2.0", method: "$/cancel_request", params: { requestId: close.id } },
    ]);
  });

  it("sends $/cancel_request for the session/new the start timeout gives up on", async ({ onTestFinished }) => {
    const clock = new ManualClock();
    const { agent, log, record } = scripted(onTestFinished, ["--hang-new"], { clock });
    const { runId } = agent.prompt("hello", actor);
    const sessionNew = await until("session/new received", () =>
      received(record).find((m) => m.method === "session/new"),
    );
    clock.advance(ACP_START_TIMEOUT_MS);
    await until("$/cancel_request received", () => methods(record).includes("$/cancel_request") || undefined);
    // The agent does not answer what it was never going to answer: the gateway stops waiting.
    clock.advance(ACP_CANCEL_ANSWER_MS);
    const end = await waitForRunEnd(log, runId);
    expect(end).toMatchObject({ type: "chat.error", code: "AGENT_FAILED" });
    expect((end as { message: string }).message).toContain(`within ${ACP_START_TIMEOUT_MS} ms`);
    expect(received(record).filter((m) => m.method === "$/cancel_request")).toEqual([
      { jsonrpc: "2.0", method: "$/cancel_request", params: { requestId: sessionNew.id } },
    ]);
  });

  it("sends $/cancel_request for the session/prompt of an aborted turn the agent did not end in time", async ({
    onTestFinished,
  }) => {
    const clock = new ManualClock();
    const { agent, log, record } = scripted(onTestFinished, [], { clock });
    const { runId } = agent.prompt(JSON.stringify({ op: "stubborn", ms: 60_000 }), actor);
    const prompt = await until("session/prompt received", () =>
      received(record).find((m) => m.method === "session/prompt"),
    );
    agent.abort({}, actor);
    await waitForEvent(log, "chat.aborted");
    await until("session/cancel received", () => methods(record).includes("session/cancel") || undefined);
    expect(methods(record)).not.toContain("$/cancel_request");
    // The lane gives up on the turn: the agent is replaced, and told the prompt is not waited for.
    clock.advance(ABORT_SETTLE_TIMEOUT_MS);
    const cancels = await until("$/cancel_request received", () => {
      const found = received(record).filter((m) => m.method === "$/cancel_request");
      return found.length > 0 ? found : undefined;
    });
    clock.advance(ACP_CANCEL_ANSWER_MS);
    expect(cancels).toEqual([{ jsonrpc: "2.0", method: "$/cancel_request", params: { requestId: prompt.id } }]);
    expect(runId).toBeTruthy();
  });
});
