import type { CommitOp } from "./sqlite-commit.mjs";

/**
 * A batch's bytes (output, for SQLite or output files) cross to the writer thread packed in one
 * buffer of at least this size, which the writer hands back once the batch is committed: at most
 * {@link LOG_BATCH_BUFFERS} are kept for reuse (those up to {@link LOG_BATCH_BUFFER_MAX}).
 *
 * Posting each entry's bytes (a structured clone) allocated new memory for every piece of output
 * on the event loop: in a CPU profile of four 50 MiB PTY floods postMessage was the event loop's
 * biggest item, 238 ms; with the bytes packed into reused buffers, 112 ms. Memory is not shared
 * with the writer (SharedArrayBuffers were tried: V8 does not count shared memory towards
 * starting a GC, and a flood piled up 297 MiB of them).
 */
export const LOG_BATCH_BUFFER_BYTES = 512 * 1024;
export const LOG_BATCH_BUFFER_MAX = 1024 * 1024;
export const LOG_BATCH_BUFFERS = 4;

/** The buffers a batch's bytes cross to the writer thread in (see {@link LOG_BATCH_BUFFER_BYTES}). */
export class BatchBuffers {
  private readonly free: ArrayBuffer[] = [];

  /**
   * `ops` as posted to the writer: their bytes copied into one buffer (reused, see
   * {@link LOG_BATCH_BUFFER_BYTES}) and each entry pointing into it with `packed: [at, length]`.
   */
  pack(ops: CommitOp[]): { ops: CommitOp[]; buffer: ArrayBuffer | undefined } {
    let total = 0;
    for (const op of ops) if (op.kind === "entry" && op.data) total += op.data.length;
    if (total === 0) return { ops, buffer: undefined };
    const reused = this.free.findIndex((b) => b.byteLength >= total);
    const buffer =
      reused >= 0 ? this.free.splice(reused, 1)[0]! : new ArrayBuffer(Math.max(total, LOG_BATCH_BUFFER_BYTES));
    const into = new Uint8Array(buffer);
    let at = 0;
    const posted = ops.map((op): CommitOp => {
      if (op.kind !== "entry" || !op.data) return op;
      into.set(op.data, at);
      const packed: [number, number] = [at, op.data.length];
      at += op.data.length;
      return { ...op, data: null, packed };
    });
    return { ops: posted, buffer };
  }

  /** Keeps a batch buffer the writer handed back for the next batches. */
  recycle(buffer: ArrayBuffer): void {
    if (buffer.byteLength <= LOG_BATCH_BUFFER_MAX && this.free.length < LOG_BATCH_BUFFERS) this.free.push(buffer);
  }
}
