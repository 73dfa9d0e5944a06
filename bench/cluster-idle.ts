/**
 * An idle cluster node (docs/operations.md, "An idle gateway"): three `switchboard serve --redis`
 * nodes on one redis-server, no session and no client, and beside them three idle socket.io nodes
 * with the Redis streams adapter (bench/cluster-peers-sio.ts) on a redis-server of their own; the
 * CPU of each node (every thread, from /proc) over one window after a warm-up, beside three bare
 * processes that only renew a lease at a node's pace (the floor, bench/cluster-idle-floor.ts). With
 * `SWITCHBOARD_BASELINE=<checkout>` a third cluster runs that checkout's sources over the same window.
 * Then the quiet phase: the Switchboard clusters' CPU with sessions nobody uses.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { redisServer } from "./cluster.js";
import { scriptNode } from "./cluster-peers.js";
import type { BenchSection } from "./types.js";
import { fmt } from "./stats.js";
import { compiledCommand } from "./compiled.js";
import { cpuMs, listeningUrl } from "./proc.js";
import { Redis } from "ioredis";
import { NODE_LEASE_TTL_MS, leaseRenewalMs } from "../src/cluster/node-lease.js";

/** Start-up (heap shrinks of the main thread and workers) settles within this. */
const WARMUP_MS = 50_000;
const MEASURE_MS = 30_000;
const NODES = ["n1", "n2", "n3"];
const TOKEN = "bench-token-0123456789abcdef";
/** Stream sessions the quiet phase opens on each Switchboard cluster, spread over its nodes. */
const QUIET_SESSIONS = Number(process.env["SWITCHBOARD_BENCH_QUIET_SESSIONS"] ?? 100);
/** After the sessions are opened: every node lists them and their copies are read once. */
const QUIET_SETTLE_MS = 15_000;
/** The goal docs/operations.md states for an idle gateway, as a share of one core. */
const IDLE_SHARE_GOAL = 0.002;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Cluster {
  label: string;
  redis: ChildProcess;
  /** The redis-server's URL (`INFO commandstats` for the quiet phase). */
  redisUrl: string;
  nodes: ChildProcess[];
  /** Each node's base URL (Switchboard clusters only). */
  urls: string[];
}

async function startCluster(label: string, sources: string, dir: string): Promise<Cluster> {
  mkdirSync(dir, { recursive: true });
  const server = await redisServer(dir);
  const cluster: Cluster = { label, redis: server.child, redisUrl: server.url, nodes: [], urls: [] };
  // The quiet phase's sessions, all of the bench's token, past the default limit per token.
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ limits: { sessions: 1000, sessionsPerToken: 1000 } }));
  for (const name of NODES) {
    const [node, main] = compiledCommand("src/cli/main.ts", sources);
    const args = [main!, "serve", "--token", TOKEN, "--host", "127.0.0.1"];
    args.push("--port", "0", "--data-dir", join(dir, name), "--holders", "off");
    args.push("--redis", server.url, "--node-id", name, "--config", config);
    const child = spawn(node!, args, { cwd: sources, stdio: ["ignore", "pipe", "pipe"] });
    cluster.nodes.push(child);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    cluster.urls.push(await listeningUrl(child, `${label} ${name}`, () => stderr));
  }
  return cluster;
}

/** Three idle socket.io nodes on a redis-server of their own: the goal's yardstick. */
async function startSocketIo(dir: string): Promise<Cluster> {
  mkdirSync(dir, { recursive: true });
  const server = await redisServer(dir);
  const cluster: Cluster = { label: "socket.io", redis: server.child, redisUrl: server.url, nodes: [], urls: [] };
  for (let i = 0; i < NODES.length; i++) {
    cluster.nodes.push((await scriptNode("bench/cluster-peers-sio.ts", server.url)).child);
  }
  return cluster;
}

/**
 * Three bare processes that only keep a lease, renewed at a node's pace
 * (bench/cluster-idle-floor.ts), on a redis-server of their own: the least an idle node can cost.
 */
