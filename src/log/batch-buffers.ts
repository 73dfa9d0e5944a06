import type { CommitOp } from "./sqlite-commit.mjs";

/**
 * A batch's bytes cross to the writer thread packed in one buffer of at least this size, handed
 * back once committed; at most {@link LOG_BATCH_BUFFERS} (up to {@link LOG_BATCH_BUFFER_MAX}) are
 * reused. Not shared memory: V8 does not count it towards a GC (bench/README.md, "Log writes").
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
