// One hostile run (docs/security.md, "Fuzzing": hostile clients beside honest ones): a gateway in
// a child process (real PTYs, SQLite, sockets on 127.0.0.1), honest clients in this process
// first alone (the baseline) and then beside three hostile child processes playing a seeded
// schedule, the gateway's memory sampled all along, and the checker. Used by
// test/security/hostile-nemesis.test.ts (bounded) and `npm run nemesis -- --hostile`.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";
import { COMPILE_OPTIONS } from "../../../scripts/compile-sources.js";
import type { FinalLog } from "../../cluster/nemesis/checker.js";
import { NEMESIS_TOKEN, NemesisNode } from "../../cluster/nemesis/cluster.js";
import { COMPILED_SOURCES } from "../../helpers/compiled-cli.js";
import { readAll } from "../../cluster/nemesis/run.js";
import { Rng, runViewer, sleep } from "../../cluster/nemesis/workload.js";
import type { ViewerRecord } from "../../cluster/nemesis/workload.js";
import { checkHostile, summarize } from "./checker.js";
import type { HostileAnomaly } from "./checker.js";
import { probeHealthz, probeScreen, runOperator } from "./honest.js";
import type { OperatorRecord, Phase, Sample } from "./honest.js";
import { ACTION_MAX_MS, HOSTILE_KINDS, LANES, hostileSchedule } from "./schedule.js";
import type { HostileAction, HostileKind } from "./schedule.js";
import { BIG_SESSION_BYTES, HOSTILE_TOKENS } from "./targets.js";
import type { ActorInput, ActorReport, CredentialRecord, HostileSessions } from "./targets.js";

const ACTOR = fileURLToPath(new URL("./actor.ts", import.meta.url));
const REPO = fileURLToPath(new URL("../../..", import.meta.url));

/** A raw `cat` in a PTY: every byte written comes back once as output, escapes untouched. */
const RAW_CAT = ["sh", "-c", "stty raw -echo; exec cat"];
/** A PTY printing a numbered line every 50 ms: what the credential actions' streams follow. */
const TICKER = ["sh", "-c", 'i=0; while [ $i -lt 100000 ]; do echo "tick $i"; i=$((i+1)); sleep 0.05; done'];
/** How often the gateway's resident memory is read. */
const RSS_EVERY_MS = 200;
/** Past this growth over the baseline the gateway is killed: the machine is shared (the checker's bound is RSS_GROWTH_MAX). */
const RSS_KILL_GROWTH = 1536 * 1024 * 1024;
/** Honest clients run this long before the baseline is sampled (their first connections, the JIT). */
const WARMUP_MS = 1_500;
/** Honest clients go on this long after the hostile ones are done, then stop. */
const DRAIN_MS = 1_000;
/**
 * The wire and output lanes' scheduling priority (nice): low, yet not starved on a loaded
 * machine (at 19 and a load average of 20 they carried out none of their actions).
 */
const HOSTILE_NICE = 10;
/** How long a hostile child may take to load (under tsx, compiling it) and say it is ready. */
const ACTOR_READY_MS = 60_000;

/**
 * Node's arguments for a hostile child. Under vitest: actor.ts bundled (esbuild, ~0.3 s) into the
 * run's compiled sources, whose place in the repository resolves its packages; three children
 * compiling it under a cold `--import tsx` side by side took ~7 s at load 5, all before the first
 * probe (docs/benchmarks.md, "The test suite"). Elsewhere (`npm run nemesis`), tsx.
 */
function actorArgs(): string[] {
  const dir = process.env[COMPILED_SOURCES];
  if (dir === undefined) return ["--import", "tsx", ACTOR];
  const bundle = join(dir, `hostile-actor-${process.pid}.mjs`);
  if (!existsSync(bundle))
    buildSync({ entryPoints: [ACTOR], bundle: true, packages: "external", outfile: bundle, ...COMPILE_OPTIONS });
  return [bundle];
}

export interface HostileOptions {
  seed: number;
  /** Honest clients alone, before any hostile one (the same run's baseline). */
  baselineMs: number;
  /** The hostile schedule's span; the run takes about 15 s more (start, setup, drain, checks). */
  hostileMs: number;
  /** Only these kinds of the seed's schedule (to tell which one a finding needs); all when absent. */
  only?: readonly HostileKind[];
  log?: (line: string) => void;
}

