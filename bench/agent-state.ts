/**
 * A new viewer opening an agent session that ran 1,000 turns: how long `GET /v1/sessions/:id`
 * takes to give it the agent's mode, model, commands and usage (`agentState`, kept with the
 * session's record), against reading them from the log (every `agent.*` event, reduced), live and
 * after a gateway restart. The agent is the scripted ACP agent of the tests, over real stdio.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { reduceAgentState } from "../src/protocol/index.js";
import type { AgentState, SessionEvent } from "../src/protocol/index.js";
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/ops/logger.js";
import type { BenchRow, BenchSection } from "./types.js";

const TOKEN = "bench-agent-state-token-0123456789";
const AGENT = fileURLToPath(new URL("../test/agents/fixtures/scripted-agent.mjs", import.meta.url));
/** Turns the session runs before it is opened. */
const TURNS = 1000;
/** Prompts in flight at once (the session queues at most MAX_QUEUED_RUNS = 100). */
const IN_FLIGHT = 50;
/** Opens measured, after a few unmeasured ones. */
const SAMPLES = 50;
const WARM_UP = 5;
const GOAL_MS = 200;
const TIMEOUT_MS = 300_000;

const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };

async function call(gw: Gateway, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

function start(dataDir: string): Promise<Gateway> {
  return startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    token: TOKEN,
    logger: createLogger({ level: "silent" }),
  });
}

