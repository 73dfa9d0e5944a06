// Claude Code, Gemini CLI and Codex (the published ACP adapters in test/agents/packages) under
// holders, each answering a slow 150-word scripted model stream, with the gateway killed (-9)
// or stopped (SIGTERM) at a seeded random point of the answer and started again on the same data
// directory: the run ends chat.final with exactly the scripted words, each delta once, and the
// model is asked once (docs/agents.md, "Agents across gateway restarts").
// REAL_HELD_TURN_SEED=N replays a seed; a failure names it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import { prng } from "../helpers/chaos.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { claudeSessionBody } from "./helpers/claude-session.js";
import { codexSessionBody, geminiSessionBody } from "./helpers/gemini-codex-sessions.js";
import { startAnthropicServer } from "./model-servers/anthropic.js";
import { startGeminiServer } from "./model-servers/gemini.js";
import { startOpenAiResponsesServer } from "./model-servers/openai-responses.js";
import type { ScriptedModelServer } from "./model-servers/scripted-model.js";

/** Starting an agent takes seconds (gemini about 11 s on a loaded machine). */
const TIMEOUT_MS = 120_000;
const RUN_END_MS = 60_000;
const WORDS = 150;
const ANSWER = Array.from({ length: WORDS }, (_, i) => `w${i + 1}`).join(" ");
/** The model's pace: 8 characters every 25 ms, about 2.3 s for the answer. */
const PIECE_CHARS = 8;
const PIECE_DELAY_MS = 25;

type AgentName = "claude" | "gemini" | "codex";
type Ev = { seq: number; type: string; runId?: string; text?: string; [k: string]: unknown };
type Defer = (fn: () => void | Promise<void>) => void;

const SEED =
  process.env.REAL_HELD_TURN_SEED !== undefined ? Number(process.env.REAL_HELD_TURN_SEED) : Date.now() % 1_000_000;

const AGENTS: Record<
  AgentName,
  {
    start: () => Promise<ScriptedModelServer>;
    body: (url: string, prefix: string) => Record<string, unknown>;
    signal: NodeJS.Signals;
  }
> = {
  claude: { start: startAnthropicServer, body: claudeSessionBody, signal: "SIGKILL" },
  gemini: { start: startGeminiServer, body: geminiSessionBody, signal: "SIGTERM" },
  codex: { start: startOpenAiResponsesServer, body: codexSessionBody, signal: "SIGKILL" },
};

const ENDS = new Set(["chat.final", "chat.error", "chat.aborted"]);

async function events(url: string, id: string): Promise<Ev[]> {
  return (await api(url).get(`/v1/sessions/${id}/events?limit=10000`)).json.events as Ev[];
}

