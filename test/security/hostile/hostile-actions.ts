// The hostile actions of the "wire" and "output" lanes (schedule.ts), as mallory: each bounded in
// count and time, each resolving with a one-line note of what it did. What the gateway answers is
// not judged here: the checker (checker.ts) knows only what honest clients and the gateway's
// process show.
import fc from "fast-check";
import WebSocket from "ws";
import { ClientFrame, TerminalClientFrame } from "../../../src/protocol/index.js";
import { sleep } from "../../cluster/nemesis/workload.js";
import type { Rng } from "../../cluster/nemesis/workload.js";
import { encodeFuzzValue, fuzzValue, hostileValue } from "../schema-arbitrary.js";
import { ESCAPE_KINDS, escapeChunk } from "./escapes.js";
import { HOSTILE_TOKENS } from "./targets.js";
import type { ActorInput } from "./targets.js";

/** How long one action goes on at most before it drops its sockets (ACTION_MAX_MS bounds all). */
const ACTION_MS = 6_000;
/** Frames one random-frames action sends at most. */
const RANDOM_FRAMES_MAX = 300;
/** One-byte input frames one flood sends at most (the count of the report that found the flood). */
const FLOOD_FRAMES_MAX = 40_000;
/** Bytes of hostile escapes one action writes at most. */
const ESCAPE_BYTES_MAX = 2 * 1024 * 1024;
/** A sender waits while this much is still queued on its socket (the gateway reads at its pace). */
const SEND_QUEUE_BYTES = 1024 * 1024;

export function wsOpen(url: string, path: string, token: string): Promise<WebSocket | undefined> {
  const ws = new WebSocket(url.replace(/^http/, "ws") + path, { headers: { authorization: `Bearer ${token}` } });
  return new Promise((resolve) => {
    ws.once("open", () => resolve(ws));
    // A refused upgrade (a rate limit, a session ended by an earlier action) is an answer too.
    ws.once("error", () => resolve(undefined));
    ws.on("error", () => undefined);
  });
}

async function drained(ws: WebSocket, until: number): Promise<void> {
  while (ws.readyState === ws.OPEN && ws.bufferedAmount > SEND_QUEUE_BYTES && Date.now() < until) await sleep(5);
}

