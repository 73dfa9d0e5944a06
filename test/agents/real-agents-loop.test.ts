// Claude Code, Gemini CLI and Codex, each the published ACP adapter (test/agents/packages), doing the
// whole loop through the gateway's HTTP API with its model API pointed at a scripted server on
// loopback: no key, no internet. The gateway is `serve` in a child process, so the loop can
// kill it (-9, SIGTERM) and start it again on the same data directory. What each agent does is
// compared with LOOP_POINTS, the table docs/agents.md shows ("Real agents, whole loops").
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { startAnthropicServer } from "./model-servers/anthropic.js";
import { startGeminiServer } from "./model-servers/gemini.js";
import { startOpenAiResponsesServer } from "./model-servers/openai-responses.js";
import { sleep } from "./model-servers/scripted-model.js";
import type { Script, ScriptedModelServer } from "./model-servers/scripted-model.js";
import { CLAUDE_ACP, CODEX_ACP, GEMINI } from "./helpers/agent-packages.js";

/** Starting an agent takes seconds (gemini about 11 s on a loaded machine); a whole loop a minute. */
const TIMEOUT_MS = 170_000;
const RUN_END_MS = 60_000;

type AgentName = "claude" | "gemini" | "codex";
type Point =
  | "text"
  | "shell-allow"
  | "shell-output"
  | "shell-reject"
  | "new-file-diff"
  | "abort-then-prompt"
  | "context"
  | "api-drop"
  | "api-5xx"
  | "api-down"
  | "kill-resume"
  | "sigterm-resume";

/** A loop point's cell in docs/agents.md's table. */
const said = (point: boolean | "sometimes"): string => (point === "sometimes" ? point : point ? "yes" : "no");

/**
 * What each agent does at each point of the loop; docs/agents.md has the same table.
 * "sometimes": the agent's own behaviour varies from run to run, either outcome passes.
 */
export const LOOP_POINTS: Record<AgentName, Record<Point, boolean | "sometimes">> = {
  claude: {
    text: true,
    "shell-allow": true,
    "shell-output": true,
    "shell-reject": true,
    "new-file-diff": true,
    "abort-then-prompt": true,
    context: true,
    // Claude Code mostly ends an answer whose stream was cut off (FIN or RST) as complete:
    // chat.final, end_turn, with the text so far; a clean-clone run here saw it end chat.error.
    "api-drop": "sometimes",
    "api-5xx": true,
    "api-down": true,
    "kill-resume": true,
    "sigterm-resume": true,
  },
  gemini: {
    text: true,
    "shell-allow": true,
    // Gemini CLI sends a command's output to the model only: its tool call update has no content.
    "shell-output": false,
    "shell-reject": true,
    // Gemini CLI 0.61 reads the file first through fs/read_text_file; the gateway answers a missing
    // file with ACP's -32002 (resource not found), which Gemini does not recognize as ENOENT.
    "new-file-diff": false,
    "abort-then-prompt": true,
    context: true,
    "api-drop": true,
    "api-5xx": true,
    "api-down": true,
    "kill-resume": true,
    "sigterm-resume": true,
  },
  codex: {
    text: true,
    "shell-allow": true,
    "shell-output": true,
    "shell-reject": true,
    "new-file-diff": true,
    "abort-then-prompt": true,
    context: true,
    "api-drop": true,
    "api-5xx": true,
    "api-down": true,
    "kill-resume": true,
    "sigterm-resume": true,
  },
};

/** What each agent's chat.error says when the model API drops the connection mid-answer, or answers 500. */
const API_FAILED: Record<AgentName, { drop: RegExp; status500: RegExp }> = {
  // Claude Code takes the cut answer for a whole one (LOOP_POINTS), so its `drop` is never read.
  claude: { drop: /./, status500: /API Error: 500 scripted internal error/ },
  gemini: { drop: /terminated/, status500: /500.*scripted internal error/ },
  // Codex says "high demand" for any 5xx, without the API's message.
  codex: { drop: /stream disconnected before completion/, status500: /high demand/ },
};

