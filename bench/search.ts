/**
 * `npm run bench -- search`: full-text search over the logs (GET /v1/search). 200 stream sessions
 * of about 1 GB of output in all (written through the log API, not PTYs), one rare word printed in
 * one of them; the index built by the search thread; p50/p99 of the query over HTTP and in process;
 * and the log's append throughput with the indexer following it, against the same appends
 * without it (the event loop's cost of indexing). Each figure is reported with the load average
 * it was taken at.
 * `SEARCH_BENCH_MB` sets the total (default 1024). Its data is deleted at the end.
 */
import { mkdtempSync, rmSync, statSync, readdirSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { performance as perf } from "node:perf_hooks";
import { join } from "node:path";
import { systemClock } from "../src/core/clock.js";
import { EventLog, SqliteEventStore } from "../src/log/index.js";
import { SearchIndex } from "../src/log/search/search-index.js";
import { parseConfig } from "../src/server/config/config.js";
import { startGateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/ops/logger.js";
import type { BenchRow, BenchSection } from "./types.js";
import { fmt, median, percentile, sideBySide } from "./stats.js";

const SESSIONS = 200;
const TOTAL_MB = Number(process.env["SEARCH_BENCH_MB"] ?? 1024);
/** One output entry: what the coalescer hands the log under a flood (≤ 64 KiB). */
const CHUNK_BYTES = 64 * 1024;
/** Distinct chunks the output is made of (rotated; each of random words). */
const CHUNK_VARIANTS = 32;
/** Appends a session makes before it waits for them to be durable (the log holds back past 16 MiB). */
const PUBLISH_EVERY_BYTES = 8 * 1024 * 1024;
const RARE = "quetzalcoatl7";
const QUERIES = 300;
const GOAL_P99_MS = 50;
const TOKEN = "search-bench-token-0123456789abcdef";
const VIEWER = "search-bench-viewer-0123456789abcdef";
/** The append comparison: sessions and bytes per round, rounds side by side. */
const APPEND_SESSIONS = 20;
const APPEND_MB = 64;
const APPEND_ROUNDS = 5;
const GOAL_APPEND_RATIO = 0.95;

/** The 1-minute load average, as reported next to each figure. */
const load = () => loadavg()[0]!.toFixed(1);

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** Deterministic pseudo-random words (xorshift), so every run indexes the same text. */
function chunks(): Buffer[] {
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const vocabulary = Array.from({ length: 5000 }, (_, i) =>
    Array.from({ length: 3 + (i % 9) }, () => String.fromCharCode(97 + Math.floor(next() * 26))).join(""),
  );
  return Array.from({ length: CHUNK_VARIANTS }, () => {
    let text = "";
    while (text.length < CHUNK_BYTES - 200) {
      const words = Array.from({ length: 10 }, () => vocabulary[Math.floor(next() ** 2 * vocabulary.length)]);
      text += next() < 0.2 ? `\x1b[32m${words.join(" ")}\x1b[0m\r\n` : `${words.join(" ")}\r\n`;
    }
    return Buffer.from(text);
  });
}

function dirBytes(dir: string, match: (name: string) => boolean): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && match(entry.name)) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}

async function timed(n: number, fn: () => Promise<unknown> | unknown): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b);
}

