/**
 * Compression on the wire: permessage-deflate on `/v1/ws` when the client offers it (and not
 * when it does not, nor with `compression.websocket: false`), messages under the threshold sent
 * uncompressed, every payload delivered exactly; and catch-up pages (`/events`, `/output`) that
 * decode to exactly the bytes of the plain ones.
 */
import { connect } from "node:net";
import type { NetConnectOpts, Socket } from "node:net";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { Gateway } from "../../src/server/gateway.js";
import { WS_DEFLATE_THRESHOLD_BYTES } from "../../src/server/ws/ws-deflate.js";
import { HTTP_COMPRESS_MIN_BYTES } from "../../src/server/http/compressed-answer.js";
import { MuxClient, api, authHeaders, endStream, opened, startTestGateway, wsUrl } from "../delivery/helpers.js";

const cleanups: (() => unknown)[] = [];
const defer = (fn: () => unknown) => cleanups.push(fn);
let gw: Gateway;
let plainGw: Gateway;

beforeAll(async () => {
  gw = await startTestGateway(defer, { config: { compression: { websocket: true, http: true } } });
  plainGw = await startTestGateway(defer, { config: { compression: { websocket: false, http: false } } });
});
afterAll(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

/** One server-to-client frame as it crossed the wire. */
interface WireFrameSeen {
  rsv1: boolean;
  opcode: number;
  wireBytes: number;
}

/**
 * Reads the frames off the client's socket from the start: the HTTP upgrade answer, then each
 * frame's header (the server never masks), so the test sees which went compressed (RSV1).
 */
function frameTap(socket: Socket): WireFrameSeen[] {
  const seen: WireFrameSeen[] = [];
  let buffer = Buffer.alloc(0);
  let upgraded = false;
  // The frames that came with the 101 answer: ws unshifts them onto the socket, which emits them again.
  let head: Buffer | undefined;
  socket.on("data", (chunk: Buffer) => {
    if (head !== undefined && chunk.equals(head)) {
      head = undefined;
      return;
    }
    buffer = Buffer.concat([buffer, chunk]);
    if (!upgraded) {
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      upgraded = true;
      buffer = buffer.subarray(end + 4);
      if (buffer.length > 0) head = Buffer.from(buffer);
    }
    for (;;) {
      if (buffer.length < 2) return;
      const short = buffer[1]! & 0x7f;
      const header = short === 126 ? 4 : short === 127 ? 10 : 2;
      if (buffer.length < header) return;
      const length = short === 126 ? buffer.readUInt16BE(2) : short === 127 ? Number(buffer.readBigUInt64BE(2)) : short;
      if (buffer.length < header + length) return;
      seen.push({ rsv1: (buffer[0]! & 0x40) !== 0, opcode: buffer[0]! & 0x0f, wireBytes: header + length });
      buffer = buffer.subarray(header + length);
    }
  });
  return seen;
}

/** A `/v1/ws` client whose frames are tapped; `offer` sets whether it offers permessage-deflate. */
async function tappedClient(gateway: Gateway, offer: boolean): Promise<{ mux: MuxClient; frames: WireFrameSeen[] }> {
  let frames: WireFrameSeen[] = [];
  const ws = new WebSocket(wsUrl(gateway, "/v1/ws"), {
    headers: authHeaders(gateway),
    perMessageDeflate: offer,
    maxPayload: 1 << 26,
    createConnection: ((options: NetConnectOpts & { socketPath?: string }) => {
      // As ws's own netConnect: a TCP connection, `path` being the request's path.
      const socket = connect({ ...options, path: options.socketPath } as NetConnectOpts);
      frames = frameTap(socket);
      return socket;
    }) as unknown as typeof connect,
  });
  defer(() => ws.terminate());
  const mux = new MuxClient(ws);
  await opened(ws);
  return { mux, frames };
}

/** A stream session holding `chunks` as output events (base64 for bytes), ended. */
async function streamOf(gateway: Gateway, chunks: readonly (string | Uint8Array)[]): Promise<string> {
  const { id } = await api<{ id: string }>(gateway, "POST", "/v1/sessions", { kind: "stream" });
  await api(
    gateway,
    "POST",
    `/v1/sessions/${id}/events`,
    chunks.map((c) => ({
      type: "output",
      data:
        typeof c === "string"
          ? { stream: "stdout", data: c }
          : { stream: "stdout", data: Buffer.from(c).toString("base64"), enc: "base64" },
    })),
  );
  await endStream(gateway, id);
  return id;
}

/** Reads a whole ended session over `mux`: its output bytes. */
async function readAll(mux: MuxClient, session: string): Promise<Buffer> {
  mux.subscribe(session);
  await mux.until(() => mux.state.get(session)?.ended === true, 10_000, `the end of ${session}`);
  expect(mux.errors).toEqual([]);
  return mux.bytes(session);
}

/** Terminal-like text: lines that repeat with small changes, as a build log does. */
const logText = (lines: number) =>
  Array.from({ length: lines }, (_, i) => `\x1b[32m[build]\x1b[0m compiling module-${i % 50}.ts (${i})\r\n`).join("");

describe("permessage-deflate on /v1/ws", () => {
  it("is negotiated when offered, compresses large messages and sends small ones as they are", async () => {
    const text = logText(3000);
    const session = await streamOf(gw, [text, "small", logText(2)]);
    const { mux, frames } = await tappedClient(gw, true);
    expect(mux.ws.extensions).toContain("permessage-deflate");
    expect((await readAll(mux, session)).toString()).toBe(text + "small" + logText(2));
    // Each message's RSV1 bit says it was compressed: exactly those at or above the threshold.
    // (The tap reads a frame before ws hands it over: it may have seen more already.)
    const messages = mux.frames.map((f) => Buffer.byteLength(JSON.stringify(f)));
    const data = frames.filter((f) => f.opcode === 1 || f.opcode === 2).slice(0, messages.length);
    expect(data.length).toBe(messages.length);
    expect(data.some((f) => f.rsv1)).toBe(true);
    expect(data.some((f) => !f.rsv1)).toBe(true);
    for (const [i, f] of data.entries())
      if (f.rsv1) expect(f.wireBytes).toBeLessThan(messages[i]!);
      else expect(messages[i]!).toBeLessThan(WS_DEFLATE_THRESHOLD_BYTES * 1.1);
    expect(data.reduce((n, f) => n + f.wireBytes, 0)).toBeLessThan(text.length / 5);
  });

  it("is not negotiated when the client does not offer it, nor when the config turns it off", async () => {
    const text = logText(500);
    for (const [gateway, offer] of [
      [gw, false],
      [plainGw, true],
    ] as const) {
      const session = await streamOf(gateway, [text]);
      const { mux, frames } = await tappedClient(gateway, offer);
      expect(mux.ws.extensions).toBe("");
      expect((await readAll(mux, session)).toString()).toBe(text);
      expect(frames.every((f) => !f.rsv1)).toBe(true);
      expect(frames.reduce((n, f) => n + f.wireBytes, 0)).toBeGreaterThan(text.length);
    }
  });

  it("delivers random payloads, text and binary, byte for byte", async () => {
    const { mux } = await tappedClient(gw, true);
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 20_000 }),
            fc.string({ maxLength: 3000 }),
            fc.nat({ max: 400 }).map((n) => logText(n)),
          ),
          { minLength: 1, maxLength: 6 },
        ),
        async (chunks) => {
          const session = await streamOf(gw, chunks);
          const expected = Buffer.concat(chunks.map((c) => (typeof c === "string" ? Buffer.from(c) : Buffer.from(c))));
          expect((await readAll(mux, session)).equals(expected)).toBe(true);
        },
      ),
      { numRuns: 15 },
    );
  });
});