async function startFloor(dir: string): Promise<Cluster> {
  mkdirSync(dir, { recursive: true });
  const server = await redisServer(dir);
  const cluster: Cluster = { label: "floor", redis: server.child, redisUrl: server.url, nodes: [], urls: [] };
  for (const name of NODES) {
    const [node, js] = compiledCommand("bench/cluster-idle-floor.ts");
    const args = [js!, server.url, name, String(leaseRenewalMs(NODE_LEASE_TTL_MS, true)), String(NODE_LEASE_TTL_MS)];
    const child = spawn(node!, args, { stdio: ["ignore", "pipe", "inherit"] });
    cluster.nodes.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => d.toString().includes("renewing") && resolve());
      child.once("exit", (code) => reject(new Error(`the floor's ${name} exited (${code})`)));
    });
  }
  return cluster;
}

/** Times the main thread of `pid` was put on a core (schedstat's third field): its wake-ups. */
function mainRuns(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[2]);
}

/**
 * The quiet phase: QUIET_SESSIONS stream sessions, none written to or followed, on each
 * Switchboard cluster; per node its CPU over MEASURE_MS once they settled, and the commands its
 * redis-server served meanwhile (what keeping copies of sessions nobody uses costs).
 */
async function quietPhase(clusters: Cluster[]): Promise<string[]> {
  for (const c of clusters)
    for (let i = 0; i < QUIET_SESSIONS; i++) {
      const response = await fetch(`${c.urls[i % c.urls.length]}/v1/sessions`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ kind: "stream" }),
      });
      if (response.status !== 201) throw new Error(`${c.label}: creating a session answered ${response.status}`);
    }
  await sleep(QUIET_SETTLE_MS);
  const redis = clusters.map((c) => new Redis(c.redisUrl));
  try {
    await Promise.all(redis.map((r) => r.config("RESETSTAT")));
    const pids = clusters.flatMap((c) => [...c.nodes, c.redis].map((p) => p.pid!));
    const before = new Map(pids.map((pid) => [pid, cpuMs(pid)]));
    const started = performance.now();
    await sleep(MEASURE_MS);
    const elapsed = performance.now() - started;
    const infos = await Promise.all(redis.map((r) => r.info("commandstats")));
    const share = (pid: number) => `${fmt(((cpuMs(pid) - before.get(pid)!) / elapsed) * 100, 3)}%`;
    return clusters.map((c, i) => {
      const calls = [...infos[i]!.matchAll(/calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
      const perSecond = fmt(calls / (elapsed / 1000), 0);
      return `| ${c.label} | ${c.nodes.map((n) => share(n.pid!)).join(" / ")} | ${share(c.redis.pid!)} | ${perSecond} |`;
    });
  } finally {
    for (const r of redis) r.disconnect();
  }
}

export async function run(): Promise<BenchSection> {
  const baseline = process.env["SWITCHBOARD_BASELINE"];
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-cluster-idle-"));
  const clusters: Cluster[] = [];
  try {
    if (baseline) clusters.push(await startCluster("before", resolve(baseline), join(dir, "before")));
    const ours = await startCluster(baseline ? "after" : "this tree", process.cwd(), join(dir, "after"));
    clusters.push(ours);
    const sio = await startSocketIo(join(dir, "socket.io"));
    clusters.push(sio);
    const floor = await startFloor(join(dir, "floor"));
    clusters.push(floor);
    await sleep(WARMUP_MS);
    const pids = clusters.flatMap((c) => [...c.nodes, c.redis].map((p) => p.pid!));
    const before = new Map(pids.map((pid) => [pid, { ran: cpuMs(pid), runs: mainRuns(pid) }]));
    const started = performance.now();
    await sleep(MEASURE_MS);
    const elapsed = performance.now() - started;
    const share = (pid: number) => (cpuMs(pid) - before.get(pid)!.ran) / elapsed;
    const wakeups = (pid: number) => mainRuns(pid) - before.get(pid)!.runs;
    const pct = (s: number) => `${fmt(s * 100, 3)}%`;
    const perNode = (c: Cluster) => c.nodes.map((n) => share(n.pid!));
    const base = baseline ? clusters[0] : undefined;
    const worst = Math.max(...perNode(ours));
    const sioWorst = Math.max(...perNode(sio));
    const floorWorst = Math.max(...perNode(floor));
    const baseWorst = base ? Math.max(...perNode(base)) : undefined;
    const lines = clusters.map(
      (c) =>
        `| ${c.label} | ${perNode(c).map(pct).join(" / ")} | ${c.nodes.map((n) => wakeups(n.pid!)).join(" / ")} | ${pct(share(c.redis.pid!))} |`,
    );
    const notes = clusters.map(
      (c) => `${c.label}: nodes ${perNode(c).map(pct).join(", ")}; redis-server ${pct(share(c.redis.pid!))}.`,
    );
    // Every figure of the idle window is read: the quiet phase's sessions come after it.
    const quiet = await quietPhase(clusters.filter((c) => c.urls.length > 0));
    return {
      title: "Idle cluster node",
      rows: [
        {
          measure: "CPU of the busiest idle node (share of one core)",
          ours: pct(worst),
          baseline: `${pct(sioWorst)} (socket.io)`,
          ratio: `${fmt(worst / sioWorst, 2)}×`,
          goal: "≤ 2×",
          met: worst <= 2 * sioWorst,
        },
        {
          measure: "the same, against the floor: a bare process renewing a lease at the node's pace",
          ours: pct(worst),
          baseline: `${pct(floorWorst)} (floor)`,
          ratio: `${fmt(worst / floorWorst, 2)}×`,
          goal: "for reference",
        },
        {
          measure: "the same, against the goal for any idle gateway",
          ours: pct(worst),
          ...(baseWorst !== undefined
            ? { baseline: `${pct(baseWorst)} (before)`, ratio: fmt(worst / baseWorst, 2) }
            : {}),
          goal: `≤ ${pct(IDLE_SHARE_GOAL)}`,
          met: worst <= IDLE_SHARE_GOAL,
        },
      ],
      tables: [
        [
          `| sources | CPU of nodes n1 / n2 / n3 | their main threads' wake-ups in ${MEASURE_MS / 1000} s | redis-server |`,
          "| --- | --- | --- | --- |",
          ...lines,
        ].join("\n"),
        [
          `With ${QUIET_SESSIONS} quiet stream sessions (spread over the nodes; none written to or followed), over ${MEASURE_MS / 1000} s after ${QUIET_SETTLE_MS / 1000} s:`,
          "",
          "| sources | CPU of nodes n1 / n2 / n3 | redis-server | Redis commands per second |",
          "| --- | --- | --- | --- |",
          ...quiet,
        ].join("\n"),
      ],
      method: [
        `\`npm run bench -- cluster-idle\`: three \`switchboard serve --redis\` nodes on one redis-server (AOF off), no session, no client, and three socket.io 4.8 nodes with \`@socket.io/redis-streams-adapter\` (bench/cluster-peers-sio.ts, no client) on a redis-server of their own; run time of every thread from /proc (schedstat) over ${MEASURE_MS / 1000} s after a ${WARMUP_MS / 1000} s warm-up, and how many times each main thread was put on a core (its wake-ups).`,
        `The quiet phase, after that window: ${QUIET_SESSIONS} stream sessions created on each Switchboard cluster, round-robin over its nodes (\`SWITCHBOARD_BENCH_QUIET_SESSIONS\`), nothing written to or following them; after ${QUIET_SETTLE_MS / 1000} s, each node's CPU and its redis-server's over ${MEASURE_MS / 1000} s, and the commands that redis-server served (\`INFO commandstats\`).`,
        `The floor: three bare Node processes (bench/cluster-idle-floor.ts, ioredis only) on a third redis-server, each renewing a lease key with a GET-and-PEXPIRE script every ${leaseRenewalMs(NODE_LEASE_TTL_MS, true)} ms (an idle node's renewal pace, half its ${NODE_LEASE_TTL_MS / 1000} s TTL) on aligned timers, and doing nothing else.`,
        "`SWITCHBOARD_BASELINE=<checkout>` runs another checkout's sources beside them (its own redis-server) over the same window.",
        "Every node runs on JavaScript compiled once per run (esbuild, bench/compiled.ts), not under `--import tsx` (its esbuild service wakes each about once a second).",
      ],
      notes,
    };
  } finally {
    for (const c of clusters) for (const p of [...c.nodes, c.redis]) p.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}
