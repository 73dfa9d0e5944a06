import type { Clock, Timer } from "./clock.js";
import { Utf8Chunker, UTF8_MAX_HELD_BYTES } from "./utf8-chunker.js";
import type { BytePiece } from "./utf8-chunker.js";
import type { OutputStream } from "../protocol/events.js";
import type { BufferPool, BufferPools } from "./buffer-pool.js";
import { InternalError } from "../protocol/errors.js";

/**
 * Batches raw process output into `output` events: one event per few
 * milliseconds or per 64 KiB, cut so that no event splits a character. Pieces stay bytes:
 * decoding (and JSON) is left to whoever reads them as text.
 *
 * Pure (takes a {@link Clock}), so tests drive it with `ManualClock`.
 */

/** How long the first buffered byte may wait before it is emitted. */
export const OUTPUT_COALESCE_MS = 4;
/** Buffered bytes that trigger an immediate emit; no piece is larger than this. */
export const OUTPUT_COALESCE_MAX_BYTES = 64 * 1024;
/**
 * Size of the buffer a burst starts in; it doubles while the burst needs more, up to the
 * piece bound. A session that only echoes keystrokes and prompts holds this much, not 64 KiB.
 */
export const OUTPUT_BUFFER_START_BYTES = 4 * 1024;
/**
 * A chunk this small, all ASCII, that comes after quiet with nothing held (a keystroke's echo) is
 * its own piece at once: no buffer, no UTF-8 check. Larger ones take the buffer, whose check is
 * native code and cheaper per byte than a loop here.
 */
export const OUTPUT_LEADING_ASCII_BYTES = 256;

/** One coalesced piece of one stream, ready to become an `output` event. */
export interface CoalescedOutput<S extends string = OutputStream> extends BytePiece {
  stream: S;
  /** Byte offset of the piece's first byte in the combined output (all streams, arrival order). */
  offset: number;
  /**
   * Set when `bytes` is a view of a buffer from this pool that no other piece shares: whoever
   * keeps the piece gives the buffer back (`pool.give(bytes.buffer)`) once nothing reads it.
   */
  pool?: BufferPool;
}

export interface OutputCoalescerOptions<S extends string = OutputStream> {
  clock: Clock;
  /** Receives the pieces, in order. Called synchronously from `push`, `flush` or the clock's timer. */
  emit: (piece: CoalescedOutput<S>) => void;
  /** Offset of the first byte pushed (default 0). */
  offset?: number;
  /** Default {@link OUTPUT_COALESCE_MS}. */
  intervalMs?: number;
  /** Default {@link OUTPUT_COALESCE_MAX_BYTES}; at least 4 (one whole character). */
  maxBytes?: number;
  /** Size of the buffer a burst starts in (default {@link OUTPUT_BUFFER_START_BYTES}, at most `maxBytes`). */
  startBytes?: number;
  /**
   * Allocates the buffer output is collected in; a mostly full one leaves with its piece
   * (default: `new Uint8Array`; tests count allocations with it).
   */
  allocate?: (bytes: number) => Uint8Array;
  /**
   * Where the buffers pieces leave in come from: a full buffer (when one of the pools has
   * `maxBytes` buffers) leaves with its piece; a smaller piece is copied into a buffer of the
   * smallest pool it fits. A piece in a pooled buffer carries its pool (see
   * {@link CoalescedOutput.pool}); a full buffer that is not handed over goes back at once.
   * Default: none, every buffer is allocated.
   */
  pools?: BufferPools;
}

/**
 * Collects raw chunks into byte pieces, each whole UTF-8 text or `binary`. After quiet a chunk goes
 * out at once; else one piece per {@link OUTPUT_COALESCE_MS}, or at {@link OUTPUT_COALESCE_MAX_BYTES}.
 * A stream change first emits the other stream's bytes (an unfinished character as binary), so
 * offsets match the bytes read; within a stream an unfinished character waits for the next chunk.
 * @example
 * proc.onOutput = (stream, chunk) => coalescer.push(stream, chunk); // coalescer.flush() before `exit`
 */
