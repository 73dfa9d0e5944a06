import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { systemClock } from "../src/core/clock.js";
import type { SessionEvent } from "../src/protocol/index.js";
import { PluginHost } from "../src/plugins/host.js";
import type { PluginHostDeps } from "../src/plugins/types.js";
import { sessionInfo } from "../test/helpers/session-info.js";
import { hookCall } from "../test/helpers/hook-call.js";
import { renderStandalone } from "./report.js";
import type { BenchRow, BenchSection } from "./types.js";

/** Events pushed to the subscribing plugin. */
const EVENTS = 100_000;
/** Events emitted per turn of the event loop (the gateway appends in bursts too). */
const EVENT_BATCH = 500;
/**
 * The plugin reports progress every this many events and the producer keeps at most two
 * windows in flight: the rate measured is what a plugin sustains without drops (~1 MB in
 * flight, well under the host's 4 MiB per-plugin queue bound).
 */
const WINDOW = 5_000;
/** Sequential runtime API calls timed inside the plugin (plugin → gateway → plugin). */
const RUNTIME_CALLS = 5_000;
/** Sequential host → plugin calls (an HTTP hook that answers at once). */
const HOST_CALLS = 2_000;

const GOALS = {
  eventsPerSecond: 20_000,
  runtimeCallP50Ms: 1,
  runtimeCallP99Ms: 5,
  hostCallP50Ms: 1,
  hostCallP99Ms: 5,
};

/** The benchmark plugin: counts events and times runtime calls, reporting through its log. */
const PLUGIN_SOURCE = `
import { performance } from "node:perf_hooks";
export default async function activate(api) {
  const { expected, window } = api.config.get();
  let received = 0, dropped = 0, first = 0;
  const check = () => {
    if (received + dropped === expected)
      api.log.info("events-done", { received, dropped, ms: performance.now() - first });
  };
  await api.events.subscribe({}, () => {
    if (received++ === 0) first = performance.now();
    if (received % window === 0) api.log.info("progress", { received });
    check();
  }, { onDropped: (n) => { dropped += n; check(); } });
  await api.http.onRequest(async (request) => {
    if (request.body?.op !== "rtt") return { status: 200, body: null };
    const samples = [];
    for (let i = 0; i < request.body.calls; i++) {
      const t0 = performance.now();
      await api.sessions.get("s1");
      samples.push(performance.now() - t0);
    }
    return { status: 200, body: samples };
  });
}
`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function row(name: string, value: number, goal: number, unit: string, higherIsBetter: boolean): BenchRow {
  const ratio = higherIsBetter ? value / goal : goal / value;
  const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(3));
  return {
    measure: name,
    ours: `${fmt(value)} ${unit}`,
    ratio: `${ratio.toFixed(2)}× the goal`,
    goal: `${higherIsBetter ? "≥" : "≤"} ${fmt(goal)} ${unit}`,
    met: ratio >= 1,
  };
}