interface Setup {
  server: ScriptedModelServer;
  spec: { adapter: "acp"; command: string[]; env: Record<string, string>; authMethod?: string };
}

/** The exact set-up docs/agents.md gives for each agent, with a temporary HOME. */
async function setUp(agent: AgentName, home: string): Promise<Setup> {
  switch (agent) {
    case "claude": {
      const server = await startAnthropicServer();
      mkdirSync(path.join(home, ".claude"));
      // "default" makes Claude Code ask before it edits or runs a command that changes things.
      writeFileSync(path.join(home, ".claude/settings.json"), '{"permissions":{"defaultMode":"default"}}');
      const env = {
        HOME: home,
        TMPDIR: home,
        ANTHROPIC_BASE_URL: server.url,
        ANTHROPIC_API_KEY: "dummy",
        IS_SANDBOX: "1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        CLAUDE_CODE_MAX_RETRIES: "0",
      };
      return { server, spec: { adapter: "acp", command: [process.execPath, CLAUDE_ACP], env } };
    }
    case "gemini": {
      const server = await startGeminiServer();
      mkdirSync(path.join(home, ".gemini"));
      const settings = {
        general: {
          disableAutoUpdate: true,
          disableUpdateNag: true,
          maxAttempts: 2,
          retryFetchErrors: false,
          sessionRetention: { enabled: false },
        },
        privacy: { usageStatisticsEnabled: false },
        telemetry: { enabled: false },
      };
      writeFileSync(path.join(home, ".gemini/settings.json"), JSON.stringify(settings));
      const env = { HOME: home, TMPDIR: home, GOOGLE_GEMINI_BASE_URL: server.url, GEMINI_API_KEY: "dummy" };
      return {
        server,
        spec: { adapter: "acp", command: [process.execPath, GEMINI, "--acp"], env, authMethod: "gemini-api-key" },
      };
    }
    case "codex": {
      const server = await startOpenAiResponsesServer();
      const codexHome = path.join(home, ".codex");
      mkdirSync(codexHome);
      writeFileSync(
        path.join(codexHome, "config.toml"),
        [
          'model = "gpt-5.3-codex"',
          'model_provider = "scripted"',
          'approval_policy = "untrusted"',
          // Its bubblewrap sandbox intermittently lost its own helper under load (docs/agents.md).
          'sandbox_mode = "danger-full-access"',
          "[model_providers.scripted]",
          'name = "scripted"',
          `base_url = "${server.url}/v1"`,
          'wire_api = "responses"',
          'env_key = "SCRIPTED_API_KEY"',
          "request_max_retries = 0",
          "stream_max_retries = 0",
          "",
        ].join("\n"),
      );
      const env = { HOME: home, TMPDIR: home, CODEX_HOME: codexHome, SCRIPTED_API_KEY: "dummy" };
      return { server, spec: { adapter: "acp", command: [process.execPath, CODEX_ACP], env } };
    }
  }
}

type Ev = { seq: number; type: string; runId?: string; [k: string]: unknown };

/** One agent session driven through the gateway's HTTP API. */
class Driver {
  private http: ReturnType<typeof api>;
  constructor(
    url: string,
    readonly id: string,
  ) {
    this.http = api(url);
  }

  /** Speaks to the gateway at `url` from now on (a restarted one). */
  at(url: string): void {
    this.http = api(url);
  }

  async resume(): Promise<void> {
    const resumed = await this.http.post(`/v1/sessions/${this.id}/resume`);
    if (resumed.status !== 200) throw new Error(`resume -> ${resumed.status} ${resumed.text}`);
  }

  async events(): Promise<Ev[]> {
    return (await this.http.get(`/v1/sessions/${this.id}/events?limit=10000`)).json.events as Ev[];
  }

  async prompt(text: string): Promise<string> {
    const sent = await this.http.post(`/v1/sessions/${this.id}/prompt`, { text });
    if (sent.status !== 202) throw new Error(`prompt -> ${sent.status} ${sent.text}`);
    return sent.json.runId as string;
  }