export class OutputCoalescer<S extends string = OutputStream> {
  private readonly clock: Clock;
  private readonly emitPiece: (piece: CoalescedOutput<S>) => void;
  private readonly intervalMs: number;
  private readonly maxBytes: number;
  private readonly chunker: Utf8Chunker;
  private readonly allocate: (bytes: number) => Uint8Array;
  private readonly pools: BufferPools | undefined;
  /** The pool of full-size ({@link maxBytes}) buffers in {@link pools}, if there is one. */
  private readonly pool: BufferPool | undefined;
  /** {@link buffer} was taken from {@link pool}. */
  private pooled = false;
  /**
   * Bytes of `stream` not yet given to the chunker; reused while pieces are small, so buffering
   * costs one copy. Null until the first chunk, after a full buffer left with its piece and
   * after a burst ended.
   */
  private buffer: Uint8Array | null = null;
  private readonly startBytes: number;
  /** Size of the next buffer taken: the start size, or what the current burst grew to. */
  private capacity: number;
  private buffered = 0;
  private stream: S | null = null;
  private nextOffset: number;
  private timer: Timer | null = null;
  /** When the last piece went out; the next one waits until an interval after it. */
  private lastEmitAt = Number.NEGATIVE_INFINITY;
  private disposed = false;

  constructor(options: OutputCoalescerOptions<S>) {
    this.clock = options.clock;
    this.emitPiece = options.emit;
    this.intervalMs = options.intervalMs ?? OUTPUT_COALESCE_MS;
    this.maxBytes = options.maxBytes ?? OUTPUT_COALESCE_MAX_BYTES;
    if (this.maxBytes <= UTF8_MAX_HELD_BYTES) throw new RangeError(`maxBytes must be > ${UTF8_MAX_HELD_BYTES}`);
    this.nextOffset = options.offset ?? 0;
    this.allocate = options.allocate ?? ((bytes) => new Uint8Array(bytes));
    this.pools = options.pools;
    const full = options.pools?.fitting(this.maxBytes);
    this.pool = full?.bytes === this.maxBytes ? full : undefined;
    this.startBytes = Math.min(options.startBytes ?? OUTPUT_BUFFER_START_BYTES, this.maxBytes);
    if (!(this.startBytes >= 1)) throw new RangeError("startBytes must be ≥ 1");
    this.capacity = this.startBytes;
    this.chunker = new Utf8Chunker();
  }

  /** Offset the next emitted byte will have. */
  get offset(): number {
    return this.nextOffset;
  }

  /** Bytes pushed but not yet emitted (buffered plus a held unfinished character). */
  get pendingBytes(): number {
    return this.buffered + this.chunker.heldBytes;
  }

  /** Adds a chunk read from `stream`. The chunk is copied, not retained. */
  push(stream: S, chunk: Uint8Array): void {
    if (this.disposed) throw new InternalError("OutputCoalescer: push after dispose");
    if (this.buffered === 0 && this.chunker.heldBytes === 0 && this.timer === null && this.leadingAscii(chunk)) {
      const now = this.clock.monotonic();
      if (now - this.lastEmitAt >= this.intervalMs) {
        this.emitLeading(stream, chunk, now);
        return;
      }
    }
    if (this.stream !== null && this.stream !== stream) this.emitBuffered(true);
    this.stream = stream;
    let pos = 0;
    while (pos < chunk.length) {
      // Leave room for the held bytes the chunker will put in front, so a piece never exceeds maxBytes.
      const room = this.maxBytes - this.chunker.heldBytes - this.buffered;
      const n = Math.min(room, chunk.length - pos);
      const buffer = this.reserve(this.buffered + n);
      buffer.set(chunk.subarray(pos, pos + n), this.buffered);
      this.buffered += n;
      pos += n;
      if (this.buffered + this.chunker.heldBytes >= this.maxBytes) this.emitBuffered(false);
    }
    if (this.buffered > 0 && this.timer === null) {
      // Leading edge: output after a quiet interval (a keystroke's echo) goes out at once;
      // output that keeps coming is batched to one piece per interval.
      const wait = this.lastEmitAt + this.intervalMs - this.clock.monotonic();
      if (wait <= 0) {
        this.emitBuffered(false);
      } else {
        this.timer = this.clock.setTimeout(() => {
          this.timer = null;
          this.emitBuffered(false);
        }, wait);
      }
    }
  }

  /** Whether `chunk` may skip the buffer (see {@link OUTPUT_LEADING_ASCII_BYTES}). */
  private leadingAscii(chunk: Uint8Array): boolean {
    if (chunk.length === 0 || chunk.length > OUTPUT_LEADING_ASCII_BYTES || chunk.length > this.maxBytes) return false;
    for (let i = 0; i < chunk.length; i++) if (chunk[i]! >= 0x80) return false;
    return true;
  }

