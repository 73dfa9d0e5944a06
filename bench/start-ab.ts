/**
 * `node --import tsx bench/start-ab.ts`: a gateway's start, src/ compiled file by file (as tsc
 * lays out dist/) against src/ bundled (scripts/bundle-sources.mjs, what `npm run build` ships as
 * the CLI), in alternating rounds: the `boot` step of its "gateway started" line (process start to
 * the gateway's first step: mostly loading the modules), the spawn to the first `/healthz` 200,
 * and the gateway's CPU time until then (`/proc/PID/stat`: steadier than wall time under load).
 * The bundle also without its source maps (what `cli/main.js` turns on costs reading them).
 * Once with an empty data dir each round, once restarted over START_AB_SESSIONS `cat` sessions
 * held by holders (the gateway killed with SIGKILL before each round). Prints a Markdown table:
 * medians, and the median of each round's ratio to the file-by-file start just before it (the
 * load of a shared machine moves between rounds more than between the two starts of one).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundledCommand, compiledCommand } from "./compiled.js";
import { fmt, median } from "./stats.js";
import { listeningUrl } from "./proc.js";

/** Rounds per build and case (`START_AB_ROUNDS`). */
const ROUNDS = Number(process.env["START_AB_ROUNDS"] ?? 10);
/** Held sessions of the second case (`START_AB_SESSIONS`). */
const SESSIONS = Number(process.env["START_AB_SESSIONS"] ?? 200);
/** How long one gateway may take to answer `/healthz`. */
const WAIT_MS = 120_000;
const TOKEN = "bench-start-ab-token-0123456789abcdef";
/** The bundle without its source maps: `cli/main.bundle.js`, the CLI `cli/main.js` imports. */
const unmapped = (file: string) =>
  bundledCommand(file).map((p, i) => (i === 1 ? p.replace(/main\.js$/, "main.bundle.js") : p));
const BUILDS = { "file by file": compiledCommand, bundle: bundledCommand, "bundle, maps off": unmapped } as const;
type Build = keyof typeof BUILDS;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Started {
  child: ChildProcess;
  exited: Promise<void>;
  /** Spawn to the first `/healthz` 200, ms. */
  healthzMs: number;
  /** The `boot` step of the "gateway started" line, ms. */
  bootMs: number;
  /** The process's CPU time from its start to the first `/healthz`, ms. */
  cpuMs: number;
  port: number;
}

/** Starts `switchboard serve` built as `build` on `port` (0: any) and waits for its `/healthz`. */
async function start(build: Build, dir: string, port: number): Promise<Started> {
  const [node, main] = BUILDS[build]("src/cli/main.ts");
  const logFile = join(dir, `serve-${Date.now()}.log`);
  const log = openSync(logFile, "a");
  const args = ["serve", "--token", TOKEN, "--host", "127.0.0.1", "--port", String(port)];
  args.push("--data-dir", join(dir, "data"), "--config", join(dir, "config.json"), "--holders", "on");
  const spawned = performance.now();
  const child = spawn(node!, [main!, ...args], { stdio: ["ignore", "pipe", log] });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let bound = port;
  if (bound === 0) bound = Number(new URL(await listeningUrl(child, build)).port);
  else child.stdout!.resume();
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${bound}/healthz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (performance.now() - spawned > WAIT_MS) throw new Error(`no /healthz after ${WAIT_MS} ms`);
    await sleep(5);
  }
  const healthzMs = performance.now() - spawned;
  // utime and stime, all threads (the screen thread's too), in clock ticks (USER_HZ, 100 on Linux).
  const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const cpuMs = (Number(stat[11]) + Number(stat[12])) * 10;
  // The line follows the listen by the plugins' step: waits for it.
  let line: string | undefined;
  while (
    (line = readFileSync(logFile, "utf8")
      .split("\n")
      .find((l) => l.includes('"gateway started"'))) === undefined
  )
    await sleep(20);
  const bootMs = (JSON.parse(line) as { startMs: { boot: number } }).startMs.boot;
  return { child, exited, healthzMs, bootMs, cpuMs, port: bound };
}