export async function randomFrames(input: ActorInput, rng: Rng, seed: number): Promise<string> {
  const { sessions } = input;
  const overrides = {
    session: fc.constantFrom<unknown>(sessions.frames, sessions.term, ...sessions.honest, "s_nope"),
  };
  const mux = rng.int(0, 1) === 0;
  const schema = mux ? ClientFrame : TerminalClientFrame;
  const count = rng.int(30, RANDOM_FRAMES_MAX);
  const texts = fc.sample(
    fc.oneof(
      { weight: 6, arbitrary: fuzzValue(schema, { overrides }).map(encodeFuzzValue) },
      { weight: 1, arbitrary: hostileValue.map((v) => (typeof v === "string" ? v : encodeFuzzValue(v))) },
      { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
    ),
    { seed, numRuns: count },
  );
  const path = mux ? "/v1/ws" : `/ws/session/${rng.pick([sessions.frames, ...sessions.honest])}`;
  const until = Date.now() + ACTION_MS;
  let sent = 0;
  let closes = 0;
  let ws: WebSocket | undefined;
  for (const text of texts) {
    if (Date.now() > until || closes > 20) break;
    if (ws === undefined || ws.readyState !== ws.OPEN) {
      ws?.terminate();
      ws = await wsOpen(input.url, path, HOSTILE_TOKENS.mallory);
      if (ws === undefined) {
        closes++;
        await sleep(50);
        continue;
      }
      ws.on("close", () => closes++);
    }
    // Now and then not UTF-8 at all, or a binary frame.
    const r = rng.int(0, 40);
    if (r === 0) ws.send(Buffer.from([0xff, 0xfe, 0x7b]), { binary: false });
    else if (r === 1) ws.send(Buffer.from(text), { binary: true });
    else ws.send(text);
    sent++;
    if (sent % 10 === 0) await drained(ws, until);
  }
  ws?.terminate();
  return `${sent} frames on ${mux ? "/v1/ws" : "/ws/session"}, ${closes} closes`;
}

export async function frameFlood(input: ActorInput, rng: Rng): Promise<string> {
  const mux = rng.int(0, 2) === 0;
  const term = input.sessions.term;
  const ws = await wsOpen(input.url, mux ? "/v1/ws" : `/ws/session/${term}`, HOSTILE_TOKENS.mallory);
  if (ws === undefined) return "refused";
  const frames = rng.int(FLOOD_FRAMES_MAX / 8, FLOOD_FRAMES_MAX);
  const frame = mux ? JSON.stringify({ op: "input", session: term, data: "x" }) : '{"type":"stdin","data":"x"}';
  const until = Date.now() + ACTION_MS;
  let sent = 0;
  for (; sent < frames && ws.readyState === ws.OPEN && Date.now() < until; sent++) {
    ws.send(frame);
    if (sent % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  // Held open a moment: the gateway is still reading it.
  await sleep(rng.int(0, 1_500));
  ws.terminate();
  return `${sent} one-byte frames on ${mux ? "/v1/ws" : "/ws/session"}`;
}

export async function stalledSubscribe(input: ActorInput, rng: Rng): Promise<string> {
  const sockets: WebSocket[] = [];
  const count = rng.int(1, 3);
  for (let i = 0; i < count; i++) {
    const mux = rng.int(0, 1) === 0;
    const ws = await wsOpen(
      input.url,
      mux ? "/v1/ws" : `/ws/session/${input.sessions.big}?since=0`,
      HOSTILE_TOKENS.mallory,
    );
    if (ws === undefined) continue;
    if (mux) ws.send(JSON.stringify({ op: "subscribe", session: input.sessions.big, since: 0, ref: "all" }));
    // Reads nothing more: the gateway's sends pile up against a full socket.
    ws.pause();
    sockets.push(ws);
  }
  await sleep(rng.int(1_500, ACTION_MS));
  for (const ws of sockets) ws.terminate();
  return `${sockets.length} stalled subscribers from 0`;
}

export async function hostileEscapes(input: ActorInput, rng: Rng): Promise<string> {
  const session = rng.pick(input.sessions.escapes);
  const ws = await wsOpen(input.url, `/ws/session/${session}`, HOSTILE_TOKENS.mallory);
  if (ws === undefined) return "refused";
  // Half the time it reads none of its own echo back.
  if (rng.int(0, 1) === 0) ws.pause();
  const kinds = [rng.pick(ESCAPE_KINDS), rng.pick(ESCAPE_KINDS)];
  if (rng.int(0, 2) === 0)
    ws.send(JSON.stringify({ type: "resize", cols: rng.int(200, 2000), rows: rng.int(100, 1000) }));
  const budget = rng.int(ESCAPE_BYTES_MAX / 8, ESCAPE_BYTES_MAX);
  const until = Date.now() + ACTION_MS;
  let bytes = 0;
  const screens: number[] = [];
  for (let i = 0; bytes < budget && ws.readyState === ws.OPEN && Date.now() < until; i++) {
    const kind = kinds[i % kinds.length]!;
    const data = escapeChunk(kind, rng, i < kinds.length);
    ws.send(JSON.stringify({ type: "stdin", data }));
    bytes += Buffer.byteLength(data);
    await drained(ws, until);
    // Now and then the screen is asked for, which waits for the emulator to catch up.
    if (rng.int(0, 15) === 0) screens.push(await screen(input, session, until));
  }
  screens.push(await screen(input, session, until));
  await sleep(rng.int(0, 1_000));
  ws.terminate();
  return `${(bytes / 1024).toFixed(0)} KiB of ${kinds.join("+")}, screens answered ${screens.join(",")}`;
}

/** `GET .../screen` of `session`: its status, -1 when not answered by `until` (a second at least). */
async function screen(input: ActorInput, session: string, until: number): Promise<number> {
  try {
    const res = await fetch(`${input.url}/v1/sessions/${session}/screen?format=text`, {
      headers: { authorization: `Bearer ${HOSTILE_TOKENS.mallory}` },
      signal: AbortSignal.timeout(Math.max(1_000, until - Date.now())),
    });
    await res.arrayBuffer();
    return res.status;
  } catch (error) {
    // A screen not given in time: the note says so, the checker judges only the honest clients.
    return (error as Error).name === "TimeoutError" ? -1 : 0;
  }
}

export async function bigDownload(input: ActorInput, rng: Rng): Promise<string> {
  const id = input.sessions.big;
  const path = rng.pick([
    `/v1/sessions/${id}/transcript?format=text`,
    `/v1/sessions/${id}/output?since=0`,
    `/v1/sessions/${id}/events?since=0&limit=10000`,
  ]);
  const started = Date.now();
  try {
    const res = await fetch(input.url + path, {
      headers: { authorization: `Bearer ${HOSTILE_TOKENS.mallory}` },
      signal: AbortSignal.timeout(ACTION_MS),
    });
    let bytes = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    return `${res.status} ${path.split("/").at(-1)}: ${(bytes / 2 ** 20).toFixed(1)} MiB in ${Date.now() - started} ms`;
  } catch (error) {
    // Cut by its own time bound: the note says how far it got.
    return `${path.split("/").at(-1)}: ${(error as Error).name} after ${Date.now() - started} ms`;
  }
}
