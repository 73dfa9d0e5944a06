import type { StoredEntry } from "../../../src/log/index.js";
import { StoreStub } from "../../helpers/store-stub.js";

/**
 * An EventStore in memory whose commits the test holds back. While `stuck` (a full disk) nothing
 * queued is acknowledged; otherwise everything queued is acknowledged at the next turn of the
 * event loop, as a group commit that keeps up would. It keeps no entries (the log's listeners
 * see what is published), only what the tests measure: the bytes waiting, their peak, the biggest entry.
 */
export class HeldStore extends StoreStub {
  /** Bytes (LogEntry.size) queued and not yet acknowledged: the log's backlog, seen from the store. */
  waitingBytes = 0;
  /** The most {@link waitingBytes} ever was. */
  peakWaitingBytes = 0;
  /** The biggest entry queued so far (LogEntry.size). */
  biggestEntryBytes = 0;
  /** Types of every entry queued so far, in order (to see what was appended while nothing is published). */
  readonly queuedTypes: string[] = [];
  private queue: Array<{ sessionId: string; entry: StoredEntry }> = [];
  private stuckValue = false;
  private scheduled = false;

  get stuck(): boolean {
    return this.stuckValue;
  }

  /** Stops acknowledging (true) or acknowledges everything waiting and keeps up again (false). */
  set stuck(value: boolean) {
    this.stuckValue = value;
    if (!value) this.schedule();
  }

  enqueue(sessionId: string, entry: StoredEntry): void {
    this.queue.push({ sessionId, entry });
    this.queuedTypes.push(entry.type);
    this.waitingBytes += entry.size;
    this.peakWaitingBytes = Math.max(this.peakWaitingBytes, this.waitingBytes);
    this.biggestEntryBytes = Math.max(this.biggestEntryBytes, entry.size);
    this.schedule();
  }

  flush(): number {
    if (this.stuckValue) return 0;
    const batch = this.queue;
    this.queue = [];
    for (const { entry } of batch) this.waitingBytes -= entry.size;
    this.acknowledge(batch);
    return batch.length;
  }

  private schedule(): void {
    if (this.scheduled || this.stuckValue) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }
}