export interface ProbeSummary {
  p99: number;
  max: number;
  n: number;
}

export interface HostileReport {
  seed: number;
  healthz: Record<"baseline" | "hostile", ProbeSummary>;
  echo: Record<"baseline" | "hostile", ProbeSummary>;
  /** An honest session's screen (informative: its failures are anomalies, its latency is not judged). */
  screen: Record<"baseline" | "hostile", ProbeSummary>;
  /** Honest p99s over the samples sent while an action of each kind ran (a hint at which hurts, not a check). */
  whileRunning: Partial<Record<HostileKind, { healthz: number; echo: number }>>;
  /** The gateway's and the hostile children's CPU use (one core = 100) and the machine's 1-minute load average, per phase. */
  cpu: Record<"baseline" | "hostile", { gateway: number; hostile: number; load: number }>;
  rss: { baseline: number; max: number };
  /** Actions scheduled, reported done and failed, by kind. */
  actions: Record<HostileKind, { scheduled: number; done: number; failed: number }>;
  credentials: CredentialRecord[];
  anomalies: HostileAnomaly[];
  /** What the hostile actions said they did, and the gateway's newest warnings (for a failed run's diagnosis). */
  notes: string[];
}

async function call(url: string, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function createSession(url: string, token: string, body: Record<string, unknown>): Promise<string> {
  return (await call(url, token, "POST", "/v1/sessions", body))["id"] as string;
}

/** The gateway's resident set, bytes (0 once it is gone). */
function rssOf(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    // The process is gone: nothing resident.
    return 0;
  }
}

/** CPU seconds the process has used (user and system), 0 once it is gone. */
function cpuOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime, fields 14 and 15 of stat (11 and 12 after the command), in clock ticks.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    // The process is gone.
    return 0;
  }
}

function loadAverage(): number {
  return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
}

/** The hostile sessions, mallory's all (named `hostile-*`, which devices paired in the run may see). */
async function hostileSessions(url: string, honest: string[]): Promise<HostileSessions> {
  const mallory = HOSTILE_TOKENS.mallory;
  const big = await createSession(url, mallory, { kind: "stream", name: "hostile-big" });
  const piece = "\x1b[33mbig\x1b[0m transcript line 0123456789 abcdefghijklmnopqrstuvwxyz\r\n".repeat(2048);
  const batch = Array.from({ length: Math.floor((700 * 1024) / piece.length) }, () => ({
    type: "output",
    data: { stream: "stdout", data: piece },
  }));
  const per = batch.length * piece.length;
  for (let bytes = 0; bytes < BIG_SESSION_BYTES; bytes += per)
    await call(url, mallory, "POST", `/v1/sessions/${big}/events`, batch);
  const pty = (name: string, command: string[]) =>
    createSession(url, mallory, { command, pty: true, cols: 80, rows: 24, name });
  return {
    big,
    ticker: await pty("hostile-ticker", TICKER),
    term: await pty("hostile-term", RAW_CAT),
    frames: await pty("hostile-frames", RAW_CAT),
    escapes: [await pty("hostile-escapes-0", RAW_CAT), await pty("hostile-escapes-1", RAW_CAT)],
    honest,
  };
}

/**
 * A hostile child for one lane, loaded and ready; `go()` starts its schedule; `done` resolves when
 * it exited. The wire and output lanes run at a low priority (HOSTILE_NICE): an attacker's own CPU
 * is spent on its own machine, not on the gateway's, and the probes measure what the gateway
 * does, not what a busy sender next to it takes from a 2-core machine. The credentials lane
 * sends little and times closes, which a starved process would see late: it runs at the default.
 */
