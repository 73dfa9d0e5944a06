// Claude Code, Gemini CLI and Codex (the published ACP adapters in test/agents/packages) under
// holders, each answering a slow 150-word scripted model stream, with the gateway killed (-9)
// and stopped (SIGTERM), in a seeded order at seeded points of the answer, and started again on
// the same data directory each time: the run ends chat.final with exactly the scripted words, each
// delta once, and the model is asked once (docs/agents.md, "Agents across gateway restarts").
// REAL_HELD_TURN_SEED=N replays a seed; a failure names it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
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
/**
 * The model's pace: 16 characters every 60 ms, about 3.2 s for the answer (two restarts fit in
 * it). Pieces further apart than the gateway's delta window (50 ms) leave its pacer empty at each
 * line, so the kept cursor moves line by line, past the agents' stderr.
 */
const PIECE_CHARS = 16;
const PIECE_DELAY_MS = 60;

const AGENT_NAMES = ["claude", "gemini", "codex"] as const;
type AgentName = (typeof AGENT_NAMES)[number];
type Ev = { seq: number; type: string; runId?: string; text?: string; [k: string]: unknown };
type Defer = (fn: () => void | Promise<void>) => void;

const SEED =
  process.env.REAL_HELD_TURN_SEED !== undefined ? Number(process.env.REAL_HELD_TURN_SEED) : Date.now() % 1_000_000;

const AGENTS: Record<
  AgentName,
  {
    start: () => Promise<ScriptedModelServer>;
    body: (url: string, prefix: string) => Record<string, unknown>;
  }
> = {
  claude: { start: startAnthropicServer, body: claudeSessionBody },
  gemini: { start: startGeminiServer, body: geminiSessionBody },
  codex: { start: startOpenAiResponsesServer, body: codexSessionBody },
};

const ENDS = new Set(["chat.final", "chat.error", "chat.aborted"]);

async function events(url: string, id: string): Promise<Ev[]> {
  return (await api(url).get(`/v1/sessions/${id}/events?limit=10000`)).json.events as Ev[];
}

/** Whether `pid` runs (exists and is not a zombie). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false; // no such process
  }
}

/** Polls `fn` until it returns a value (not undefined). */
const until = <T>(fn: () => Promise<T | undefined>, ms: number, what: string): Promise<T> =>
  waitFor(
    async () => {
      const value = await fn();
      return value === undefined ? undefined : { value };
    },
    ms,
    what,
  ).then((found) => found.value);

/** The kills of a run, in order: each stops the gateway once the run's deltas carry `share` of the answer. */
interface Stop {
  signal: NodeJS.Signals;
  share: number;
}

/** One kill -9 and one SIGTERM, in a seeded order, the first in 10–35 % of the answer, the second in 45–70 %. */
function stopsOf(random: () => number): Stop[] {
  const signals: NodeJS.Signals[] = random() < 0.5 ? ["SIGKILL", "SIGTERM"] : ["SIGTERM", "SIGKILL"];
  return [
    { signal: signals[0]!, share: 0.1 + 0.25 * random() },
    { signal: signals[1]!, share: 0.45 + 0.25 * random() },
  ];
}

async function heldTurn(agent: AgentName, seed: number, defer: Defer): Promise<void> {
  // Each agent its own kill points, all from the one seed.
  const stops = stopsOf(prng(seed * 3 + AGENT_NAMES.indexOf(agent)));
  const context = `seed ${seed}, ${agent}, ${stops.map((s) => `${s.signal} at ${Math.round(s.share * 100)}%`).join(" then ")}`;
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
  // The agent's HOME, removed once its agent has ended (this runs after the clean-ups registered below).
  defer(() => rmSync(cwd, { recursive: true, force: true }));
  const dataDir = path.join(home, "data");
  const config = path.join(home, "gateway.json");
  writeFileSync(config, JSON.stringify({ agents: { [agent]: { ...spec, cwd } } }));

  // The held agent outlives every gateway: the one running at the end deletes the session, which
  // ends it (registered after each start, so it runs before that gateway's kill).
  let gw!: ChildGateway;
  let id = "";
  let deleted = false;
  const serve = async (): Promise<void> => {
    gw = await serveInChild({ dataDir, config, holders: true, defer });
    defer(async () => {
      if (deleted || id === "") return;
      deleted = true;
      const pid = (await api(gw.url).get(`/v1/sessions/${id}`)).json.pid as number | null;
      await api(gw.url).del(`/v1/sessions/${id}`);
      // Gone before its HOME is removed: an agent still writing there would leave files behind.
      if (pid !== null) await waitFor(() => !running(pid), 10_000, `the end of agent ${pid}`);
    });
  };
  await serve();
  const created = await api(gw.url).post("/v1/sessions", { kind: "agent", agent });
  expect(created.status, created.text).toBe(201);
  id = created.json.id as string;

  const sent = await api(gw.url).post(`/v1/sessions/${id}/prompt`, { text: "count the words" });
  expect(sent.status, sent.text).toBe(202);
  const runId = sent.json.runId as string;
  const seen: string[] = [];
  for (const stop of stops) {
    const at = await until(
      async () => {
        const log = await events(gw.url, id);
        const end = log.find((e) => e.runId === runId && ENDS.has(e.type));
        const chars = log
          .filter((e) => e.type === "chat.delta" && e.runId === runId)
          .map((e) => e.text ?? "")
          .join("").length;
        if (end !== undefined) return { chars, end };
        return chars >= stop.share * ANSWER.length ? { chars, end } : undefined;
      },
      RUN_END_MS,
      `${context}: ${Math.round(stop.share * 100)}% of the answer`,
    );
    // The first stop must cut the answer; the second finds it ended when the catching-up was quick.
    if (at.end !== undefined && seen.length === 0) throw new Error(`${context}: the run ended before the first stop`);
    if (at.end !== undefined) break;
    const exited = new Promise((resolve) => gw.child.once("exit", resolve));
    gw.child.kill(stop.signal);
    await exited;
    seen.push(`${stop.signal} after ${at.chars} characters`);
    await serve();
  }

  const said = `${context}: ${seen.join(", ")}`;
  let end: Ev;
  try {
    end = await until(
      async () => (await events(gw.url, id)).find((e) => e.runId === runId && ENDS.has(e.type)),
      RUN_END_MS,
      "the end of the run",
    );
  } catch (error) {
    const last = (await events(gw.url, id)).slice(-6).map((e) => JSON.stringify(e).slice(0, 200));
    const warned = gw.log.filter((l) => Number(l.level) >= 40).map((l) => String(l.msg));
    throw new Error(
      `${said}: ${(error as Error).message}; last events:\n${last.join("\n")}\nwarned: ${warned.join("; ")}`,
      {
        cause: error,
      },
    );
  }
  const log = await events(gw.url, id);
  const run = log.filter((e) => e.runId === runId);
  const deltas = run.filter((e) => e.type === "chat.delta").map((e) => e.text ?? "");
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
  // The model was asked once: the agent never saw the restarts.
  expect(
    server.turns.map((t) => t.prompt.includes("count the words")),
    said,
  ).toEqual([true]);
}

describe("real agents' turns in flight across gateway restarts (holders on)", () => {
  for (const agent of AGENT_NAMES) {
    it.concurrent(
      `${agent}: a slow 150-word answer cut by a kill -9 and a SIGTERM of the gateway ends chat.final, every word once (seed ${SEED})`,
      async ({ onTestFinished }) => {
        await heldTurn(agent, SEED, onTestFinished);
      },
      TIMEOUT_MS,
    );
  }
});