export async function run(): Promise<BenchSection> {
  const dataDir = mkdtempSync(join(tmpdir(), "switchboard-bench-data-"));
  const pluginDir = mkdtempSync(join(tmpdir(), "switchboard-bench-plugin-"));
  writeFileSync(join(pluginDir, "index.mjs"), PLUGIN_SOURCE);
  const session = sessionInfo("s1", { name: null, owner: "bench", createdAt: 0, lastActivityAt: 0 });
  let subscriber: ((sessionId: string, event: SessionEvent) => void) | undefined;
  let onDone: ((fields: { received: number; dropped: number; ms: number }) => void) | undefined;
  let acked = 0;
  let onProgress: (() => void) | undefined;
  const noop = (): void => {};
  const deps: PluginHostDeps = {
    dataDir,
    logger: {
      debug: noop,
      info: (fields, msg) => {
        const data = (fields as { data: { received: number; dropped: number; ms: number } }).data;
        if (msg === "events-done") onDone?.(data);
        if (msg === "progress") {
          acked = data.received;
          onProgress?.();
        }
      },
      warn: noop,
      error: (fields, msg) => console.error("bench plugin error:", msg, fields),
    },
    clock: systemClock,
    sessions: { list: () => [session], get: (id) => (id === session.id ? session : null) },
    events: {
      subscribe(_filter, handler) {
        subscriber = handler;
        return () => (subscriber = undefined);
      },
      follow() {
        throw new Error("the plugin benchmark does not follow sessions");
      },
    },
    messages: { inbound: async () => ({}) },
    config: { writePatch: async () => {} },
    reportFdExhausted: noop,
    agents: { registered: noop, unregistered: noop },
  };
  // No call rate limit here: the benchmark measures the raw round trip.
  const host = new PluginHost(deps, { limits: { callsPerSecond: Number.MAX_SAFE_INTEGER } });
  try {
    await host.load({ entries: { bench: { path: pluginDir, config: { expected: EVENTS, window: WINDOW } } } });
    if (host.get("bench").state !== "running") throw new Error(`bench plugin: ${host.get("bench").lastError}`);

    // 1. Event delivery: chat.delta-sized events, emitted in bursts, counted by the plugin.
    const done = new Promise<{ received: number; dropped: number; ms: number }>((resolve) => (onDone = resolve));
    const started = performance.now();
    for (let seq = 1; seq <= EVENTS; seq++) {
      subscriber?.("s1", {
        seq,
        ts: Date.now(),
        type: "chat.delta",
        runId: "run-1",
        text: "some streamed text, about a line ",
      });
      if (seq % EVENT_BATCH === 0) await yieldToLoop();
      while (seq - acked >= 2 * WINDOW) await new Promise<void>((resolve) => (onProgress = resolve));
    }
    const delivery = await done;
    const deliverySeconds = (performance.now() - started) / 1000;
    const eventsPerSecond = delivery.received / deliverySeconds;

    // 2. Runtime call round trip, timed in the plugin.
    const runtime = (await host.handleHttp("bench", hookCall({ op: "rtt", calls: RUNTIME_CALLS }))).body as number[];
    runtime.sort((a, b) => a - b);

    // 3. Host → plugin call round trip.
    const hostCalls: number[] = [];
    for (let i = 0; i < HOST_CALLS; i++) {
      const t0 = performance.now();
      await host.handleHttp("bench", hookCall(null));
      hostCalls.push(performance.now() - t0);
    }
    hostCalls.sort((a, b) => a - b);

    return {
      title: "Plugins",
      rows: [
        row("event delivery to a plugin subscriber", eventsPerSecond, GOALS.eventsPerSecond, "events/s", true),
        row("runtime API call round trip, p50", percentile(runtime, 50), GOALS.runtimeCallP50Ms, "ms", false),
        row("runtime API call round trip, p99", percentile(runtime, 99), GOALS.runtimeCallP99Ms, "ms", false),
        row("host → plugin call round trip, p50", percentile(hostCalls, 50), GOALS.hostCallP50Ms, "ms", false),
        row("host → plugin call round trip, p99", percentile(hostCalls, 99), GOALS.hostCallP99Ms, "ms", false),
      ],
      method: [
        `One plugin process (Node ${process.version}, permission model on) with fake gateway deps; one run. No baseline: the ratio is of the goal.`,
        `**Event delivery**: ${EVENTS.toLocaleString("en-US")} \`chat.delta\` events (~110 bytes of JSON) emitted to the plugin's subscription in bursts of ${EVENT_BATCH}, at most ${(2 * WINDOW).toLocaleString("en-US")} unacknowledged, counted by the plugin; from the first emit until it has seen them all.`,
        `**Runtime call**: ${RUNTIME_CALLS.toLocaleString("en-US")} sequential \`api.sessions.get()\` calls timed in the plugin (pipe, host validation and dispatch, pipe). **Host call**: ${HOST_CALLS.toLocaleString("en-US")} sequential \`host.handleHttp()\` calls to a hook that answers at once.`,
      ],
      notes: [`Events dropped for backpressure: ${delivery.dropped}.`],
    };
  } finally {
    await host.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(pluginDir, { recursive: true, force: true });
  }
}

// `node --import tsx bench/plugins.ts` prints just this section.
if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(renderStandalone(await run()));