async function startActor(input: ActorInput, reports: ActorReport[], stderr: string[]) {
  const child: ChildProcess = spawn(process.execPath, actorArgs(), {
    cwd: REPO,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const done = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.stderr!.on("data", (d: Buffer) => stderr.push(`${input.lane}: ${d.toString().slice(0, 2000)}`));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the ${input.lane} lane was not ready in ${ACTOR_READY_MS} ms`)),
      ACTOR_READY_MS,
    );
    void done.then(() => reject(new Error(`the ${input.lane} lane exited at start: ${stderr.join("").slice(-2000)}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) {
        stderr.push(`${input.lane}: ${line.slice(0, 2000)}`);
        return;
      }
      const report = JSON.parse(line) as ActorReport;
      if (report.type === "ready") {
        clearTimeout(timer);
        resolve();
      } else reports.push(report);
    });
  });
  child.stdin!.write(`${JSON.stringify(input)}\n`);
  await ready;
  // Lowered once loaded: at a low priority on a loaded machine, tsx took over a minute to compile it.
  if (input.lane !== "credentials") setPriority(child.pid!, HOSTILE_NICE);
  return {
    pid: child.pid,
    go: () => child.stdin!.write("go\n"),
    done,
    kill: () => child.kill("SIGKILL"),
  };
}