  /** The first event of `runId` that matches, waiting for it. */
  async waitFor(runId: string, match: (e: Ev) => boolean, what: string, ms = RUN_END_MS): Promise<Ev> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = (await this.events()).find((e) => e.runId === runId && match(e));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no ${what} in run ${runId} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  end(runId: string, ms?: number): Promise<Ev> {
    return this.waitFor(runId, (e) => ["chat.final", "chat.error", "chat.aborted"].includes(e.type), "end", ms);
  }

  /** The run's git patch (`GET .../runs/:run/patch`). */
  async patch(runId: string): Promise<string> {
    return (await this.http.get(`/v1/sessions/${this.id}/runs/${runId}/patch`)).text;
  }

  async run(runId: string): Promise<Ev[]> {
    return (await this.events()).filter((e) => e.runId === runId);
  }

  answer(requestId: string, optionId: string): Promise<unknown> {
    return this.http.post(`/v1/sessions/${this.id}/permission`, { requestId, optionId });
  }

  abort(): Promise<unknown> {
    return this.http.post(`/v1/sessions/${this.id}/abort`, {});
  }
}

const ANSWER = "Hello from the scripted model: 42 lines, one emoji 🚀, and the end.";
const LONG = "word ".repeat(400);

/** The model's side of the loop: what it answers to each prompt of the test. */
function script(work: string): Script {
  return (turn) => {
    const p = turn.prompt;
    if (turn.toolResult !== undefined)
      return {
        text: `Tool said: ${turn.toolResult.includes("shell-ok") ? "shell-ok" : `other: ${turn.toolResult.slice(0, 400)}`}`,
      };
    if (p.includes("say exactly")) return { text: ANSWER, pieceChars: 5 };
    if (p.includes("run allowed"))
      return { text: "Running it.", tool: { tool: "shell", command: "touch allowed.txt && echo shell-ok" } };
    if (p.includes("run refused"))
      return { text: "Running it.", tool: { tool: "shell", command: "touch refused.txt && echo shell-ok" } };
    if (p.includes("write new"))
      return {
        text: "Writing.",
        tool: { tool: "write", path: path.join(work, "new.txt"), content: "first line\nsecond line\n" },
      };
    if (p.includes("which words")) return { text: `You said: ${remembered(turn.transcript).join(", ")}.` };
    if (p.includes("talk long")) return { text: LONG, pieceChars: 10, pieceDelayMs: 100 };
    if (p.includes("drop mid-answer")) return { text: LONG, pieceChars: 10, dropAfterChars: 200 };
    if (p.includes("fail with 500")) return { error: { status: 500, message: "scripted internal error" } };
    if (p.includes("remember")) return { text: "Noted." };
    if (p.includes("which words")) return { text: `You said: ${remembered(turn.transcript).join(", ")}.` };
    return { text: "ok" };
  };
}

/** The words "remember the word …" prompts gave, as far as a request's transcript carries them. */
const WORDS = ["zebra-42", "kiwi-17", "plum-99"];
const remembered = (transcript: string): string[] => WORDS.filter((w) => transcript.includes(w));

const allow = (e: Ev): string =>
  (e.options as Array<{ optionId: string; kind: string }>).find((o) => o.kind === "allow_once")!.optionId;
const reject = (e: Ev): string =>
  (e.options as Array<{ optionId: string; kind: string }>).find((o) => o.kind.startsWith("reject"))!.optionId;
const command = (e: Ev): unknown => {
  const input = (e.toolCall as { rawInput?: { command?: unknown; cmd?: unknown } } | undefined)?.rawInput;
  return JSON.stringify(input?.command ?? input?.cmd ?? e.title);
};

/** Runs a clean-up when the test ends: the test context's hook, as the agents' tests run concurrently. */
type Defer = (fn: () => void | Promise<void>) => void;

