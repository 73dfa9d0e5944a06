import { createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { GatewayCore } from "../../src/server/context.js";
import { createLogger } from "../../src/server/ops/logger.js";
import { FRAMES_AT_ONCE, endpointServer, handleFrames } from "../../src/server/ws/ws-common.js";

/**
 * handleFrames (src/server/ws/ws-common.ts): a connection's first frame of a turn of the event loop
 * is handled as it arrives (a keystroke does not wait a turn), the rest one per turn, in order,
 * with the connection's reads held meanwhile (test/security/loop-isolation.test.ts has the flood).
 */

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** Turns of this event loop, counted in its check phase. */
function turnCounter(): { readonly turn: number; stop: () => void } {
  let turn = 0;
  let timer: NodeJS.Immediate = setImmediate(function next() {
    turn++;
    timer = setImmediate(next);
  });
  return {
    get turn() {
      return turn;
    },
    stop: () => clearImmediate(timer),
  };
}

/** A server whose connection's frames go through handleFrames; what each frame met, in order. */
async function server() {
  const core = {
    logger: createLogger({ level: "silent" }),
    limits: { frameBytes: 64 * 1024 },
    config: { compression: {} },
  } as unknown as GatewayCore;
  // The endpoints' own WebSocket server (its options), on a plain HTTP server.
  const wss = endpointServer(core);
  const http = createServer();
  http.on("upgrade", (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws)));
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const turns = turnCounter();
  const seen: { text: string; turn: number; arrivedTurn: number; holds: number }[] = [];
  let arrivedTurn = -1;
  let holds = 0;
  wss.on("connection", (ws: WebSocket) => {
    // Before ws's own listener: when the bytes came in.
    (ws as unknown as { _socket: Socket })._socket.prependListener("data", () => (arrivedTurn = turns.turn));
    handleFrames({
      ws,
      core,
      endpoint: "terminal",
      connId: "c",
      handle: (data) => seen.push({ text: String(data), turn: turns.turn, arrivedTurn, holds }),
      tell: () => undefined,
      dispose: () => undefined,
      holdReads: () => {
        holds++;
        return () => holds--;
      },
    });
  });
  closers.push(async () => {
    turns.stop();
    wss.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  const client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
  await new Promise((resolve, reject) => client.once("open", resolve).once("error", reject));
  closers.push(async () => client.close());
  return { client, seen, holds: () => holds };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

describe("handleFrames", () => {
  it("handles a lone frame in the turn its bytes arrived (regression: ws deferred every frame a turn)", async () => {
    const { client, seen } = await server();
    for (let i = 0; i < 5; i++) {
      client.send(`key ${i}`);
      await until(() => seen.length === i + 1);
      expect(seen[i]).toMatchObject({ text: `key ${i}`, holds: 0 });
      expect(seen[i]!.turn).toBe(seen[i]!.arrivedTurn);
    }
  });

  it("handles a burst one frame per turn after the first, in order, holding reads until done", async () => {
    expect(FRAMES_AT_ONCE).toBe(1);
    const { client, seen, holds } = await server();
    const socket = (client as unknown as { _socket: Socket })._socket;
    // One write, so the frames arrive in one read.
    socket.cork();
    for (let i = 0; i < 20; i++) client.send(`key ${i}`);
    socket.uncork();
    await until(() => seen.length === 20);
    expect(seen.map((s) => s.text)).toEqual(Array.from({ length: 20 }, (_, i) => `key ${i}`));
    const sameRead = seen.filter((s) => s.arrivedTurn === seen[0]!.arrivedTurn);
    expect(sameRead.length).toBeGreaterThan(1);
    expect(sameRead[0]!.turn).toBe(sameRead[0]!.arrivedTurn);
    // One frame per turn after the first, the reads held while any waited.
    for (let i = 1; i < sameRead.length; i++) expect(sameRead[i]!.turn).toBeGreaterThan(sameRead[i - 1]!.turn);
    expect(sameRead.slice(1, -1).every((s) => s.holds === 1)).toBe(true);
    expect(holds()).toBe(0);
  });
});
