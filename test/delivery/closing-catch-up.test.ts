/**
 * A connection that closes while it is being caught up costs nothing more: its feed reads
 * nothing once the socket is closing (a write to a closing socket is dropped, not counted, so
 * the budget alone never stopped it), on `/v1/ws` and `/ws/session` alike. Regression: one
 * viewer's 256 connections, stalled then closed, made the gateway read and frame the rest of a
 * 256 MiB log for each of them, and `/healthz` went unanswered for ~20 s.
 */
import { get } from "node:http";
import type { IncomingMessage } from "node:http";
import WebSocket from "ws";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Gateway } from "../../src/server/gateway.js";
import type { Session } from "../../src/sessions/session.js";
import { CATCHUP_BATCH_BYTES } from "../../src/server/ws/feed.js";
import { CATCHUP_TICK_BYTES } from "../../src/server/ws/catch-up.js";
import { DEFAULT_LIMITS } from "../../src/server/config/config.js";
import { createSession } from "../helpers/gateway.js";
import { sleep } from "../helpers/sleep.js";
import { authHeaders, closed, opened, rawSocket, startTestGateway, wsUrl } from "./helpers.js";
import type { Defer } from "./helpers.js";

const defer: Defer = (fn) => onTestFinished(async () => void (await fn()));

/** 32 MiB of output in 64 KiB pieces: far more than a stalled socket's kernel buffers and the budget hold. */
const PIECE = "0123456789abcdef".repeat(4096);
const PIECES = 512;
const BUDGET = 256 * 1024;

/** A gateway with a stream session of PIECES pieces on disk, and a count of the bytes read from its log. */
async function bigSession(
  budget = BUDGET,
): Promise<{ gw: Gateway; id: string; readBytes: () => number; perTurn: () => number }> {
  // Uncompressed: deflated, these repetitive pieces would never fill a stalled socket's buffers.
  const gw = await startTestGateway(defer, {
    config: { compression: { websocket: false }, limits: { queueBytes: budget } },
  });
  // The search index reads every log too: stopped, so that the count is the connection's alone.
  gw.core.search.indexer.close();
  const { id } = await createSession(gw, { kind: "stream" });
  const log = (gw.core.sessions.get(id) as Session).log;
  for (let i = 0; i < PIECES; i++) log.appendOutput("stdout", PIECE);
  gw.core.events.flush();
  let bytes = 0;
  // Bytes read in each turn of the event loop (a setImmediate chain counts the turns).
  let turn = 0;
  const inTurn = new Map<number, number>();
  let spinning = true;
  const next = () => {
    turn++;
    if (spinning) setImmediate(next);
  };
  next();
  defer(() => {
    spinning = false;
  });
  const read = log.read.bind(log);
  log.read = (since, options) => {
    const page = read(since, options);
    for (const e of page.entries) bytes += e.size;
    for (const e of page.entries) inTurn.set(turn, (inTurn.get(turn) ?? 0) + e.size);
    return page;
  };
  // `/ws/session` replays output by byte offset.
  const readOutput = log.readOutput.bind(log);
  log.readOutput = (from, maxBytes) => {
    const slices = readOutput(from, maxBytes);
    for (const s of slices) bytes += s.bytes.length;
    return slices;
  };
  return { gw, id, readBytes: () => bytes, perTurn: () => Math.max(0, ...inTurn.values()) };
}

/** Waits until the count stops growing (the stalled connection's budget and kernel buffers are full). */
async function settled(readBytes: () => number): Promise<number> {
  let last = -1;
  while (readBytes() !== last) {
    last = readBytes();
    await sleep(300);
  }
  return last;
}

async function stallThenClose(
  gw: Gateway,
  ws: WebSocket,
  readBytes: () => number,
): Promise<{ before: number; after: number }> {
  await opened(ws);
  const before = await settled(readBytes);
  // A close frame, then reading again: the gateway's writes complete while its socket is closing.
  const done = closed(ws);
  ws.close();
  rawSocket(ws).resume();
  await done;
  await sleep(500);
  return { before, after: readBytes() - before };
}

describe("catch-up of a connection that closes", () => {
  it("/v1/ws: reads nothing more once the socket closes (regression: it read the rest of the log)", async () => {
    const { gw, id, readBytes } = await bigSession();
    const ws = new WebSocket(wsUrl(gw, "/v1/ws"), { headers: authHeaders(gw) });
    defer(() => ws.terminate());
    ws.once("upgrade", (res) => res.socket.pause());
    ws.once("open", () => ws.send(JSON.stringify({ op: "subscribe", session: id, since: 0 })));
    const { before, after } = await stallThenClose(gw, ws, readBytes);
    expect(before).toBeLessThan((PIECES * PIECE.length) / 2);
    // At most what a drain before the close frame arrived may read: a batch or two.
    expect(after).toBeLessThanOrEqual(2 * CATCHUP_BATCH_BYTES);
  }, 60_000);

  it("/ws/session: reads nothing more once the socket closes (regression: it read the rest of the log)", async () => {
    const { gw, id, readBytes } = await bigSession();
    const ws = new WebSocket(wsUrl(gw, `/ws/session/${id}?since=0`), { headers: authHeaders(gw) });
    defer(() => ws.terminate());
    ws.once("upgrade", (res) => res.socket.pause());
    const { before, after } = await stallThenClose(gw, ws, readBytes);
    expect(before).toBeLessThan((PIECES * PIECE.length) / 2);
    expect(after).toBeLessThanOrEqual(2 * CATCHUP_BATCH_BYTES);
  }, 60_000);

  it("SSE: a stream from 0 reads at most a tick of the log per turn of the event loop (regression: its whole budget in one)", async () => {
    const { gw, id, readBytes, perTurn } = await bigSession(DEFAULT_LIMITS.queueBytes);
    const res = await new Promise<IncomingMessage>((resolve) =>
      get(`${gw.url}/v1/sessions/${id}/stream?since=0`, { headers: authHeaders(gw) }, resolve),
    );
    defer(() => res.destroy());
    res.pause();
    await settled(readBytes);
    expect(readBytes()).toBeGreaterThanOrEqual(DEFAULT_LIMITS.queueBytes);
    expect(perTurn()).toBeLessThanOrEqual(CATCHUP_TICK_BYTES + CATCHUP_BATCH_BYTES);
  }, 60_000);
});
