import { FILTERED_SCAN_EVENTS } from "../../log/log-reader.js";
import type { SessionLog } from "../../log/session-log.js";
import type { StoredEntry } from "../../log/store.js";
import type { LogEntry } from "../../log/types.js";
import { isPublicError } from "../../protocol/errors.js";
import type { CatchUpScheduler, CatchUpStep, TokenCatchUp } from "./catch-up.js";
import { outputEnd } from "./screen-frame.js";
import type { Sink } from "./sink.js";

/** Entries and bytes read from the log per catch-up step. */
export const CATCHUP_BATCH_ENTRIES = 512;
export const CATCHUP_BATCH_BYTES = 256 * 1024;

export type FeedMode = "catchup" | "live" | "closed";

/**
 * How a connection's feed shares catch-up work with every other (src/server/ws/catch-up.ts): its
 * reads are steps of the gateway's scheduler, and stop while its token's share is full.
 * A feed without it reads in `pump`, as much as its sink has room for.
 */
export interface FeedPacing {
  scheduler: CatchUpScheduler;
  share: TokenCatchUp;
}

/** What one read left to do: another batch now, another after other work, or nothing until a drain. */
type ReadNext = "more" | "soon" | "wait";

export interface FeedHooks {
  /** The feed fell behind and left live delivery. */
  onCatchUp?: () => void;
  /** Retention overtook the feed (the sink's `trimmed` follows). */
  onReset?: () => void;
  /** The feed reached the head and joined live delivery. */
  onJoin?: () => void;
  /** A live event was passed over by the type filter (the cursor moved without a delivery). */
  onSkip?: () => void;
  /** Entries are about to go to the sink (a `lag: "screen"` viewer notes the output it sent). */
  onDeliver?: (entries: readonly LogEntry[]) => void;
}

export interface FeedOptions {
  /** Past this many queued bytes, live delivery stops and the feed catches up from the log. */
  budgetBytes: number;
  /** Only these event types are delivered (the cursor passes over the others). */
  types?: ReadonlySet<string> | undefined;
  hooks?: FeedHooks | undefined;
  pacing?: FeedPacing | undefined;
  /**
   * Live output is delivered as it is appended where the log shows it early (SessionLog.showOutputEarly):
   * only for a consumer that resumes by byte offset (`/ws/session`) and takes output, exit and lost only.
   */
  early?: boolean | undefined;
}

/**
 * One consumer's position in one session's log. It replays from `since`, joins live delivery
 * at exactly the head in the same synchronous step as the last read (docs/architecture.md, guarantee 2), and when
 * its connection falls behind it leaves live delivery and catches up from the log as the
 * connection drains (docs/architecture.md, guarantee 4). The cursor only moves forward, so nothing is delivered twice.
 */
export class SessionFeed implements CatchUpStep {
  private _cursor: number;
  private _mode: FeedMode = "catchup";
  private unsubscribe: (() => void) | undefined;
  private pumping = false;
  private pumpScheduled = false;
  /** Bytes of entries this feed has read from the log (what a step costs). */
  private readBytes = 0;

  private readonly budgetBytes: number;
  private readonly types: ReadonlySet<string> | undefined;
  private readonly hooks: FeedHooks;
  private readonly pacing: FeedPacing | undefined;
  private readonly early: boolean;
  private unsubscribeEarly: (() => void) | undefined;
  /** With `early`: the output byte this feed has delivered up to (an early entry must start there). */
  private outputEnd = 0;

  constructor(
    private readonly log: SessionLog,
    since: number,
    private readonly sink: Sink,
    options: FeedOptions,
  ) {
    log.checkPosition(since);
    this._cursor = since;
    this.budgetBytes = options.budgetBytes;
    this.types = options.types;
    this.hooks = options.hooks ?? {};
    this.pacing = options.pacing;
    this.early = options.early === true;
  }

  /** The last seq delivered or skipped. */
  get cursor(): number {
    return this._cursor;
  }

  get mode(): FeedMode {
    return this._mode;
  }

