/**
 * One token's downloads and input share the event loop: while it downloads a 100 MB transcript
 * as fast as a local reader takes it, or floods its own PTY with tiny stdin frames, another
 * token's `/healthz` and keystroke echo stay prompt (docs/architecture.md, guarantee 4;
 * docs/security.md, threat table). The attacker runs in a process of its own (`curl`, `node`),
 * so only the gateway's own pacing can make it yield.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Gateway } from "../../src/server/gateway.js";
import { viewerScreen } from "../../src/server/ws/screen-frame.js";
import type { Session } from "../../src/sessions/session.js";
import { createSession } from "../helpers/gateway.js";
import { TOKENS, WsClient, catPty, secGateway } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

const LINE = "\x1b[31mred\x1b[0m and plain text, 0123456789 abcdefghijklmnopqrstuvwxyz\r\n";
/** The line as text: without its colour, ending in "\n" alone. */
const LINE_TEXT = "red and plain text, 0123456789 abcdefghijklmnopqrstuvwxyz\n";
const PIECE = LINE.repeat(1024);
/** Pieces of the exported session: 100 MiB of output. */
const PIECES = Math.ceil((100 * 1024 * 1024) / PIECE.length);
/**
 * The worst `/healthz` answer and keystroke echo allowed during the export. Generous (a shared
 * machine); before the exports yielded, the loop was held for the whole download (seconds).
 */
const WORST_MS = 750;
/** Counts the steps the gateway's catch-up scheduler is asked for from now on. */
function countSteps(gw: Gateway): { steps: number } {
  const scheduler = gw.core.catchUp.scheduler;
  const request = scheduler.request.bind(scheduler);
  const count = { steps: 0 };
  scheduler.request = (step) => {
    count.steps++;
    request(step);
  };
  return count;
}

/**
 * The main thread's time waiting for a core so far, in ms (`/proc/self/task/<pid>/schedstat`, its
 * second field): a failure says how much of its worst sample was the machine's, not the loop's.
 */
function queuedMs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").split(" ")[1]) / 1e6;
}

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

function summary(samples: number[], queued: number[]): string {
  const worst = samples.indexOf(Math.max(...samples));
  return (
    `p99 ${p99(samples).toFixed(1)} ms, max ${samples[worst]!.toFixed(1)} ms over ${samples.length}` +
    ` (the main thread waited ${queued[worst]!.toFixed(1)} ms of it for a core)`
  );
}

/** The stdin flood: one-byte frames, as many as the report that found it. */
const FLOOD_FRAMES = 100_000;
/** How long the probe runs during the flood (the gateway took 3.5 s to go through it unpaced). */
const FLOOD_WINDOW_MS = 6_000;
/** The probe's pause between an answer and its next request. */
const GAP_MS = 10;

/** Appends PIECES of coloured lines to a stream session of `alice` (or to `id`) and waits until they are durable. */
async function bigSession(gw: Gateway, existing?: string): Promise<string> {
  const id = existing ?? (await createSession(gw, { kind: "stream" }, TOKENS.alice)).id;
  const log = (gw.core.sessions.get(id) as Session).log;
  for (let n = 0; n < PIECES; n++) {
    log.appendOutput("stdout", PIECE);
    while (log.backlog.bytes > 16 * PIECE.length) await new Promise((r) => setTimeout(r, 2));
  }
  while (log.backlog.bytes > 0) await new Promise((r) => setTimeout(r, 5));
  return id;
}

