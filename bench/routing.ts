/**
 * Routing benchmark: resolve time of the hash index against the linear reference
 * (test/routing/linear-reference.ts, the same implementation the property test trusts) at 10,
 * 1,000 and 10,000 bindings, in one run, on one config and one message mix per size.
 *
 * Reproduce: `npm run bench -- routing` or `node --expose-gc --import tsx bench/routing.ts`
 * (both print this section); `npm run bench` runs every section into docs/benchmarks.md.
 */
import { cpus, loadavg } from "node:os";
import { pathToFileURL } from "node:url";
import { compileRouting, formatConfigIssue } from "../src/routing/index.js";
import type { Binding, RoutableMessage, Router, RoutingConfig } from "../src/routing/index.js";
import { linearResolve } from "../test/routing/linear-reference.js";
import { renderStandalone } from "./report.js";
import { fmt } from "./stats.js";
import type { BenchSection } from "./types.js";

const SIZES = [10, 1_000, 10_000] as const;
const GOAL_MEDIAN_NS = 2_000;
const GOAL_SPEEDUP = 100;
/** Distinct messages cycled through while timing, so one hot hash slot does not flatter the index. */
const MESSAGE_COUNT = 2_000;
/** Timed calls per implementation and size (each call timed on its own, for the p99). */
const INDEX_SAMPLES = 200_000;
/** A bound on the index's timing too, for a very slow or very busy machine. */
const INDEX_BUDGET_MS = 3_000;
/** Linear calls get a time budget instead: 10,000 bindings take tens of microseconds per call. */
const LINEAR_BUDGET_MS = 1_500;
const LINEAR_MAX_SAMPLES = 200_000;
const WARMUP_CALLS = 20_000;

const CHANNELS = ["discord", "slack", "telegram", "whatsapp", "matrix"] as const;
const AGENTS = ["coder", "reviewer", "support", "ops"];

/** mulberry32: a seeded generator, so every run measures the same configs and messages. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A config shaped like a busy deployment: mostly one binding per person or channel (exact
 * peers, some also pinned to a guild), then wildcards, guilds with and without roles, teams,
 * accounts and channel catch-alls; most bindings on the default account, some on named ones
 * or "*".
 */
function configOf(size: number, rand: () => number): RoutingConfig {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const accounts = Math.max(2, Math.ceil(size / 200));
  const bindings: Binding[] = [];
  for (let i = 0; i < size; i++) {
    const channel = pick(CHANNELS);
    const match: Binding["match"] = { channel };
    const a = rand();
    if (a < 0.15) match.accountId = `acct-${Math.floor(rand() * accounts)}`;
    else if (a < 0.2) match.accountId = "*";
    const tier = rand();
    if (tier < 0.6) {
      match.peer = { kind: pick(["direct", "group", "channel"] as const), id: `peer-${i}` };
      if (rand() < 0.2) match.guildId = `guild-${Math.floor(rand() * (size / 20 + 1))}`;
    } else if (tier < 0.65) {
      match.peer = { kind: pick(["direct", "group", "channel"] as const), id: "*" };
    } else if (tier < 0.72) {
      match.guildId = `guild-${Math.floor(rand() * (size / 20 + 1))}`;
      match.roles = [`role-${Math.floor(rand() * 8)}`, `role-${Math.floor(rand() * 8)}`];
    } else if (tier < 0.82) {
      match.guildId = `guild-${Math.floor(rand() * (size / 20 + 1))}`;
    } else if (tier < 0.92) {
      match.teamId = `team-${Math.floor(rand() * (size / 10 + 1))}`;
    } else if (tier < 0.96) {
      match.accountId = `acct-${Math.floor(rand() * accounts)}`;
    }
    bindings.push({ agentId: pick(AGENTS), match });
  }
  return { bindings, defaultAgent: "echo" };
}

/** Messages: a third to bound peers, some in threads of bound channels, some in guilds or teams, the rest unbound. */
function messagesOf(config: RoutingConfig, rand: () => number): RoutableMessage[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const messages: RoutableMessage[] = [];
  for (let i = 0; i < MESSAGE_COUNT; i++) {
    const { match } = pick(config.bindings);
    const message: RoutableMessage = { channel: rand() < 0.5 ? match.channel : match.channel.toUpperCase() };
    if (match.accountId !== undefined && match.accountId !== "*") message.accountId = match.accountId;
    const which = rand();
    const exact = match.peer !== undefined && match.peer.id !== "*" ? match.peer : undefined;
    if (exact !== undefined && which < 0.5) {
      message.peer = exact;
    } else if (exact !== undefined && which < 0.7) {
      message.peer = { kind: exact.kind, id: `thread-${i}` };
      message.parentPeer = exact;
    } else {
      message.peer = { kind: "direct", id: `stranger-${i}` };
    }
    if (match.guildId !== undefined) message.guildId = match.guildId;
    if (match.roles !== undefined) message.roles = rand() < 0.7 ? [match.roles[0]!, "member"] : ["member"];
    if (match.teamId !== undefined) message.teamId = match.teamId;
    messages.push(message);
  }
  return messages;
}

