import type { OutputStream } from "../protocol/events.js";
import { InternalError } from "../protocol/errors.js";

/*
 * The wire between the gateway and a session's holder (native/holder.c): frames of
 * [type u8][payload length u32 LE][payload] over the holder's Unix socket, numbers little-endian.
 * The holder speaks first (HELLO), the gateway answers HELLO with the output offset it has on
 * record; frames of a newer minor version are ignored by an older peer, a different major is
 * refused. docs/architecture.md, "Session holders".
 */

/** A holder of another major version is not adopted (its session is listed, its process left running). */
export const HOLDER_PROTOCOL_MAJOR = 1;
/**
 * 1.1: input is held by the holder until the gateway commits its `input` event (INPUT_HELD, INPUT_COMMIT).
 * 1.2: input may be written at once while the holder keeps its record until that commit, and
 * reports the records no gateway committed at HELLO (INPUT_NOW, INPUT_REMARK).
 */
export const HOLDER_PROTOCOL_MINOR = 2;

/** From the holder. */
export const H = {
  HELLO: 1,
  OUTPUT: 2,
  CHILD_EXIT: 3,
  END: 4,
  INPUT_TAKEN: 5,
  INPUT_CLOSED: 6,
  ERROR: 7,
} as const;

/** From the gateway. */
export const G = {
  HELLO: 0x41,
  ACK: 0x42,
  INPUT: 0x43,
  INPUT_END: 0x44,
  RESIZE: 0x45,
  ABANDON: 0x46,
  DONE: 0x47,
  /** 1.1: input with the seq its `input` event gets; the holder writes it only once that seq is committed. */
  INPUT_HELD: 0x48,
  /** 1.1: the gateway's log is committed up to this seq. */
  INPUT_COMMIT: 0x49,
  /** 1.2: input written at once, with its `input` event's seq and actor: the holder keeps that record until the seq is committed. */
  INPUT_NOW: 0x4a,
  /** 1.2: the records this gateway was told at HELLO get seqs from this one on, in order (it appends their events now). */
  INPUT_REMARK: 0x4b,
} as const;

/** Records of input written at once a holder keeps (native/holder.c RECORDS_MAX, RECORD_ACTOR_MAX). */
export const HOLDER_RECORDS_MAX = 64;
export const HOLDER_RECORD_ACTOR_MAX_BYTES = 256;
/** Largest input sent as INPUT_NOW: more goes held (INPUT_HELD), in pieces. */
export const INPUT_NOW_MAX_BYTES = 64 * 1024;

const HEADER_BYTES = 5;
/** OUTPUT's payload starts with the stream (u8) and the offset of its first byte (u64). */
const OUTPUT_PREFIX_BYTES = 9;
/** Largest frame but OUTPUT the gateway accepts from a holder (an ERROR's text is ≤ 1 KiB). */
export const HOLDER_FRAME_MAX_BYTES = 64 * 1024;
/** Largest INPUT frame the gateway sends (the holder accepts 1 MiB + 16). */
export const HOLDER_INPUT_FRAME_MAX_BYTES = 1024 * 1024;

/** What the holder says when a gateway connects. */
export interface HolderHello {
  major: number;
  minor: number;
  holderPid: number;
  childPid: number;
  pty: boolean;
  childExited: boolean;
  outputEnded: boolean;
  /** The oldest output byte it still keeps, and the offset after the newest. */
  keptFrom: number;
  end: number;
  /**
   * 1.2: input written at once whose commit no gateway told the holder, oldest first: its event's
   * seq in the gateway's log that sent it (`mark`; Infinity once a later gateway's HELLO unplaced
   * it), its length, and who sent it (the actor's JSON).
   */
  records: InputRecord[];
}

export interface InputRecord {
  mark: number;
  bytes: number;
  by: Uint8Array;
}

/** A frame from the holder, decoded; OUTPUT comes as pieces (see {@link HolderFrameReader}). */
export type HolderFrame =
  | { type: "hello"; hello: HolderHello }
  | { type: "output"; stream: OutputStream; offset: number; bytes: Uint8Array }
  | { type: "childExit"; exitCode: number | null; signal: number | null }
  | { type: "end" }
  | { type: "inputTaken"; bytes: number }
  | { type: "inputClosed" }
  | { type: "error"; message: string }
  /** A frame of a newer minor version: ignored. */
  | { type: "unknown"; frameType: number };

