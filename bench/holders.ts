import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import pino from "pino";
import { connect } from "../src/client/node.js";
import type { SessionEvent } from "../src/client/node.js";

type Client = Awaited<ReturnType<typeof connect>>;
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { fmt, median, percentile } from "./stats.js";
import type { BenchSection } from "./types.js";

/**
 * Session holders (native/holder.c) beside terminal processes in the gateway, in one process:
 * two gateways, one with `sessions.holders` on and one off, measured alternately. A PTY flood to
 * an SDK viewer, keystroke echo through the viewer, the event loop's stall while many held
 * sessions are created at once, the memory of idle holders, and a restart that adopts many.
 */

const TOKEN = "bench-holders-token-0123456789abcdef";
/** The flood each round: bytes of "a" through a PTY to a viewer. */
export const FLOOD_BYTES = 20 * 1024 * 1024;
export const FLOOD_ROUNDS = 5;
/** Keystrokes per side (echoed by a raw `cat`). */
export const ECHO_KEYS = 200;
/** Idle held sessions whose holders' memory is measured. */
export const IDLE_SESSIONS = 50;
/** Held PTY sessions created at once, while the event loop's longest stall is measured. */
export const BURST_SESSIONS = 64;
/** Held sessions a restarted gateway adopts. */
export const RESTART_SESSIONS = 200;
export const GOAL_FLOOD_RATIO = 0.9;
export const GOAL_ECHO_EXTRA_MS = 0.1;
export const GOAL_IDLE_MIB = 2;
export const GOAL_RESTART_MS = 2000;
export const GOAL_BURST_DELAY_MS = 200;

interface Side {
  gateway: Gateway;
  client: Client;
  dataDir: string;
}

async function openSide(holders: boolean, dataDir = mkdtempSync(join(tmpdir(), "bench-holders-"))): Promise<Side> {
  const gateway = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    token: TOKEN,
    logger: pino({ level: "silent" }),
    config: { sessions: { holders, onStop: "keep" }, limits: { sessions: 1000, sessionsPerToken: 1000 } },
  });
  const client = await connect({ url: gateway.url, token: TOKEN });
  return { gateway, client, dataDir };
}

/** ms from create to the viewer holding FLOOD_BYTES of output. */
async function floodRound(side: Side): Promise<number> {
  const started = performance.now();
  const session = await side.client.createSession({
    command: ["sh", "-c", `head -c ${FLOOD_BYTES} /dev/zero | tr '\\0' a`],
    pty: true,
  });
  let bytes = 0;
  await new Promise<void>((resolve) => {
    const sub = side.client.subscribe(session.id, { since: 0 }, (e: SessionEvent) => {
      if (e.type === "output") bytes += e.data.length;
      if (e.type === "exit" || bytes >= FLOOD_BYTES) {
        sub.unsubscribe();
        resolve();
      }
    });
  });
  const ms = performance.now() - started;
  await side.client.removeSession(session.id, { force: true });
  return ms;
}

/** Per key: ms from `input` until its echo reaches the viewer. */
async function echoRound(side: Side): Promise<number[]> {
  const session = await side.client.createSession({ command: ["sh", "-c", "stty raw -echo; exec cat"], pty: true });
  let text = "";
  let waiter: (() => void) | undefined;
  const sub = side.client.subscribe(session.id, { since: 0 }, (e: SessionEvent) => {
    if (e.type !== "output") return;
    text += e.data;
    waiter?.();
  });
  // The terminal is raw once a first key comes back.
  await waitFor(
    side.client,
    session.id,
    "!",
    () => text.includes("!"),
    (w) => (waiter = w),
  );
  const out: number[] = [];
  for (let i = 0; i < ECHO_KEYS; i++) {
    const key = String.fromCharCode(97 + (i % 26));
    const before = text.length;
    const t0 = performance.now();
    await waitFor(
      side.client,
      session.id,
      key,
      () => text.length > before,
      (w) => (waiter = w),
    );
    out.push(performance.now() - t0);
  }
  sub.unsubscribe();
  await side.client.removeSession(session.id, { force: true });
  return out;
}