/**
 * `serve` on `dataDir` in a child process; at the test's end stopped with SIGTERM (which stops
 * its agents: an agent that ignores the end of its stdin, as codex-acp does, would outlive a
 * SIGKILL), then killed if it is still there.
 */
async function serve(dataDir: string, config: string, defer: Defer): Promise<ChildGateway> {
  const gw = await serveInChild({ dataDir, config, defer });
  defer(async () => {
    if (gw.child.exitCode !== null || gw.child.signalCode !== null) return;
    const exited = new Promise((resolve) => gw.child.once("exit", resolve));
    gw.child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  });
  return gw;
}

/** The UTC minute of `ms`, as Gemini CLI names its conversation files (`session-2026-01-31T12-34-…`). */
const minuteOf = (ms: number): string => new Date(ms).toISOString().slice(0, 16);

/** libfaketime (Debian's faketime package, scripts/test-deps.sh), when installed. */
const FAKETIME_LIB = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"].find((f) => existsSync(f));

/**
 * The gateway's config with the agent's clock a minute ahead of the wall clock (its timers and
 * monotonic clock untouched): a conversation Gemini began is then never loaded in its own minute.
 */
function minuteAhead(spec: Setup["spec"], cwd: string): object {
  const env = { ...spec.env, LD_PRELOAD: FAKETIME_LIB, FAKETIME: "+60s", FAKETIME_DONT_FAKE_MONOTONIC: "1" };
  return { agents: { gemini: { ...spec, env, cwd } } };
}

