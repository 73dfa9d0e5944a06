// Claude Code, Gemini CLI and Codex (the published ACP adapters in test/agents/packages) under
// holders, each driven by its scripted model server through one turn that streams words, reads a
// file, runs a command that needs a permission, writes a file and streams its final answer, while
// the gateway is killed (-9) and stopped (SIGTERM) several times at seeded points of that turn
// (during the words, as a tool call reaches the agent, while a permission waits, just after it is
// answered, during the final answer), a new gateway started on the same data directory each time.
// The checker knows only the promise (docs/agents.md, "Agents across gateway restarts"): the run
// ends chat.final with exactly the script's text, the deltas are that text once, the model was
// asked once per step, the agent got one prompt, no cancel and one answer per request it sent
// (counted on the agent's own stdin), the command ran once and the file holds what was written.
// REAL_HELD_TURN_SEED=N replays a seed (a failure names it); REAL_HELD_TURN_RUNS=N runs N seeds
// per agent one after another (`npm run fuzz`).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
import type { Reply, ScriptedModelServer, Turn } from "./model-servers/scripted-model.js";

/** Starting an agent takes seconds (gemini about 11 s on a loaded machine). */
const TIMEOUT_MS = 150_000;
const RUN_END_MS = 60_000;
/** How often the driver reads the log (permission requests to answer, the run's end). */
const POLL_MS = 50;

const words = (prefix: string, n: number): string => Array.from({ length: n }, (_, i) => `${prefix}${i + 1} `).join("");
/** The turn's steps: each the model's text, then its tool call; the last its final answer. */
const READ_TEXT = words("r", 24);
const SHELL_TEXT = words("s", 6);
const WRITE_TEXT = words("t", 6);
const FINAL_TEXT = words("w", 90).trimEnd();
/**
 * The model's pace: 8 characters every 50 ms for the first words (about 0.5 s), 16 every 50 ms
 * for the final answer (about 1.5 s). Pieces further apart than the gateway's delta window
 * (50 ms) leave its pacer empty at each line, so the kept cursor moves line by line.
 */
const READ_PIECE = { pieceChars: 8, pieceDelayMs: 50 };
const FINAL_PIECE = { pieceChars: 16, pieceDelayMs: 50 };
const INPUT = "the input file says: 7 apples\n";
const OUTPUT = "written once by the agent\n";
const PROMPT = "do the held chaos turn";
/** What the command prints (not in its own text, which the model's requests carry too). */
const SHELL_SAYS = "shell-42";

const AGENT_NAMES = ["claude", "gemini", "codex"] as const;
type AgentName = (typeof AGENT_NAMES)[number];
type Ev = { seq: number; type: string; runId?: string; text?: string; [k: string]: unknown };
type Defer = (fn: () => void | Promise<void>) => void;

const SEED =
  process.env.REAL_HELD_TURN_SEED !== undefined ? Number(process.env.REAL_HELD_TURN_SEED) : Date.now() % 1_000_000;
/** Seeds per agent (`npm run fuzz`); each a whole turn with its own kills. */
const RUNS = Number(process.env.REAL_HELD_TURN_RUNS ?? 1);
/** Kills per turn. */
const KILLS = Number(process.env.REAL_HELD_TURN_KILLS ?? 3);

const AGENTS: Record<
  AgentName,
  {
    start: () => Promise<ScriptedModelServer>;
    body: (url: string, prefix: string, home: string) => Record<string, unknown>;
    /** Gemini CLI reads a file it writes first, through the gateway, which answers a missing one with an error Gemini does not take for ENOENT. */
    outExists: boolean;
    /**
     * What the agent asks the gateway for in the turn, in order (docs/agents.md has the same):
     * its file reads and writes where it routes them through the client (ACP `fs/*`), and its
     * permission requests. Claude Code and Codex read and write files themselves, Gemini CLI
     * reads a file to read itself and one to write through the gateway.
     */
    asks: string[];
  }