async function waitFor(
  client: Client,
  id: string,
  key: string,
  done: () => boolean,
  setWaiter: (w: (() => void) | undefined) => void,
): Promise<void> {
  const arrived = new Promise<void>((resolve) =>
    setWaiter(() => {
      if (done()) resolve();
    }),
  );
  await client.input(id, key);
  if (!done()) await arrived;
  setWaiter(undefined);
}

/** RSS and PSS (KiB) of process `pid`. */
function memoryOf(pid: number): { rss: number; pss: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(rollup)?.[1] ?? NaN);
  return { rss: field("Rss"), pss: field("Pss") };
}

export async function run(): Promise<BenchSection> {
  const held = await openSide(true);
  const plain = await openSide(false);
  try {
    const flood = { held: [] as number[], plain: [] as number[] };
    for (let r = 0; r < FLOOD_ROUNDS; r++) {
      flood.plain.push(await floodRound(plain));
      flood.held.push(await floodRound(held));
    }
    const echo = { held: [] as number[], plain: [] as number[] };
    for (let r = 0; r < 2; r++) {
      echo.plain.push(...(await echoRound(plain)));
      echo.held.push(...(await echoRound(held)));
    }
    // A burst: BURST_SESSIONS PTY sessions created at once; the loop's first tick only starts its clock.
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    await new Promise((r) => setTimeout(r, 50));
    const burstStarted = performance.now();
    const burst = await Promise.all(
      Array.from({ length: BURST_SESSIONS }, () => held.client.createSession({ command: ["sleep", "600"], pty: true })),
    );
    const burstMs = performance.now() - burstStarted;
    await new Promise((r) => setTimeout(r, 50));
    loop.disable();
    const burstDelayMs = loop.max / 1e6;
    for (const s of burst) await held.client.removeSession(s.id, { force: true });

    // Idle: an interactive shell at its prompt per session.
    const idle = [];
    for (let i = 0; i < IDLE_SESSIONS; i++)
      idle.push(await held.client.createSession({ command: ["bash", "--norc", "--noprofile", "-i"], pty: true }));
    await new Promise((r) => setTimeout(r, 1000));
    const holderPids = held.gateway.core.sessions
      .list()
      .map((s) => s.record.holder?.pid)
      .filter((p): p is number => p !== undefined);
    const mem = holderPids.map(memoryOf);
    const rss = median(mem.map((m) => m.rss)) / 1024;
    const pss = median(mem.map((m) => m.pss)) / 1024;
    for (const s of idle) await held.client.removeSession(s.id, { force: true });

    // Restart: RESTART_SESSIONS held sessions, the gateway stopped (kept) and started again.
    for (let i = 0; i < RESTART_SESSIONS; i++) await held.client.createSession({ command: ["sleep", "600"] });
    held.client.close();
    await held.gateway.close();
    const restartStarted = performance.now();
    const again = await openSide(true, held.dataDir);
    const adopted = async () => (await again.gateway.core.metrics.sessionsAdopted.get()).values[0]?.value ?? 0;
    while ((await adopted()) < RESTART_SESSIONS && performance.now() - restartStarted < 30_000)
      await new Promise((r) => setTimeout(r, 5));
    const restartMs = performance.now() - restartStarted;
    const adoptedCount = await adopted();
    for (const s of again.gateway.core.sessions.list())
      if (s.running) await again.client.removeSession(s.id, { force: true });
    again.client.close();
    await again.gateway.close();
    rmSync(held.dataDir, { recursive: true, force: true });

    const mibps = (ms: number) => FLOOD_BYTES / 2 ** 20 / (ms / 1000);
    const floodHeld = mibps(median(flood.held));
    const floodPlain = mibps(median(flood.plain));
    echo.held.sort((a, b) => a - b);
    echo.plain.sort((a, b) => a - b);
    const echoHeld = percentile(echo.held, 50);
    const echoPlain = percentile(echo.plain, 50);
    return {
      title: "Session holders",
      rows: [
        {
          measure: `PTY flood to an SDK viewer (${FLOOD_BYTES / 2 ** 20} MiB, median of ${FLOOD_ROUNDS})`,
          ours: `${fmt(floodHeld)} MiB/s`,
          baseline: `${fmt(floodPlain)} MiB/s`,
          ratio: fmt(floodHeld / floodPlain, 2),
          goal: `≥ ${GOAL_FLOOD_RATIO}×`,
          met: floodHeld / floodPlain >= GOAL_FLOOD_RATIO,
        },
        {
          measure: `keystroke echo to the viewer, p50 (${echo.held.length} keys)`,
          ours: `${fmt(echoHeld, 2)} ms`,
          baseline: `${fmt(echoPlain, 2)} ms`,
          ratio: fmt(echoHeld / echoPlain, 2),
          goal: `≤ +${GOAL_ECHO_EXTRA_MS} ms`,
          met: echoHeld - echoPlain <= GOAL_ECHO_EXTRA_MS,
        },
        {
          measure: `keystroke echo, p99`,
          ours: `${fmt(percentile(echo.held, 99), 2)} ms`,
          baseline: `${fmt(percentile(echo.plain, 99), 2)} ms`,
        },
        {
          measure: `${BURST_SESSIONS} PTY sessions created at once: the event loop's longest delay`,
          ours: `${fmt(burstDelayMs)} ms (all created in ${fmt(burstMs)} ms)`,
          goal: `≤ ${GOAL_BURST_DELAY_MS} ms`,
          met: burstDelayMs <= GOAL_BURST_DELAY_MS,
        },
        {
          measure: `memory of an idle holder (median of ${IDLE_SESSIONS}; PSS, RSS)`,
          ours: `${fmt(pss, 2)} MiB PSS, ${fmt(rss, 2)} MiB RSS`,
          goal: `≤ ${GOAL_IDLE_MIB} MiB`,
          met: rss <= GOAL_IDLE_MIB,
        },
        {
          measure: `restart adopting ${RESTART_SESSIONS} held sessions (start to all adopted)`,
          ours: `${fmt(restartMs)} ms (${adoptedCount} adopted)`,
          goal: `≤ ${GOAL_RESTART_MS} ms`,
          met: restartMs <= GOAL_RESTART_MS && adoptedCount === RESTART_SESSIONS,
        },
      ],
      method: [
        "Two in-process gateways, `sessions.holders` on (Switchboard) and off (baseline), alternating rounds.",
        "Flood: `head -c | tr` through a PTY, from create until the SDK viewer (`/v1/ws`) holds every byte.",
        "Echo: a raw `cat` in a PTY; each key sent with `client.input`, timed until its echo reaches the same client.",
        "Burst: the SDK creates the sessions at once (`Promise.all`) on the held side; `monitorEventLoopDelay` (5 ms resolution) over the gateway's and the client's process.",
        "Memory: `/proc/PID/smaps_rollup` of each holder with an idle `bash -i`; PSS shares libc's pages among holders.",
        "Restart: the gateway closed with `onStop: keep`, a new one started on the data dir; until the adopted counter reaches the count.",
      ],
      notes: [
        `flood ms held: ${flood.held.map((v) => fmt(v)).join(", ")}; in the gateway: ${flood.plain.map((v) => fmt(v)).join(", ")}`,
        `echo p50/p90 held ${fmt(echoHeld, 3)}/${fmt(percentile(echo.held, 90), 3)} ms; in the gateway ${fmt(echoPlain, 3)}/${fmt(percentile(echo.plain, 90), 3)} ms`,
      ],
    };
  } finally {
    for (const side of [held, plain]) {
      side.client.close();
      await side.gateway.close();
    }
    rmSync(plain.dataDir, { recursive: true, force: true });
  }
}
