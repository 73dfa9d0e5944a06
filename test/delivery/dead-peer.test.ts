/**
 * Dead peers: the server pings every connection; one that misses two pings is
 * terminated — not closed, since a peer that does not read cannot take a close frame. The
 * gateway's clock drives the pings, so a ManualClock makes 45 s of silence take milliseconds.
 */
import { request } from "node:http";
import type { IncomingMessage } from "node:http";
import WebSocket from "ws";
import { describe, expect, it, onTestFinished } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { SSE_HEARTBEAT_MS, SSE_STALLED_HEARTBEATS } from "../../src/server/routes/stream.js";
import { WS_MISSED_PINGS_ALLOWED, WS_PING_INTERVAL_MS } from "../../src/server/ws/ws-common.js";
import { MuxClient, appendOutput, authHeaders, closed, opened, rawSocket, startTestGateway, wsUrl } from "./helpers.js";
import type { Defer } from "./helpers.js";
import { createSession } from "../helpers/gateway.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

const defer: Defer = (fn) => onTestFinished(async () => void (await fn()));

describe("dead peers", () => {
  it("terminates connections that stop answering pings and keeps the ones that answer", async () => {
    const clock = new ManualClock(Date.now());
    const gw = await startTestGateway(defer, { clock });
    const { id } = await createSession(gw, { kind: "stream" });
    const session = gw.core.sessions.get(id)!;

    const healthy = await MuxClient.open(gw, defer);
    const silent = await MuxClient.open(gw, defer, { autoPong: false });
    const stalled = await MuxClient.open(gw, defer);
    for (const c of [healthy, silent, stalled]) {
      c.subscribe(id, 0);
      await c.frame((f) => f.op === "subscribed");
    }
    const silentTerminal = new WebSocket(wsUrl(gw, `/ws/session/${id}`), { headers: authHeaders(gw), autoPong: false });
    defer(() => silentTerminal.terminate());
    await opened(silentTerminal);
    await waitFor(() => session.viewers === 4, 5000, "four viewers");
    rawSocket(stalled.ws).pause();

    let pings = 0;
    healthy.ws.on("ping", () => pings++);
    const closes = [silent.ws, stalled.ws, silentTerminal].map((ws) => closed(ws));
    // Each interval: every connection is pinged; the healthy one answers before the next.
    for (let round = 1; round <= WS_MISSED_PINGS_ALLOWED; round++) {
      clock.advance(WS_PING_INTERVAL_MS);
      await waitFor(() => pings === round, 5000, `ping ${round}`);
      await sleep(50); // its pong reaches the server
      expect(session.viewers).toBe(4);
    }
    // The next sweep finds two unanswered pings: cut at once, without a close handshake.
    clock.advance(WS_PING_INTERVAL_MS);
    await waitFor(() => session.viewers === 1, 5000, "the dead viewers to be dropped");
    expect(await Promise.all(closes.slice(0, 1).concat(closes.slice(2)))).toEqual([1006, 1006]);
    rawSocket(stalled.ws).resume();
    expect(await closes[1]).toBe(1006);

    // The healthy connection is untouched and still served.
    expect(healthy.ws.readyState).toBe(WebSocket.OPEN);
    healthy.send({ op: "ping", t: 1 });
    await healthy.frame((f) => f.op === "pong");
    clock.advance(WS_PING_INTERVAL_MS);
    await waitFor(() => pings === WS_MISSED_PINGS_ALLOWED + 2, 5000, "pings go on");
    expect(session.viewers).toBe(1);
  });

  // Regression: a client that sent a burst of frames has its pong behind them, and the gateway
  // reads them one per turn: under load that took longer than two pings, and a live client that
  // was being answered all along was cut (limits.test.ts, "leaves its answers unread", 1006 in a full run).
  it("keeps a connection that sends frames though its pongs are late, and cuts it once it is silent", async () => {
    const clock = new ManualClock(Date.now());
    const gw = await startTestGateway(defer, { clock });
    const talker = await MuxClient.open(gw, defer, { autoPong: false });
    const answers = (): number => talker.frames.filter((f) => f.op === "pong").length;
    const closing = closed(talker.ws);
    let pings = 0;
    talker.ws.on("ping", () => pings++);
    for (let round = 1; round <= WS_MISSED_PINGS_ALLOWED + 2; round++) {
      talker.send({ op: "ping", t: round });
      await waitFor(() => answers() === round, 5000, `answer ${round}`);
      clock.advance(WS_PING_INTERVAL_MS);
      await waitFor(() => pings === round, 5000, `ping ${round}`);
    }
    expect(talker.ws.readyState).toBe(WebSocket.OPEN);
    // Silent from now on: cut after the pings it leaves unanswered.
    for (let round = 0; round <= WS_MISSED_PINGS_ALLOWED; round++) clock.advance(WS_PING_INTERVAL_MS);
    expect(await closing).toBe(1006);
  });

  it("closes an SSE stream whose client stopped reading, and keeps one that reads", async () => {
    const clock = new ManualClock(Date.now());
    const gw = await startTestGateway(defer, { clock });
    const { id } = await createSession(gw, { kind: "stream" });
    const session = gw.core.sessions.get(id)!;
    const open = () =>
      new Promise<IncomingMessage>((resolve, reject) => {
        const req = request(`${gw.url}/v1/sessions/${id}/stream`, { headers: authHeaders(gw) }, resolve);
        req.on("error", reject);
        req.end();
      });
    const reading = await open();
    let readBytes = 0;
    reading.on("data", (chunk: Buffer) => (readBytes += chunk.length));
    const stopped = await open();
    defer(() => {
      reading.destroy();
      stopped.destroy();
    });
    stopped.pause();
    stopped.socket.pause();
    await waitFor(() => session.viewers === 2, 5000, "two viewers");
    // Output until the stopped client's socket takes no more: its feed falls back to catch-up.
    const chunk = "x".repeat(60_000);
    const catchUps = async () => (await gw.core.metrics.catchUps.get()).values[0]?.value ?? 0;
    for (let i = 0; i < 400 && (await catchUps()) === 0; i++) await appendOutput(gw, id, [chunk, chunk, chunk, chunk]);
    expect(await catchUps()).toBeGreaterThan(0);
    // The beat that ends the interval the output was written in sees the socket take data; the
    // next ones see it take nothing.
    for (let beat = 0; beat < SSE_STALLED_HEARTBEATS; beat++) {
      clock.advance(SSE_HEARTBEAT_MS);
      await sleep(50);
      expect(session.viewers).toBe(2);
    }
    clock.advance(SSE_HEARTBEAT_MS);
    await waitFor(() => session.viewers === 1, 5000, "the stopped stream to be closed");
    // The reading one got everything so far and goes on.
    const read = readBytes;
    await appendOutput(gw, id, ["after"]);
    await waitFor(() => readBytes > read, 5000, "the reading stream to go on");
    expect(reading.destroyed).toBe(false);
  });
});