describe("compressed catch-up pages", () => {
  const get = (gateway: Gateway, path: string, encoding: string) =>
    fetch(gateway.url + path, { headers: { ...authHeaders(gateway), "accept-encoding": encoding } });

  /** The raw body of `path` (undici's fetch decodes what it asked for; node:http does not). */
  async function raw(gateway: Gateway, path: string, encoding: string) {
    const { request } = await import("node:http");
    return new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
      const req = request(gateway.url + path, { headers: { ...authHeaders(gateway), "accept-encoding": encoding } });
      req.on("response", (res) => {
        const parts: Buffer[] = [];
        res.on("data", (c: Buffer) => parts.push(c));
        res.on("end", () =>
          resolve({ encoding: res.headers["content-encoding"] as string | undefined, body: Buffer.concat(parts) }),
        );
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
  }

  const decode = (r: { encoding: string | undefined; body: Buffer }) =>
    r.encoding === "br" ? brotliDecompressSync(r.body) : r.encoding === "gzip" ? gunzipSync(r.body) : r.body;

  it("decode to exactly the plain bytes, small pages and streamed ones", async () => {
    // Past one 256 KiB read: the page streams.
    const session = await streamOf(gw, [logText(4000), logText(4000), new Uint8Array([0, 255, 128, 7]), "tail"]);
    for (const path of [
      `/v1/sessions/${session}/output?since=0`,
      `/v1/sessions/${session}/events?since=0`,
      `/v1/sessions/${session}/events?since=0&limit=1`,
      `/v1/sessions/${session}/output?since=0&max=100`,
    ]) {
      const plain = await raw(gw, path, "identity");
      expect(plain.encoding).toBeUndefined();
      for (const encoding of ["br", "gzip"] as const) {
        const compressed = await raw(gw, path, encoding === "br" ? "gzip, deflate, br" : "gzip;q=1, br;q=0");
        if (plain.body.length < HTTP_COMPRESS_MIN_BYTES) {
          expect(compressed.encoding).toBeUndefined();
          continue;
        }
        expect(compressed.encoding).toBe(encoding);
        expect(compressed.body.length).toBeLessThan(plain.body.length / 4);
        expect(decode(compressed).equals(plain.body)).toBe(true);
      }
    }
    // fetch asks for and decodes them itself: the SDK's reads are unchanged.
    const fetched = Buffer.from(await (await get(gw, `/v1/sessions/${session}/output?since=0`, "br")).arrayBuffer());
    expect(fetched.equals((await raw(gw, `/v1/sessions/${session}/output?since=0`, "identity")).body)).toBe(true);
  });

  it("are sent as they are with compression.http off", async () => {
    const session = await streamOf(plainGw, [logText(1000)]);
    const r = await raw(plainGw, `/v1/sessions/${session}/output?since=0`, "gzip, br");
    expect(r.encoding).toBeUndefined();
    expect(r.body.toString()).toBe(logText(1000));
  });
});
