import { OutputEntry, outputOf } from "../../log/output-entry.js";
import type { LogEntry } from "../../log/types.js";
import type { EventOf } from "../../protocol/index.js";
import { BINARY_OUTPUT_HEADER_BYTES, writeBinaryOutputHeader } from "../../protocol/index.js";
import type { BinaryOutputKind } from "../../protocol/index.js";
import { TerminalClientFrame, keystrokeFrame } from "../../protocol/index.js";
import type { TerminalServerFrame } from "../../protocol/index.js";
import { BinaryFrame, OWN_FRAME_BYTES, framedIn, jsonFramePooled } from "./outbound-frames.js";
import type { Frame } from "./outbound-frames.js";
import { WireFrame, encodeWireFrame } from "./wire-frame.js";
import { ClientFrameCheck } from "./ws-common.js";
import type { FrameCodec } from "./connection.js";

/** The frames of `/ws/session` (docs/protocol.md): `type` frames; output as JSON, base64 JSON and binary. */
export const terminalCodec: FrameCodec<TerminalClientFrame, TerminalServerFrame> = {
  endpoint: "terminal",
  check: new ClientFrameCheck(TerminalClientFrame, "type", keystrokeFrame),
  error: (fields) => ({ type: "error", ...fields }),
  refused: (checked) => ({ type: "error", code: checked.code, message: checked.message }),
};

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

/** Live output up to this many bytes may be framed by {@link smallTextFrame}. */
export const SMALL_TEXT_FRAME_BYTES = 64;

/**
 * The JSON frame of one output entry of a few printable ASCII bytes with nothing to escape (a
 * keystroke's echo), encoded for the wire at once: the bytes {@link terminalFrames} and the wire
 * encoding give it, without its run, its pooled buffer and the copy between them
 * (test/server/terminal-frames.test.ts). Undefined for anything else.
 */
export function smallTextFrame(entry: LogEntry): WireFrame | undefined {
  if (!(entry instanceof OutputEntry) || entry.binary) return undefined;
  const bytes = entry.bytes;
  if (bytes.length === 0 || bytes.length > SMALL_TEXT_FRAME_BYTES) return undefined;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    // Control characters, quotes and backslashes are escaped in JSON; the rest is as it is.
    if (b < 0x20 || b > 0x7e || b === 0x22 || b === 0x5c) return undefined;
  }
  const type = entry.stream === "stderr" ? "stderr" : "stdout";
  const data = String.fromCharCode(...bytes);
  return encodeWireFrame(`{"type":"${type}","offset":${entry.offset},"data":"${data}"}`, false);
}

/**
 * The binary frame of one output entry of a few bytes (a keystroke's echo, `?output=binary`),
 * encoded for the wire at once: the bytes {@link terminalFrames} and the wire encoding give it,
 * without its run and its hold on the entry's piece (test/server/terminal-frames.test.ts).
 * Undefined for anything else.
 */
export function smallBinaryFrame(entry: LogEntry): WireFrame | undefined {
  if (!(entry instanceof OutputEntry)) return undefined;
  const bytes = entry.bytes;
  if (bytes.length === 0 || bytes.length > SMALL_TEXT_FRAME_BYTES) return undefined;
  // A WebSocket header of 2 bytes (payload under 126), then the output header and the bytes.
  const frame = Buffer.allocUnsafe(2 + BINARY_OUTPUT_HEADER_BYTES + bytes.length);
  frame[0] = 0x82;
  frame[1] = BINARY_OUTPUT_HEADER_BYTES + bytes.length;
  const payload = frame.subarray(2);
  writeBinaryOutputHeader(payload, entry.stream === "stderr" ? "stderr" : "stdout", entry.offset);
  payload.set(bytes, BINARY_OUTPUT_HEADER_BYTES);
  return new WireFrame(frame, payload, true);
}

/**
 * Frames for a run of log entries: consecutive output of one stream shares a frame (in JSON
 * only while it is text), except that an event of {@link OWN_FRAME_BYTES} or more gets a frame
 * of its own: a flood's 64 KiB pieces are large frames already, and framed one by one they
 * need no new memory (a binary frame is the piece itself, a JSON one a reused buffer — see
 * FrameMemory) where one frame of several would be allocated for every lagging viewer. Output
 * is read as bytes (see OutputEntry) and encoded once, however many viewers get it.
 */
export function terminalFrames(entries: readonly LogEntry[], binaryMode: boolean, ended: () => void): Frame[] {
  const frames: Frame[] = [];
  /** Output that shares a frame; `alone`: one event of {@link OWN_FRAME_BYTES} or more, which shares none. */
  let run:
    | {
        stream: "stdout" | "stderr";
        offset: number;
        parts: Uint8Array[];
        size: number;
        first: LogEntry;
        alone: boolean;
      }
    | undefined;
  const flushRun = () => {
    if (run === undefined) return;
    const inPlace =
      binaryMode && run.parts.length === 1 && run.first instanceof OutputEntry
        ? inPlaceBinaryFrame(run.first, run.stream)
        : undefined;
    frames.push(
      inPlace ??
        (binaryMode
          ? binaryOutputFrame(run.stream, run.offset, run.parts, run.size)
          : outputFrame(run.stream, run.offset, run.parts, false)),
    );
    run = undefined;
  };
  for (const entry of entries) {
    if (entry.type === "output") {
      const out = outputOf(entry);
      const stream = out.stream === "stderr" ? "stderr" : "stdout";
      const text = binaryMode || !out.binary;
      const alone = out.bytes.length >= OWN_FRAME_BYTES;
      if (text && !alone && run && !run.alone && run.stream === stream) {
        run.parts.push(out.bytes);
        run.size += out.bytes.length;
        continue;
      }
      flushRun();
      if (text) run = { stream, offset: out.offset, parts: [out.bytes], size: out.bytes.length, first: entry, alone };
      else frames.push(outputFrame(stream, out.offset, out.bytes, true));
    } else if (entry.type === "exit" || entry.type === "lost") {
      flushRun();
      const e = JSON.parse(entry.json) as EventOf<"exit"> | EventOf<"lost">;
      frames.push(
        JSON.stringify(
          e.type === "exit"
            ? { type: "exit", exit_code: e.exitCode, signal: e.signal, state: "exited" }
            : { type: "exit", exit_code: null, signal: null, state: "lost" },
        ),
      );
      // `ended` closes the connection normally once the exit frame is on its way.
      setImmediate(ended);
    }
  }
  flushRun();
  return frames;
}
