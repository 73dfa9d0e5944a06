/**
 * Reused buffers for full-size output pieces (64 KiB, {@link PIECE_BYTES}): a flood's pieces are
 * taken here by the coalescer and given back by the log once nothing reads them any more.
 *
 * Why: V8 frees an ArrayBuffer's memory only when a GC finds it dead, and it starts full
 * (mark-compact) GCs by the amount of such memory allocated. A PTY flood allocated a fresh
 * 64 KiB buffer per piece, 50 MiB per 50 MiB of output, and that set off a full GC every
 * ~10 MiB (5 per 50 MiB, each 6–15 ms of the event loop plus V8's helper threads on the same
 * cores as the producer). With the buffers reused: none (`.bench-tmp/alloc-ab.ts`, 8 alternating
 * rounds: 5 → 0 full GCs, GC pauses 57 → 9 ms and the process's CPU 727 → 657 ms per 50 MiB).
 *
 * A buffer given back is detached before it is reused: every view of it anyone still holds
 * becomes empty (length 0), so a holder the owner did not know about reads nothing instead of
 * another session's output. Detaching and re-wrapping the memory keeps V8's count of external
 * memory level, so it starts no GC either (about 1 µs).
 */

/** Size of a pooled buffer: the largest piece the coalescer emits (OUTPUT_COALESCE_MAX_BYTES). */
export const PIECE_BYTES = 64 * 1024;
/** Most free buffers kept (4 MiB); more given back are left to the GC. */
export const PIECE_POOL_MAX = 64;

export class PiecePool {
  private readonly free: ArrayBuffer[] = [];
  private _reused = 0;

  constructor(private readonly max = PIECE_POOL_MAX) {}

  /** Free buffers held. */
  get size(): number {
    return this.free.length;
  }

  /** How many {@link take}s were served by a buffer given back. */
  get reused(): number {
    return this._reused;
  }

  /** A buffer of {@link PIECE_BYTES}, reused when one is free (its contents are arbitrary). */
  take(): Uint8Array {
    const buffer = this.free.pop();
    if (buffer === undefined) return new Uint8Array(PIECE_BYTES);
    this._reused++;
    return new Uint8Array(buffer);
  }

  /**
   * Gives a buffer from {@link take} back; every view of it is empty from now on. Only the last
   * holder may give it back, once: it is then another piece's.
   */
  give(buffer: ArrayBufferLike): void {
    if (this.free.length >= this.max || buffer.byteLength !== PIECE_BYTES || !(buffer instanceof ArrayBuffer)) return;
    // Transferring detaches the old ArrayBuffer (and every view of it) and hands its memory to a new one.
    this.free.push(structuredClone(buffer, { transfer: [buffer] }));
  }
}

/** The pool terminal sessions' coalescers take from and their logs give back to. */
export const piecePool = new PiecePool();