/** Downloads `paths` one after another as alice with curl into /dev/null; resolves with the bytes it got in all. */
function download(gw: Gateway, ...paths: string[]): { done: Promise<number> } {
  const sinks = paths.flatMap(() => ["-o", "/dev/null"]);
  const child = spawn(
    "curl",
    [
      "-s",
      ...sinks,
      "-w",
      "%{size_download}\\n",
      "-H",
      `Authorization: Bearer ${TOKENS.alice}`,
      ...paths.map((p) => gw.url + p),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const total = () =>
    out
      .trim()
      .split("\n")
      .reduce((n, line) => n + Number(line), 0);
  return { done: new Promise((resolve) => child.once("exit", () => resolve(total()))) };
}

/** Bob's keystroke echo: a PTY `cat` on `/ws/session`, connected. */
async function echoTerminal(gw: Gateway): Promise<WsClient> {
  const cat = await catPty(gw, "bob");
  const term = await WsClient.open(gw, `/ws/session/${cat.id}`, "bob");
  await term.waitFor((f) => f["type"] === "connected", "connected");
  return term;
}

/** Samples `/healthz` and the keystroke echo of `term` until `done` settles; returns each one's latencies. */
async function probe(
  gw: Gateway,
  term: WsClient,
  done: Promise<unknown>,
): Promise<{ healthz: number[]; echo: number[]; queued: { healthz: number[]; echo: number[] } }> {
  let running = true;
  void done.finally(() => (running = false));
  const healthz: number[] = [];
  const echo: number[] = [];
  const queued = { healthz: [] as number[], echo: [] as number[] };
  // Each latency runs from when the probe was due (GAP_MS after the last answer), not from when
  // it was sent: the gateway runs in this process, so a held loop also holds back the sending.
  const gap = () => new Promise((r) => setTimeout(r, GAP_MS));
  const healthzLoop = async () => {
    let due = performance.now();
    while (running) {
      const waited = queuedMs();
      await (await fetch(`${gw.url}/healthz`)).text();
      healthz.push(performance.now() - due);
      queued.healthz.push(queuedMs() - waited);
      await gap();
      due += healthz.at(-1)! + GAP_MS;
    }
  };
  const echoLoop = async () => {
    let due = performance.now();
    for (let i = 0; running; i++) {
      const mark = `k${i}`;
      const from = term.frames.length;
      const waited = queuedMs();
      term.send({ type: "stdin", data: mark });
      await term.waitForStdout(mark, "echo", from, 10_000);
      echo.push(performance.now() - due);
      queued.echo.push(queuedMs() - waited);
      await gap();
      due += echo.at(-1)! + GAP_MS;
    }
  };
  await Promise.all([healthzLoop(), echoLoop()]);
  return { healthz, echo, queued };
}

/**
 * Sends FLOOD_FRAMES one-byte stdin frames to `/ws/session/ID` as mallory, from a process of its
 * own, as fast as its socket takes them; `window` resolves FLOOD_WINDOW_MS after the flood began
 * (the child is killed then: a gateway that paces it has not read it all by then).
 */
function stdinFlood(gw: Gateway, id: string): { window: Promise<void> } {
  const program = `
    const WebSocket = require("ws");
    const ws = new WebSocket(process.argv[1], { headers: { authorization: "Bearer " + process.argv[2] } });
    ws.on("error", () => process.exit(1));
    ws.on("open", async () => {
      for (let i = 0; i < ${FLOOD_FRAMES}; i++) {
        ws.send('{"type":"stdin","data":"x"}');
        if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
      }
    });
  `;
  const url = `${gw.url.replace(/^http/, "ws")}/ws/session/${id}`;
  const child = spawn(process.execPath, ["-e", program, url, TOKENS.mallory], { stdio: "inherit" });
  onTestFinished(() => void child.kill("SIGKILL"));
  const window = new Promise<void>((resolve) =>
    setTimeout(() => {
      child.kill("SIGKILL");
      resolve();
    }, FLOOD_WINDOW_MS),
  );
  return { window };
}

describe("one token's downloads and input share the event loop with other tokens", () => {
  it("keeps /healthz and another token's keystroke echo prompt during a 100 MB transcript?format=text", async () => {
    const gw = await secGateway();
    const id = await bigSession(gw);
    const term = await echoTerminal(gw);
    const started = performance.now();
    const { done } = download(gw, `/v1/sessions/${id}/transcript?format=text`);
    const { healthz, echo, queued } = await probe(gw, term, done);
    const got = await done;
    const took = performance.now() - started;
    // The whole transcript arrived, as text.
    expect(got).toBe(PIECES * 1024 * LINE_TEXT.length);
    const export_ = `in a ${took.toFixed(0)} ms export`;
    expect(Math.max(...healthz), `/healthz ${summary(healthz, queued.healthz)} ${export_}`).toBeLessThan(WORST_MS);
    expect(Math.max(...echo), `echo ${summary(echo, queued.echo)} ${export_}`).toBeLessThan(WORST_MS);
    // Sampled all along, not once before and once after.
    expect(healthz.length).toBeGreaterThan(5);
    expect(echo.length).toBeGreaterThan(5);
  }, 60_000);

  it("keeps /healthz and another token's keystroke echo prompt during 100 MB of GET .../output pages (regression: each 8 MiB page was read in one turn)", async () => {
    const gw = await secGateway();
    const id = await bigSession(gw);
    const term = await echoTerminal(gw);
    const page = 8 * 1024 * 1024;
    const total = PIECES * PIECE.length;
    const pages = Array.from(
      { length: Math.ceil(total / page) },
      (_, i) => `/v1/sessions/${id}/output?since=${i * page}`,
    );
    const counted = countSteps(gw);
    const { done } = download(gw, ...pages);
    const { healthz, echo, queued } = await probe(gw, term, done);
    expect(await done).toBe(total);
    // About a quarter MiB per step of the scheduler (a read takes whole events), not a page per turn.
    expect(counted.steps).toBeGreaterThanOrEqual(total / (512 * 1024));
    expect(Math.max(...healthz), `/healthz ${summary(healthz, queued.healthz)}`).toBeLessThan(WORST_MS);
    expect(Math.max(...echo), `echo ${summary(echo, queued.echo)}`).toBeLessThan(WORST_MS);
    expect(healthz.length).toBeGreaterThan(5);
  }, 60_000);

  it("keeps /healthz and another token's keystroke echo prompt during 100 MB of GET .../events pages (regression: each 8 MiB page was read in one turn)", async () => {
    const gw = await secGateway();
    const id = await bigSession(gw);
    const term = await echoTerminal(gw);
    // About 7.5 MiB of events a page: under EVENTS_PAGE_BYTES, so each page has exactly `limit`.
    const limit = 96;
    const pages = Array.from(
      { length: Math.ceil(PIECES / limit) },
      (_, i) => `/v1/sessions/${id}/events?since=${i * limit}&limit=${limit}`,
    );
    const counted = countSteps(gw);
    const { done } = download(gw, ...pages);
    const { healthz, echo, queued } = await probe(gw, term, done);
    const total = await done;
    expect(total).toBeGreaterThan(PIECES * PIECE.length);
    expect(counted.steps).toBeGreaterThanOrEqual(total / (512 * 1024));
    // A streamed page is the same JSON: its events, and where the next one starts.
    const page = (await (
      await fetch(`${gw.url}${pages[3]!}`, { headers: { authorization: `Bearer ${TOKENS.alice}` } })
    ).json()) as {
      events: Array<{ seq: number; data: string }>;
      next: number;
      head: number;
    };
    expect(page.events.map((e) => e.seq)).toEqual(Array.from({ length: limit }, (_, i) => 3 * limit + 1 + i));
    expect(page.events.every((e) => e.data === PIECE)).toBe(true);
    expect(page.next).toBe(4 * limit);
    expect(page.head).toBe(PIECES);
    expect(Math.max(...healthz), `/healthz ${summary(healthz, queued.healthz)}`).toBeLessThan(WORST_MS);
    expect(Math.max(...echo), `echo ${summary(echo, queued.echo)}`).toBeLessThan(WORST_MS);
    expect(healthz.length).toBeGreaterThan(5);
  }, 60_000);

  it("keeps /healthz and another token's keystroke echo prompt while GET .../screen reads 100 MB the screen thread has not seen (regression: read in one turn)", async () => {
    const gw = await secGateway();
    const { id } = await catPty(gw, "alice");
    // The thread is fed nothing on its own: the request alone reads the whole backlog.
    const screens = gw.core.screens as unknown as { feedAll: () => void; sweep: () => Promise<void> };
    screens.feedAll = () => undefined;
    screens.sweep = async () => undefined;
    await bigSession(gw, id);
    const term = await echoTerminal(gw);
    const counted = countSteps(gw);
    const { done } = download(gw, `/v1/sessions/${id}/screen?format=text`);
    const { healthz, echo, queued } = await probe(gw, term, done);
    expect(await done).toBeGreaterThan(0);
    // Read a MiB per step of the scheduler (a page ends with the entry that reaches it), not the
    // whole backlog in one turn.
    expect(counted.steps).toBeGreaterThanOrEqual((PIECES * PIECE.length) / (1024 * 1024 + PIECE.length) - 1);
    const screen = await gw.core.screens.screen(gw.core.sessions.get(id)!, { format: "text" });
    expect(screen.screen.split("\n").at(-1)).toBe(LINE_TEXT.trim());
    expect(screen.offset).toBe(PIECES * PIECE.length);
    expect(Math.max(...healthz), `/healthz ${summary(healthz, queued.healthz)}`).toBeLessThan(WORST_MS);
    expect(Math.max(...echo), `echo ${summary(echo, queued.echo)}`).toBeLessThan(WORST_MS);
  }, 120_000);

  it("reads what the screen thread has not seen a page per catch-up turn for a viewer's screen too (lag=screen jumps, since=screen)", async () => {
    const gw = await secGateway();
    const { id } = await catPty(gw, "alice");
    const screens = gw.core.screens as unknown as { feedAll: () => void; sweep: () => Promise<void> };
    screens.feedAll = () => undefined;
    screens.sweep = async () => undefined;
    const session = gw.core.sessions.get(id) as Session;
    const bytes = 8 * 1024 * 1024;
    for (let n = 0; n < bytes / PIECE.length; n++) {
      session.log.appendOutput("stdout", PIECE);
      while (session.log.backlog.bytes > 16 * PIECE.length) await new Promise((r) => setTimeout(r, 2));
    }
    await waitFor(() => session.log.backlog.bytes === 0);
    const counted = countSteps(gw);
    const { frame } = await viewerScreen(gw.core, session, { cols: undefined, rows: undefined });
    expect(frame.offset).toBeGreaterThan(bytes - PIECE.length);
    expect(frame.data).toContain("and plain text, 0123456789 abcdefghijklmnopqrstuvwxyz");
    // A MiB per step of the scheduler (and the entry that reaches it), not the whole backlog in one turn.
    expect(counted.steps).toBeGreaterThanOrEqual(bytes / (1024 * 1024 + PIECE.length) - 1);
  }, 60_000);

  it("keeps /healthz and another token's keystroke echo prompt while a token floods its own PTY with 100,000 one-byte stdin frames", async () => {
    const gw = await secGateway();
    const target = await catPty(gw, "mallory");
    const term = await echoTerminal(gw);
    const { window } = stdinFlood(gw, target.id);
    const { healthz, echo, queued } = await probe(gw, term, window);
    expect(Math.max(...healthz), `/healthz ${summary(healthz, queued.healthz)}`).toBeLessThan(WORST_MS);
    expect(Math.max(...echo), `echo ${summary(echo, queued.echo)}`).toBeLessThan(WORST_MS);
    expect(healthz.length).toBeGreaterThan(5);
  }, 60_000);
});