> = {
  claude: {
    start: startAnthropicServer,
    body: claudeSessionBody,
    outExists: false,
    asks: ["session/request_permission", "session/request_permission"],
  },
  gemini: {
    start: startGeminiServer,
    body: geminiSessionBody,
    outExists: true,
    // Its read_file reads the disk itself; its write_file reads the file through the gateway
    // (for the diff it asks about, and again to write), then writes it through the gateway.
    asks: [
      "session/request_permission",
      "fs/read_text_file",
      "session/request_permission",
      "fs/read_text_file",
      "fs/write_text_file",
    ],
  },
  codex: {
    start: startOpenAiResponsesServer,
    body: codexSessionBody,
    outExists: false,
    asks: ["session/request_permission", "session/request_permission"],
  },
};

const ENDS = new Set(["chat.final", "chat.error", "chat.aborted"]);

/**
 * Where a kill lands, in the order a turn passes them: `text` and `final` once the model has sent
 * a seeded share of the first words or of the final answer; `read`, `shell` and `write` once the
 * model's tool call is written (the agent then reads the file, through the gateway where it
 * does, asks for the permission, writes); `permission` while the command's permission request
 * waits (a viewer of the next gateway answers it; in every turn); `answered` just after the
 * viewer's answer was taken. At a model-side point the gateway is frozen (SIGSTOP) at once and
 * killed a seeded few ms later; a SIGTERM is delivered with SIGCONT, so the gateway's own stop runs.
 */
const PHASES = ["text", "read", "shell", "permission", "answered", "write", "final"] as const;
type Phase = (typeof PHASES)[number];

interface Kill {
  phase: Phase;
  signal: "SIGKILL" | "SIGTERM";
  /** For `text` and `final`: the share of the text sent; else ms between the freeze and the kill. */
  at: number;
}

/**
 * `KILLS` distinct phases in turn order, each with a seeded signal and point: always
 * `permission` (a request pending at a restart is answered after it, once), the rest seeded.
 */
function killsOf(random: () => number): Kill[] {
  const phases = PHASES.filter((p) => p !== "permission");
  const chosen: Phase[] = KILLS > 0 ? ["permission"] : [];
  while (chosen.length < Math.min(KILLS, PHASES.length))
    chosen.push(phases.splice(Math.floor(random() * phases.length), 1)[0]!);
  return chosen
    .sort((a, b) => PHASES.indexOf(a) - PHASES.indexOf(b))
    .map((phase) => ({
      phase,
      signal: random() < 0.5 ? "SIGKILL" : "SIGTERM",
      at: phase === "text" || phase === "final" ? 0.15 + 0.6 * random() : Math.floor(random() * 150),
    }));
}

/**
 * Runs an agent's command and copies each line it reads on stdin (`<`) and writes on stdout (`>`)
 * to a file, its bytes passed on unchanged: what the agent itself got, for the checker.
 */
const TEE = `
const { spawn } = require("node:child_process");
const { appendFileSync } = require("node:fs");
const [log, command, ...args] = process.argv.slice(1);
const child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });
const lines = (dir) => {
  let rest = Buffer.alloc(0);
  return (chunk) => {
    rest = Buffer.concat([rest, chunk]);
    for (let nl = rest.indexOf(10); nl !== -1; nl = rest.indexOf(10)) {
      appendFileSync(log, dir + rest.subarray(0, nl).toString() + "\\n");
      rest = rest.subarray(nl + 1);
    }
  };
};
const stdin = lines("<");
const stdout = lines(">");
process.stdin.on("data", (c) => { stdin(c); child.stdin.write(c); });
process.stdin.on("end", () => child.stdin.end());
child.stdin.on("error", () => {});
child.stdout.on("data", (c) => { process.stdout.write(c); stdout(c); });
process.on("SIGTERM", () => child.kill("SIGTERM"));
child.on("exit", (code, signal) => {
  process.removeAllListeners("SIGTERM");
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
`;

interface RpcLine {
  dir: "<" | ">";
  id?: number | string;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: unknown;
}

function teeLines(file: string): RpcLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("<{") || l.startsWith(">{"))
    .map((l) => ({ dir: l[0] as "<" | ">", ...(JSON.parse(l.slice(1)) as object) }));
}

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

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type Step = "read" | "shell" | "write" | "final";

