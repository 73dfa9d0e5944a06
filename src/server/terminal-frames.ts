import type { OutputEntry } from "../log/output-entry.js";
import { BINARY_OUTPUT_HEADER_BYTES, writeBinaryOutputHeader } from "../protocol/index.js";
import type { BinaryOutputKind } from "../protocol/index.js";
import { BinaryFrame, framedIn, jsonFramePooled } from "./outbound-frames.js";
import type { Frame } from "./outbound-frames.js";

/** The output frames of `/ws/session` (docs/protocol.md): JSON, base64 JSON and binary. */

/**
 * A `stdout`/`stderr`/`replay` frame, encoded, of `bytes` (one piece, or pieces that follow each
 * other). `binary`: the bytes are not UTF-8 and travel as base64.
 */
export function outputFrame(
  type: BinaryOutputKind,
  offset: number,
  bytes: Uint8Array | readonly Uint8Array[],
  binary: boolean,
): Frame {
  if (!binary) return jsonFramePooled([`{"type":"${type}","offset":${offset},"data":`, { text: bytes }, "}"]);
  const all =
    bytes instanceof Uint8Array ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length) : Buffer.concat(bytes);
  return `{"type":"${type}","offset":${offset},"enc":"base64","data":"${all.toString("base64")}"}`;
}

/**
 * The binary output frame of one entry whose bytes are a pooled piece: its header written in
 * the room in front of them (PIECE_HEADROOM), sent without a copy; it holds the entry's bytes
 * (see FrameMemory). Undefined for other entries. The header is the same whoever builds it
 * (live frames only: a replay frame is always a copy), so one in flight is never changed.
 */
export function inPlaceBinaryFrame(entry: OutputEntry, kind: "stdout" | "stderr"): BinaryFrame | undefined {
  const frame = entry.withRoomInFront(BINARY_OUTPUT_HEADER_BYTES);
  if (frame === undefined) return undefined;
  writeBinaryOutputHeader(frame, kind, entry.offset);
  entry.hold();
  return framedIn(new BinaryFrame(Buffer.from(frame.buffer, frame.byteOffset, frame.length)), entry);
}

/** A binary output frame: the 9-byte header, then the bytes of `parts` (`size` in all). */
export function binaryOutputFrame(
  kind: BinaryOutputKind,
  offset: number,
  parts: readonly Uint8Array[],
  size: number,
): BinaryFrame {
  const frame = Buffer.allocUnsafe(BINARY_OUTPUT_HEADER_BYTES + size);
  writeBinaryOutputHeader(frame, kind, offset);
  let at = BINARY_OUTPUT_HEADER_BYTES;
  for (const part of parts) {
    frame.set(part, at);
    at += part.length;
  }
  return new BinaryFrame(frame);
}
