/**
 * Reused buffers for what a flood allocates per 64 KiB: output pieces ({@link piecePool}: the
 * coalescer takes them, the log gives them back once nothing reads them) and the JSON frames
 * viewers are sent (src/server/ws/outbound-frames.ts).
 *
 * Why: V8 frees an ArrayBuffer's memory only when a GC finds it dead, and it starts full
 * (mark-compact) GCs by the amount of such memory allocated. A PTY flood allocated a fresh
 * 64 KiB buffer per piece, 50 MiB per 50 MiB of output, and that set off a full GC every
 * ~10 MiB (5 per 50 MiB, each 6–15 ms of the event loop plus V8's helper threads on the same
 * cores as the producer); each viewer's frames as many again. With the pieces reused: none
 * (`.bench-tmp/alloc-ab.ts`, 8 alternating rounds: 5 → 0 full GCs, GC pauses 57 → 9 ms and
 * the process's CPU 727 → 657 ms per 50 MiB).
 *
 * A buffer given back is detached before it is reused: every view of it anyone still holds
 * becomes empty (length 0), so a holder the owner did not know about reads nothing instead of
 * another session's output. Detaching and re-wrapping the memory keeps V8's count of external
 * memory level, so it starts no GC either (about 1 µs).
 */

/** Size of a piece: the largest the coalescer emits (OUTPUT_COALESCE_MAX_BYTES). */
export const PIECE_BYTES = 64 * 1024;
/**
 * Room in front of a piece in its buffer, for a frame header: a viewer's binary frame of one
 * piece is then the piece with its header written in front, sent without a copy.
 */
export const PIECE_HEADROOM = 16;
/** Most free buffers a pool keeps by default (4 MiB of pieces); more given back are left to the GC. */
export const BUFFER_POOL_MAX = 64;

export interface BufferPoolOptions {
  /** Bytes {@link BufferPool.take} hands out (default {@link PIECE_BYTES}). */
  bytes?: number;
  /** Bytes in front of them in each buffer (default {@link PIECE_HEADROOM}). */
  headroom?: number;
  /** Most free buffers kept (default {@link BUFFER_POOL_MAX}). */
  max?: number;
}

export class BufferPool {
  readonly bytes: number;
  readonly headroom: number;
  private readonly max: number;
  private readonly free: ArrayBuffer[] = [];
  private _reused = 0;

  constructor(options: BufferPoolOptions = {}) {
    this.bytes = options.bytes ?? PIECE_BYTES;
    this.headroom = options.headroom ?? PIECE_HEADROOM;
    this.max = options.max ?? BUFFER_POOL_MAX;
  }

  /** Size of each buffer: {@link headroom} + {@link bytes}. */
  get bufferBytes(): number {
    return this.headroom + this.bytes;
  }

  /** Free buffers held. */
  get size(): number {
    return this.free.length;
  }

  /** How many {@link take}s were served by a buffer given back. */
  get reused(): number {
    return this._reused;
  }

  /**
   * {@link bytes} in a buffer of their own, after {@link headroom} bytes of it; reused when one
   * is free (the contents are arbitrary).
   */
  take(): Uint8Array {
    let buffer = this.free.pop();
    if (buffer === undefined) buffer = new ArrayBuffer(this.bufferBytes);
    else this._reused++;
    return new Uint8Array(buffer, this.headroom, this.bytes);
  }

  /**
   * Gives a buffer from {@link take} back; every view of it is empty from now on. Only the last
   * holder may give it back, once: it is then someone else's.
   */
  give(buffer: ArrayBufferLike): void {
    if (this.free.length >= this.max || buffer.byteLength !== this.bufferBytes || !(buffer instanceof ArrayBuffer))
      return;
    let moved: ArrayBuffer;
    try {
      // Transferring detaches the old ArrayBuffer (and every view of it) and hands its memory to a new one.
      moved = structuredClone(buffer, { transfer: [buffer] });
    } catch (error) {
      // Not transferable (not one of ours, or marked so by its maker): left to the GC, not reused.
      if (error instanceof Error && error.name === "DataCloneError") return;
      throw error;
    }
    this.free.push(moved);
  }
}

/**
 * Pools of a few buffer sizes (size classes): a buffer for some number of bytes comes from the
 * smallest pool whose buffers hold them, so memory reuse does not cost more than twice the
 * bytes (classes that double).
 */
export class BufferPools {
  /** The pools, smallest buffers first. */
  readonly pools: readonly BufferPool[];

  constructor(
    pools: readonly BufferPool[],
    /** Fewer bytes than this get no pooled buffer: not worth one (default 0). */
    readonly minBytes = 0,
  ) {
    if (pools.length === 0) throw new RangeError("BufferPools: no pools");
    this.pools = [...pools].sort((a, b) => a.bytes - b.bytes);
  }

  /** The pool with the largest buffers. */
  get largest(): BufferPool {
    return this.pools[this.pools.length - 1]!;
  }

  /** The smallest pool whose buffers hold `bytes`; none under {@link minBytes} or over the largest. */
  fitting(bytes: number): BufferPool | undefined {
    if (bytes < this.minBytes) return undefined;
    return this.pools.find((pool) => pool.bytes >= bytes);
  }
}

/** Pieces under this size are copied to buffers of their exact size, not pooled ones. */
export const PIECE_POOL_MIN_BYTES = 4 * 1024;

/**
 * The pools coalescers take pieces from and logs give back to: full-size ({@link PIECE_BYTES}) and
 * the 8–40 KiB pieces of steady output (`yes`, a build), which unpooled caused full GCs
 * (bench/README.md, "Memory reuse"). At most 64 full and 32 of each smaller size are kept (~6 MiB);
 * a piece's buffer is under twice its size, so the hot ring's memory stays bounded by its bytes.
 */
export const piecePools = new BufferPools(
  [8 * 1024, 16 * 1024, 32 * 1024]
    .map((bytes) => new BufferPool({ bytes, max: 32 }))
    .concat(new BufferPool({ bytes: PIECE_BYTES })),
  PIECE_POOL_MIN_BYTES,
);

/** The pool of full-size pieces ({@link PIECE_BYTES}) in {@link piecePools}. */
export const piecePool = piecePools.largest;