/** The loop, point by point; each point's outcome (a failure message, or true). */
async function loop(agent: AgentName, defer: Defer): Promise<Record<Point, true | string>> {
  const home = mkdtempSync(path.join(tmpdir(), `sb-loop-${agent}-`));
  defer(() => rmSync(home, { recursive: true, force: true }));
  const work = path.join(home, "work");
  mkdirSync(work);
  const { server, spec } = await setUp(agent, home);
  defer(() => server.close());
  server.setScript(script(work));
  const dataDir = path.join(home, "data");
  const config = path.join(home, "gateway.json");
  writeFileSync(config, JSON.stringify({ agents: { [agent]: { ...spec, cwd: work } } }));
  let gw = await serve(dataDir, config, defer);
  const created = await api(gw.url).post("/v1/sessions", { kind: "agent", agent });
  expect(created.status, created.text).toBe(201);
  const d = new Driver(gw.url, created.json.id as string);

  const points: Partial<Record<Point, true | string>> = {};
  const step = async (point: Point, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
      points[point] = true;
    } catch (err) {
      // With the gateway's warnings, which say what it did about the agent (a restart, a timeout).
      const warned = gw.log.filter((l) => Number(l.level) >= 40).map((l) => String(l.msg));
      // With the cause, which says why a fetch failed (a reset, a refused connection).
      const cause = err instanceof Error && err.cause instanceof Error ? ` (cause: ${String(err.cause)})` : "";
      const said = (String(err instanceof Error ? err.message : err) + cause).slice(0, 800);
      points[point] = warned.length > 0 ? `${said} [gateway warned: ${warned.slice(-3).join("; ")}]` : said;
    }
  };

  // By the end of the first run the agent has begun its conversation.
  let began = Date.now();
  await step("text", async () => {
    const runId = await d.prompt("say exactly the greeting");
    const end = await d.end(runId, 90_000);
    began = Date.now();
    const deltas = (await d.run(runId)).filter((e) => e.type === "chat.delta").map((e) => e.text as string);
    expect(end).toMatchObject({ type: "chat.final", text: ANSWER });
    expect(deltas.join("")).toBe(ANSWER);
  });

  let shellRun: string | undefined;
  await step("shell-allow", async () => {
    const runId = await d.prompt("run allowed command");
    const request = await d.waitFor(runId, (e) => e.type === "permission.request", "permission.request");
    expect(command(request)).toContain("touch allowed.txt");
    await d.answer(request.requestId as string, allow(request));
    const end = await d.end(runId);
    expect(end).toMatchObject({ type: "chat.final" });
    expect(end.text, `the answer: ${String(end.text)}`).toContain("Tool said: shell-ok");
    expect(existsSync(path.join(work, "allowed.txt"))).toBe(true);
    shellRun = runId;
  });

  await step("shell-output", async () => {
    // What the allowed command printed, in its tool call's content or rawOutput, for every viewer.
    const tools = (await d.run(shellRun!)).filter((e) => e.type === "tool");
    expect(JSON.stringify(tools.map((e) => [e.content, e.rawOutput]))).toContain("shell-ok");
  });

  await step("shell-reject", async () => {
    const runId = await d.prompt("run refused command");
    const request = await d.waitFor(runId, (e) => e.type === "permission.request", "permission.request");
    expect(command(request)).toContain("touch refused.txt");
    await d.answer(request.requestId as string, reject(request));
    await d.end(runId);
    expect(existsSync(path.join(work, "refused.txt"))).toBe(false);
    const tools = (await d.run(runId)).filter((e) => e.type === "tool");
    expect(tools.at(-1)?.status).not.toBe("completed");
  });

  await step("new-file-diff", async () => {
    const runId = await d.prompt("write new file");
    const request = await d.waitFor(
      runId,
      (e) => e.type === "permission.request" || e.type === "chat.final",
      "permission.request",
    );
    expect(request.type).toBe("permission.request");
    const content = JSON.stringify((request.toolCall as { content?: unknown } | undefined)?.content ?? null);
    expect(content).toContain('"type":"diff"');
    expect(content).toContain("second line");
    await d.answer(request.requestId as string, allow(request));
    await d.end(runId);
    expect(readFileSync(path.join(work, "new.txt"), "utf8")).toBe("first line\nsecond line\n");
    if (agent === "claude") {
      // Claude Code writes the file itself and reports its diff: the run's changes list it, exactly.
      const changes = (await d.run(runId)).filter((e) => e.type === "file.change");
      expect(changes).toEqual([
        expect.objectContaining({
          path: "new.txt",
          source: "reported",
          oldText: null,
          newText: "first line\nsecond line\n",
        }),
      ]);
      expect(await d.patch(runId)).toBe(
        "diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+first line\n+second line\n",
      );
    }
  });

  await step("abort-then-prompt", async () => {
    const runId = await d.prompt("talk long");
    await d.waitFor(runId, (e) => e.type === "chat.delta", "chat.delta");
    await d.abort();
    expect(await d.end(runId)).toMatchObject({ type: "chat.aborted" });
    const next = await d.prompt("say exactly the greeting again");
    // The whole of both runs on failure: what the agent did with the aborted turn decides this.
    const seen = async () => JSON.stringify([...(await d.run(runId)), ...(await d.run(next))]).slice(-6000);
    const end = await d.end(next);
    if (end.type !== "chat.final" || end.text !== ANSWER) expect.fail(`the prompt after the abort: ${await seen()}`);
  });

  await step("context", async () => {
    await d.end(await d.prompt("remember the word zebra-42"));
    const end = await d.end(await d.prompt("which words did I give you?"));
    expect(end).toMatchObject({ type: "chat.final", text: "You said: zebra-42." });
  });

  /** The model API failing mid-run ends the run with a chat.error that says so; the next prompt answers. */
  const failsThenAnswers = async (prompt: string, says: RegExp): Promise<void> => {
    const runId = await d.prompt(prompt);
    const end = await d.end(runId, 90_000);
    expect(end.type, JSON.stringify(await d.run(runId))).toBe("chat.error");
    expect(end.message).toMatch(says);
    const next = await d.prompt("say exactly the greeting once more");
    expect(await d.end(next)).toMatchObject({ type: "chat.final", text: ANSWER });
  };

  await step("api-drop", () => failsThenAnswers("drop mid-answer", API_FAILED[agent].drop));
  await step("api-5xx", () => failsThenAnswers("fail with 500", API_FAILED[agent].status500));
  await step("api-down", async () => {
    server.down();
    try {
      const runId = await d.prompt("say exactly while the API is down");
      const end = await d.end(runId, 90_000);
      expect(end.type, JSON.stringify(await d.run(runId))).toBe("chat.error");
    } finally {
      server.up();
    }
    const next = await d.prompt("say exactly the greeting after the outage");
    expect(await d.end(next)).toMatchObject({ type: "chat.final", text: ANSWER });
  });

  /** The gateway dies by `signal` mid-answer; started again, the resumed session's next turn carries the conversation. */
  const restartAndResume = async (signal: NodeJS.Signals, word: string): Promise<void> => {
    await d.end(await d.prompt(`remember the word ${word}`));
    const runId = await d.prompt("talk long");
    await d.waitFor(runId, (e) => e.type === "chat.delta", "chat.delta");
    const exited = new Promise((resolve) => gw.child.once("exit", resolve));
    gw.child.kill(signal);
    await exited;
    // Gemini CLI 0.61 loading a conversation in the minute it began wipes it (docs/agents.md): the
    // resumed Gemini runs a minute ahead (libfaketime), or the loop waits for the next minute.
    if (agent === "gemini" && FAKETIME_LIB) writeFileSync(config, JSON.stringify(minuteAhead(spec, work)));
    gw = await serve(dataDir, config, defer);
    d.at(gw.url);
    expect(await d.end(runId, 5_000)).toMatchObject({ type: "chat.aborted" });
    if (agent === "gemini" && !FAKETIME_LIB) while (minuteOf(Date.now()) === minuteOf(began)) await sleep(500);
    await d.resume();
    const turnsBefore = server.turns.length;
    const end = await d.end(await d.prompt("which words did I give you?"));
    const words = WORDS.slice(0, WORDS.indexOf(word) + 1);
    expect(end, JSON.stringify(end)).toMatchObject({ type: "chat.final", text: `You said: ${words.join(", ")}.` });
    expect(remembered(server.turns.slice(turnsBefore).at(-1)?.transcript ?? "")).toEqual(words);
  };

  await step("kill-resume", () => restartAndResume("SIGKILL", "kiwi-17"));
  await step("sigterm-resume", () => restartAndResume("SIGTERM", "plum-99"));
  return points as Record<Point, true | string>;
}