interface Timing {
  medianNs: number;
  p99Ns: number;
  samples: number;
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Times `fn` call by call over the messages, cycling; the result is folded into `sink` so no call is optimised away. */
function time(
  fn: (m: RoutableMessage) => number,
  messages: RoutableMessage[],
  maxSamples: number,
  budgetMs: number,
): Timing {
  let sink = 0;
  // Warm up (JIT) on up to WARMUP_CALLS calls, within a tenth of the budget.
  const warmupEnd = performance.now() + budgetMs / 10;
  for (let i = 0; i < WARMUP_CALLS && performance.now() < warmupEnd; i++) sink += fn(messages[i % messages.length]!);
  (globalThis as { gc?: () => void }).gc?.();
  const samples = new Float64Array(maxSamples);
  const deadline = performance.now() + budgetMs;
  let n = 0;
  while (n < maxSamples) {
    const message = messages[n % messages.length]!;
    const start = process.hrtime.bigint();
    sink += fn(message);
    samples[n++] = Number(process.hrtime.bigint() - start);
    if ((n & 255) === 0 && performance.now() > deadline) break;
  }
  if (sink === Number.MIN_SAFE_INTEGER) console.log(sink);
  const sorted = samples.subarray(0, n).sort();
  return { medianNs: percentile(sorted, 0.5), p99Ns: percentile(sorted, 0.99), samples: n };
}

interface SizeResult {
  size: number;
  compileMs: number;
  index: Timing;
  linear: Timing;
}

function measure(size: number): SizeResult {
  const rand = random(0x5eed + size);
  const config = configOf(size, rand);
  const messages = messagesOf(config, rand);
  const started = performance.now();
  const compiled = compileRouting(config, { knownAgents: AGENTS });
  const compileMs = performance.now() - started;
  if (!compiled.ok) throw new Error(`bench config invalid: ${compiled.errors.map(formatConfigIssue).join("; ")}`);
  const router: Router = compiled.router;
  const routed: RoutingConfig = { bindings: [...router.bindings], defaultAgent: router.defaultAgent };
  // Same answers, or the comparison is meaningless.
  for (const message of messages) {
    if (router.resolve(message)?.bindingIndex !== linearResolve(routed, message)?.bindingIndex) {
      throw new Error(`index and linear reference disagree at ${size} bindings on ${JSON.stringify(message)}`);
    }
  }
  const index = time((m) => router.resolve(m)?.sessionKey.length ?? 0, messages, INDEX_SAMPLES, INDEX_BUDGET_MS);
  const linear = time(
    (m) => linearResolve(routed, m)?.bindingIndex ?? 0,
    messages,
    LINEAR_MAX_SAMPLES,
    LINEAR_BUDGET_MS,
  );
  return { size, compileMs, index, linear };
}

function us(ns: number): string {
  if (ns >= 1_000_000) return `${(ns / 1_000_000).toFixed(1)} ms`;
  return ns >= 10_000 ? `${(ns / 1000).toFixed(0)} µs` : `${(ns / 1000).toFixed(2)} µs`;
}

/** Runs the routing benchmark; the markdown is one section of docs/benchmarks.md. */
export async function run(): Promise<BenchSection> {
  const load = loadavg()[0] ?? 0;
  const overhead = time(() => 0, [{ channel: "x" }], 100_000, 1_000);
  const results = SIZES.map(measure);
  const largest = results[results.length - 1]!;
  const speedup = largest.linear.medianNs / largest.index.medianNs;

  return {
    title: "Routing",
    rows: [
      {
        measure: `median resolve, ${fmt(largest.size)} bindings`,
        ours: us(largest.index.medianNs),
        baseline: `linear reference: ${us(largest.linear.medianNs)}`,
        ratio: (largest.index.medianNs / largest.linear.medianNs).toFixed(4),
        goal: `≤ ${us(GOAL_MEDIAN_NS)}`,
        met: largest.index.medianNs <= GOAL_MEDIAN_NS,
      },
      {
        measure: `speed-up over linear (median), ${fmt(largest.size)} bindings`,
        ours: `${fmt(Math.round(speedup))}x`,
        goal: `≥ ${GOAL_SPEEDUP}x`,
        met: speedup >= GOAL_SPEEDUP,
      },
    ],
    tables: [
      [
        "| bindings | index median | index p99 | linear median | linear p99 | speed-up (median) | compile |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        ...results.map(
          (r) =>
            `| ${fmt(r.size)} | ${us(r.index.medianNs)} | ${us(r.index.p99Ns)} | ${us(r.linear.medianNs)} | ${us(r.linear.p99Ns)} | ` +
            `${fmt(Math.round(r.linear.medianNs / r.index.medianNs))}x | ${r.compileMs.toFixed(1)} ms |`,
        ),
      ].join("\n"),
    ],
    method: [
      "`router.resolve` (hash index, session key included) against the linear reference (`test/routing/linear-reference.ts`, one plain pass over all bindings, written to be obviously right, not fast) on the same config and messages, in one run.",
      `Seeded configs (60% exact peers, wildcards, guilds with and without roles, teams, accounts, channel catch-alls; 20% on named accounts or "*"), ${fmt(MESSAGE_COUNT)} messages checked to get the same answer from both before timing.`,
      `Each call timed on its own with \`process.hrtime.bigint()\` (the timer's own cost, included: median ${us(overhead.medianNs)}). "compile" is \`compileRouting\`: validation, index build and the unreachable-binding check.`,
      `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, Node ${process.version}, load average ${load.toFixed(1)} at the start. Reproduce: \`npm run bench -- routing\`.`,
    ],
    notes: [
      `Samples: index ${fmt(largest.index.samples)} per size; linear ${results.map((r) => fmt(r.linear.samples)).join(" / ")} (time-boxed).`,
    ],
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(renderStandalone(await run()));
}
