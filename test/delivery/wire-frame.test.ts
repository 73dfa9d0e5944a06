/**
 * Messages encoded for the wire once (WireFrame) and written straight to a connection's socket
 * arrive as the messages `ws.send` would have sent, in order with everything `ws` writes itself
 * (its own sends, pings), over a real socket to a real `ws` client.
 */
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { encodeWireFrame, socketOf } from "../../src/server/ws/wire-frame.js";

type Step =
  { kind: "wire" | "send"; payload: string | Uint8Array; binary: boolean } | { kind: "ping"; payload: Uint8Array };

type Received = { kind: "message"; data: string; binary: boolean } | { kind: "ping"; data: string };

let server: WebSocketServer;
let port: number;

beforeAll(async () => {
  server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const ws of server.clients) ws.terminate();
  await new Promise((resolve) => server.close(resolve));
});

/** A connected pair: the server's side, and what the client received so far. */
async function connect(): Promise<{ ws: WebSocket; received: Received[]; client: WebSocket }> {
  const accepted = new Promise<WebSocket>((resolve) => server.once("connection", resolve));
  const client = new WebSocket(`ws://127.0.0.1:${port}/`, { maxPayload: 1 << 24 });
  const received: Received[] = [];
  client.on("message", (data, binary) =>
    received.push({ kind: "message", data: Buffer.from(data as Buffer).toString("hex"), binary }),
  );
  client.on("ping", (data) => received.push({ kind: "ping", data: data.toString("hex") }));
  await new Promise<void>((resolve, reject) => {
    client.once("open", () => resolve());
    client.once("error", reject);
  });
  return { ws: await accepted, received, client };
}

const hex = (payload: string | Uint8Array) =>
  (typeof payload === "string" ? Buffer.from(payload, "utf8") : Buffer.from(payload)).toString("hex");

/** Payload lengths around each of the three header forms (7-bit, 16-bit, 64-bit length). */
const length = fc.oneof(
  fc.integer({ min: 0, max: 200 }),
  fc.constantFrom(125, 126, 127, 65_535, 65_536, 65_537),
  fc.integer({ min: 200, max: 70_000 }),
);
const bytes = length.chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
const text = fc.oneof(
  length.map((n) => "a".repeat(n)),
  fc.string({ unit: "grapheme", maxLength: 300 }),
);
const sent = fc.constantFrom("wire" as const, "send" as const);
const step: fc.Arbitrary<Step> = fc.oneof(
  // Text as a string, or as its UTF-8 bytes (a text frame must be valid UTF-8: the client checks).
  fc.record({ kind: sent, payload: text, binary: fc.constant(false) }),
  fc.record({ kind: sent, payload: text.map((t) => Buffer.from(t, "utf8")), binary: fc.constant(false) }),
  fc.record({ kind: sent, payload: bytes, binary: fc.constant(true) }),
  fc.record({ kind: fc.constant("ping" as const), payload: fc.uint8Array({ maxLength: 125 }) }),
);

describe("messages encoded for the wire once", () => {
  it("the installed ws exposes its connection's socket (else every WireFrame falls back to ws.send)", async () => {
    const { ws, client } = await connect();
    expect(socketOf(ws)).toBeDefined();
    expect(socketOf(ws)?.remotePort).toBe((client as unknown as { _socket: { localPort: number } })._socket.localPort);
    client.close();
  });

  it("arrive whole and in order among ws's own sends and pings", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        const { ws, received, client } = await connect();
        const socket = socketOf(ws)!;
        const expected: Received[] = [];
        for (const s of steps) {
          if (s.kind === "ping") {
            ws.ping(s.payload);
            expected.push({ kind: "ping", data: hex(s.payload) });
            continue;
          }
          if (s.kind === "wire") socket.write(encodeWireFrame(s.payload, s.binary).bytes);
          else ws.send(s.payload, { binary: s.binary });
          expected.push({ kind: "message", data: hex(s.payload), binary: s.binary });
        }
        // Then a last message through ws: everything before it has arrived once it has (or the
        // client closed the connection over a bad frame).
        const end = new Promise<void>((resolve) => {
          client.on("message", (data) => String(data) === "end" && resolve());
          client.once("close", () => resolve());
        });
        ws.send("end");
        await end;
        expect(received.slice(0, -1)).toEqual(expected);
        client.close();
      }),
      { numRuns: 40 },
    );
  });

  it("the payload a fallback sends is the message's own payload", () => {
    for (const payload of ["", "é✓😀", "x".repeat(70_000)]) {
      const frame = encodeWireFrame(payload, false);
      expect(frame.payload.toString("utf8")).toBe(payload);
      expect(frame.binary).toBe(false);
      expect(frame.bytes.length - frame.payload.length).toBe(
        payload.length < 126 ? 2 : payload.length < 65_536 ? 4 : 10,
      );
    }
    const binary = encodeWireFrame(new Uint8Array([1, 2, 3]), true);
    expect([...binary.bytes]).toEqual([0x82, 3, 1, 2, 3]);
    expect([...encodeWireFrame("hi", false).bytes]).toEqual([0x81, 2, 0x68, 0x69]);
  });
});
