/**
 * Cluster mode: an HTTP `input` to a terminal session sent to a node that does not run it (forwarded
 * to the owner through Redis, see docs/cluster.md "Requests to the owner") beside the same
 * request sent to the owner, interleaved in one run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/logger.js";
import { redisServer } from "./cluster.js";
import type { BenchSection } from "./types.js";
import { fmt, percentile } from "./stats.js";

const TOKEN = "bench-token-0123456789abcdef";
const REQUESTS = 2_000;
const WARMUP = 100;
/** What each request types; `cat` on a pipe writes it back as is, so the log grows by its length. */
const INPUT = "x\n";

function node(dir: string, url: string, name: string): Promise<Gateway> {
  return startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir: join(dir, name),
    token: TOKEN,
    logger: createLogger({ level: (process.env["BENCH_LOG"] ?? "silent") as "silent" }),
    watchConfig: false,
    cluster: { redis: [url], nodeId: name },
  });
}

async function post(base: string, path: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(base + path, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** Milliseconds of one `POST …/input` answered 200. */
async function input(base: string, id: string): Promise<number> {
  const t0 = performance.now();
  const res = await post(base, `/v1/sessions/${id}/input`, { data: INPUT });
  const took = performance.now() - t0;
  if (res.status !== 200) throw new Error(`input answered ${res.status}: ${JSON.stringify(res.json)}`);
  return took;
}

export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-cluster-rpc-"));
  const server = await redisServer(dir);
  const [a, b] = [await node(dir, server.url, "a"), await node(dir, server.url, "b")];
  try {
    const created = await post(a.url, "/v1/sessions", { kind: "terminal", command: ["cat"], pty: false });
    const id = (created.json as { id: string }).id;
    while (b.core.sessions.get(id) === undefined) await new Promise((r) => setTimeout(r, 20));
    const owned = a.core.sessions.get(id)!.log;
    const copy = b.core.sessions.get(id)!.log;
    let sent = 0;
    // Each request alone: the echo of the one before is written, published and copied to b first.
    const settled = async () => {
      sent += 1;
      while (owned.outputBytes < sent * INPUT.length) await new Promise((r) => setTimeout(r, 1));
      await owned.whenPublished();
      while (copy.head < owned.head) await new Promise((r) => setTimeout(r, 1));
    };
    for (let i = 0; i < WARMUP; i++) {
      await input(a.url, id);
      await settled();
      await input(b.url, id);
      await settled();
    }
    const local: number[] = [];
    const forwarded: number[] = [];
    // Interleaved, the order alternating: both see the same machine load.
    for (let i = 0; i < REQUESTS; i++) {
      for (const [url, into] of i % 2 === 0
        ? ([
            [a.url, local],
            [b.url, forwarded],
          ] as const)
        : ([
            [b.url, forwarded],
            [a.url, local],
          ] as const)) {
        into.push(await input(url, id));
        await settled();
      }
    }
    local.sort((x, y) => x - y);
    forwarded.sort((x, y) => x - y);
    const row = (p: number) => {
      const [ours, base] = [percentile(forwarded, p), percentile(local, p)];
      return `| HTTP input round trip, p${p}: sent to another node (forwarded) vs to the owner | ${fmt(ours, 2)} ms | ${fmt(base, 2)} ms | ${fmt(ours / base, 2)}× | for reference | |`;
    };
    return {
      title: "Cluster: requests forwarded to the owner",
      markdown: [
        "| measure | Switchboard | baseline | ratio | goal | |",
        "| --- | --- | --- | --- | --- | --- |",
        row(50),
        row(99),
        "",
        `Method: one redis-server (AOF off) and two gateways in this process; a pipe session running \`cat\` on node a.`,
        `${fmt(REQUESTS)} \`POST /v1/sessions/:id/input\` of 2 bytes each to node b (forwarded: XADD to a's request`,
        "stream, a's XREAD, the write, PUBLISH of the answer) interleaved one by one (order alternating) with the same request to node a,",
        `after ${WARMUP} of each as warm-up; time from sending the request to its 200 answer, keep-alive connections;`,
        "before the next request, the echo of the last is published and copied to b, so each one runs alone.",
      ].join("\n"),
    };
  } finally {
    await a.close();
    await b.close();
    server.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}
