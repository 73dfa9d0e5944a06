import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/ops/logger.js";
import { listedJson } from "../src/sessions/list-summary.js";
import { fmt, percentile } from "./stats.js";
import type { BenchSection } from "./types.js";

/**
 * `GET /v1/sessions` against 1,000 live PTY sessions, in process (no holders: where the program
 * runs does not change what the list costs; bench/scale.ts has them): `cat` ones (nothing on
 * their screens) beside `bash -i` ones at their prompt. Per kind, the list's p50 and p99 as an
 * admin, as an operator scoped to a few sessions (ids and a name glob) and as a share link, and,
 * as the baseline, every session serialised afresh (what each request did before the summaries).
 */

/** Sessions per kind (`LIST_SESSIONS` to change). */
export const SESSIONS = Number(process.env["LIST_SESSIONS"] ?? 1000);
/** Requests per caller, one after the other. */
export const REQUESTS = 200;
/** Creates in flight at once. */
const CREATE_CONCURRENCY = 16;
/** The goal for the admin's full list. */
export const GOAL_P99_MS = 20;
/** How long the shells get to print their prompts. */
const PROMPT_WAIT_MS = 120_000;

const OPS_TOKEN = "bench-list-ops-token-0123456789abcdef";
const KINDS = { cat: ["cat"], bash: ["bash", "--norc", "--noprofile", "-i"] } as const;
type Kind = keyof typeof KINDS;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Figures {
  p50: number;
  p99: number;
}

interface KindResult {
  kind: Kind;
  admin: Figures;
  scoped: Figures;
  share: Figures;
  fresh: Figures;
  bytes: number;
  load: number;
}

function figures(times: number[]): Figures {
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/**
 * POSTs `body` on a connection of its own: a kept-alive one the gateway closed while busy
 * spawning resets fetch's next request (ECONNRESET, whether or not it was taken).
 */
function post(gw: Gateway, path: string, body: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${gw.url}${path}`,
      {
        method: "POST",
        agent: false,
        headers: { authorization: `Bearer ${gw.token}`, "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

async function get(gw: Gateway, token: string, path: string): Promise<string> {
  const res = await fetch(gw.url + path, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${text.slice(0, 200)}`);
  return text;
}

/**
 * `REQUESTS` lists by `token`, each timed to its answer's last byte, then parsed (outside the
 * timed window, as bench/scale.ts) and its length checked.
 */
async function timeList(gw: Gateway, token: string, expected: number): Promise<Figures> {
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now();
    const text = await get(gw, token, "/v1/sessions?limit=1000");
    times.push(performance.now() - t0);
    const { sessions } = JSON.parse(text) as { sessions: unknown[] };
    if (sessions.length !== expected) throw new Error(`listed ${sessions.length}, expected ${expected}`);
  }
  return figures(times);
}

async function measure(kind: Kind): Promise<KindResult> {
  const dataDir = mkdtempSync(join(tmpdir(), `bench-list-${kind}-`));
  const gw = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    holders: false,
    logger: createLogger({ level: "silent" }),
    config: {
      auth: { tokens: [{ name: "ops", token: OPS_TOKEN, role: "operator", sessions: ["scoped-*"] }] },
      limits: { sessions: SESSIONS + 10, sessionsPerToken: SESSIONS + 10 },
    },
  });
  try {
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CREATE_CONCURRENCY }, async () => {
        while (next < SESSIONS) {
          const n = next++;
          // Five are named for the operator's glob.
          const res = await post(gw, "/v1/sessions", {
            command: KINDS[kind],
            pty: true,
            ...(n < 5 ? { name: `scoped-${n}` } : {}),
          });
          if (res.status !== 201) throw new Error(`create: ${res.status} ${res.text}`);
          ids.push((JSON.parse(res.text) as { id: string }).id);
        }
      }),
    );
    if (kind === "bash") {
      const started = performance.now();
      for (;;) {
        const sessions = gw.core.sessions.list();
        if (sessions.every((s) => /[$#]$/.test(s.info().lastLine ?? ""))) break;
        if (performance.now() - started > PROMPT_WAIT_MS) throw new Error("the prompts did not come");
        await sleep(200);
      }
    }
    const share = JSON.parse((await post(gw, `/v1/sessions/${ids[ids.length - 1]}/shares`, {})).text) as {
      token: string;
    };
    const load = loadavg()[0]!;
    const admin = await timeList(gw, gw.token, SESSIONS);
    const scoped = await timeList(gw, OPS_TOKEN, 5);
    const shared = await timeList(gw, share.token, 1);
    const bytes = (await get(gw, gw.token, "/v1/sessions?limit=1000")).length;
    const fresh: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const t0 = performance.now();
      const text = `{"sessions":[${gw.core.sessions
        .list()
        .map((s) => listedJson(s.info()))
        .join(",")}]}`;
      fresh.push(performance.now() - t0);
      if (text.length < SESSIONS) throw new Error("the fresh list is empty");
    }
    return { kind, admin, scoped, share: shared, fresh: figures(fresh), bytes, load };
  } finally {
    await gw.close({ sessions: "end" });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchSection> {
  const cat = await measure("cat");
  const bash = await measure("bash");
  const ratio = (a: number, b: number) => fmt(a / b, 2);
  const ms = (n: number) => `${fmt(n, 2)} ms`;
  const rows = (what: string, pick: (r: KindResult) => Figures, goal?: number) => [
    {
      measure: `${what}, p50 (bash; baseline: cat)`,
      ours: ms(pick(bash).p50),
      baseline: ms(pick(cat).p50),
      ratio: ratio(pick(bash).p50, pick(cat).p50),
    },
    {
      measure: `${what}, p99 of ${REQUESTS} (bash; baseline: cat)`,
      ours: ms(pick(bash).p99),
      baseline: ms(pick(cat).p99),
      ratio: ratio(pick(bash).p99, pick(cat).p99),
      ...(goal !== undefined ? { goal: `≤ ${goal} ms`, met: pick(bash).p99 <= goal && pick(cat).p99 <= goal } : {}),
    },
  ];
  return {
    title: "Session list",
    rows: [
      ...rows(`GET /v1/sessions as admin (${SESSIONS} listed)`, (r) => r.admin, GOAL_P99_MS),
      ...rows("GET /v1/sessions as an operator scoped to 5 (name glob)", (r) => r.scoped),
      ...rows("GET /v1/sessions as a share link (1 listed)", (r) => r.share),
      ...rows(`every session serialised afresh, in process (${SESSIONS})`, (r) => r.fresh),
    ],
    method: [
      `\`npm run bench -- session-list\`: an in-process gateway (no holders) with ${SESSIONS} PTY sessions, \`cat\` (nothing on their screens) in one run, \`bash --norc --noprofile -i\` at its prompt in the next.`,
      `Per caller, ${REQUESTS} \`GET /v1/sessions?limit=1000\` one after the other over HTTP, timed to the answer's last byte, then parsed (the client runs in the gateway's process: its parse's garbage is collected on the gateway's heap, inside later requests).`,
      "The last rows are what each request did before the list summaries: every session's summary serialised afresh (`listedJson(info())`), in process, no HTTP.",
      "`LIST_SESSIONS` changes the count.",
    ],
    notes: [
      `${SESSIONS} sessions per kind; answer ${fmt(bash.bytes)} bytes (bash), ${fmt(cat.bytes)} (cat); 1-minute load ${fmt(cat.load, 1)} (cat run), ${fmt(bash.load, 1)} (bash run)`,
    ],
  };
}