/** Runs TURNS prompts, IN_FLIGHT at a time, counting their ends on a /v1/ws subscription. */
async function runTurns(gw: Gateway, id: string): Promise<void> {
  const ws = new WebSocket(`${gw.url.replace("http", "ws")}/v1/ws`, { headers: { authorization: `Bearer ${TOKEN}` } });
  let ended = 0;
  let sent = 0;
  let wake = (): void => undefined;
  ws.on("message", (data) => {
    const frame = JSON.parse(data.toString()) as { op: string; event?: SessionEvent; events?: SessionEvent[] };
    if (frame.op === "hello") {
      ws.send(JSON.stringify({ op: "subscribe", session: id, types: ["chat.final", "chat.error", "chat.aborted"] }));
    }
    for (const e of frame.events ?? (frame.event ? [frame.event] : [])) {
      if (e.type === "chat.error" || e.type === "chat.aborted") throw new Error(`a turn failed: ${JSON.stringify(e)}`);
      if (e.type === "chat.final") ended++;
    }
    wake();
  });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  const deadline = Date.now() + TIMEOUT_MS;
  try {
    while (ended < TURNS) {
      if (Date.now() > deadline) throw new Error(`only ${ended} of ${TURNS} turns ended in ${TIMEOUT_MS} ms`);
      while (sent < TURNS && sent - ended < IN_FLIGHT) {
        await call(gw, "POST", `/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "turn", n: sent }) });
        sent++;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  } finally {
    ws.close();
  }
}

/** `fn` timed SAMPLES times after WARM_UP runs: the sorted durations in ms. */
async function timed(fn: () => Promise<void>, samples = SAMPLES): Promise<number[]> {
  for (let i = 0; i < WARM_UP; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return ms.sort((a, b) => a - b);
}

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;

/** The state a viewer could build from the log alone: every `agent.*` event, read page by page and reduced. */
async function stateFromLog(gw: Gateway, id: string): Promise<AgentState | undefined> {
  const types = "agent.commands,agent.mode,agent.config,agent.usage,agent.info";
  let since = 0;
  let state: AgentState | undefined;
  for (;;) {
    const page = (await call(
      gw,
      "GET",
      `/v1/sessions/${id}/events?since=${since}&limit=10000&types=${types}`,
    )) as unknown as {
      events: SessionEvent[];
      next: number;
      head: number;
    };
    for (const e of page.events) state = reduceAgentState(state, e);
    if (page.next >= page.head || page.next <= since) return state;
    since = page.next;
  }
}

function check(state: AgentState | undefined): void {
  const ok =
    state?.usage?.used === 1000 + TURNS - 1 &&
    state.modes?.currentModeId === "ask" &&
    state.model === "slow-1" &&
    state.commands?.some((c) => c.name === `c${Math.floor((TURNS - 1) / 100) * 100}`) === true;
  if (!ok) throw new Error(`unexpected agent state: ${JSON.stringify(state)}`);
}

export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-bench-agent-state-"));
  const dataDir = join(dir, "data");
  let gw: Gateway | undefined;
  try {
    gw = await start(dataDir);
    const created = await call(gw, "POST", "/v1/sessions", {
      kind: "agent",
      agent: { adapter: "acp", command: [process.execPath, AGENT, "--state"] },
    });
    const id = created.id as string;
    const t0 = performance.now();
    await runTurns(gw, id);
    const turnsSeconds = (performance.now() - t0) / 1000;
    const live = gw;
    const head = (await call(live, "GET", `/v1/sessions/${id}`)).head as number;
    const open = async (): Promise<void> => {
      check((await call(live, "GET", `/v1/sessions/${id}`)).agentState as AgentState | undefined);
    };
    const openMs = await timed(open);
    const fromLogMs = await timed(async () => check(await stateFromLog(live, id)), 10);
    await gw.close();
    gw = await start(dataDir);
    const restarted = gw;
    const firstAfter = performance.now();
    check((await call(restarted, "GET", `/v1/sessions/${id}`)).agentState as AgentState | undefined);
    const firstAfterMs = performance.now() - firstAfter;
    const afterMs = await timed(async () => {
      check((await call(restarted, "GET", `/v1/sessions/${id}`)).agentState as AgentState | undefined);
    });
    const rows: BenchRow[] = [
      {
        measure: `GET /v1/sessions/:id with agentState, a session of ${TURNS} turns (${head} events), p50 / p99`,
        ours: `${fmt(pct(openMs, 50))} / ${fmt(pct(openMs, 99))}`,
        baseline: `${fmt(pct(fromLogMs, 50))} / ${fmt(pct(fromLogMs, 99))} (reduced from its agent.* events)`,
        ratio: (pct(openMs, 50) / pct(fromLogMs, 50)).toFixed(3),
        goal: `< ${GOAL_MS} ms`,
        met: pct(openMs, 99) < GOAL_MS,
      },
      {
        measure: "the same after a gateway restart: first request, then p50 / p99",
        ours: `${fmt(firstAfterMs)}, then ${fmt(pct(afterMs, 50))} / ${fmt(pct(afterMs, 99))}`,
        goal: `< ${GOAL_MS} ms`,
        met: firstAfterMs < GOAL_MS && pct(afterMs, 99) < GOAL_MS,
      },
    ];
    return {
      title: "Agents: the agent's state for a new viewer",
      rows,
      method: [
        `One agent session (the scripted ACP agent of the tests, a real process on stdio) runs ${TURNS} turns, ${IN_FLIGHT} prompts in flight; each turn is a thought, an answer, a tool call and a usage update, every 100th new commands and a title.`,
        `Then ${SAMPLES} requests (after ${WARM_UP} unmeasured) read GET /v1/sessions/:id and check its agentState (mode, model, commands, usage of the last turn).`,
        "Baseline: what a viewer would do without agentState, reading every agent.* event of the log (GET .../events?types=…, 10,000 a page) and reducing them (10 samples).",
        "Then the gateway is closed and started again on the same data directory, and the session read again.",
      ],
      notes: [
        `${TURNS} turns took ${turnsSeconds.toFixed(1)} s; the log holds ${head} events.`,
        `open: min ${fmt(openMs[0]!)}, max ${fmt(openMs.at(-1)!)}; from the log: min ${fmt(fromLogMs[0]!)}, max ${fmt(fromLogMs.at(-1)!)}.`,
      ],
    };
  } finally {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