/** Writes the logs, builds the index, times the queries. */
async function searchOverLogs(): Promise<{
  logBytes: number;
  indexBytes: number;
  writeS: number;
  buildS: number;
  http: number[];
  inProcess: number[];
  common: number[];
  limited: number[];
  found: boolean;
  loads: { build: string; http: string; inProcess: string };
}> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-search-"));
  const gw = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir: dir,
    token: TOKEN,
    config: parseConfig({
      auth: { tokens: [{ name: "viewer", token: VIEWER, role: "viewer", sessions: ["s-7"] }] },
      limits: { sessionsPerToken: SESSIONS },
    }),
    logger: createLogger({ level: "silent" }),
  });
  try {
    // The gateway's indexer holds its batches while the logs are written, and then indexes them
    // all (the search thread at full speed, the event loop reading the logs for it).
    gw.core.search.indexer.pause();
    const pool = chunks();
    const perSession = Math.ceil((TOTAL_MB * 1024 * 1024) / SESSIONS / CHUNK_BYTES);
    const ids: string[] = [];
    const written = performance.now();
    for (let s = 0; s < SESSIONS; s++) {
      const session = gw.core.sessions.createStream({ id: undefined, name: "bench" }, `s-${s}`);
      ids.push(session.id);
      const log = gw.core.events.get(session.id)!;
      for (let c = 0; c < perSession; c++) {
        let chunk = pool[(s * 7 + c) % CHUNK_VARIANTS]!;
        if (s === 123 && c === Math.floor(perSession / 2))
          chunk = Buffer.concat([chunk.subarray(0, 1000), Buffer.from(` ${RARE} `), chunk.subarray(1000)]);
        log.appendOutputBytes("stdout", new Uint8Array(chunk), false);
        if (((c + 1) * CHUNK_BYTES) % PUBLISH_EVERY_BYTES === 0) await log.whenPublished();
      }
      await log.whenPublished();
    }
    const writeS = (performance.now() - written) / 1000;
    const logBytes = dirBytes(dir, (n) => !n.startsWith("search.db"));
    const built = performance.now();
    gw.core.search.indexer.resume();
    await until(() => gw.core.search.indexer.idle);
    const buildS = (performance.now() - built) / 1000;
    const loads = { build: load(), http: "", inProcess: "" };
    const indexBytes = dirBytes(dir, (n) => n.startsWith("search.db"));
    const get = (q: string, token = TOKEN) =>
      fetch(`${gw.url}/v1/search?q=${encodeURIComponent(q)}`, { headers: { Authorization: `Bearer ${token}` } }).then(
        (r) => r.json() as Promise<{ hits: Array<{ sessionId: string }> }>,
      );
    const answer = await get(RARE);
    const found = answer.hits.length === 1 && answer.hits[0]!.sessionId === ids[123];
    await timed(20, () => get(RARE));
    const http = await timed(QUERIES, () => get(RARE));
    loads.http = load();
    const inProcess = await timed(QUERIES, () => gw.core.search.search(RARE, { sessions: ids, limit: 20 }));
    loads.inProcess = load();
    // A word in every chunk, newest 20 hits; and the same for a caller who may read one session.
    const common = await timed(QUERIES / 3, () => get("the"));
    const limited = await timed(QUERIES / 3, () => get(RARE, VIEWER));
    return { logBytes, indexBytes, writeS, buildS, http, inProcess, common, limited, found, loads };
  } finally {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** MB/s of output appended to `APPEND_SESSIONS` logs until durable, with the indexer following or not. */
/** Per round, the event loop's busy milliseconds per MB appended (eventLoopUtilization), by side. */
const loopMsPerMb: Record<"on" | "off", number[]> = { on: [], off: [] };

async function appendRound(indexing: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-search-append-"));
  const events = new EventLog({ store: new SqliteEventStore(join(dir, "log.db")), clock: systemClock });
  const index = indexing ? new SearchIndex({ dataDir: dir, events, clock: systemClock }) : undefined;
  index?.indexer.start([]);
  // Its thread up before the clock starts.
  await index?.cursor("none");
  const pool = chunks();
  try {
    const logs = Array.from({ length: APPEND_SESSIONS }, (_, i) => events.create(`a-${i}`));
    const perLog = Math.ceil((APPEND_MB * 1024 * 1024) / APPEND_SESSIONS / CHUNK_BYTES);
    const t0 = performance.now();
    const elu = perf.eventLoopUtilization();
    for (let c = 0; c < perLog; c++) {
      for (const [i, log] of logs.entries()) log.appendOutputBytes("stdout", pool[(i + c) % CHUNK_VARIANTS]!, false);
      // Like a flood: appends in turns of the event loop, so the indexer's slices run between them.
      if (c % 16 === 15) await Promise.all(logs.map((l) => l.whenPublished()));
    }
    await Promise.all(logs.map((l) => l.whenPublished()));
    const mb = (perLog * APPEND_SESSIONS * CHUNK_BYTES) / 1e6;
    const mbps = mb / ((performance.now() - t0) / 1000);
    loopMsPerMb[indexing ? "on" : "off"].push(perf.eventLoopUtilization(elu).active / mb);
    return mbps;
  } finally {
    index?.close();
    events.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchSection> {
  const r = await searchOverLogs();
  await appendRound(false);
  loopMsPerMb.off.length = 0;
  const append = await sideBySide(
    APPEND_ROUNDS,
    () => appendRound(false),
    () => appendRound(true),
  );
  const appendLoad = load();
  const p99 = (xs: number[]) => percentile(xs, 99);
  const gb = r.logBytes / 2 ** 30;
  const rows: BenchRow[] = [
    {
      measure: `GET /v1/search, a word in 1 of ${SESSIONS} sessions (${fmt(gb, 2)} GiB of logs)`,
      ours: `p50 ${fmt(percentile(r.http, 50), 1)} ms, p99 ${fmt(p99(r.http), 1)} ms (load ${r.loads.http})${r.found ? "" : " (**not found**)"}`,
      goal: `p99 ≤ ${GOAL_P99_MS} ms`,
      met: r.found && p99(r.http) <= GOAL_P99_MS,
    },
    {
      measure: `the same query in process (SearchIndex.search, through the search thread)`,
      ours: `p50 ${fmt(percentile(r.inProcess, 50), 2)} ms, p99 ${fmt(p99(r.inProcess), 2)} ms (load ${r.loads.inProcess})`,
    },
    {
      measure: `the same, as a viewer who may read 1 session`,
      ours: `p50 ${fmt(percentile(r.limited, 50), 1)} ms, p99 ${fmt(p99(r.limited), 1)} ms`,
    },
    {
      measure: `a word in nearly every document ("the"), newest 20`,
      ours: `p50 ${fmt(percentile(r.common, 50), 1)} ms, p99 ${fmt(p99(r.common), 1)} ms`,
    },
    {
      measure: `index build by the search thread`,
      ours: `${fmt(r.buildS, 1)} s (${fmt(r.logBytes / 1e6 / r.buildS, 1)} MB/s of log; load ${r.loads.build})`,
    },
    {
      measure: `index size`,
      ours: `${fmt(r.indexBytes / 2 ** 20)} MiB (${fmt((100 * r.indexBytes) / r.logBytes, 1)}% of the log's ${fmt(r.logBytes / 2 ** 20)} MiB)`,
    },
    {
      measure: `log append, ${APPEND_SESSIONS} sessions × 64 KiB output, indexer following`,
      ours: `${fmt(append.subject)} MB/s (load ${appendLoad})`,
      baseline: `indexer off: ${fmt(append.baseline)} MB/s`,
      ratio: append.ratio.toFixed(2),
      goal: `≥ ${GOAL_APPEND_RATIO}×`,
      met: append.ratio >= GOAL_APPEND_RATIO,
    },
    {
      measure: `the event loop's busy time per MB appended, indexer following`,
      ours: `${fmt(median(loopMsPerMb.on), 2)} ms (load ${appendLoad})`,
      baseline: `indexer off: ${fmt(median(loopMsPerMb.off), 2)} ms`,
      ratio: (median(loopMsPerMb.on) / median(loopMsPerMb.off)).toFixed(2),
    },
  ];
  return {
    title: "Search",
    rows,
    method: [
      `${SESSIONS} stream sessions, ${fmt(r.logBytes / 2 ** 20)} MiB of log written through the log API in ${fmt(r.writeS, 1)} s (64 KiB output entries of random words, a fifth of the lines coloured); "${RARE}" printed once, in one session. The index is built after (the indexer held its batches meanwhile), and queried ${QUERIES} times over HTTP (after 20 warm-up queries) and in process.`,
      `Append: ${APPEND_MB} MB over ${APPEND_SESSIONS} logs until durable, with a search index following (batches to its thread) and without, ${APPEND_ROUNDS} rounds alternating; the ratio is the median of each round's.`,
    ],
    notes: [
      `event loop busy ms per MB off: ${loopMsPerMb.off.map((x) => fmt(x, 2)).join(", ")}; on: ${loopMsPerMb.on.map((x) => fmt(x, 2)).join(", ")}`,
      `append MB/s off: ${append.baselineRuns.map((x) => fmt(x)).join(", ")}; on: ${append.subjectRuns.map((x) => fmt(x)).join(", ")}`,
    ],
  };
}
