import type {
  EventStore,
  FlushListener,
  LogEntry,
  PersistedSession,
  StoredEntry,
  StoredLogState,
} from "../../src/log/index.js";

/**
 * The parts of an EventStore in memory that tests of the log's publishing do not look at: no
 * sessions, no trims, nothing retained by size. A subclass decides when queued entries are
 * committed and tells the log with {@link acknowledge}; it may also answer reads.
 */
export abstract class StoreStub implements EventStore {
  private readonly listeners: FlushListener[] = [];

  abstract enqueue(sessionId: string, entry: StoredEntry): void;
  abstract flush(): number;

  /** Tells the log that `entries` (in order, per session) are committed. */
  protected acknowledge(entries: ReadonlyArray<{ sessionId: string; entry: StoredEntry }>): void {
    const durable = new Map<string, number>();
    for (const { sessionId, entry } of entries) durable.set(sessionId, entry.seq);
    if (durable.size > 0) for (const l of this.listeners) l(durable, { writes: entries.length, ms: 0 });
  }

  onFlushed(listener: FlushListener): void {
    this.listeners.push(listener);
  }
  enqueueTrim(): void {}
  enqueueSession(_session: PersistedSession): void {}
  readAfter(..._args: Parameters<EventStore["readAfter"]>): LogEntry[] {
    return [];
  }
  readOutputFrom(..._args: Parameters<EventStore["readOutputFrom"]>): StoredEntry[] {
    return [];
  }
  oldestSizes(): Array<{ seq: number; bytes: number }> {
    return [];
  }
  loadSessions(): PersistedSession[] {
    return [];
  }
  loadLogState(): StoredLogState {
    return { head: 0, first: 1, outputBytes: 0, retainedBytes: 0 };
  }
  deleteSession(): void {}
  close(): void {}
}

/** A store whose commits the test makes, the oldest `n` queued entries at a time. */
export class ManualStore extends StoreStub {
  readonly queued: Array<{ sessionId: string; entry: StoredEntry }> = [];
  enqueue(sessionId: string, entry: StoredEntry): void {
    this.queued.push({ sessionId, entry });
  }
  ack(n: number): void {
    this.acknowledge(this.queued.splice(0, n));
  }
  flush(): number {
    const n = this.queued.length;
    this.ack(n);
    return n;
  }
}