export function frame(type: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  out[0] = type;
  out.writeUInt32LE(payload.length, 1);
  out.set(payload, HEADER_BYTES);
  return out;
}

/**
 * The gateway's HELLO: resend output from `resumeFrom`; `committedSeq` is the newest seq its log
 * has on record, so input the holder still holds for a later seq (recorded by no gateway) is dropped.
 */
export function helloFrame(resumeFrom: number, committedSeq: number): Buffer {
  const p = Buffer.alloc(20);
  p.writeUInt16LE(HOLDER_PROTOCOL_MAJOR, 0);
  p.writeUInt16LE(HOLDER_PROTOCOL_MINOR, 2);
  p.writeBigUInt64LE(BigInt(resumeFrom), 4);
  p.writeBigUInt64LE(BigInt(committedSeq), 12);
  return frame(G.HELLO, p);
}

/** Input for the event at `seq`: written by the holder once {@link inputCommitFrame} reaches `seq`. */
export function inputHeldFrame(seq: number, data: Uint8Array): Buffer {
  const p = Buffer.allocUnsafe(8 + data.length);
  p.writeBigUInt64LE(BigInt(seq), 0);
  p.set(data, 8);
  return frame(G.INPUT_HELD, p);
}

export function inputCommitFrame(seq: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeBigUInt64LE(BigInt(seq));
  return frame(G.INPUT_COMMIT, p);
}

/** Input written at once; the holder keeps `by` (an actor's JSON, ≤ {@link HOLDER_RECORD_ACTOR_MAX_BYTES}) until `seq` is committed. */
export function inputNowFrame(seq: number, by: Uint8Array, data: Uint8Array): Buffer {
  const p = Buffer.allocUnsafe(10 + by.length + data.length);
  p.writeBigUInt64LE(BigInt(seq), 0);
  p.writeUInt16LE(by.length, 8);
  p.set(by, 10);
  p.set(data, 10 + by.length);
  return frame(G.INPUT_NOW, p);
}

export function inputRemarkFrame(first: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeBigUInt64LE(BigInt(first));
  return frame(G.INPUT_REMARK, p);
}

export function ackFrame(offset: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeBigUInt64LE(BigInt(offset));
  return frame(G.ACK, p);
}

export function resizeFrame(cols: number, rows: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt16LE(cols, 0);
  p.writeUInt16LE(rows, 2);
  return frame(G.RESIZE, p);
}

/**
 * Decodes the holder's byte stream. OUTPUT payloads are handed on in the pieces they arrive
 * in (no copy, valid only during the call); other frames are gathered whole, at most
 * {@link HOLDER_FRAME_MAX_BYTES}. Throws on a frame it cannot take (the connection is then broken).
 */
export class HolderFrameReader {
  private readonly onFrame: (frame: HolderFrame) => void;
  private header = Buffer.alloc(HEADER_BYTES + OUTPUT_PREFIX_BYTES);
  private headerFill = 0;
  /** Inside an OUTPUT frame: its stream, the offset of its next byte and the bytes left. */
  private output: { stream: OutputStream; offset: number; left: number } | null = null;
  private small: { type: number; buf: Buffer; fill: number } | null = null;

