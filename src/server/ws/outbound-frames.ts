import { BufferPool, BufferPools } from "../../core/buffer-pool.js";
import { jsonFrame } from "../../log/json-text.js";
import type { FramePiece } from "../../log/json-text.js";
import type { LogEntry } from "../../log/types.js";
import { WIRE_FRAME_MAX_BYTES, WireFrame, encodeWireFrame } from "./wire-frame.js";

/*
 * What the gateway sends on its WebSockets: frames, the memory they are views of, and the frame
 * of one live event that every connection shares (LastFrame). The Outbox (ws-common.ts) sends them.
 */

/** A binary message: output in `/ws/session`'s binary mode (see `BINARY_OUTPUT_KINDS`). */
export class BinaryFrame {
  constructor(readonly bytes: Buffer) {}
}

/**
 * A frame ready to send: a text frame as a string, or as its UTF-8 bytes already encoded (a
 * frame that many connections send, encoded once for all of them — see {@link textFrame});
 * a {@link BinaryFrame}; or a whole message encoded for the wire ({@link WireFrame}, what
 * {@link LastFrame} makes of the small frames it shares).
 */
export type Frame = string | Buffer | BinaryFrame | WireFrame;

/**
 * Memory a frame is a view of that goes back for reuse once nothing reads it (an output
 * entry's pooled buffer, see OutputEntry.hold). Whoever builds such a frame holds it once and
 * hands that hold over with the frame; the outbox holds it again while a send is in flight and
 * ends the handed-over hold once the frame is written (or, for a frame kept for more
 * connections, {@link LastFrame} keeps one of its own).
 */
export interface FrameMemory {
  hold(): void;
  release(): void;
}

const frameMemory = new WeakMap<Buffer | BinaryFrame, FrameMemory>();

/** Marks `frame` as a view of `memory`, which the caller has held once for it (see {@link FrameMemory}). */
export function framedIn<F extends Buffer | BinaryFrame>(frame: F, memory: FrameMemory): F {
  frameMemory.set(frame, memory);
  return frame;
}

export function memoryOf(frame: Frame): FrameMemory | undefined {
  return typeof frame === "string" || frame instanceof WireFrame ? undefined : frameMemory.get(frame);
}

/** Ends the hold a frame (or each of several) was handed over with. */
export function releaseFrames(frames: Frame | Frame[]): void {
  if (Array.isArray(frames)) for (const f of frames) memoryOf(f)?.release();
  else memoryOf(frames)?.release();
}

function holdFrames(frames: Frame | Frame[]): void {
  if (Array.isArray(frames)) for (const f of frames) memoryOf(f)?.hold();
  else memoryOf(frames)?.hold();
}

/**
 * JSON frames from this size up to {@link FRAME_POOL_MAX_BYTES} are built in reused buffers of a
 * few sizes (src/core/buffer-pool.ts): a flood sends one per piece to every viewer, and pieces are
 * often ~25 KiB, not 64 (bench/README.md, "Memory reuse"). Smaller frames come from Node's slab;
 * larger ones are allocated.
 */
export const FRAME_POOL_MIN_BYTES = 4 * 1024;
/** The frame pools: buffer sizes and how many free buffers each keeps (about 4 MiB in all). */
const framePools = new BufferPools(
  [
    { bytes: 16 * 1024, max: 16 },
    { bytes: 32 * 1024, max: 16 },
    { bytes: 64 * 1024, max: 16 },
    { bytes: 96 * 1024, max: 24 },
  ].map(({ bytes, max }) => new BufferPool({ bytes, max, headroom: 0 })),
  FRAME_POOL_MIN_BYTES,
);
/** Larger JSON frames are allocated. */
export const FRAME_POOL_MAX_BYTES = framePools.largest.bytes;

/** A reused buffer a frame is written in: back to its pool once its last hold is released. */
class PooledFrame implements FrameMemory {
  private holds = 1;

  constructor(
    private readonly pool: BufferPool,
    private readonly buffer: ArrayBufferLike,
  ) {}

  hold(): void {
    this.holds++;
  }

  release(): void {
    if (--this.holds === 0) this.pool.give(this.buffer);
  }
}

/**
 * A JSON frame of `pieces` ({@link jsonFrame}), written in a reused buffer when it is of a size
 * to ({@link FRAME_POOL_MIN_BYTES}); handed over with a hold (see {@link FrameMemory}).
 */
export function jsonFramePooled(pieces: readonly FramePiece[]): Buffer {
  let memory: PooledFrame | undefined;
  const frame = jsonFrame(pieces, (size) => {
    const pool = framePools.fitting(size);
    if (pool === undefined) return Buffer.allocUnsafe(size);
    const view = pool.take();
    memory = new PooledFrame(pool, view.buffer);
    return Buffer.from(view.buffer, view.byteOffset, size);
  });
  return memory === undefined ? frame : framedIn(frame, memory);
}

/**
 * Output events this large get a frame of their own in a batch of events (a catch-up, or live
 * events held while a socket is busy), on both endpoints: see `buildFrames` and `batchFrames`.
 */
export const OWN_FRAME_BYTES = 32 * 1024;

/** Encodes a text frame once, for sending it on many connections. */
export function textFrame(text: string): Buffer {
  return Buffer.from(text, "utf8");
}

/**
 * The frame last built for a single log entry. Fan-out hands one entry to every subscriber of
 * its session one after the other, and that frame is the same for all of them, so keeping the
 * last one makes N viewers cost one frame (one parse, one string) instead of N — the hot path
 * of the PTY throughput and fan-out benchmarks. Holds one entry, so it retains nothing else.
 */
export class LastFrame<F extends Frame | Frame[]> {
  private entry: LogEntry | undefined;
  private frame: F | undefined;

  /** The frame of `entry`, built once; handed over with a hold of its own (see {@link FrameMemory}). */
  get(entry: LogEntry, build: (entry: LogEntry) => F): F {
    if (this.entry !== entry) {
      const previous = this.frame;
      // The hold `build` hands over is the one this cache keeps until the next entry's frame
      // (a frame encoded for the wire is a copy: its builder's hold ends at once).
      this.frame = forTheWire(build(entry));
      this.entry = entry;
      if (previous !== undefined) releaseFrames(previous);
    }
    holdFrames(this.frame!);
    return this.frame!;
  }
}

/**
 * A shared frame as the message every connection writes (see {@link WireFrame}), if it is
 * small enough to copy ({@link WIRE_FRAME_MAX_BYTES}); larger ones go through `ws.send`
 * without a copy, and so do frames in reused memory of a pool's size ({@link FRAME_POOL_MIN_BYTES}
 * and up): a copy of each would be the fresh memory per event that the pools exist to avoid.
 * Ends the hold of any frame it copied.
 */
function forTheWire<F extends Frame | Frame[]>(frames: F): F {
  if (Array.isArray(frames)) return frames.map((f) => forTheWire(f)) as F;
  const frame = frames as Frame;
  if (frame instanceof WireFrame) return frames;
  const payload = frame instanceof BinaryFrame ? frame.bytes : frame;
  if (payload.length > WIRE_FRAME_MAX_BYTES) return frames;
  const memory = memoryOf(frame);
  if (memory !== undefined && payload.length >= FRAME_POOL_MIN_BYTES) return frames;
  const wire = encodeWireFrame(payload, frame instanceof BinaryFrame);
  memory?.release();
  return wire as F;
}
