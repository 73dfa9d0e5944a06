import type { Taken } from "./commit-queues.js";

/** A batch posted to the writer thread and not acknowledged yet: what it makes durable once it is. */
export type InFlight = Pick<Taken, "durable" | "bytes" | "fileBytes" | "keys" | "deletes"> & { writes: number };

/**
 * The batches `GroupCommit` posted to the writer thread and has no answer for yet, in the order
 * posted (the writer commits in that order), and the sessions with ops in them: those sessions'
 * later ops wait for them (their order counts), other sessions' small writes need not.
 */
export class InflightBatches {
  private readonly batches = new Map<number, InFlight>();
  /** Sessions with ops in a batch in flight, and in how many. */
  private readonly keys = new Map<string, number>();

  get size(): number {
    return this.batches.size;
  }

  /** Sessions with ops in flight (for CommitQueues.takeSmall, which leaves them queued). */
  get sessions(): ReadonlyMap<string, number> {
    return this.keys;
  }

  /** Events and records in flight. */
  get writes(): number {
    let n = 0;
    for (const batch of this.batches.values()) n += batch.writes;
    return n;
  }

  has(batch: number): boolean {
    return this.batches.has(batch);
  }

  /** Batch number `batch` was posted with `taken`'s ops. (Not the ops: the writer has its copy.) */
  add(batch: number, taken: Taken): void {
    const { durable, bytes, fileBytes, keys, deletes } = taken;
    this.batches.set(batch, { durable, bytes, fileBytes, keys, deletes, writes: taken.ops.length });
    for (const key of keys) this.keys.set(key, (this.keys.get(key) ?? 0) + 1);
  }

  /** The writer committed `batch`, so every earlier one too: takes them out, oldest first. */
  completeUpTo(batch: number): InFlight[] {
    const done: InFlight[] = [];
    for (const [id, inFlight] of this.batches) {
      if (id > batch) break;
      this.batches.delete(id);
      for (const key of inFlight.keys) {
        const n = this.keys.get(key)! - 1;
        if (n === 0) this.keys.delete(key);
        else this.keys.set(key, n);
      }
      done.push(inFlight);
    }
    return done;
  }

  /** The writer thread stopped and lost what it held: forgets every batch, and returns how many writes they had. */
  dropAll(): number {
    const lost = this.writes;
    this.batches.clear();
    this.keys.clear();
    return lost;
  }
}
