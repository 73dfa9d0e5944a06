import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { bundledCommand } from "./compiled.js";
import { fmt, percentile } from "./stats.js";
import { listeningUrl } from "./proc.js";
import type { BenchSection } from "./types.js";

/**
 * A thousand live terminals on one gateway: `bash -i` PTY sessions under holders, created over
 * HTTP against a `switchboard serve` child; then the list's latency, the gateway's and holders'
 * memory, and restarts (kill -9, SIGTERM) timed from the next gateway's spawn to its first
 * `/healthz` and to every viewer holding its screen again. The same with `cat` sessions (which
 * print nothing: no screen to restore) is the floor, in the same run.
 */

/** Sessions per kind (`SCALE_SESSIONS` to change). */
export const SESSIONS = Number(process.env["SCALE_SESSIONS"] ?? 1000);
/** WebSocket viewers (`/ws/session/:id?since=screen`) that must get their screen back after a restart. */
export const VIEWERS = 50;
/** `GET /v1/sessions` requests, one after the other, for the list's percentiles. */
export const LIST_REQUESTS = 200;
/** Creates in flight at once. */
export const CREATE_CONCURRENCY = 16;
export const GOAL_LIST_P99_MS = 20;
export const GOAL_LISTEN_MS = 1000;
export const GOAL_VIEWERS_MS = 3000;
/** How long any one wait of the bench lasts before it gives up. */
const WAIT_MS = Number(process.env["SCALE_WAIT_MS"] ?? 180_000);
/** `SCALE_CPU_PROF=<dir>`: each restarted gateway writes a CPU profile there (as it stops). */
const CPU_PROF = process.env["SCALE_CPU_PROF"];

const TOKEN = "bench-scale-token-0123456789abcdef";
const KINDS = { bash: ["bash", "--norc", "--noprofile", "-i"], cat: ["cat"] } as const;
type Kind = keyof typeof KINDS;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Served {
  child: ChildProcess;
  exited: Promise<void>;
}

/** `switchboard serve` on `port` (0 at first), bundled as `npm run build` ships it, holders on. */
function serve(dataDir: string, config: string, port: number, nodeFlags: string[] = []): Served {
  const [node, main] = bundledCommand("src/cli/main.ts");
  const log = openSync(join(dataDir, "..", "serve.log"), "a");
  const child = spawn(
    node!,
    [
      ...nodeFlags,
      main!,
      "serve",
      "--token",
      TOKEN,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--data-dir",
      dataDir,
      "--config",
      config,
      "--holders",
      "on",
    ],
    { stdio: ["ignore", "pipe", log] },
  );
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return { child, exited };
}

async function http(port: number, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...init.headers },
  });
}

interface Listed {
  id: string;
  pid: number | null;
  lastLine: string | null;
  state: string;
}

