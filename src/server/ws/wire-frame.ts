import type { Socket } from "node:net";
import type { WebSocket } from "ws";

/**
 * A whole WebSocket message as it goes on the wire (RFC 6455 §5.2: one final unmasked frame),
 * encoded once for every connection it fans out to: one write of one buffer each, where `ws.send`
 * frames it again per connection (bench/README.md, "Fan-out": p99 33.6 → 16.9 ms at 500 sockets).
 */
export class WireFrame {
  constructor(
    /** The whole message: header and payload. */
    readonly bytes: Buffer,
    /** The payload alone (a view of `bytes`), for `ws.send` where the socket is out of reach. */
    readonly payload: Buffer,
    readonly binary: boolean,
  ) {}
}

/** Frames up to this size are encoded for the wire once when shared ({@link LastFrame}); larger ones are not copied. */
export const WIRE_FRAME_MAX_BYTES = 16 * 1024;

const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const FIN = 0x80;

/** The header of an unmasked final frame with `length` bytes of payload. */
function headerBytes(length: number): number {
  return length < 126 ? 2 : length <= 0xffff ? 4 : 10;
}

function writeHeader(into: Buffer, opcode: number, length: number): number {
  into[0] = FIN | opcode;
  if (length < 126) {
    into[1] = length;
    return 2;
  }
  if (length <= 0xffff) {
    into[1] = 126;
    into.writeUInt16BE(length, 2);
    return 4;
  }
  into[1] = 127;
  into.writeBigUInt64BE(BigInt(length), 2);
  return 10;
}

/** Encodes one message: a text message of `payload` (a string, or its UTF-8 bytes), or a binary one. */
export function encodeWireFrame(payload: string | Uint8Array, binary: boolean): WireFrame {
  if (typeof payload === "string") {
    const length = Buffer.byteLength(payload, "utf8");
    const bytes = Buffer.allocUnsafe(headerBytes(length) + length);
    const at = writeHeader(bytes, OPCODE_TEXT, length);
    bytes.write(payload, at, "utf8");
    return new WireFrame(bytes, bytes.subarray(at), false);
  }
  const bytes = Buffer.allocUnsafe(headerBytes(payload.length) + payload.length);
  const at = writeHeader(bytes, binary ? OPCODE_BINARY : OPCODE_TEXT, payload.length);
  bytes.set(payload, at);
  return new WireFrame(bytes, bytes.subarray(at), binary);
}

/**
 * The socket under a `ws` connection, to write encoded messages on: `ws` keeps it as `_socket`
 * (ws 8) and, on a connection without permessage-deflate (ws-deflate.ts), writes each of its own frames (pings,
 * close) to it at once, so writes made here stay in order with them. Undefined if that ever
 * changes: the caller then sends through `ws.send`. test/server/wire-frame.test.ts checks the
 * installed `ws` against this.
 */
export function socketOf(ws: WebSocket): Socket | undefined {
  const socket = (ws as unknown as { _socket?: unknown })._socket;
  return socket !== null && typeof socket === "object" && typeof (socket as Socket).write === "function"
    ? (socket as Socket)
    : undefined;
}
