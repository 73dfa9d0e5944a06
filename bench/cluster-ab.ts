/**
 * `npm run bench:ab -- [DIR]`: two clusters measured at the same time, so that both share the
 * machine's swings (a round alone swings ±30% on 2 cores; two rounds run together, ±5%). Each
 * cluster is three nodes on a redis-server of its own, a producer on the first node and 20
 * subscribers on the other two (bench/cluster-peers.ts); each round sends 1,000 messages at
 * 200/s to both at once (the side that starts first turning) and compares the nodes' CPU per
 * 1,000 deliveries (/proc).
 *
 * Without DIR: Switchboard (A) against socket.io (B). With DIR, a checkout of another commit
 * with its node_modules (as for bench:compare): this tree (A) against that one (B), to show what
 * a change to the delivery path saves. `BENCH_ROUNDS` rounds (default 10) after one of warm-up.
 * Prints each round and the median of A ÷ B; nothing is written to docs/benchmarks.md.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectRedis } from "../src/cluster/redis-client.js";
import { childNode, redisServer } from "./cluster.js";
import { Receipts, paced, scriptNode, socketIoSide, switchboardSide } from "./cluster-peers.js";
import { cpuMs } from "./proc.js";
import { median } from "./stats.js";

const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 10);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error("BENCH_ROUNDS must be a whole number, 1 or more");
const MESSAGES = 1_000;

const against = process.argv[2] === undefined ? undefined : resolve(process.argv[2]);
const dir = mkdtempSync(join(tmpdir(), "sb-bench-ab-"));
const processes: ChildProcess[] = [];
try {
  const servers = [await redisServer(dir), await redisServer(dir)];
  processes.push(...servers.map((s) => s.child));
  const redis = await Promise.all(servers.map((s) => connectRedis([s.url])));
  const a = [];
  for (const name of ["a1", "a2", "a3"]) a.push(await childNode(dir, name, servers[0]!.url));
  const b = [];
  if (against !== undefined)
    for (const name of ["b1", "b2", "b3"]) b.push(await childNode(dir, name, servers[1]!.url, against));
  else for (let i = 0; i < 3; i++) b.push(await scriptNode("bench/cluster-peers-sio.ts", servers[1]!.url));
  processes.push(...[...a, ...b].map((n) => n.child));
  const sides = [
    await switchboardSide(a, redis[0]!),
    against !== undefined ? await switchboardSide(b, redis[1]!) : await socketIoSide(b, redis[1]!),
  ];
  console.log(`A: this tree; B: ${against ?? "socket.io"}. CPU ms per 1,000 deliveries, each node, then all three.`);
  const ratios: number[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const receipts = sides.map(() => new Receipts());
    const topics = await Promise.all(sides.map((side, i) => side.open(receipts[i]!)));
    const before = sides.map((side) => side.pids.map(cpuMs));
    // The side whose producer starts first sends first at every tick, and its owner costs more
    // (docs/benchmarks.md, "Where a delivery's CPU goes"): who starts turns each round.
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    await Promise.all(order.map((i) => paced(topics[i]!, MESSAGES)));
    await Promise.all(receipts.map((r) => r.drained(MESSAGES)));
    const perNode = sides.map((side, i) =>
      side.pids.map((pid, k) => (cpuMs(pid) - before[i]![k]!) / (receipts[i]!.latencies.length / 1000)),
    );
    for (const topic of topics) await topic.close();
    const [ta, tb] = perNode.map((p) => p.reduce((x, y) => x + y, 0)) as [number, number];
    const show = (p: number[], total: number) => `${p.map((x) => x.toFixed(1)).join(" ")} = ${total.toFixed(1)}`;
    const label = round === 0 ? "warm-up" : `round ${round}`;
    console.log(`${label}: A ${show(perNode[0]!, ta)} | B ${show(perNode[1]!, tb)} | A/B ${(ta / tb).toFixed(3)}`);
    if (round > 0) ratios.push(ta / tb);
  }
  ratios.sort((x, y) => x - y);
  console.log(`median A/B ${median(ratios).toFixed(3)} (${ratios.map((x) => x.toFixed(2)).join(" ")})`);
  for (const side of sides) side.end();
  for (const r of redis) r.disconnect();
} finally {
  for (const p of processes) p.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