async function stop(started: Started): Promise<void> {
  started.child.kill("SIGKILL");
  await started.exited;
}

function configure(dir: string): void {
  const limits = { sessions: SESSIONS + 10, sessionsPerToken: SESSIONS + 10 };
  writeFileSync(join(dir, "config.json"), JSON.stringify({ sessions: { holders: true, onStop: "keep" }, limits }));
}

type Samples = Record<Build, { boot: number[]; healthz: number[]; cpu: number[] }>;
const samples = () =>
  Object.fromEntries(
    Object.keys(BUILDS).map((build) => [build, { boot: [], healthz: [], cpu: [] }]),
  ) as unknown as Samples;

/** Each round a fresh data dir. */
async function empty(): Promise<Samples> {
  const out = samples();
  for (let round = 0; round < ROUNDS; round++) {
    for (const build of Object.keys(BUILDS) as Build[]) {
      const dir = mkdtempSync(join(tmpdir(), "bench-start-ab-"));
      try {
        configure(dir);
        const started = await start(build, dir, 0);
        out[build].boot.push(started.bootMs);
        out[build].healthz.push(started.healthzMs);
        out[build].cpu.push(started.cpuMs);
        await stop(started);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  return out;
}

/** SESSIONS `cat` sessions under holders; each round the gateway killed and the next started. */
async function held(): Promise<Samples> {
  const out = samples();
  const dir = mkdtempSync(join(tmpdir(), "bench-start-ab-held-"));
  const holders: number[] = [];
  let current: Started | undefined;
  try {
    configure(dir);
    current = await start("bundle", dir, 0);
    const { port } = current;
    const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    for (let i = 0; i < SESSIONS; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/v1/sessions`, {
        method: "POST",
        headers,
        body: JSON.stringify({ command: ["cat"], pty: true }),
      });
      if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
      const { pid } = (await res.json()) as { pid: number };
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      holders.push(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const build of Object.keys(BUILDS) as Build[]) {
        await stop(current);
        current = await start(build, dir, port);
        out[build].boot.push(current.bootMs);
        out[build].healthz.push(current.healthzMs);
        out[build].cpu.push(current.cpuMs);
        const res = await fetch(`http://127.0.0.1:${port}/v1/sessions?limit=1000`, { headers });
        const { sessions } = (await res.json()) as { sessions: { state: string }[] };
        if (sessions.filter((s) => s.state === "running").length !== SESSIONS)
          throw new Error(`after a restart: not all ${SESSIONS} sessions running`);
      }
    }
    return out;
  } finally {
    if (current !== undefined) await stop(current);
    for (const pid of holders) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already (its program ended).
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Median (min–max) of `v`; with `base`, the median of the rounds' ratios to it (same round). */
function cell(v: number[], base?: number[]): string {
  const sorted = [...v].sort((a, b) => a - b);
  const spread = `${fmt(median(v))} (${fmt(sorted[0]!)}–${fmt(sorted.at(-1)!)})`;
  return base === undefined ? spread : `${spread}, ${median(v.map((x, i) => x / base[i]!)).toFixed(2)}×`;
}

function rows(name: string, s: Samples): string[] {
  const base = s["file by file"];
  return (Object.keys(BUILDS) as Build[]).map((build) => {
    const b = build === "file by file" ? undefined : base;
    const cells = [cell(s[build].boot, b?.boot), cell(s[build].healthz, b?.healthz), cell(s[build].cpu, b?.cpu)];
    return `| ${name} | ${build} | ${cells.join(" | ")} |`;
  });
}

const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const loadBefore = load();
const e = await empty();
const h = SESSIONS > 0 ? await held() : undefined;
console.log(`${ROUNDS} rounds per build, alternating; load average ${loadBefore} before, ${load()} after`);
console.log(
  "| data dir | build | `boot` ms, median (min–max), ratio to file by file | spawn to `/healthz` ms, the same | CPU to `/healthz` ms, the same |",
);
console.log("| --- | --- | --- | --- | --- |");
for (const row of [...rows("empty", e), ...(h ? rows(`${SESSIONS} held sessions`, h) : [])]) console.log(row);
process.exit(0);