/** Runs the honest and hostile clients once and checks the promise; resolves with the report (anomalies listed, never thrown). */
export async function runHostileNemesis(o: HostileOptions): Promise<HostileReport> {
  const say = o.log ?? (() => undefined);
  const root = mkdtempSync(join(tmpdir(), "sb-hostile-"));
  const config = join(root, "config.json");
  const tokens = (["alice", "bob", "mallory"] as const).map((name) => ({
    name,
    token: HOSTILE_TOKENS[name],
    role: "operator",
  }));
  writeFileSync(
    config,
    JSON.stringify({
      auth: {
        tokens: [
          ...tokens,
          // Signs in as a browser: sees mallory's sessions, which are all named hostile-*.
          { name: "trudy", token: HOSTILE_TOKENS.trudy, role: "viewer", sessions: ["hostile-*"] },
        ],
      },
    }),
  );
  const node = new NemesisNode("gw", join(root, "data"), ["--config", config]);
  const actors: Array<Awaited<ReturnType<typeof startActor>>> = [];
  let sampler: NodeJS.Timeout | undefined;
  let stopped = false;
  try {
    await node.start();
    const url = node.url;
    const operators: OperatorRecord[] = (["alice", "bob"] as const).map((name) => ({
      name,
      session: "",
      typed: [],
      output: [],
      echo: [],
      problems: [],
      connections: 0,
    }));
    for (const op of operators)
      op.session = await createSession(url, HOSTILE_TOKENS[op.name as "alice" | "bob"], {
        command: ["cat"],
        pty: true,
        cols: 80,
        rows: 24,
        name: `honest-${op.name}`,
      });
    const sessions = await hostileSessions(
      url,
      operators.map((op) => op.session),
    );
    const schedule = hostileSchedule(o.seed, o.hostileMs).filter((a) => o.only?.includes(a.kind) ?? true);
    const reports: ActorReport[] = [];
    const stderr: string[] = [];
    // Loaded side by side (tsx compiles each); kept in `actors` as each is ready, so the finally kills them.
    await Promise.all(
      LANES.map(async (lane) => {
        const input: ActorInput = {
          lane,
          url,
          admin: NEMESIS_TOKEN,
          sessions,
          actions: schedule.filter((a) => a.lane === lane),
        };
        actors.push(await startActor(input, reports, stderr));
      }),
    );
    say(`schedule: ${schedule.map((a) => `${a.at}ms ${a.kind}#${a.id}`).join(", ")}`);

    // The gateway's memory all along; past RSS_KILL_GROWTH it is stopped before it takes the machine.
    const rss = { baseline: 0, max: 0 };
    // The children's CPU as last seen (they may have exited when it is asked for).
    const laneCpu = new Map<number | undefined, number>();
    const killed: string[] = [];
    let phase: Phase = "warmup";
    sampler = setInterval(() => {
      for (const a of actors) laneCpu.set(a.pid, Math.max(laneCpu.get(a.pid) ?? 0, cpuOf(a.pid)));
      const now = rssOf(node.child?.pid);
      if (phase === "baseline") rss.baseline = Math.max(rss.baseline, now);
      rss.max = Math.max(rss.max, now);
      if (rss.baseline > 0 && now - rss.baseline > RSS_KILL_GROWTH && node.alive) {
        killed.push(`killed by the run at ${(now / 2 ** 20).toFixed(0)} MiB resident (the machine is shared)`);
        node.kill9();
      }
    }, RSS_EVERY_MS);

    const honest = {
      healthz: probeHealthz(
        url,
        () => phase,
        () => stopped,
      ),
      screen: probeScreen({
        url,
        token: HOSTILE_TOKENS.alice,
        session: operators[0]!.session,
        phase: () => phase,
        stopped: () => stopped,
      }),
      operators: operators.map((record) =>
        runOperator({
          url,
          token: HOSTILE_TOKENS[record.name as "alice" | "bob"],
          record,
          phase: () => phase,
          stopped: () => stopped,
        }),
      ),
    };
    const viewers: ViewerRecord[] = operators.map((op) => ({
      name: `viewer-${op.name}`,
      session: op.session,
      bytes: false,
      events: [],
      output: [],
      resets: [],
      problems: [],
      connections: 0,
    }));
    const viewing = viewers.map((v, i) => runViewer(v, [node], new Rng(o.seed + 100 + i), () => stopped));

    await sleep(WARMUP_MS);
    phase = "baseline";
    const pid = node.child?.pid;
    const lanesCpu = () => actors.reduce((n, a) => n + Math.max(laneCpu.get(a.pid) ?? 0, cpuOf(a.pid)), 0);
    const cpu0 = { at: performance.now(), cpu: cpuOf(pid), lanes: lanesCpu() };
    await sleep(o.baselineMs);
    say(`hostile phase: ${schedule.length} actions`);
    const cpu1 = { at: performance.now(), cpu: cpuOf(pid), lanes: lanesCpu(), load: loadAverage() };
    phase = "hostile";
    for (const actor of actors) actor.go();
    const lastAt = Math.max(0, ...schedule.map((a) => a.at));
    await sleep(o.hostileMs);
    await Promise.race([Promise.all(actors.map((a) => a.done)), sleep(lastAt - o.hostileMs + ACTION_MAX_MS + 5_000)]);
    const cpu2 = { at: performance.now(), cpu: cpuOf(pid), lanes: lanesCpu(), load: loadAverage() };
    type Reading = typeof cpu0;
    const share = (a: Reading, b: Reading, of: "cpu" | "lanes") =>
      Math.round((100 * (b[of] - a[of])) / ((b.at - a.at) / 1000));
    const cpu = {
      baseline: { gateway: share(cpu0, cpu1, "cpu"), hostile: share(cpu0, cpu1, "lanes"), load: cpu1.load },
      hostile: { gateway: share(cpu1, cpu2, "cpu"), hostile: share(cpu1, cpu2, "lanes"), load: cpu2.load },
    };
    phase = "drain";
    await sleep(DRAIN_MS);
    stopped = true;
    const healthz: Sample[] = await honest.healthz;
    const screen = await honest.screen;
    await Promise.all([...honest.operators, ...viewing]);
    clearInterval(sampler);

    let aliveAtEnd = false;
    try {
      aliveAtEnd = (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) })).status === 200;
    } catch {
      // Unanswered: the checker says so.
    }
    const recordOutput = new Map<string, Buffer>();
    const viewerLogs: FinalLog[] = [];
    if (aliveAtEnd) {
      for (const op of operators) {
        const res = await fetch(`${url}/v1/sessions/${op.session}/output?since=0`, {
          headers: { authorization: `Bearer ${NEMESIS_TOKEN}` },
        });
        recordOutput.set(op.session, Buffer.from(await res.arrayBuffer()));
        viewerLogs.push({ session: op.session, from: "record", events: await readAll(node, op.session) });
      }
    }
    const credentials = reports.flatMap((r) => (r.type === "credential" ? [r.record] : []));
    const anomalies = checkHostile({
      healthz,
      screenFailures: screen.failures,
      operators,
      recordOutput,
      viewers: aliveAtEnd ? viewers : [],
      viewerLogs,
      credentials,
      rss,
      gateway: { problems: [...killed, ...node.report.bugs, ...node.report.unexpectedExits], aliveAtEnd },
    });
    const echo = operators.flatMap((op) => op.echo);
    const actions = Object.fromEntries(
      HOSTILE_KINDS.map((k) => [
        k,
        {
          scheduled: schedule.filter((a: HostileAction) => a.kind === k).length,
          done: reports.filter((r) => r.type === "action" && r.kind === k).length,
          failed: reports.filter((r) => r.type === "failed" && r.kind === k).length,
        },
      ]),
    ) as HostileReport["actions"];
    const whileRunning: HostileReport["whileRunning"] = {};
    for (const kind of HOSTILE_KINDS) {
      const spans = reports.flatMap((r) => (r.type === "action" && r.kind === kind ? [[r.at, r.at + r.ms]] : []));
      const during = (samples: readonly Sample[]) =>
        samples.filter((x) => x.phase === "hostile" && spans.some(([a, b]) => x.at >= a! && x.at <= b!));
      if (spans.length > 0)
        whileRunning[kind] = {
          healthz: summarize(during(healthz), "hostile").p99,
          echo: summarize(during(echo), "hostile").p99,
        };
    }
    const notes = [
      ...reports.map((r) =>
        r.type === "action"
          ? `#${r.id} ${r.kind} ${r.ms} ms: ${r.note}`
          : r.type === "failed"
            ? `#${r.id} ${r.kind} FAILED: ${r.error}`
            : `credential ${JSON.stringify(r.type === "credential" ? r.record : r)}`,
      ),
      ...stderr.slice(-10),
      ...node.report.warnings.slice(-20),
    ];
    return {
      seed: o.seed,
      healthz: { baseline: summarize(healthz, "baseline"), hostile: summarize(healthz, "hostile") },
      echo: { baseline: summarize(echo, "baseline"), hostile: summarize(echo, "hostile") },
      screen: { baseline: summarize(screen.samples, "baseline"), hostile: summarize(screen.samples, "hostile") },
      whileRunning,
      cpu,
      rss,
      actions,
      credentials,
      anomalies,
      notes,
    };
  } finally {
    stopped = true;
    clearInterval(sampler);
    for (const actor of actors) actor.kill();
    await node.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** The report's summary: per probe and phase, memory, actions and anomalies by kind. */
export function hostileSummary(r: HostileReport): string {
  const fmt = (s: ProbeSummary) => `p99 ${s.p99.toFixed(1)} ms, max ${s.max.toFixed(1)} ms, n ${s.n}`;
  const ratio = (a: ProbeSummary, b: ProbeSummary) => (b.p99 > 0 ? (a.p99 / b.p99).toFixed(1) : "-");
  const kinds = new Map<string, number>();
  for (const a of r.anomalies) kinds.set(a.kind, (kinds.get(a.kind) ?? 0) + 1);
  const cut = r.credentials.flatMap((c) => c.connections.filter((x) => x.state === "open"));
  return [
    `seed ${r.seed}`,
    `  /healthz  honest-only ${fmt(r.healthz.baseline)} | with hostile clients ${fmt(r.healthz.hostile)} | ratio ${ratio(r.healthz.hostile, r.healthz.baseline)}`,
    `  echo      honest-only ${fmt(r.echo.baseline)} | with hostile clients ${fmt(r.echo.hostile)} | ratio ${ratio(r.echo.hostile, r.echo.baseline)}`,
    `  screen    honest-only ${fmt(r.screen.baseline)} | with hostile clients ${fmt(r.screen.hostile)}`,
    `  cpu       gateway ${r.cpu.baseline.gateway}% honest-only, ${r.cpu.hostile.gateway}% with hostile clients (theirs ${r.cpu.hostile.hostile}%); load average ${r.cpu.baseline.load} then ${r.cpu.hostile.load}`,
    `  p99 while running (healthz/echo ms): ${Object.entries(r.whileRunning)
      .map(([k, v]) => `${k} ${v.healthz.toFixed(0)}/${v.echo.toFixed(0)}`)
      .join(", ")}`,
    `  rss       baseline ${(r.rss.baseline / 2 ** 20).toFixed(0)} MiB, max ${(r.rss.max / 2 ** 20).toFixed(0)} MiB`,
    `  actions   ${Object.entries(r.actions)
      .map(([k, v]) => `${k} ${v.done}/${v.scheduled}${v.failed > 0 ? ` (${v.failed} failed)` : ""}`)
      .join(", ")}`,
    `  cut       ${cut.length} connections of ${r.credentials.length} ended credentials streamed on: closed within ${Math.max(0, ...cut.flatMap((c) => (c.endedAfterMs === null ? [] : [c.endedAfterMs])))} ms, ${cut.filter((c) => c.endedAfterMs === null).length} never`,
    `  anomalies ${r.anomalies.length === 0 ? 0 : [...kinds].map(([k, n]) => `${k} ${n}`).join(", ")}`,
  ].join("\n");
}
