/**
 * Bytes appended and not yet written by the store, above which producers are held back until
 * the store is down to {@link LOG_BACKLOG_RESUME_BYTES}: a process is not read (a terminal's, or
 * an agent's during a run: see {@link StoreBacklog.room}), an HTTP producer's answer waits. A pipe writes
 * several times faster than SQLite commits; without this the difference piled up in memory
 * (measured: 500 MiB through a pipe session grew the gateway by 574 MiB).
 */
export const LOG_BACKLOG_PAUSE_BYTES = 16 * 1024 * 1024;
export const LOG_BACKLOG_RESUME_BYTES = 8 * 1024 * 1024;

/**
 * One session log's entries that the store has not made durable yet, by size, and the
 * producers waiting for it to catch up. `SessionLog` adds each append and tells it the durable
 * position after every commit; tests: test/log/session-log.test.ts ("backlog").
 */
export class StoreBacklog {
  /** Seq, size pairs of the entries not yet durable, oldest first, from index `start`. */
  private sizes: number[] = [];
  private start = 0;
  private _bytes = 0;
  private readonly listeners = new Set<() => void>();
  /** The wait {@link room} hands out while there is no room (one for everyone who asks). */
  private roomWait: Promise<void> | undefined;

  constructor(private readonly onListenerError: (error: unknown) => void) {}

  /** Bytes appended and not yet durable. */
  get bytes(): number {
    return this._bytes;
  }

  /** An entry was appended (in seq order). */
  add(seq: number, size: number): void {
    this.sizes.push(seq, size);
    this._bytes += size;
  }

  /** Forgets every entry (the log was retired, or dropped what it had not written). */
  clear(): void {
    this.sizes = [];
    this.start = 0;
    this._bytes = 0;
  }

  /** The store made everything up to `durableSeq` durable ({@link notify} tells the listeners). */
  written(durableSeq: number): void {
    const sizes = this.sizes;
    let i = this.start;
    while (i < sizes.length && sizes[i]! <= durableSeq) {
      this._bytes -= sizes[i + 1]!;
      i += 2;
    }
    this.start = i;
    // Compact once the written prefix dominates, so the array does not grow without bound.
    if (i > 2048 && i * 2 > sizes.length) {
      this.sizes = sizes.slice(i);
      this.start = 0;
    }
  }

  /** Tells the listeners that the durable position moved (after {@link written} and publishing). */
  notify(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  /** The log was retired: forgets every entry and releases everyone waiting, once. */
  release(): void {
    this.clear();
    const waiting = [...this.listeners];
    this.listeners.clear();
    for (const listener of waiting) listener();
  }

  /** Observes the durable position moving forward (after a group commit). */
  onDurable(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Resolves once the backlog is down to {@link LOG_BACKLOG_RESUME_BYTES}, at once when it is
   * not over {@link LOG_BACKLOG_PAUSE_BYTES}: for producers that can wait (an HTTP append).
   */
  caughtUp(): Promise<void> {
    if (this._bytes <= LOG_BACKLOG_PAUSE_BYTES) return Promise.resolve();
    return new Promise((resolve) => {
      const stop = this.onDurable(() => {
        if (this._bytes > LOG_BACKLOG_RESUME_BYTES) return;
        stop();
        resolve();
      });
    });
  }

  /** {@link caughtUp} without a promise while there is room: `then` is called at once, or once it caught up. */
  afterCatchingUp(then: () => void): void {
    if (this._bytes <= LOG_BACKLOG_PAUSE_BYTES) then();
    else void this.caughtUp().then(then);
  }

  /**
   * Undefined while the store keeps up (the backlog is not over {@link LOG_BACKLOG_PAUSE_BYTES}),
   * else a promise that resolves once it caught up ({@link caughtUp}), shared by everyone who
   * asks. For producers that stop reading their source meanwhile (a terminal's process, an
   * agent's output): asked after every append, it allocates nothing while there is room.
   */
  room(): Promise<void> | undefined {
    if (this.roomWait) return this.roomWait;
    if (this._bytes <= LOG_BACKLOG_PAUSE_BYTES) return undefined;
    this.roomWait = this.caughtUp().then(() => {
      this.roomWait = undefined;
    });
    return this.roomWait;
  }
}