  constructor(onFrame: (frame: HolderFrame) => void) {
    this.onFrame = onFrame;
  }

  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.output !== null) {
        const n = Math.min(this.output.left, chunk.length - at);
        const o = this.output;
        this.onFrame({ type: "output", stream: o.stream, offset: o.offset, bytes: chunk.subarray(at, at + n) });
        o.offset += n;
        o.left -= n;
        at += n;
        if (o.left === 0) this.output = null;
        continue;
      }
      if (this.small !== null) {
        const s = this.small;
        const n = Math.min(s.buf.length - s.fill, chunk.length - at);
        s.buf.set(chunk.subarray(at, at + n), s.fill);
        s.fill += n;
        at += n;
        if (s.fill === s.buf.length) {
          this.small = null;
          this.onFrame(decodeSmall(s.type, s.buf));
        }
        continue;
      }
      // A header: 5 bytes, or 14 for OUTPUT (its stream and offset with it).
      const want =
        this.headerFill >= 1 && this.header[0] === H.OUTPUT ? HEADER_BYTES + OUTPUT_PREFIX_BYTES : HEADER_BYTES;
      const n = Math.min(want - this.headerFill, chunk.length - at);
      this.header.set(chunk.subarray(at, at + n), this.headerFill);
      this.headerFill += n;
      at += n;
      if (this.headerFill < want) continue;
      if (this.header[0] === H.OUTPUT && want === HEADER_BYTES) continue;
      this.headerFill = 0;
      this.startFrame();
    }
  }

  private startFrame(): void {
    const type = this.header[0]!;
    const length = this.header.readUInt32LE(1);
    if (type === H.OUTPUT) {
      if (length < OUTPUT_PREFIX_BYTES) throw new InternalError("holder: short OUTPUT frame");
      const stream: OutputStream = this.header[5] === 1 ? "stderr" : "stdout";
      const offset = Number(this.header.readBigUInt64LE(6));
      const left = length - OUTPUT_PREFIX_BYTES;
      if (left > 0) this.output = { stream, offset, left };
      return;
    }
    if (length > HOLDER_FRAME_MAX_BYTES) throw new InternalError(`holder: frame of ${length} bytes (type ${type})`);
    if (length === 0) this.onFrame(decodeSmall(type, Buffer.alloc(0)));
    else this.small = { type, buf: Buffer.allocUnsafe(length), fill: 0 };
  }
}

const UNPLACED = 0xffff_ffff_ffff_ffffn;

function decodeRecords(p: Buffer): InputRecord[] {
  const count = p.readUInt32LE(32);
  const records: InputRecord[] = [];
  let at = 36;
  for (let i = 0; i < count; i++) {
    if (at + 14 > p.length) throw new InternalError("holder: short HELLO records");
    const mark = p.readBigUInt64LE(at);
    const length = p.readUInt16LE(at + 12);
    if (at + 14 + length > p.length) throw new InternalError("holder: short HELLO record");
    records.push({
      mark: mark === UNPLACED ? Infinity : Number(mark),
      bytes: p.readUInt32LE(at + 8),
      by: Uint8Array.from(p.subarray(at + 14, at + 14 + length)),
    });
    at += 14 + length;
  }
  return records;
}

function decodeSmall(type: number, p: Buffer): HolderFrame {
  switch (type) {
    case H.HELLO:
      if (p.length < 32) throw new InternalError("holder: short HELLO");
      return {
        type: "hello",
        hello: {
          major: p.readUInt16LE(0),
          minor: p.readUInt16LE(2),
          holderPid: p.readUInt32LE(4),
          childPid: p.readUInt32LE(8),
          pty: p[12] === 1,
          childExited: p[13] === 1,
          outputEnded: p[14] === 1,
          keptFrom: Number(p.readBigUInt64LE(16)),
          end: Number(p.readBigUInt64LE(24)),
          records: p.readUInt16LE(2) >= 2 && p.length >= 36 ? decodeRecords(p) : [],
        },
      };
    case H.CHILD_EXIT: {
      if (p.length < 8) throw new InternalError("holder: short CHILD_EXIT");
      const code = p.readInt32LE(0);
      const signal = p.readInt32LE(4);
      return signal !== 0
        ? { type: "childExit", exitCode: null, signal }
        : { type: "childExit", exitCode: code, signal: null };
    }
    case H.END:
      return { type: "end" };
    case H.INPUT_TAKEN:
      if (p.length < 8) throw new InternalError("holder: short INPUT_TAKEN");
      return { type: "inputTaken", bytes: Number(p.readBigUInt64LE(0)) };
    case H.INPUT_CLOSED:
      return { type: "inputClosed" };
    case H.ERROR:
      return { type: "error", message: p.toString("utf8") };
    default:
      return { type: "unknown", frameType: type };
  }
}