describe("real agents, whole loops, against scripted model servers", () => {
  it("docs/agents.md's table of loop points says what LOOP_POINTS says", () => {
    const doc = readFileSync(new URL("../../docs/agents.md", import.meta.url), "utf8");
    const rows = doc.split("\n").filter((line) => /^\| `[a-z0-9-]+`: /.test(line));
    const table = Object.fromEntries(
      rows.map((row) => {
        const [point, claude, gemini, codex] = row
          .split("|")
          .slice(1, 5)
          .map((cell) => cell.trim());
        return [/^`([a-z0-9-]+)`/.exec(point!)![1], { claude, gemini, codex }];
      }),
    );
    const expected = Object.fromEntries(
      Object.keys(LOOP_POINTS.claude).map((point) => [
        point,
        Object.fromEntries(
          (["claude", "gemini", "codex"] as const).map((a) => [a, said(LOOP_POINTS[a][point as Point])]),
        ),
      ]),
    );
    expect(table).toEqual(expected);
  });

  for (const agent of ["claude", "gemini", "codex"] as const) {
    // Concurrent: most of a loop is waiting for an agent or a gateway to start.
    it.concurrent(
      `${agent}: text, shell allowed and refused, a new file's diff, abort, context, API failures, kill -9 and SIGTERM then resume`,
      async ({ onTestFinished }) => {
        const points = await loop(agent, onTestFinished);
        const expected = Object.fromEntries(
          Object.entries(LOOP_POINTS[agent]).map(([p, ok]) => [
            p,
            ok === "sometimes" ? expect.anything() : ok ? true : expect.any(String),
          ]),
        );
        expect(points).toEqual(expected);
      },
      TIMEOUT_MS,
    );
  }
});
