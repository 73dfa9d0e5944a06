import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { AgentSession, DEFAULT_DELTA_THROTTLE_MS, MemoryLog } from "../src/agents/index.js";
import type { AdapterRun, AgentAdapter, RunSink } from "../src/agents/index.js";
import { EchoAdapter } from "../src/agents/echo-adapter.js";
import type { Actor } from "../src/protocol/index.js";
import { renderStandalone } from "./report.js";
import type { BenchRow, BenchSection } from "./types.js";

/** Concurrent agent sessions, one echo run each. */
const RUNS = 100;
/** Prompt length: the echo agent streams it back in 6-character pieces every 30 ms (~1.2 s per run). */
const PROMPT_CHARS = 240;
const GOAL_EVENTS_PER_SECOND = 1000;
/** The throttle holds text for up to one window by design; allow 25 ms of scheduling on top. */
const GOAL_P99_DELTA_LATENCY_MS = DEFAULT_DELTA_THROTTLE_MS + 25;
const TIMEOUT_MS = 20_000;

const actor: Actor = { name: "bench", role: "system" };

/** Per run: the instrumented sink, told how many characters the log has appended so far. */
const sinks = new Map<string, { appended(chars: number): void }>();

interface Produced {
  end: number;
  at: number;
}

/**
 * Wraps the echo adapter's sink to note when each piece of text is produced; the log listener
 * notes when the delta carrying its last character is appended. Their difference is the
 * latency the pacer adds (plus the event loop's).
 */
function instrumentedEcho(
  latencies: number[],
): (context: ConstructorParameters<typeof EchoAdapter>[0]) => AgentAdapter {
  return (context) => {
    const echo = new EchoAdapter(context);
    return {
      dead: false,
      dispose: () => echo.dispose(),
      run(run: AdapterRun) {
        const inner = run.sink;
        const produced: Produced[] = [];
        let producedChars = 0;
        const sink: RunSink & { appended(chars: number): void } = {
          runId: inner.runId,
          get open() {
            return inner.open;
          },
          text(chunk) {
            producedChars += chunk.length;
            produced.push({ end: producedChars, at: performance.now() });
            inner.text(chunk);
          },
          thought: (c) => inner.thought(c),
          tool: (u) => inner.tool(u),
          plan: (e) => inner.plan(e),
          child: (c) => inner.child(c),
          completeElicitation: (id) => inner.completeElicitation(id),
          fileChange: (c) => inner.fileChange(c),
          notice: (level, text) => inner.notice(level, text),
          agentEvent: (e) => inner.agentEvent(e),
          requestPermission: (a, s) => inner.requestPermission(a, s),
          requestElicitation: (a, s) => inner.requestElicitation(a, s),
          appended(total) {
            const now = performance.now();
            while (produced.length > 0 && produced[0]!.end <= total) latencies.push(now - produced.shift()!.at);
          },
        };
        sinks.set(run.runId, sink);
        return echo.run({ ...run, sink });
      },
    };
  };
}

export async function run(): Promise<BenchSection> {
  const latencies: number[] = [];
  const prompt = Array.from({ length: PROMPT_CHARS }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
  const logs: MemoryLog[] = [];
  const sessions: AgentSession[] = [];
  let events = 0;
  let finals = 0;
  let wrong = 0;
  const appendedChars = new Map<string, number>();
  let allDone!: () => void;
  const done = new Promise<void>((resolve) => (allDone = resolve));

  for (let i = 0; i < RUNS; i++) {
    const log = new MemoryLog(`bench-${i}`);
    log.subscribe((e) => {
      events++;
      if (e.type === "chat.delta") {
        const total = (appendedChars.get(e.runId) ?? 0) + e.text.length;
        appendedChars.set(e.runId, total);
        sinks.get(e.runId)?.appended(total);
      } else if (e.type === "chat.final" || e.type === "chat.error" || e.type === "chat.aborted") {
        if (e.type !== "chat.final" || e.text !== prompt) wrong++;
        if (++finals === RUNS) allDone();
      }
    });
    logs.push(log);
    sessions.push(
      new AgentSession({
        sessionId: `bench-${i}`,
        log,
        spec: { adapter: "echo" },
        adapter: instrumentedEcho(latencies),
      }),
    );
  }

  const started = performance.now();
  for (const s of sessions) s.prompt(prompt, actor);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, TIMEOUT_MS)))]);
  clearTimeout(timer);
  const elapsedMs = performance.now() - started;
  await Promise.all(sessions.map((s) => s.dispose()));
  sinks.clear();

  latencies.sort((a, b) => a - b);
  const pct = (p: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  const eventsPerSecond = events / (elapsedMs / 1000);
  const p99 = pct(99);
  const row = (name: string, value: number, goal: number, higherIsBetter: boolean, unit: string): BenchRow => {
    const ratio = higherIsBetter ? value / goal : goal / value;
    return {
      measure: name,
      ours: `${value.toFixed(1)} ${unit}`,
      ratio: `${ratio.toFixed(2)} of the goal`,
      goal: `${higherIsBetter ? "≥" : "≤"} ${goal} ${unit}`,
      met: higherIsBetter ? value >= goal : value <= goal,
    };
  };
  return {
    title: "Agents: 100 concurrent echo runs",
    rows: [
      row("events/s", eventsPerSecond, GOAL_EVENTS_PER_SECOND, true, "events/s"),
      row("p99 delta latency", p99, GOAL_P99_DELTA_LATENCY_MS, false, "ms"),
    ],
    method: [
      `${RUNS} agent sessions each run one prompt of ${PROMPT_CHARS} characters on the built-in echo agent at once (6-character pieces every 30 ms), default \`deltaThrottleMs\` ${DEFAULT_DELTA_THROTTLE_MS} ms, an in-memory log.`,
      "Events/s counts every event appended (run.queued, run.started, chat.delta, chat.final) from the first prompt to the last chat.final. Delta latency: from the adapter producing a piece of text to the `chat.delta` carrying it being appended; the throttle holds text up to one window by design.",
      "The echo agent's pacing bounds events/s (each run lasts ~1.2 s), so this checks that the gateway keeps up with 100 streams, not the log's peak append rate. No baseline: the ratio is of the goal.",
    ],
    notes: [
      `Runs completed: ${finals}/${RUNS} (${wrong} with a wrong ending or text); events: ${events}; wall time: ${(elapsedMs / 1000).toFixed(2)} s; delta latency p50 ${pct(50).toFixed(1)} ms, p90 ${pct(90).toFixed(1)} ms, max ${(latencies.at(-1) ?? NaN).toFixed(1)} ms over ${latencies.length} pieces.`,
    ],
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(renderStandalone(await run()));
}