/** Which step a model request is, from what it carries. */
function stepOf(turn: Turn): Step | undefined {
  if (turn.toolResult === undefined) return turn.prompt.includes(PROMPT) ? "read" : undefined;
  if (turn.toolResult.includes("7 apples")) return "shell";
  if (turn.toolResult.includes(SHELL_SAYS)) return "write";
  return turn.transcript.includes(OUTPUT.trim()) ? "final" : undefined;
}

async function heldTurn(agent: AgentName, seed: number, defer: Defer): Promise<void> {
  const kills = killsOf(prng(seed * 3 + AGENT_NAMES.indexOf(agent)));
  const context = `seed ${seed}, ${agent}, kills: ${kills.map((k) => `${k.signal} at ${k.phase}${k.phase === "text" || k.phase === "final" ? ` ${Math.round(k.at * 100)}%` : ` +${k.at} ms`}`).join(", ")}`;
  const home = mkdtempSync(path.join(tmpdir(), `sb-real-held-${agent}-`));
  defer(() => rmSync(home, { recursive: true, force: true }));
  const server = await AGENTS[agent].start();
  defer(() => server.close());
  // The agent's HOME, in the test's own directory: removed once its agent has ended (the
  // directory's clean-up runs after those registered below). Not a helper's temporary directory:
  // vitest's onTestFinished outside a test's context is another concurrent test's.
  const cwd = path.join(home, "agent-home");
  mkdirSync(cwd);
  const { agent: spec } = AGENTS[agent].body(server.url, "", cwd) as {
    agent: { command: string[]; env: Record<string, string> } & Record<string, unknown>;
  };
  if (agent === "codex") {
    // Asks before any command that is not known to be read-only (its "untrusted" policy); no
    // bubblewrap sandbox, which loses its helper under load (docs/agents.md).
    const config = path.join(spec.env.CODEX_HOME!, "config.toml");
    writeFileSync(
      config,
      readFileSync(config, "utf8")
        .replace('approval_policy = "on-request"', 'approval_policy = "untrusted"')
        .replace('sandbox_mode = "workspace-write"', 'sandbox_mode = "danger-full-access"'),
    );
  }
  const input = path.join(cwd, "input.txt");
  const output = path.join(cwd, "out.txt");
  const ran = path.join(cwd, "ran.txt");
  writeFileSync(input, INPUT);
  if (AGENTS[agent].outExists) writeFileSync(output, "to be replaced\n");
  const tee = path.join(home, "agent-stdio.log");
  const dataDir = path.join(home, "data");
  const config = path.join(home, "gateway.json");
  const command = [process.execPath, "-e", TEE, tee, ...spec.command];
  writeFileSync(config, JSON.stringify({ agents: { [agent]: { ...spec, command, cwd } } }));

  // The gateway running now; `down` while one is being killed and the next started.
  let gw!: ChildGateway;
  let down: Promise<void> | undefined;
  let id = "";
  let deleted = false;
  const landed: string[] = [];
  const serve = async (): Promise<void> => {
    gw = await serveInChild({ dataDir, config, holders: true, defer });
    // The held agent outlives every gateway: the one running at the end deletes the session,
    // which ends it (registered after each start, so it runs before that gateway's kill).
    defer(async () => {
      if (deleted || id === "") return;
      deleted = true;
      const pid = (await api(gw.url).get(`/v1/sessions/${id}`)).json.pid as number | null;
      await api(gw.url).del(`/v1/sessions/${id}`);
      // Gone before its HOME is removed: an agent still writing there would leave files behind.
      if (pid !== null) await waitFor(() => !running(pid), 10_000, `the end of agent ${pid}`);
    });
  };
  /** Kills the gateway by `kill` (frozen first when `freeze`) and starts the next; one at a time. */
  const stop = (kill: Kill, freeze: boolean, what: string): Promise<void> => {
    const previous = down ?? Promise.resolve();
    const next = previous.then(async () => {
      const child = gw.child;
      if (freeze) {
        child.kill("SIGSTOP");
        await sleep(kill.at);
      }
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(kill.signal);
      if (freeze) child.kill("SIGCONT");
      await exited;
      landed.push(`${kill.signal} ${what}`);
      await serve();
    });
    down = next;
    next
      .finally(() => {
        if (down === next) down = undefined;
      })
      .catch(() => {
        // A failed restart surfaces where the driver awaits `down`.
      });
    return next;
  };
  const pending = new Set<Phase>(kills.map((k) => k.phase));
  const killAt = (phase: Phase, what: string): Promise<void> | undefined => {
    const kill = kills.find((k) => k.phase === phase);
    if (kill === undefined || !pending.delete(phase)) return undefined;
    return stop(kill, phase !== "permission" && phase !== "answered", what);
  };

  // The model's side: each step's reply, and the model-side kill points.
  const sharePoint = (phase: "text" | "final", text: string): Pick<Reply, "progress"> => {
    const kill = kills.find((k) => k.phase === phase);
    if (kill === undefined) return {};
    return {
      progress: (chars) => {
        if (chars >= kill.at * text.length) void killAt(phase, `at ${chars} of ${text.length} characters (${phase})`);
      },
    };
  };
  const toolPoint = (phase: "read" | "shell" | "write"): Pick<Reply, "sent"> => ({
    sent: () => void killAt(phase, `as the ${phase} tool call reached the agent`),
  });
  server.setScript((turn) => {
    switch (stepOf(turn)) {
      case "read":
        return {
          text: READ_TEXT,
          ...READ_PIECE,
          ...sharePoint("text", READ_TEXT),
          tool: { tool: "read", path: input },
          ...toolPoint("read"),
        };
      case "shell":
        return {
          text: SHELL_TEXT,
          tool: { tool: "shell", command: `echo ran >> '${ran}' && printf 'shell-%s\\n' 42` },
          ...toolPoint("shell"),
        };
      case "write":
        return { text: WRITE_TEXT, tool: { tool: "write", path: output, content: OUTPUT }, ...toolPoint("write") };
      case "final":
        return { text: FINAL_TEXT, ...FINAL_PIECE, ...sharePoint("final", FINAL_TEXT) };
      case undefined:
        return { text: "ok" };
    }
  });

  await serve();
  const created = await api(gw.url).post("/v1/sessions", { kind: "agent", agent });
  expect(created.status, created.text).toBe(201);
  id = created.json.id as string;
  const sent = await api(gw.url).post(`/v1/sessions/${id}/prompt`, { text: PROMPT });
  expect(sent.status, sent.text).toBe(202);
  const runId = sent.json.runId as string;

  // The viewer: answers each permission request it sees open (allow once), from whichever
  // gateway runs, and waits for the run's end.
  const answered = new Set<string>();
  let end: Ev | undefined;
  const deadline = Date.now() + RUN_END_MS;
  try {
    while (end === undefined) {
      if (Date.now() > deadline) throw new Error(`no end of the run within ${RUN_END_MS} ms`);
      if (down !== undefined) await down;
      let log: Ev[];
      try {
        log = await events(gw.url, id);
      } catch {
        // The gateway was killed during the request: ask the next one.
        continue;
      }
      end = log.find((e) => e.runId === runId && ENDS.has(e.type));
      const resolved = new Set(log.filter((e) => e.type === "permission.resolved").map((e) => e.requestId as string));
      const open = log.find(
        (e) =>
          e.type === "permission.request" &&
          e.runId === runId &&
          !resolved.has(e.requestId as string) &&
          !answered.has(e.requestId as string),
      );
      if (end === undefined && open !== undefined) {
        const waiting = killAt("permission", "while a permission request waited");
        if (waiting !== undefined) {
          await waiting;
          continue;
        }
        const options = open.options as Array<{ optionId: string; kind: string }>;
        const allow = options.find((o) => o.kind === "allow_once") ?? options.find((o) => o.kind === "allow_always");
        const url = gw.url;
        const answer = await api(url)
          .post(`/v1/sessions/${id}/permission`, { requestId: open.requestId, optionId: allow!.optionId })
          .catch(() => undefined);
        if (answer?.status === 200) {
          answered.add(open.requestId as string);
          await killAt("answered", "just after a viewer's answer was taken");
        }
        continue;
      }
      await sleep(POLL_MS);
    }
  } catch (error) {
    const last = (await events(gw.url, id).catch(() => [] as Ev[]))
      .slice(-8)
      .map((e) => JSON.stringify(e).slice(0, 300));
    const warned = gw.log.filter((l) => Number(l.level) >= 40).map((l) => String(l.msg));
    throw new Error(
      `${context}; landed: ${landed.join(", ")}: ${(error as Error).message}; last events:\n${last.join("\n")}\nwarned: ${warned.join("; ")}`,
      { cause: error },
    );
  }
  await down;

  // What the model was asked (each step and what its tool result began with), for a failure's message.
  const asked = server.turns.map((t) => `${stepOf(t) ?? "?"}(${(t.toolResult ?? "").slice(0, 160)})`).join(" ");
  const said = `${context}; landed: ${landed.join(", ") || "none"}; the model was asked: ${asked}; the run ended: ${JSON.stringify(end).slice(0, 400)}`;
  // Every kill landed where the seed put it: the turn passes each phase once.
  expect(landed, said).toHaveLength(kills.length);
  const log = await events(gw.url, id);
  const run = log.filter((e) => e.runId === runId);
  const deltas = run.filter((e) => e.type === "chat.delta").map((e) => e.text ?? "");
  const whole = READ_TEXT + SHELL_TEXT + WRITE_TEXT + FINAL_TEXT;
  expect(end, said).toMatchObject({ type: "chat.final", text: whole });
  expect(deltas.join(""), said).toBe(whole);
  expect(
    run.filter((e) => ENDS.has(e.type)).map((e) => e.type),
    said,
  ).toEqual(["chat.final"]);
  expect(
    log.map((e) => e.seq),
    said,
  ).toEqual(log.map((_, i) => log[0]!.seq + i));
  // The model was asked once per step: the agent never saw the restarts. (Claude Code asks for a
  // next-prompt suggestion after the answer, with its tools: not a step.)
  expect(
    server.turns.map((t) => stepOf(t)).filter((step) => step !== undefined),
    said,
  ).toEqual(["read", "shell", "write", "final"]);
  // The command ran once, the file holds what the model wrote.
  expect(readFileSync(ran, "utf8"), said).toBe("ran\n");
  expect(readFileSync(output, "utf8"), said).toBe(OUTPUT);

  // What the agent itself got: one prompt, no cancel, one answer to each request it sent.
  const lines = teeLines(tee);
  const toAgent = lines.filter((l) => l.dir === "<");
  const fromAgent = lines.filter((l) => l.dir === ">");
  expect(
    toAgent.filter((l) => l.method === "session/prompt").map((l) => JSON.stringify(l.params?.prompt)),
    said,
  ).toEqual([JSON.stringify([{ type: "text", text: PROMPT }])]);
  expect(
    toAgent.filter((l) => l.method === "session/cancel"),
    said,
  ).toEqual([]);
  const requests = fromAgent.filter((l) => l.method !== undefined && l.id !== undefined);
  const answers = (rid: number | string): RpcLine[] =>
    toAgent.filter((l) => l.method === undefined && l.id === rid && (l.result !== undefined || l.error !== undefined));
  expect(
    requests.map((r) => [r.method, answers(r.id!).length]),
    said,
  ).toEqual(requests.map((r) => [r.method, 1]));
  expect(
    requests.map((r) => r.method),
    said,
  ).toEqual(AGENTS[agent].asks);
  const permissions = requests.filter((r) => r.method === "session/request_permission");
  expect(permissions.length, said).toBeGreaterThanOrEqual(1);
  for (const p of permissions) {
    expect(answers(p.id!)[0]?.result, said).toMatchObject({ outcome: { outcome: "selected" } });
  }
}

describe("real agents' turns in flight across gateway restarts (holders on)", () => {
  for (const agent of AGENT_NAMES) {
    it.concurrent(
      `${agent}: words, a file read, a permission, a command, a file write and the answer, cut by ${KILLS} seeded kill -9s and SIGTERMs of the gateway, end chat.final with each thing once (seed ${SEED}${RUNS > 1 ? `, ${RUNS} runs` : ""})`,
      async () => {
        for (let run = 0; run < RUNS; run++) {
          const cleanups: Array<() => void | Promise<void>> = [];
          try {
            await heldTurn(agent, SEED + run, (fn) => cleanups.push(fn));
          } finally {
            for (const fn of cleanups.reverse()) await fn();
          }
        }
      },
      TIMEOUT_MS * RUNS,
    );
  }
});
