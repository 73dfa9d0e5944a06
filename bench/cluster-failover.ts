/**
 * Cluster failover (docs/cluster.md, "Membership and failover"): the time from `kill -9` of a
 * gateway node to the `lost` event of its terminal session seen by a viewer on another node,
 * beside the lease TTL, the wait no takeover can beat. Two `switchboard serve` processes on one
 * redis-server; the node killed is started afresh (another id) for each round.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { redisServer } from "./cluster.js";
import { listeningUrl } from "./proc.js";
import { renderStandalone } from "./report.js";
import { fmt, median } from "./stats.js";
import type { BenchSection } from "./types.js";

/** The shortened lease TTL the nodes run with (the default is 10 s). */
const TTL_MS = 1500;
const ROUNDS = 5;
/** The acceptance bound: `lost` within the TTL plus this. */
const SLACK_MS = 2000;
const TOKEN = "bench-token-0123456789abcdef";
const REPO = fileURLToPath(new URL("..", import.meta.url));

/** `switchboard serve` in a child process, from the sources; resolves with its URL once it listens. */
async function serve(dir: string, redisUrl: string, nodeId: string): Promise<{ child: ChildProcess; url: string }> {
  const config = join(dir, `${nodeId}.json`);
  writeFileSync(config, JSON.stringify({ cluster: { redis: redisUrl, nodeTtlMs: TTL_MS } }));
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "serve",
      "--token",
      TOKEN,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--data-dir",
      join(dir, nodeId),
      "--config",
      config,
      "--node-id",
      nodeId,
    ],
    { cwd: REPO, stdio: ["ignore", "pipe", "ignore"] },
  );
  const url = await listeningUrl(child, nodeId);
  return { child, url };
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return (await res.json()) as Record<string, unknown>;
}

/** Resolves with performance.now() when the SSE stream of `id` on `base` carries a `lost` event. */
async function lostSeen(base: string, id: string, signal: AbortSignal): Promise<number> {
  const res = await fetch(`${base}/v1/sessions/${id}/stream?since=0`, {
    headers: { authorization: `Bearer ${TOKEN}` },
    signal,
  });
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    if (/"type":"lost"/.test(text)) return performance.now();
    text = text.slice(-200);
  }
  throw new Error(`the stream of ${id} ended without a lost event`);
}

/** One round: a node with a running terminal is killed; ms until the viewer on `viewer` sees it lost. */
async function round(dir: string, redisUrl: string, viewer: string, i: number): Promise<number> {
  const doomed = await serve(dir, redisUrl, `doomed-${i}`);
  const created = await call(doomed.url, "POST", "/v1/sessions", {
    kind: "terminal",
    command: ["sh", "-c", "while :; do echo tick; sleep 0.01; done"],
  });
  const id = created["id"] as string;
  const pid = created["pid"] as number;
  try {
    while (
      (await fetch(`${viewer}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status !== 200
    )
      await new Promise((resolve) => setTimeout(resolve, 50));
    const abort = new AbortController();
    const seen = lostSeen(viewer, id, abort.signal);
    // The viewer is following live before the kill.
    await new Promise((resolve) => setTimeout(resolve, 300));
    doomed.child.kill("SIGKILL");
    const killedAt = performance.now();
    const at = await seen;
    abort.abort();
    return at - killedAt;
  } finally {
    doomed.child.kill("SIGKILL");
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // The shell is gone already.
    }
  }
}

export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-failover-"));
  const redis = await redisServer(dir);
  const survivor = await serve(dir, redis.url, "survivor");
  const times: number[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) times.push(await round(dir, redis.url, survivor.url, i));
  } finally {
    survivor.child.kill("SIGKILL");
    redis.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
  const mid = median(times);
  return {
    title: "Cluster failover",
    rows: [
      {
        measure: `kill -9 of a node → \`lost\` of its terminal seen by a viewer on another node (lease TTL ${fmt(TTL_MS)} ms), median of ${ROUNDS}`,
        ours: `${fmt(mid)} ms`,
        baseline: `${fmt(TTL_MS)} ms (the TTL)`,
        ratio: (mid / TTL_MS).toFixed(2),
        goal: `≤ TTL + ${fmt(SLACK_MS)} ms`,
        met: mid <= TTL_MS + SLACK_MS,
      },
    ],
    method: [
      `\`npm run bench -- cluster-failover\`: one redis-server (AOF off) and two \`switchboard serve\` processes with \`cluster.nodeTtlMs\` ${fmt(TTL_MS)}.`,
      `Per round a node is started afresh, runs a terminal printing every 10 ms that a viewer follows over SSE on the other node, and is killed with SIGKILL; measured from the kill to the \`lost\` event on the viewer's stream.`,
      `The baseline is the TTL: renewed every third of it, the dead node's lease expires between 2/3 TTL and 1 TTL after the kill, and no node takes over before.`,
    ],
    notes: [`Runs (ms): ${times.map((t) => fmt(t)).join(", ")}.`],
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(renderStandalone(await run()));