async function list(port: number): Promise<Listed[]> {
  const res = await http(port, "/v1/sessions?limit=1000");
  if (res.status !== 200) throw new Error(`GET /v1/sessions: ${res.status}`);
  return ((await res.json()) as { sessions: Listed[] }).sessions;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, every = 10): Promise<T> {
  const started = performance.now();
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (performance.now() - started > WAIT_MS) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

/** The first `/healthz` answered 200. */
async function healthy(port: number): Promise<void> {
  await until(
    "/healthz",
    async () => ((await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200 ? true : undefined),
    5,
  );
}

/** Resolves with the screen frame of `/ws/session/:id?since=screen` (retrying until a gateway answers). */
async function screenOf(port: number, id: string): Promise<string> {
  return until(
    `the screen of ${id}`,
    () =>
      new Promise<string | undefined>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/session/${id}?since=screen`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        ws.on("message", (data: Buffer) => {
          const frame = JSON.parse(data.toString()) as { type: string; data?: string };
          ws.close();
          resolve(frame.type === "screen" ? (frame.data ?? "") : undefined);
        });
        ws.on("error", () => resolve(undefined));
        ws.on("close", () => resolve(undefined));
      }),
    20,
  );
}

/** Sum of a field of /proc/PID/smaps_rollup (KiB) over `pids`. */
function smaps(pids: number[], field: "Pss" | "Rss"): number {
  let kib = 0;
  for (const pid of pids) {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    kib += Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
  }
  return kib;
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    // Gone already: nothing to count or end.
    return undefined;
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
}

interface KindResult {
  kind: Kind;
  createPerS: number;
  gatewayRssMib: number;
  gatewayFds: number;
  holdersPssMib: number;
  listP50: number;
  listP99: number;
  /** The same requests to their answer parsed by the client. */
  parsedP50: number;
  parsedP99: number;
  /** The 1-minute load average once the list was timed. */
  load: number;
  restarts: Array<{
    how: "kill -9" | "SIGTERM";
    stopMs: number;
    listenMs: number;
    viewersMs: number;
    /** Spawn to the "gateway listening" line the restarted gateway logged (its clock, epoch ms). */
    selfListenMs: number | undefined;
    /** The restarted gateway's own timing of its start's steps ("gateway started", src/server/ops/start-phases.ts). */
    phases: string;
  }>;
}

/**
 * When the last gateway to start logged "gateway listening" (epoch ms), less `spawnedAt`: the
 * listening as the gateway saw it, apart from how soon a busy client's probe got through.
 */
function selfListening(logFile: string, spawnedAt: number): number | undefined {
  const last = readFileSync(logFile, "utf8")
    .split("\n")
    .filter((l) => l.includes('"gateway listening"'))
    .at(-1);
  return last === undefined ? undefined : (JSON.parse(last) as { time: number }).time - spawnedAt;
}

/** The `startMs` of the last "gateway started" line in the gateways' log, as "step ms, …". */
function startPhases(logFile: string): string {
  const lines = readFileSync(logFile, "utf8")
    .split("\n")
    .filter((l) => l.includes('"gateway started"'));
  const last = lines.at(-1);
  if (last === undefined) return "not logged";
  const { startMs } = JSON.parse(last) as { startMs: Record<string, number> };
  return Object.entries(startMs)
    .map(([step, ms]) => `${step} ${fmt(ms)}`)
    .join(", ");
}

async function measure(kind: Kind, programs: Set<number>): Promise<KindResult> {
  const dir = mkdtempSync(join(tmpdir(), `bench-scale-${kind}-`));
  const dataDir = join(dir, "data");
  const config = join(dir, "config.json");
  writeFileSync(
    config,
    JSON.stringify({
      sessions: { holders: true, onStop: "keep" },
      limits: { sessions: SESSIONS + 10, sessionsPerToken: SESSIONS + 10 },
    }),
  );
  let served = serve(dataDir, config, 0);
  const gateways = new Set<ChildProcess>([served.child]);
  try {
    const port = Number(new URL(await listeningUrl(served.child, "scale")).port);
    // Creates, CREATE_CONCURRENCY at a time.
    const ids: string[] = [];
    const createStarted = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CREATE_CONCURRENCY }, async () => {
        while (next < SESSIONS) {
          next++;
          const res = await http(port, "/v1/sessions", {
            method: "POST",
            body: JSON.stringify({ command: KINDS[kind], pty: true }),
          });
          if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
          const { id, pid } = (await res.json()) as { id: string; pid: number };
          ids.push(id);
          programs.add(pid);
        }
      }),
    );
    const createPerS = SESSIONS / ((performance.now() - createStarted) / 1000);
    // Every shell at its prompt (cat prints nothing).
    let lastSeen: string | null | undefined;
    await until(
      "the prompts",
      async () => {
        const sessions = await list(port);
        lastSeen = sessions.find((s) => !/[$#]$/.test(s.lastLine ?? ""))?.lastLine;
        return kind === "cat" || sessions.every((s) => /[$#]$/.test(s.lastLine ?? "")) ? true : undefined;
      },
      200,
    ).catch((error: Error) => {
      throw new Error(`${error.message} (one shows ${JSON.stringify(lastSeen)})`, { cause: error });
    });
    const sessions = await list(port);
    const holders = sessions.map((s) => parentOf(s.pid!)).filter((p): p is number => p !== undefined);
    for (const pid of holders) programs.add(pid);
    await sleep(2500); // the screens' checkpoints (SCREEN_QUIET_MS) are taken
    const gatewayRssMib = smaps([served.child.pid!], "Rss") / 1024;
    const gatewayFds = readdirSync(`/proc/${served.child.pid}/fd`).length;
    const holdersPssMib = smaps(holders, "Pss") / 1024;

    // Timed to the answer's last byte; the client's parse (and the garbage it leaves the client's
    // heap) is timed apart, as what a client adds, and read in the same loop.
    const times: number[] = [];
    const parsed: number[] = [];
    for (let i = 0; i < LIST_REQUESTS; i++) {
      const t0 = performance.now();
      const res = await http(port, "/v1/sessions?limit=1000");
      const text = await res.text();
      const t1 = performance.now();
      const listed = (JSON.parse(text) as { sessions: Listed[] }).sessions;
      times.push(t1 - t0);
      parsed.push(performance.now() - t0);
      if (res.status !== 200 || listed.length !== SESSIONS) throw new Error(`listed ${listed.length} of ${SESSIONS}`);
    }
    times.sort((a, b) => a - b);
    parsed.sort((a, b) => a - b);

    const watched = ids.slice(0, VIEWERS);
    const expected = new Map<string, string>();
    for (const id of watched) expected.set(id, await screenOf(port, id));

    const restarts: KindResult["restarts"] = [];
    for (const how of ["kill -9", "SIGTERM"] as const) {
      const stopStarted = performance.now();
      served.child.kill(how === "kill -9" ? "SIGKILL" : "SIGTERM");
      await served.exited;
      const stopMs = performance.now() - stopStarted;
      const flags = CPU_PROF !== undefined ? ["--cpu-prof", "--cpu-prof-dir", CPU_PROF] : [];
      const started = performance.now();
      const spawnedAt = Date.now();
      served = serve(dataDir, config, port, flags);
      gateways.add(served.child);
      // Viewers reconnect at once, as a browser's do, while the gateway starts.
      const back = Promise.all(
        watched.map(async (id) => {
          const screen = await screenOf(port, id);
          if (kind === "bash" && !/[$#]/.test(screen))
            throw new Error(`the screen of ${id} came back without its prompt`);
          return performance.now() - started;
        }),
      );
      // Awaited below, once the gateway listens; a failure before that is told there.
      back.catch(() => undefined);
      await healthy(port);
      const listenMs = performance.now() - started;
      const viewersMs = Math.max(...(await back));
      const logFile = join(dir, "serve.log");
      const selfListenMs = selfListening(logFile, spawnedAt);
      restarts.push({ how, stopMs, listenMs, viewersMs, selfListenMs, phases: startPhases(logFile) });
      const again = await list(port);
      if (again.length !== SESSIONS || again.some((s) => s.state !== "running"))
        throw new Error(
          `after the ${how}: ${again.filter((s) => s.state === "running").length} of ${SESSIONS} running`,
        );
    }
    return {
      kind,
      createPerS,
      gatewayRssMib,
      gatewayFds,
      holdersPssMib,
      listP50: percentile(times, 50),
      listP99: percentile(times, 99),
      parsedP50: percentile(parsed, 50),
      parsedP99: percentile(parsed, 99),
      load: loadavg()[0]!,
      restarts,
    };
  } catch (error) {
    const log = readFileSync(join(dir, "serve.log"), "utf8");
    throw new Error(`${(error as Error).message}; the gateways' log ends: ${log.slice(-2000)}`, { cause: error });
  } finally {
    // A profiled gateway writes its profile as it exits: the last one is stopped, not killed.
    if (CPU_PROF !== undefined) {
      served.child.kill("SIGTERM");
      await Promise.race([served.exited, sleep(WAIT_MS)]);
    }
    for (const child of gateways) child.kill("SIGKILL");
    await served.exited;
    for (const pid of programs) kill(pid, "SIGKILL");
    programs.clear();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchSection> {
  // Every holder and program the bench started, ended even when it fails (holders run in sessions of their own).
  const programs = new Set<number>();
  const endAll = () => {
    for (const pid of programs) kill(pid, "SIGKILL");
  };
  process.once("exit", endAll);
  const floor = await measure("cat", programs);
  const ours = await measure("bash", programs);
  process.off("exit", endAll);
  const ratio = (a: number, b: number) => fmt(a / b, 2);
  const restartRows = ours.restarts.flatMap((r, i) => {
    const f = floor.restarts[i]!;
    return [
      {
        measure: `restart after ${r.how}: spawn to listening (first /healthz)`,
        ours: `${fmt(r.listenMs)} ms`,
        baseline: `${fmt(f.listenMs)} ms`,
        ratio: ratio(r.listenMs, f.listenMs),
        goal: `≤ ${GOAL_LISTEN_MS} ms`,
        met: r.listenMs <= GOAL_LISTEN_MS,
      },
      {
        measure: `the same, to the "gateway listening" line it logged`,
        ours: r.selfListenMs === undefined ? "not logged" : `${fmt(r.selfListenMs)} ms`,
        baseline: f.selfListenMs === undefined ? "not logged" : `${fmt(f.selfListenMs)} ms`,
        ratio:
          r.selfListenMs === undefined || f.selfListenMs === undefined ? "" : ratio(r.selfListenMs, f.selfListenMs),
      },
      {
        measure: `restart after ${r.how}: spawn to all ${VIEWERS} viewers' screens back`,
        ours: `${fmt(r.viewersMs)} ms`,
        baseline: `${fmt(f.viewersMs)} ms`,
        ratio: ratio(r.viewersMs, f.viewersMs),
        goal: `≤ ${GOAL_VIEWERS_MS} ms`,
        met: r.viewersMs <= GOAL_VIEWERS_MS,
      },
    ];
  });
  return {
    title: "scale",
    rows: [
      {
        measure: `create rate (${SESSIONS} PTY sessions under holders, ${CREATE_CONCURRENCY} at once)`,
        ours: `${fmt(ours.createPerS)} /s`,
        baseline: `${fmt(floor.createPerS)} /s`,
        ratio: ratio(ours.createPerS, floor.createPerS),
      },
      {
        measure: `gateway RSS (descriptors open)`,
        ours: `${fmt(ours.gatewayRssMib)} MiB (${ours.gatewayFds} fds)`,
        baseline: `${fmt(floor.gatewayRssMib)} MiB (${floor.gatewayFds} fds)`,
        ratio: ratio(ours.gatewayRssMib, floor.gatewayRssMib),
      },
      {
        measure: `holders' PSS, summed`,
        ours: `${fmt(ours.holdersPssMib)} MiB`,
        baseline: `${fmt(floor.holdersPssMib)} MiB`,
        ratio: ratio(ours.holdersPssMib, floor.holdersPssMib),
      },
      {
        measure: `GET /v1/sessions (${SESSIONS} listed), p50`,
        ours: `${fmt(ours.listP50, 2)} ms`,
        baseline: `${fmt(floor.listP50, 2)} ms`,
        ratio: ratio(ours.listP50, floor.listP50),
      },
      {
        measure: `GET /v1/sessions (${SESSIONS} listed), p99 of ${LIST_REQUESTS}`,
        ours: `${fmt(ours.listP99, 2)} ms`,
        baseline: `${fmt(floor.listP99, 2)} ms`,
        ratio: ratio(ours.listP99, floor.listP99),
        goal: `≤ ${GOAL_LIST_P99_MS} ms`,
        met: ours.listP99 <= GOAL_LIST_P99_MS,
      },
      {
        measure: `the same, to the answer parsed by the client, p50 / p99`,
        ours: `${fmt(ours.parsedP50, 2)} / ${fmt(ours.parsedP99, 2)} ms`,
        baseline: `${fmt(floor.parsedP50, 2)} / ${fmt(floor.parsedP99, 2)} ms`,
        ratio: ratio(ours.parsedP99, floor.parsedP99),
      },
      ...restartRows,
    ],
    method: [
      `A \`switchboard serve\` child (src/ bundled as \`npm run build\` ships it, holders on, \`onStop: keep\`); ${SESSIONS} \`bash --norc --noprofile -i\` PTY sessions (Switchboard) or \`cat\` ones (baseline: nothing on their screens), created over HTTP.`,
      "Memory once every prompt is listed: the gateway's RSS and open descriptors, the holders' PSS summed (`/proc/PID/smaps_rollup`).",
      `List: ${LIST_REQUESTS} \`GET /v1/sessions?limit=1000\` one after the other over HTTP from the bench's process, timed from the request to the answer's last byte; each answer is then parsed (\`JSON.parse\` of ~0.5 MB, 2–3 ms and a heap of garbage in the client), which the next row adds.`,
      `Restart: the gateway killed (SIGKILL, then SIGTERM with its stop), the next spawned on the same port; ${VIEWERS} WebSocket viewers (\`?since=screen\`) reconnect every 20 ms from the spawn on; times from the spawn to the first \`/healthz\` 200 and to the last viewer's screen (a bash one shows its prompt). The \`/healthz\` probe shares the bench's process with the 50 viewers; the time of the gateway's own "gateway listening" line (its clock) is the row after it: on a busy host the probe's first answer came up to 0.6 s after it.`,
      '`SCALE_SESSIONS` changes the count; `SCALE_CPU_PROF=<dir>` profiles the restarted gateways. Each restarted gateway times its start\'s steps (its "gateway started" log line): in the notes.',
    ],
    notes: [
      `${SESSIONS} sessions; load while the list was timed ${fmt(ours.load, 1)} (bash), ${fmt(floor.load, 1)} (cat); SIGTERM stop took ${fmt(ours.restarts[1]!.stopMs)} ms (bash), ${fmt(floor.restarts[1]!.stopMs)} ms (cat)`,
      ...[ours, floor].flatMap((k) =>
        k.restarts.map((r) => `start after ${r.how} (${k.kind}), its steps in ms: ${r.phases}`),
      ),
    ],
  };
}
