import type { CommitOp } from "./sqlite-commit.mjs";

/**
 * Most bytes one commit on the main thread carries. Small commits are made right here (about
 * 0.05 ms for a keystroke's echo, against ~0.5 ms for a round trip to the writer thread and back —
 * measured); anything bigger goes to the writer thread.
 */
export const LOG_DIRECT_MAX_BYTES = 64 * 1024;
/**
 * A session that appended more than this within the last one or two {@link LOG_RATE_WINDOW_MS}
 * windows is streaming: its writes go to the writer thread, so a flood never runs its commits on
 * the event loop that reads it.
 */
export const LOG_STREAMING_BYTES = 64 * 1024;
export const LOG_RATE_WINDOW_MS = 100;

/** One session's queued ops, in order, from `start`. */
interface Queue {
  ops: CommitOp[];
  sizes: number[];
  start: number;
  /** Sum of `sizes` from `start`. */
  bytes: number;
  /**
   * Holds an op only the writer thread commits: a purge (it also frees the pages) or the first
   * output of a new output file (creating and syncing files is the kind of wait the main thread
   * must not have: see output-files.mjs).
   */
  writerOnly: boolean;
}

/** A batch taken from the queues: its ops, what it makes durable, its size, whose ops it holds. */
export interface Taken {
  ops: CommitOp[];
  durable: Map<string, number>;
  bytes: number;
  /** Of which output going to output files, not into SQLite. */
  fileBytes: number;
  keys: string[];
  /** The purges it holds (their commit is waited for, see GroupCommit.whenCommitted). */
  deletes: CommitOp[];
  /** Whole queues it took ({@link CommitQueues.takeSmall}), to put back as they were. */
  whole?: Array<[string, Queue]>;
}

/**
 * The writes waiting for a commit, one queue per session (a session's ops are committed in the
 * order they were pushed; ops of different sessions in any order), and what goes into the next
 * batch: whole queues of quiet sessions for a small commit on the main thread
 * ({@link takeSmall}), or a fair share of every queue for the writer thread ({@link take}).
 * {@link GroupCommit} decides when and where each is committed.
 */
export class CommitQueues {
  private queues = new Map<string, Queue>();
  /** Ops queued, in all sessions. */
  private _ops = 0;
  /** Bytes each session appended in the current and the previous rate window. */
  private recent = new Map<string, number>();
  private earlier = new Map<string, number>();
  private windowStart = 0;

  /** `now`: milliseconds, for the rate windows (tests hold it still). */
  constructor(private readonly now: () => number = () => performance.now()) {}

  get ops(): number {
    return this._ops;
  }

  /** Sessions with queued ops. */
  get sessions(): number {
    return this.queues.size;
  }

  /** Queues `op` of session `key`, about `size` bytes. */
  push(key: string, size: number, op: CommitOp): void {
    let queue = this.queues.get(key);
    if (!queue) this.queues.set(key, (queue = { ops: [], sizes: [], start: 0, bytes: 0, writerOnly: false }));
    queue.ops.push(op);
    queue.sizes.push(size);
    queue.bytes += size;
    if (op.kind === "delete" || (op.kind === "entry" && op.file !== null && op.file === op.outStart))
      queue.writerOnly = true;
    this.recent.set(key, (this.recent.get(key) ?? 0) + size);
    this._ops++;
  }

  /** Bytes queued for one key. */
  bytesOf(key: string): number {
    return this.queues.get(key)?.bytes ?? 0;
  }

  bytes(): number {
    let bytes = 0;
    for (const queue of this.queues.values()) bytes += queue.bytes;
    return bytes;
  }

  /** An op only the writer thread commits is queued (see {@link Queue.writerOnly}). */
  writerOnly(): boolean {
    for (const queue of this.queues.values()) if (queue.writerOnly) return true;
    return false;
  }

  /**
   * Whole queues of sessions that are not streaming nor purging, up to {@link LOG_DIRECT_MAX_BYTES}
   * in all; not those of sessions in `busy` (ops in flight: their order counts).
   */
  takeSmall(busy: ReadonlyMap<string, unknown>): Taken {
    const now = this.now();
    if (now - this.windowStart >= LOG_RATE_WINDOW_MS) {
      this.earlier = now - this.windowStart >= 2 * LOG_RATE_WINDOW_MS ? new Map() : this.recent;
      this.recent = new Map();
      this.windowStart = now;
    }
    const taken = emptyBatch();
    for (const [key, queue] of this.queues) {
      // What it appended in the last one or two windows (this batch included).
      const rate = (this.recent.get(key) ?? 0) + (this.earlier.get(key) ?? 0);
      if (queue.writerOnly || rate > LOG_STREAMING_BYTES || taken.bytes + queue.bytes > LOG_DIRECT_MAX_BYTES) continue;
      if (busy.has(key)) continue;
      for (let i = queue.start; i < queue.ops.length; i++) addOp(taken, queue.ops[i]!);
      taken.bytes += queue.bytes;
      taken.keys.push(key);
      (taken.whole ??= []).push([key, queue]);
      this._ops -= queue.ops.length - queue.start;
      this.queues.delete(key);
    }
    return taken;
  }

  /** Queues what {@link takeSmall} took again, as it was (nothing was queued since: this is synchronous). */
  putBack(taken: Taken): void {
    for (const [key, queue] of taken.whole ?? []) {
      this.queues.set(key, queue);
      this._ops += queue.ops.length - queue.start;
    }
  }

  /** Every session's oldest ops, about `share` bytes each (at least one op each). */
  take(share: number): Taken {
    const taken = emptyBatch();
    for (const [key, queue] of this.queues) {
      let bytes = 0;
      let i = queue.start;
      while (i < queue.ops.length && (i === queue.start || bytes < share)) {
        addOp(taken, queue.ops[i]!);
        bytes += queue.sizes[i]!;
        i++;
      }
      taken.bytes += bytes;
      taken.keys.push(key);
      this._ops -= i - queue.start;
      queue.bytes -= bytes;
      if (i === queue.ops.length) this.queues.delete(key);
      else if (i > 1024 && i * 2 > queue.ops.length) {
        queue.ops = queue.ops.slice(i);
        queue.sizes = queue.sizes.slice(i);
        queue.start = 0;
      } else queue.start = i;
    }
    return taken;
  }
}

function emptyBatch(): Taken {
  return { ops: [], durable: new Map(), bytes: 0, fileBytes: 0, keys: [], deletes: [] };
}

/** Adds one op to a batch (an entry makes its seq durable for its session). */
function addOp(taken: Taken, op: CommitOp): void {
  taken.ops.push(op);
  if (op.kind === "delete") taken.deletes.push(op);
  if (op.kind !== "entry") return;
  taken.durable.set(op.sessionId, op.seq);
  if (op.file !== null) taken.fileBytes += op.data!.length;
}