  /**
   * `chunk` as its own piece, as the buffer would have cut it after quiet (same bytes, offset and
   * stream; a copy, as small pieces are): test/core/output-coalescer.test.ts, "leading".
   */
  private emitLeading(stream: S, chunk: Uint8Array, now: number): void {
    // Nothing is buffered or held, so a change of stream has nothing to emit first.
    this.stream = stream;
    // A piece the start size holds ends a burst.
    if (this.capacity > this.startBytes) this.endBurst();
    this.lastEmitAt = now;
    const offset = this.nextOffset;
    this.nextOffset += chunk.length;
    // A copy (a Buffer's `slice` would be a view of the reader's buffer, which the next read overwrites).
    this.emitPiece({ bytes: new Uint8Array(chunk), binary: false, stream, offset });
  }

  /** Emits everything now, including an unfinished character (as a binary piece). Use before `exit`. */
  flush(): void {
    if (this.disposed) return;
    this.emitBuffered(true);
  }

  /** Drops whatever is buffered without emitting it and cancels the timer. Idempotent. */
  dispose(): void {
    this.disposed = true;
    this.timer?.cancel();
    this.timer = null;
    this.buffered = 0;
    this.dropBuffer();
  }

  /**
   * The buffer, with room for `bytes`. Taken on first use (a session that prints nothing holds
   * none) and doubled as a burst grows, so a quiet session keeps a small one.
   */
  private reserve(bytes: number): Uint8Array {
    if (this.buffer !== null && this.buffer.length >= bytes) return this.buffer;
    let capacity = this.capacity;
    while (capacity < bytes) capacity *= 2;
    capacity = Math.min(capacity, this.maxBytes);
    const pooled = this.pool !== undefined && capacity === this.pool.bytes;
    const buffer = pooled ? this.pool!.take() : this.allocate(capacity);
    if (this.buffered > 0) buffer.set(this.buffer!.subarray(0, this.buffered));
    this.dropBuffer();
    this.buffer = buffer;
    this.pooled = pooled;
    this.capacity = capacity;
    return buffer;
  }

  /** The burst is over: its large buffer goes back, and the next output starts small again. */
  private endBurst(): void {
    this.dropBuffer();
    this.capacity = this.startBytes;
  }

  /** Lets go of the buffer, giving it back to the pool if it came from there (nothing else holds it). */
  private dropBuffer(): void {
    if (this.buffer !== null && this.pooled) this.pool!.give(this.buffer.buffer);
    this.buffer = null;
    this.pooled = false;
  }

  /** A piece that is a view of {@link buffer}, in a buffer of its own (a pooled one where its size has a pool). */
  private copied(piece: BytePiece): BytePiece & { pool?: BufferPool } {
    const length = piece.bytes.length;
    const pool = this.pools?.fitting(length);
    if (pool === undefined) return { ...piece, bytes: piece.bytes.slice() };
    const bytes = pool.take().subarray(0, length);
    bytes.set(piece.bytes);
    return { ...piece, bytes, pool };
  }

  private emitBuffered(endOfStream: boolean): void {
    this.timer?.cancel();
    this.timer = null;
    const stream = this.stream;
    if (stream === null) return;
    let pieces: Array<BytePiece & { pool?: BufferPool }> = [];
    if (this.buffered > 0) {
      const filled = this.buffer!.subarray(0, this.buffered);
      // A full buffer is handed over with its piece (a new one is taken when needed) instead of
      // copied: under a flood that saves a 64 KiB copy per event. Other pieces are copied, to
      // a pooled buffer of their size class or their exact size, and the buffer is kept: an
      // echo does not hold a whole buffer, and a half-full buffer handed over would cost its
      // whole size in memory the GC has to find (and the log's writer a second copy to send
      // only the piece).
      const handOver = this.buffered === this.buffer!.length;
      pieces = this.chunker.split(filled, true);
      if (handOver) {
        // The next one is as large: the flood goes on. A pooled buffer goes with the one piece
        // that is a view of it (a piece with held bytes in front, or not valid UTF-8, is a copy).
        const views = pieces.filter((p) => p.bytes.buffer === filled.buffer);
        if (views.length === 0) {
          this.dropBuffer();
        } else {
          if (this.pooled && views.length === 1) views[0]!.pool = this.pool!;
          this.buffer = null;
          this.pooled = false;
        }
      } else {
        pieces = pieces.map((p) => (p.bytes.buffer === filled.buffer ? this.copied(p) : p));
        if (this.buffered <= this.startBytes && this.capacity > this.startBytes) this.endBurst();
      }
    }
    if (this.buffered > 0) this.lastEmitAt = this.clock.monotonic();
    this.buffered = 0;
    if (endOfStream) pieces.push(...this.chunker.finish());
    for (const piece of pieces) {
      const offset = this.nextOffset;
      this.nextOffset += piece.bytes.length;
      this.emitPiece({ ...piece, stream, offset });
    }
  }
}