async function until<T>(fn: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await fn();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `serve` with holders on; at the test's end its agent sessions are deleted (ending their held agents), then it is killed. */
async function serve(dataDir: string, config: string, defer: Defer): Promise<ChildGateway> {
  return serveInChild({ dataDir, config, holders: true, defer });
}

async function heldTurn(agent: AgentName, seed: number, defer: Defer): Promise<void> {
  const random = prng(seed);
  const home = mkdtempSync(path.join(tmpdir(), `sb-real-held-${agent}-`));
  defer(() => rmSync(home, { recursive: true, force: true }));
  const server = await AGENTS[agent].start();
  defer(() => server.close());
  server.setScript((turn) =>
    turn.prompt.includes("count the words")
      ? { text: ANSWER, pieceChars: PIECE_CHARS, pieceDelayMs: PIECE_DELAY_MS }
      : { text: "ok" },
  );
  const { agent: spec, cwd } = AGENTS[agent].body(server.url, `sb-real-held-${agent}-home-`) as {
    agent: Record<string, unknown>;
    cwd: string;
  };
  const dataDir = path.join(home, "data");
  const config = path.join(home, "gateway.json");
  writeFileSync(config, JSON.stringify({ agents: { [agent]: { ...spec, cwd } } }));

  let gw = await serve(dataDir, config, defer);
  const created = await api(gw.url).post("/v1/sessions", { kind: "agent", agent });
  expect(created.status, created.text).toBe(201);
  const id = created.json.id as string;
  // The held agent outlives every gateway: the running one deletes the session, which ends it
  // (registered after each start, so it runs before that gateway's kill).
  let deleted = false;
  const deleteAtEnd = (): void =>
    defer(async () => {
      if (deleted) return;
      deleted = true;
      await api(gw.url).del(`/v1/sessions/${id}`);
    });
  deleteAtEnd();

  // The kill point: once the run's deltas carry this share of the answer.
  const share = 0.1 + 0.5 * random();
  const signal = AGENTS[agent].signal;
  const context = `seed ${seed}, ${agent}, ${signal} at ${Math.round(share * 100)}% of the answer`;

  const sent = await api(gw.url).post(`/v1/sessions/${id}/prompt`, { text: "count the words" });
  expect(sent.status, sent.text).toBe(202);
  const runId = sent.json.runId as string;
  const before = await until(
    async () => {
      const log = await events(gw.url, id);
      const text = log.filter((e) => e.type === "chat.delta" && e.runId === runId).map((e) => e.text ?? "");
      const end = log.find((e) => e.runId === runId && ENDS.has(e.type));
      if (end) throw new Error(`${context}: the run ended before the kill: ${JSON.stringify(end)}`);
      return text.join("").length >= share * ANSWER.length ? text.join("").length : undefined;
    },
    90_000,
    `${context}: the answer's first words`,
  );
  const exited = new Promise((resolve) => gw.child.once("exit", resolve));
  gw.child.kill(signal);
  await exited;

  gw = await serve(dataDir, config, defer);
  deleteAtEnd();
  let end: Ev;
  try {
    end = await until(
      async () => (await events(gw.url, id)).find((e) => e.runId === runId && ENDS.has(e.type)),
      RUN_END_MS,
      "end of the run",
    );
  } catch (error) {
    const last = (await events(gw.url, id))
      .slice(-6)
      .map((e) => `${e.seq} ${e.type} ${JSON.stringify(e).slice(0, 200)}`);
    const warned = gw.log.filter((l) => Number(l.level) >= 40).map((l) => String(l.msg));
    throw new Error(
      `${context}: ${(error as Error).message}; last events:\n${last.join("\n")}\nwarned: ${warned.join("; ")}`,
      {
        cause: error,
      },
    );
  }
  const log = await events(gw.url, id);
  const run = log.filter((e) => e.runId === runId);
  const deltas = run.filter((e) => e.type === "chat.delta").map((e) => e.text ?? "");
  const said = `${context} (${before} characters before the kill)`;
  expect(end, said).toMatchObject({ type: "chat.final", text: ANSWER });
  expect(deltas.join(""), said).toBe(ANSWER);
  expect(
    run.filter((e) => ENDS.has(e.type)).map((e) => e.type),
    said,
  ).toEqual(["chat.final"]);
  expect(
    log.map((e) => e.seq),
    said,
  ).toEqual(log.map((_, i) => log[0]!.seq + i));
  // The model was asked once: the agent never saw the restart.
  expect(
    server.turns.filter((t) => t.prompt.includes("count the words")),
    said,
  ).toHaveLength(1);
  expect(server.turns, said).toHaveLength(1);
}

describe("real agents' turns in flight across gateway restarts (holders on)", () => {
  for (const agent of ["claude", "gemini", "codex"] as const) {
    it.concurrent(
      `${agent}: a slow 150-word answer cut by a ${AGENTS[agent].signal} of the gateway ends chat.final, every word once (seed ${SEED})`,
      async ({ onTestFinished }) => {
        await heldTurn(agent, SEED, onTestFinished);
      },
      TIMEOUT_MS,
    );
  }
});