  /**
   * Delivers what the sink has room for; joins live delivery once caught up. Call again after
   * the sink drains. With pacing, the reads are left to the scheduler (later turns of the loop).
   */
  pump(): void {
    if (this._mode !== "catchup") return;
    if (this.pacing !== undefined) {
      this.pacing.scheduler.request(this);
      return;
    }
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        const next = this.read();
        if (next === "soon") this.pumpSoon();
        if (next !== "more") return;
      }
    } finally {
      this.pumping = false;
    }
  }

  /** One batch, as a step of the scheduler: returns what it cost, and asks for another turn while there is more. */
  step(): number {
    const before = this.readBytes;
    const next = this.read();
    if (next !== "wait") this.pacing?.scheduler.request(this);
    // A long filtered scan that matched little still cost a batch's work.
    return this.readBytes - before + (next === "soon" ? CATCHUP_BATCH_BYTES : 1);
  }

  private read(): ReadNext {
    // Closing: a write is dropped, not queued (the budget would never fill). Log closed: shutdown.
    if (this._mode !== "catchup" || this.sink.open === false || this.log.closed) return "wait";
    if (this.sink.queuedBytes >= this.budgetBytes) return "wait"; // the drain pumps again
    if (this.pacing?.share.full) {
      this.pacing.share.wait(this);
      return "wait";
    }
    let read;
    try {
      read = this.log.read(this._cursor, {
        limit: CATCHUP_BATCH_ENTRIES,
        maxBytes: CATCHUP_BATCH_BYTES,
        ...(this.types ? { types: this.types } : {}),
      });
    } catch (error) {
      if (!isPublicError(error) || error.code !== "HISTORY_TRIMMED") throw error;
      // Retention overtook this consumer: say so explicitly, then go on from what is kept.
      const from = this._cursor;
      this._cursor = this.log.first - 1;
      this.hooks.onReset?.();
      this.sink.trimmed(this.log.first, this.log.head, from);
      return "more";
    }
    for (const e of read.entries) this.readBytes += e.size;
    if (read.entries.length > 0) this.deliver(read.entries, false);
    const examined = read.next - this._cursor;
    this._cursor = read.next;
    if (this._cursor >= this.log.head) {
      // Same tick as the read: nothing can be appended in between.
      this._mode = "live";
      this.unsubscribe = this.log.subscribe((entry) => this.onLive(entry));
      if (this.early) {
        this.outputEnd = this.log.outputBytes;
        this.unsubscribeEarly ??= this.log.subscribeEarly((entry) => this.onEarly(entry));
      }
      this.hooks.onJoin?.();
      return "wait";
    }
    // The type filter went through as much of the log as one read examines, matching little:
    // go on after other work, not through all of a long log in one go. (Little or nothing was
    // queued, so a drain may not call pump again.)
    if (this.types && examined >= FILTERED_SCAN_EVENTS) return "soon";
    return "more";
  }

  private pumpSoon(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      // The gateway closed the log meanwhile (shutdown) before this feed's owner closed it: an
      // SSE response learns of its socket's end only later. Reading would throw, uncaught here.
      if (this.log.closed) return;
      this.pump();
    });
  }

  close(): void {
    this._mode = "closed";
    this.pacing?.scheduler.cancel(this);
    this.pacing?.share.forget(this);
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.unsubscribeEarly?.();
    this.unsubscribeEarly = undefined;
  }

  private onLive(entry: LogEntry): void {
    if (this._mode !== "live" || entry.seq <= this._cursor) return;
    if (this.types && !this.types.has(entry.type)) {
      this._cursor = entry.seq;
      this.hooks.onSkip?.();
      return;
    }
    const queued = this.sink.queuedBytes;
    // With nothing queued an event goes out whatever its size: only a drain (which needs
    // something in flight) restarts a catch-up, so switching now would stall this feed.
    if (queued > 0 && queued + entry.size > this.budgetBytes) {
      // Too slow for live delivery: stop it and read from the log once the connection drains.
      this.unsubscribe?.();
      this.unsubscribe = undefined;
      this._mode = "catchup";
      this.hooks.onCatchUp?.();
      return;
    }
    this._cursor = entry.seq;
    this.deliver([entry], true);
  }

  /**
   * An output entry appended and not yet durable (see FeedOptions.early): delivered now only if it
   * starts at the byte this feed reached and the sink has room. Otherwise it comes at its
   * publication ({@link onLive}), which decides about catching up. Entries between the cursor and
   * it are not output (types this feed passes over) or it would not start there.
   */
  private onEarly(entry: LogEntry): void {
    if (this._mode !== "live" || entry.seq <= this._cursor) return;
    if (this.types?.has(entry.type) === false || (entry as StoredEntry).outStart !== this.outputEnd) return;
    const queued = this.sink.queuedBytes;
    if (queued > 0 && queued + entry.size > this.budgetBytes) return;
    this._cursor = entry.seq;
    this.deliver([entry], true);
  }

  private deliver(entries: readonly LogEntry[], live: boolean): void {
    if (this.early) this.outputEnd = outputEnd(entries, this.outputEnd);
    this.hooks.onDeliver?.(entries);
    this.sink.deliver(entries, live);
  }
}
