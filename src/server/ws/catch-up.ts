/*
 * Pacing of catch-up reads across the whole gateway: one turn of the event loop reads at most
 * CATCHUP_TICK_BYTES (or CATCHUP_TICK_MS) for all feeds together, round-robin, and a token's
 * connections together hold at most CATCHUP_TOKEN_BYTES of catch-up frames not yet written.
 * Without them, 256 connections subscribing from 0 read and framed their whole backlog in one
 * go and `/healthz` went unanswered for 19 s (docs/benchmarks.md, "Isolation under attack").
 */

/** Bytes of log all catch-ups together read in one turn of the event loop, before it goes on to other work. */
export const CATCHUP_TICK_BYTES = 1024 * 1024;
/** ...or milliseconds, whichever comes first (slow disks, type-filtered scans). */
export const CATCHUP_TICK_MS = 2;
/**
 * Bytes of catch-up frames one token's connections may have queued and not yet written, all
 * together (each connection also stays within its own `limits.queueBytes`): what a token
 * opening its whole connection limit and not reading can make the gateway hold. Its feeds
 * read on once the token's total is back under half of it.
 */
export const CATCHUP_TOKEN_BYTES = 64 * 1024 * 1024;

/** One unit of catch-up work: reads one batch and says how many bytes that cost (0: nothing to do now). */
export interface CatchUpStep {
  step(): number;
}

/** Runs the steps of every feed that wants to read, round-robin, a bounded amount per turn. */
export class CatchUpScheduler {
  /** Feeds waiting for a turn, in order (a Set: a feed is in it at most once). */
  private readonly queue = new Set<CatchUpStep>();
  private scheduled = false;

  /** `onError`: a step threw (its feed is dropped from the queue; the others go on). */
  constructor(private readonly onError: (error: unknown) => void) {}

  /** `feed` wants to read: it gets a step in a later turn. */
  request(feed: CatchUpStep): void {
    this.queue.add(feed);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.run());
  }

  /**
   * Resolves at a step of its own in a later turn, which counts `bytes` (what the caller read
   * since its last turn) against that turn's budget: a long answer read a page per call shares
   * the loop with the feeds round-robin (GET .../screen).
   */
  turn(bytes: number): Promise<void> {
    return new Promise((resolve) =>
      this.request({
        step: () => {
          resolve();
          return Math.max(1, bytes);
        },
      }),
    );
  }

  /** `feed` no longer reads (its connection closed). */
  cancel(feed: CatchUpStep): void {
    this.queue.delete(feed);
  }

  /** Feeds waiting for a turn (for tests). */
  get waiting(): number {
    return this.queue.size;
  }

  private run(): void {
    this.scheduled = false;
    const started = performance.now();
    let bytes = 0;
    while (bytes < CATCHUP_TICK_BYTES && performance.now() - started < CATCHUP_TICK_MS) {
      const next = this.queue.values().next();
      if (next.done) return;
      // Taken off first: a step that wants more asks again, and goes to the back of the queue.
      this.queue.delete(next.value);
      try {
        bytes += next.value.step();
      } catch (error) {
        this.onError(error);
      }
    }
    if (this.queue.size > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.run());
    }
  }
}

/** The catch-up frames of one token's connections not yet written, against {@link CATCHUP_TOKEN_BYTES}. */
export class TokenCatchUp {
  private _bytes = 0;
  /** Feeds that stopped for the token's total: each asks the scheduler again when it is down to half. */
  private readonly stalled = new Set<CatchUpStep>();

  constructor(
    private readonly scheduler: CatchUpScheduler,
    readonly limitBytes: number = CATCHUP_TOKEN_BYTES,
  ) {}

  get bytes(): number {
    return this._bytes;
  }

  get full(): boolean {
    return this._bytes >= this.limitBytes;
  }

  add(bytes: number): void {
    this._bytes += bytes;
  }

  /** Bytes were written (or dropped with their socket). */
  remove(bytes: number): void {
    this._bytes -= bytes;
    if (this.stalled.size === 0 || this._bytes >= this.limitBytes / 2) return;
    const feeds = [...this.stalled];
    this.stalled.clear();
    for (const f of feeds) this.scheduler.request(f);
  }

  /** `feed` stopped because the token is {@link full}. */
  wait(feed: CatchUpStep): void {
    this.stalled.add(feed);
  }

  forget(feed: CatchUpStep): void {
    this.stalled.delete(feed);
  }
}

/** One {@link TokenCatchUp} per token name with open connections: held by each, dropped with the last. */
export class CatchUpPacing {
  readonly scheduler: CatchUpScheduler;
  private readonly tokens = new Map<string, { share: TokenCatchUp; holders: number }>();

  constructor(
    onError: (error: unknown) => void,
    private readonly tokenBytes: number = CATCHUP_TOKEN_BYTES,
  ) {
    this.scheduler = new CatchUpScheduler(onError);
  }

  /** The share of `token`, held until the returned release is called (idempotent). */
  hold(token: string): { share: TokenCatchUp; release: () => void } {
    let entry = this.tokens.get(token);
    if (entry === undefined) {
      entry = { share: new TokenCatchUp(this.scheduler, this.tokenBytes), holders: 0 };
      this.tokens.set(token, entry);
    }
    entry.holders++;
    const held = entry;
    let released = false;
    return {
      share: held.share,
      release: () => {
        if (released) return;
        released = true;
        if (--held.holders === 0 && this.tokens.get(token) === held) this.tokens.delete(token);
      },
    };
  }
}
