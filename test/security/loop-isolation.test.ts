/**
 * One token's downloads and input share the event loop: while it downloads a 100 MB transcript
 * as fast as a local reader takes it, or floods its own PTY with tiny stdin frames, another
 * token's `/healthz` and keystroke echo stay prompt (docs/architecture.md, guarantee 4;
 * docs/security.md, threat table). The attacker runs in a process of its own (`curl`, `node`),
 * so only the gateway's own pacing can make it yield.
 */
import { spawn } from "node:child_process";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Gateway } from "../../src/server/gateway.js";
import type { Session } from "../../src/sessions/session.js";
import { createSession } from "../helpers/gateway.js";
import { TOKENS, WsClient, catPty, secGateway } from "./helpers.js";

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
/** The stdin flood: one-byte frames, as many as the report that found it. */
const FLOOD_FRAMES = 100_000;
/** How long the probe runs during the flood (the gateway took 3.5 s to go through it unpaced). */
const FLOOD_WINDOW_MS = 6_000;
/** The probe's pause between an answer and its next request. */
const GAP_MS = 10;

/** Appends PIECES of coloured lines to a stream session of `alice` and waits until they are durable. */
async function bigSession(gw: Gateway): Promise<string> {
  const { id } = await createSession(gw, { kind: "stream" }, TOKENS.alice);
  const log = (gw.core.sessions.get(id) as Session).log;
  for (let n = 0; n < PIECES; n++) {
    log.appendOutput("stdout", PIECE);
    while (log.backlog.bytes > 16 * PIECE.length) await new Promise((r) => setTimeout(r, 2));
  }
  while (log.backlog.bytes > 0) await new Promise((r) => setTimeout(r, 5));
  return id;
}

/** Downloads `path` as alice with curl into /dev/null; resolves with the bytes it got. */
function download(gw: Gateway, path: string): { done: Promise<number> } {
  const child = spawn(
    "curl",
    ["-s", "-o", "/dev/null", "-w", "%{size_download}", "-H", `Authorization: Bearer ${TOKENS.alice}`, gw.url + path],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  return { done: new Promise((resolve) => child.once("exit", () => resolve(Number(out)))) };
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
): Promise<{ healthz: number[]; echo: number[] }> {
  let running = true;
  void done.finally(() => (running = false));
  const healthz: number[] = [];
  const echo: number[] = [];
  // Each latency runs from when the probe was due (GAP_MS after the last answer), not from when
  // it was sent: the gateway runs in this process, so a held loop also holds back the sending.
  const gap = () => new Promise((r) => setTimeout(r, GAP_MS));
  const healthzLoop = async () => {
    let due = performance.now();
    while (running) {
      await (await fetch(`${gw.url}/healthz`)).text();
      healthz.push(performance.now() - due);
      await gap();
      due += healthz.at(-1)! + GAP_MS;
    }
  };
  const echoLoop = async () => {
    let due = performance.now();
    for (let i = 0; running; i++) {
      const mark = `k${i}`;
      const from = term.frames.length;
      term.send({ type: "stdin", data: mark });
      await term.waitFor((f) => f["type"] === "stdout" && String(f["data"]).includes(mark), "echo", from, 10_000);
      echo.push(performance.now() - due);
      await gap();
      due += echo.at(-1)! + GAP_MS;
    }
  };
  await Promise.all([healthzLoop(), echoLoop()]);
  return { healthz, echo };
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
    const { healthz, echo } = await probe(gw, term, done);
    const got = await done;
    const took = performance.now() - started;
    // The whole transcript arrived, as text.
    expect(got).toBe(PIECES * 1024 * LINE_TEXT.length);
    const worst = { healthz: Math.max(...healthz), echo: Math.max(...echo) };
    expect(worst.healthz, `worst /healthz ${worst.healthz} ms in a ${took} ms export`).toBeLessThan(WORST_MS);
    expect(worst.echo, `worst echo ${worst.echo} ms in a ${took} ms export`).toBeLessThan(WORST_MS);
    // Sampled all along, not once before and once after.
    expect(healthz.length).toBeGreaterThan(5);
    expect(echo.length).toBeGreaterThan(5);
  }, 60_000);

  it("keeps /healthz and another token's keystroke echo prompt while a token floods its own PTY with 100,000 one-byte stdin frames", async () => {
    const gw = await secGateway();
    const target = await catPty(gw, "mallory");
    const term = await echoTerminal(gw);
    const { window } = stdinFlood(gw, target.id);
    const { healthz, echo } = await probe(gw, term, window);
    const worst = { healthz: Math.max(...healthz), echo: Math.max(...echo) };
    expect(worst.healthz, `worst /healthz ${worst.healthz} ms`).toBeLessThan(WORST_MS);
    expect(worst.echo, `worst echo ${worst.echo} ms`).toBeLessThan(WORST_MS);
    expect(healthz.length).toBeGreaterThan(5);
  }, 60_000);
});
