import { SwitchboardError } from "../protocol/index.js";
import type { NewEvent, OutputStream, SessionEvent } from "../protocol/index.js";
import type { Clock } from "../core/clock.js";
import type { BufferPool } from "../core/buffer-pool.js";
import { HotRing } from "./hot-ring.js";
import { LogReader, OUTPUT_READ_MAX_BYTES } from "./log-reader.js";
import type { OutputSlice } from "./log-reader.js";
import { OutputEntry } from "./output-entry.js";
import { firstKeptByBytes } from "./retention.js";
import type { RetentionPolicy } from "./retention.js";
import { logUnavailable } from "./store.js";
import type { EventStore, StoredEntry, StoredLogState } from "./store.js";
import type { AppendableLog, LogEntry, LogListener, ReadOptions, ReadResult } from "./types.js";
import { jsonSize } from "./types.js";
import { StoreBacklog } from "./store-backlog.js";
import { InternalError } from "../protocol/errors.js";
import { DeferredAppends } from "./deferred-appends.js";

export interface SessionLogOptions {
  sessionId: string;
  store: EventStore;
  clock: Clock;
  retention: RetentionPolicy;
  /** State loaded from the store for a session that existed before this start. */
  initial?: StoredLogState;
  ringMaxEntries?: number;
  ringMaxBytes?: number;
  /** Called when a listener throws; the append itself always completes. */
  onListenerError?: (error: unknown) => void;
  /** Told the position of each append (the log manager notes a request's appends with it). */
  onAppend?: (mark: AppendMark) => void;
}

const LINGERS = { lingers: true } as const;
/**
 * Where an append left a log: its seq, and how many drops the log had made by then
 * ({@link SessionLog.drops}), so that a wait for it after a drop is refused, not answered by
 * whatever entry comes to that seq later.
 */
export interface AppendMark {
  seq: number;
  drops: number;
  /** What else the answer to the append waits for (held input reaching its holder, see {@link SessionLog.append}). */
  until?: Promise<void>;
}

/** Someone waiting for entries up to `seq` to be published (see SessionLog.afterPublished): told once, with the refusal if any. */
interface PublishWaiter {
  seq: number;
  done: (refusal?: SwitchboardError) => void;
}

/**
 * Who appends to a log:
 * - `session`: its session, through append and appendOutputBytes;
 * - `copy`: another cluster node; only appendCopy takes entries, an append is refused with `refusal`
 *   ({@link SessionLog.markCopy}, {@link SessionLog.markOwned});
 * - `removed`: the session was removed ({@link SessionLog.retire}): nothing more is appended or published.
 */
type Appender = { by: "session" } | { by: "copy"; refusal: () => SwitchboardError } | { by: "removed" };

/**
 * What the hot ring keeps: `recent` entries while the session runs, only the `unwritten` ones once it
 * ended (what is durable is read from the store, {@link SessionLog.markEnded}) and while it is a
 * copy of another node's ({@link SessionLog.markCopy}).
 */
type RingKeeps = "recent" | "unwritten";

/** How often the EventLog checks for logs that appended nothing meanwhile (see {@link SessionLog.releaseRingIfIdle}). */
export const RING_IDLE_MS = 30_000;

/**
 * One session's log. `append` assigns the next seq (and output offset), keeps the entry in the hot
 * ring and queues it for the store; the entry is *published* (listeners told, read positions moved)
 * only once the store made it durable ({@link markDurable}), or the shared log holds it in cluster
 * mode ({@link markShared}): nothing a consumer got is lost in a crash (docs/architecture.md,
 * guarantee 1). Publishing is one synchronous step, so a reader that reads history and subscribes
 * in one tick neither misses nor repeats an event (guarantee 2).
 */
export class SessionLog implements AppendableLog {
  readonly sessionId: string;
  private readonly store: EventStore;
  private readonly clock: Clock;
  private readonly retention: RetentionPolicy;
  private readonly ring: HotRing;
  private readonly reader: LogReader;
  private readonly listeners = new Set<LogListener>();
  /** Told of each output entry as it is appended, while output is shown early ({@link showOutputEarly}). */
  private readonly earlyListeners = new Set<LogListener>();
  private _earlyOutput = false;
  /** Told the durable seq before what it made durable is published ({@link onDurable}). */
  private durableHook: ((seq: number) => void) | undefined;
  /** Listeners that are not `background` (see {@link watched}). */
  private watchers = 0;
  /** Of the {@link watchers}, those that also follow the output early ({@link subscribeEarly}). */
  private earlyWatchers = 0;
  /** Entries whose seq is taken and whose append waits ({@link appendSoon}). */
  private readonly soon: DeferredAppends<SessionEvent | OutputEntry>;
  /** Early listeners are being told of an entry whose append waits for theirs: nothing may append meanwhile. */
  private tellingFirst = false;
  private readonly onListenerError: (error: unknown) => void;
  private readonly onAppend: ((mark: AppendMark) => void) | undefined;
  private _drops = 0;
  /** Why the last {@link dropUnwritten} dropped what it did. */
  private dropRefusal: () => SwitchboardError = () => new SwitchboardError("INTERNAL", "no entry was dropped");
  /** Seq of the newest appended event, published or not ({@link appendedHead}). */
  private appendedSeq: number;
  private _first: number;
  /** Output bytes appended, published or not: the offset the next output byte gets. */
  private appendedBytes: number;
  /** Seq of the newest published event: what readers and listeners have seen ({@link head}). */
  private publishedSeq: number;
  /** Output bytes published ({@link outputBytes}). */
  private publishedBytes: number;
  /** Entries appended and not yet published, oldest first, from index `pendingStart`. */
  private pending: StoredEntry[] = [];
  private pendingStart = 0;
  private publishing = false;
  private publishWaiters: PublishWaiter[] = [];
  private retainedBytes: number;
  private durableSeq: number;
  /** Seq of the newest copied entry the shared log holds ({@link markShared}): published without waiting for the store. */
  private sharedSeq: number;
  /**
   * What the store has not written yet (the entries after `durableSeq`), and the producers
   * waiting for it: a producer that outruns the store (a pipe writes faster than SQLite commits)
   * is held back by this, so that gateway memory stays bounded (see TerminalSession).
   */
  readonly backlog: StoreBacklog;
  private appender: Appender = { by: "session" };
  private ringKeeps: RingKeeps = "recent";
  private headAtLastIdleCheck = -1;
  private _closed = false;

  constructor(options: SessionLogOptions) {
    this.sessionId = options.sessionId;
    this.store = options.store;
    this.clock = options.clock;
    this.retention = options.retention;
    this.ring = new HotRing(options.ringMaxEntries, options.ringMaxBytes, (entry) => this.dropped(entry));
    this.reader = new LogReader(options.sessionId, options.store, this.ring, this);
    this.onAppend = options.onAppend;
    this.onListenerError =
      options.onListenerError ??
      ((e) =>
        queueMicrotask(() => {
          throw e;
        }));
    // (A flush the timer makes throws only once the store closed: the gateway stops.)
    this.soon = new DeferredAppends(() => this.appendSoonNow(), this.onListenerError);
    const initial = options.initial ?? { head: 0, first: 1, outputBytes: 0, retainedBytes: 0 };
    this.appendedSeq = initial.head;
    this._first = initial.first;
    this.appendedBytes = initial.outputBytes;
    this.retainedBytes = initial.retainedBytes;
    this.durableSeq = initial.head;
    this.sharedSeq = initial.head;
    this.backlog = new StoreBacklog(this.onListenerError);
    this.publishedSeq = initial.head;
    this.publishedBytes = initial.outputBytes;
  }

  /** Seq of the newest published (durable) event (0 when the log is empty). */
  get head(): number {
    return this.publishedSeq;
  }

  /**
   * How many times this log dropped what it had appended and not written ({@link dropUnwritten}):
   * part of an {@link AppendMark}.
   */
  get drops(): number {
    return this._drops;
  }

  /** Seq of the newest appended event, which may not be durable (and so not published) yet. */
  get appendedHead(): number {
    return this.appendedSeq;
  }

  /** Everything appended is published: no event is waiting for the store. */
  get settled(): boolean {
    return this.publishedSeq === this.appendedSeq;
  }

  /** Bytes of events this log holds in memory (its hot ring); the rest is read from the store. */
  get hotBytes(): number {
    return this.ring.byteSize;
  }

  /** Seq of the oldest retained event (head + 1 when nothing is retained). */
  get first(): number {
    return this._first;
  }

  /** Output bytes published (durable): the end of the output readers can see. */
  get outputBytes(): number {
    return this.publishedBytes;
  }

  /** Total output bytes ever appended: the offset the next output byte will get. */
  get appendedOutputBytes(): number {
    return this.appendedBytes;
  }

  /**
   * The log as its store will hold it once everything appended and trimmed so far is committed:
   * saved with the session's record, so that the next start need not read every event to find it
   * (see EventStore.loadLogState).
   */
  get storedState(): StoredLogState {
    return {
      head: this.appendedSeq,
      first: this._first,
      outputBytes: this.appendedBytes,
      retainedBytes: this.retainedBytes,
    };
  }

  /**
   * Resolves once the events up to `seq` (default: everything appended so far) are published:
   * for answers that must show what they appended (read-your-writes), so it never resolves for an
   * entry no store will hold. Rejects when that entry is dropped unwritten ({@link dropUnwritten}:
   * the shared log fenced this node) or its log was removed before the store wrote it.
   */
  whenPublished(seq = this.appendedSeq, drops = this._drops): Promise<void> {
    return new Promise((resolve, reject) => {
      this.afterPublished(seq, drops, (refusal) => (refusal === undefined ? resolve() : reject(refusal)));
    });
  }

  /**
   * {@link whenPublished} without a promise, for a path taken on every append (a `/v1/ws` producer's
   * acknowledgement): `done` is called once, with the refusal if any, at once when that is known
   * now and otherwise while the entries are published. It must not throw.
   */
  afterPublished(seq: number, drops: number, done: (refusal?: SwitchboardError) => void): void {
    if (drops !== this._drops) done(this.dropRefusal());
    else if (seq <= this.publishedSeq) done();
    else if (this.appender.by === "removed") done(this.removedBeforeWritten());
    else {
      this.publishWaiters.push({ seq, done });
      this.hurryShownEarly();
    }
  }

  /**
   * Resolves once the store holds the entries up to `seq` (or the log was removed): for work paced
   * by what the store has taken (a cluster copy's pages, see CopyGate), not by what is published.
   */
  whenDurable(seq: number): Promise<void> {
    this.appendSoonNow();
    if (seq <= this.durableSeq || this.appender.by === "removed") return Promise.resolve();
    const durable = new Promise<void>((resolve) => {
      const stop = this.backlog.onDurable(() => {
        if (seq > this.durableSeq && this.appender.by !== "removed") return;
        stop();
        resolve();
      });
    });
    // Replica rows would otherwise wait for company (LOG_REPLICA_LINGER_MS) with someone waiting.
    this.store.hurry?.();
    return durable;
  }

  private removedBeforeWritten(): SwitchboardError {
    return new SwitchboardError(
      "SESSION_NOT_FOUND",
      `session ${this.sessionId} was removed before these events were written; they were not kept`,
    );
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /**
   * Throws LOG_UNAVAILABLE while the store cannot write: for new work (a session, a run, an
   * external producer's events) that would only pile up in memory. What already runs goes on
   * (processes are held back by the backlog, as by a slow disk).
   */
  assertWritable(): void {
    const failure = this.store.writeFailure;
    if (failure) throw logUnavailable(failure);
  }

  /**
   * The session has ended: from now on the hot ring keeps only what is not durable yet. Ended
   * sessions are not counted by `limits.sessionsPerToken` and stay until they are deleted or
   * pruned, so a ring each (up to `HOT_RING_MAX_BYTES`, 4 MiB) let whoever may create sessions grow
   * the gateway without bound by ending them in a loop. Their readers go to the store, as they do
   * for every session after a restart.
   */
  markEnded(): void {
    this.ringKeeps = "unwritten";
    this.ring.evict(this.durableSeq, this._first, true);
  }

  /** A lost agent session runs again (resumed): its hot ring serves readers again. */
  markResumed(): void {
    this.ringKeeps = "recent";
  }

  /**
   * Called every {@link RING_IDLE_MS} by the EventLog: a log that appended nothing since the
   * previous call gives its hot ring back, as an ended one does (readers go to the store). A
   * ring is up to 4 MiB of output (`HOT_RING_MAX_BYTES`, ~7 MiB of memory with the pieces
   * around it), kept until it is pushed out, so every session that once printed a burst — an
   * agent's hours of work — held that much for as long as it ran, idle or not.
   */
  releaseRingIfIdle(): void {
    const idle = this.appendedSeq === this.headAtLastIdleCheck;
    this.headAtLastIdleCheck = this.appendedSeq;
    if (idle && this.ring.size > 0) this.ring.evict(this.durableSeq, this._first, true);
  }

  /**
   * The EventLog was closed (gateway shutdown): its store can no longer be read. For readers that
   * come back later by themselves (a filtered feed's next step), whose owner may learn of the
   * shutdown only after it (an SSE response's "close" event comes once its socket has closed).
   */
  get closed(): boolean {
    return this._closed;
  }

  /** See {@link closed}: called by the EventLog as it closes. */
  markClosed(): void {
    this._closed = true;
  }

  /**
   * This log is a copy of one another node appends to (see {@link appendCopy}): appends here are
   * refused with `refusal`, or the copy would diverge from the shared log.
   */
  markCopy(refusal: () => SwitchboardError): void {
    if (this.appender.by === "removed") return;
    this.appender = { by: "copy", refusal };
    this.ring.evict(this.durableSeq, this._first, true);
  }

  /**
   * Whether the hot ring keeps only what the store has not written yet: an ended session's, and a
   * copy's, whose readers any token can make this node hold for as many sessions as it can see
   * (docs/security.md, "copy storm"): a copy's readers read from the replica.
   */
  private get ringKeepsUnwritten(): boolean {
    return this.ringKeeps === "unwritten" || this.appender.by === "copy";
  }

  /** This node took the session over (cluster mode): it appends here again, after the copied entries. */
  markOwned(): void {
    if (this.appender.by === "copy") this.appender = { by: "session" };
  }

  /**
   * Drops the entries appended after the durable position, which no store will ever hold
   * (cluster mode: the shared log fenced this node's writes). The log goes on from what its
   * readers saw, as a copy of the new owner's (see SessionManager.follow); whoever waits for a
   * dropped entry ({@link whenPublished}) is refused with `refusal`. Returns how many.
   */
  dropUnwritten(refusal: () => SwitchboardError): number {
    this.appendSoonNow();
    this._drops++;
    this.dropRefusal = refusal;
    // Copied entries the shared log holds are kept, committed or not.
    const kept = Math.max(this.durableSeq, this.sharedSeq);
    const refused = this.publishWaiters.filter((w) => w.seq > kept);
    this.publishWaiters = this.publishWaiters.filter((w) => w.seq <= kept);
    // Told once the log is as it will be: a waiter may be called back at once (afterPublished).
    try {
      return this.dropAfter(kept);
    } finally {
      for (const w of refused) w.done(refusal());
    }
  }

  /** {@link dropUnwritten}'s entries: those after `kept`, which no store will hold. */
  private dropAfter(kept: number): number {
    const unwritten = this.pending.slice(this.pendingStart).filter((e) => e.seq > kept);
    if (unwritten.length === 0) return 0;
    this.pending = this.pending.slice(this.pendingStart).filter((e) => e.seq <= kept);
    this.pendingStart = 0;
    this.ring.dropAfter(kept);
    for (const entry of unwritten) this.retainedBytes -= entry.size;
    // The backlog is the sizes of the entries after durableSeq: these (and copied ones, counted no more).
    this.backlog.clear();
    this.appendedSeq = kept;
    const firstOutput = unwritten.find((e) => e.outStart !== undefined);
    if (firstOutput !== undefined) this.appendedBytes = firstOutput.outStart!;
    this.ringKeeps = "recent";
    return unwritten.length;
  }

  /**
   * Appends `event` (not output); `urgent`: see {@link StoredEntry.urgent}. `until`: the
   * answer to the request that appended it also waits for this (EventLog.published), e.g. input
   * a take-over still holds in this process before its holder's HELLO (terminal-session.ts).
   */
  append(event: NewEvent, options: { urgent?: boolean; until?: Promise<void> } = {}): SessionEvent {
    if (this.appender.by === "copy") throw this.appender.refusal();
    if (event.type === "output") {
      // Offsets are the log's to assign; callers use appendOutput.
      throw new InternalError("use appendOutput for output events");
    }
    this.appendSoonNow();
    const stored = { seq: this.appendedSeq + 1, ts: this.clock.now(), ...event } as SessionEvent;
    const json = JSON.stringify(stored);
    const urgent = options.urgent === true ? { urgent: true } : {};
    this.commit({ seq: stored.seq, type: stored.type, json, size: jsonSize(json), ...urgent }, options.until);
    return stored;
  }

  /**
   * {@link append} of a held key's input, its seq (returned) and time taken now, the rest left for
   * later (DeferredAppends) with the echo shown meanwhile: the key's bookkeeping runs after its
   * viewer woke. Anything else appended, waited for or flushed does it at once, in seq order; no
   * reader misses it (entries are published once committed). Only where output is shown early.
   * docs/architecture.md, "A keystroke from a viewer to the program"; test/log/append-soon.test.ts.
   */
  appendSoon(event: NewEvent): number {
    if (!this._earlyOutput || this._closed) return this.append(event).seq;
    if (this.appender.by === "copy") throw this.appender.refusal();
    if (this.appender.by === "removed")
      throw new SwitchboardError("SESSION_NOT_FOUND", `session ${this.sessionId} was deleted`);
    const stored = { seq: this.appendedSeq + 1, ts: this.clock.now(), ...event } as SessionEvent;
    this.deferAppend(stored);
    return stored.seq;
  }

  /** The answer to the request being handled also waits for `until`, as {@link append}'s (TerminalSession.writeOnHello). */
  answerWaitsFor(until: Promise<void>): void {
    this.onAppend?.({ seq: this.appendedSeq, drops: this._drops, until });
  }

  /** Takes `entry`'s seq now and leaves its append to {@link appendSoonNow} (see {@link appendSoon}). */
  private deferAppend(entry: SessionEvent | OutputEntry): void {
    this.appendedSeq = entry.seq;
    // An event's request waits for it (told now, in its scope); output is told when appended.
    if (!(entry instanceof OutputEntry)) this.onAppend?.({ seq: entry.seq, drops: this._drops });
    this.soon.push(entry);
  }

  /** Does the appends {@link appendSoon} left, in order: before anything else is appended, waited for or flushed. */
  appendSoonNow(): void {
    if (this.soon.size === 0) return;
    if (this.tellingFirst) throw new InternalError(`log ${this.sessionId}: an early listener appended`);
    const entries = this.soon.take();
    if (this.appender.by === "removed") return;
    for (const entry of entries) {
      if (entry instanceof OutputEntry) this.commit(entry);
      else {
        const json = JSON.stringify(entry);
        this.commit({ seq: entry.seq, type: entry.type, json, size: jsonSize(json) }, undefined, false, false);
      }
    }
  }

  /** Appends output given as event data (text, or base64 with `enc`), as the bytes it stands for; see {@link appendOutputBytes}. */
  appendOutput(stream: OutputStream, data: string, enc?: "base64"): SessionEvent {
    const decoded = Buffer.from(data, enc === "base64" ? "base64" : "utf8");
    // Node puts short strings' bytes in its shared 8 KiB pool: an entry of a few bytes kept as a
    // view of it held the whole slab for as long as the hot ring kept the entry — a stream session
    // fed small posts (`POST …/events`) held 8 KiB per event, up to 32 MiB in a ring counted as
    // well under 1 MiB. Memory of their own size instead (a copy of under 4 KiB).
    const bytes = decoded.byteLength === decoded.buffer.byteLength ? decoded : new Uint8Array(decoded);
    return this.appendOutputBytes(stream, bytes, enc === "base64").event();
  }

  /**
   * Appends output bytes as one `output` event at the next byte offset. `binary`: the bytes
   * are not valid UTF-8 on their own (their JSON form carries base64). The bytes are kept, not
   * copied. `pool`: they are a view of a buffer from this pool that nothing else holds; the log
   * gives it back once they are durable, published and out of its hot ring (and no one holds
   * the entry, see OutputEntry.hold).
   */
  appendOutputBytes(stream: OutputStream, bytes: Uint8Array, binary: boolean, pool?: BufferPool): OutputEntry {
    if (this.appender.by === "copy") throw this.appender.refusal();
    if (this.tellingFirst) throw new InternalError(`log ${this.sessionId}: an early listener appended`);
    const entry = new OutputEntry(
      this.appendedSeq + 1,
      this.clock.now(),
      stream,
      this.appendedBytes,
      bytes,
      binary,
      pool,
    );
    this.appendedBytes += bytes.length;
    // Shown early to everyone who follows it live: its commit may wait for company (an echo's
    // commit then runs after its viewer woke, not beside it: docs/benchmarks.md, "Keystroke echo").
    const lingers = this._earlyOutput && !this.waitedFor;
    if (this.soon.size > 0 && lingers) {
      // A held key's echo: shown now, appended after its input (appendSoon).
      this.deferAppend(entry);
      this.tellingFirst = true;
      try {
        this.tellEarly(entry);
      } finally {
        this.tellingFirst = false;
      }
      return entry;
    }
    this.appendSoonNow();
    this.commit(entry, undefined, lingers);
    if (this._earlyOutput) this.tellEarly(entry);
    return entry;
  }

  /**
   * Output may be shown before it is durable: its producer (a holder, see TerminalSession) keeps
   * every byte until the store's commit is acknowledged and gives the same bytes at the same
   * offsets to the next gateway after a crash, so a byte offset a viewer saw is never taken back
   * (docs/architecture.md, "Output shown before its commit"). Refused (false) where the log of
   * record may refuse an append (cluster mode's fencing). Seqs are not: only offsets are promised.
   */
  showOutputEarly(): boolean {
    if (this.store.refusesAppends === true) return false;
    this._earlyOutput = true;
    return true;
  }

  /**
   * Sets the one hook told the durable seq at each commit, before its entries are published (and
   * the listeners that runs): a held session's input waits on it (TerminalSession, INPUT_COMMIT).
   * Undefined removes it.
   */
  onDurable(hook: ((seq: number) => void) | undefined): void {
    this.durableHook = hook;
  }

  /**
   * Registers a listener told of each output entry as it is appended, before it is published
   * (only once {@link showOutputEarly} was called): for a viewer that resumes by byte offset, never by seq. The
   * same entry is published later as every entry is. Returns the function that removes it.
   */
  subscribeEarly(listener: LogListener): () => void {
    this.earlyListeners.add(listener);
    this.earlyWatchers++;
    let subscribed = true;
    return () => {
      if (subscribed) this.earlyWatchers--;
      subscribed = false;
      this.earlyListeners.delete(listener);
    };
  }

  /**
   * Someone waits for entries to be published: a live listener that does not follow the output
   * early (every early listener is also subscribed for the rest), or a publish waiter. Output
   * shown early commits at once then, else it may linger (see {@link appendOutputBytes}).
   */
  private get waitedFor(): boolean {
    return this.watchers > this.earlyWatchers || this.publishWaiters.length > 0;
  }

  /** Output shown early may linger for its append and commit (nobody waited for it): it goes now that someone does. */
  private hurryShownEarly(): void {
    this.appendSoonNow();
    if (this._earlyOutput && this.durableSeq < this.appendedSeq) this.store.hurry?.();
  }

  private tellEarly(entry: OutputEntry): void {
    for (const listener of this.earlyListeners) {
      try {
        listener(entry);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  /**
   * Appends an entry another node's log made, as it is (cluster mode: this node's replica of a
   * session it does not own, see docs/cluster.md). Entries must come in seq order, each output
   * at the offset this log is at.
   */
  appendCopy(entry: StoredEntry): void {
    if (entry.seq !== this.appendedSeq + 1)
      throw new InternalError(
        `log ${this.sessionId} is at seq ${this.appendedSeq}: a copy of seq ${entry.seq} does not follow it`,
      );
    if (entry.outStart !== undefined && entry.outEnd !== undefined) {
      if (entry.outStart !== this.appendedBytes)
        throw new InternalError(
          `log ${this.sessionId} has ${this.appendedBytes} output bytes: a copy from ${entry.outStart} does not follow them`,
        );
      this.appendedBytes = entry.outEnd;
    }
    this.commit(entry);
  }

  /**
   * The shared log (cluster mode: Redis, the log of record) holds the entries up to `seq`, copied
   * or this node's own: they are published now, before the store commits them (in batches, off the
   * delivery path). Their reads are served by the hot ring until then, which keeps every entry the
   * store has not committed.
   */
  markShared(seq: number): void {
    if (seq <= this.sharedSeq) return;
    this.sharedSeq = Math.min(seq, this.appendedSeq);
    this.publish();
  }

  /** Drops the entries before `first` as the session's owner did (see {@link appendCopy}). */
  trimCopy(first: number): void {
    if (first > this._first) this.trimTo(Math.min(first, this.durableSeq), undefined);
  }

  /**
   * A copy not kept up meanwhile (cluster mode: nobody on this node watched it) whose owner trimmed
   * past its head: it goes on at seq `first` and output offset `outputBytes`, what it held dropped
   * as retention drops it (a reader before `first` gets HISTORY_TRIMMED). Only when settled.
   */
  skipCopyTo(first: number, outputBytes: number): void {
    if (first <= this.appendedSeq + 1) return;
    if (!this.settled)
      throw new InternalError(`log ${this.sessionId}: a copy skips ahead only once what it holds is published`);
    this.trimTo(first, this.retainedBytes);
    this.appendedSeq = this.durableSeq = this.sharedSeq = this.publishedSeq = first - 1;
    this.appendedBytes = this.publishedBytes = outputBytes;
    this.retainedBytes = 0;
  }

  /** `tell`: false where onAppend was told already ({@link appendSoon}). */
  private commit(entry: StoredEntry, until?: Promise<void>, lingers = false, tell = true): void {
    if (this.appender.by === "removed")
      throw new SwitchboardError("SESSION_NOT_FOUND", `session ${this.sessionId} was deleted`);
    // (An output entry's seq may be taken before the appendSoon event's append: see appendOutputBytes.)
    if (entry.seq > this.appendedSeq) this.appendedSeq = entry.seq;
    this.retainedBytes += entry.size;
    this.backlog.add(entry.seq, entry.size);
    this.ring.push(entry);
    this.pending.push(entry);
    this.store.enqueue(this.sessionId, entry, lingers ? LINGERS : undefined);
    if (!tell) return;
    this.onAppend?.(
      until === undefined ? { seq: entry.seq, drops: this._drops } : { seq: entry.seq, drops: this._drops, until },
    );
  }

  /**
   * Publishes the durable pending entries in order: each moves the readable position and is
   * given to the listeners in one step. Re-entered (a listener flushing the store), it leaves
   * the rest to the outer loop, so listeners still see every entry in order.
   */
  private publish(): void {
    if (this.publishing) return;
    this.publishing = true;
    try {
      while (this.pendingStart < this.pending.length && this.appender.by !== "removed") {
        const entry = this.pending[this.pendingStart]!;
        if (entry.seq > this.durableSeq && entry.seq > this.sharedSeq) break;
        this.pendingStart++;
        this.publishedSeq = entry.seq;
        if (entry.outEnd !== undefined) this.publishedBytes = entry.outEnd;
        for (const listener of this.listeners) {
          try {
            listener(entry);
          } catch (error) {
            this.onListenerError(error);
          }
        }
      }
    } finally {
      this.publishing = false;
    }
    if (this.pendingStart === this.pending.length) {
      this.pending = [];
      this.pendingStart = 0;
    } else if (this.pendingStart > 1024 && this.pendingStart * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.pendingStart);
      this.pendingStart = 0;
    }
    this.enforceCountRetention();
    if (this.publishWaiters.length > 0) {
      const ready = this.publishWaiters.filter((w) => w.seq <= this.publishedSeq);
      if (ready.length > 0) {
        this.publishWaiters = this.publishWaiters.filter((w) => w.seq > this.publishedSeq);
        for (const w of ready) w.done();
      }
    }
  }

  /** Registers a live listener: it is given each entry as it is published. Returns the function that removes it. */
  subscribe(listener: LogListener, options: { background?: boolean } = {}): () => void {
    this.listeners.add(listener);
    if (options.background) return () => this.listeners.delete(listener);
    this.watchers++;
    this.hurryShownEarly();
    let subscribed = true;
    return () => {
      if (subscribed) this.watchers--;
      subscribed = false;
      this.listeners.delete(listener);
    };
  }

  /** Someone follows the log live (a viewer's feed, a request waiting for a seq): not only background listeners. */
  get watched(): boolean {
    return this.watchers > 0;
  }

  /**
   * Entries after `since` (the last seq the reader has). Throws HISTORY_TRIMMED when
   * retention already dropped events the reader needs, BAD_REQUEST when `since` is past head.
   */
  read(since: number, options: ReadOptions = {}): ReadResult {
    return this.reader.read(since, options);
  }

  /** Throws unless `since` is a position this log can serve. */
  checkPosition(since: number): void {
    this.reader.checkPosition(since);
  }

  /**
   * Raw output bytes from byte `offset` on, as slices in order: whole events until at least
   * `maxBytes` are collected (so a reader pages through a long output with bounded memory).
   */
  readOutput(offset: number, maxBytes = OUTPUT_READ_MAX_BYTES): OutputSlice[] {
    return this.reader.readOutput(offset, maxBytes);
  }

  /**
   * The session was removed and its entries are being deleted from the store: appends are
   * refused from now on, and producers waiting for the store ({@link StoreBacklog.caughtUp}) are released.
   */
  retire(): void {
    if (this.appender.by === "removed") return;
    this.appender = { by: "removed" };
    this.soon.take();
    this.listeners.clear();
    this.earlyListeners.clear();
    this.watchers = 0;
    this.pending = [];
    this.pendingStart = 0;
    // What the store wrote was published to them; nothing more will be.
    for (const w of this.publishWaiters.splice(0)) w.done(this.removedBeforeWritten());
    this.backlog.release();
  }

  /** Called by the log manager after a group commit made entries up to `seq` durable: publishes them. */
  markDurable(seq: number): void {
    if (seq > this.durableSeq) this.durableSeq = seq;
    if (this.durableHook !== undefined) {
      try {
        this.durableHook(this.durableSeq);
      } catch (error) {
        this.onListenerError(error);
      }
    }
    this.backlog.written(this.durableSeq);
    this.publish();
    this.enforceByteRetention();
    this.ring.evict(this.durableSeq, this._first, this.ringKeepsUnwritten);
    this.backlog.notify();
  }

  /**
   * An entry left the hot ring: the log's hold on its bytes ends (a pooled buffer goes back for
   * the next piece, see OutputEntry.hold) — unless the store's queue or the listeners may still
   * read them: before it is durable (retention trims such entries too) or published.
   */
  private dropped(entry: LogEntry): void {
    if (entry instanceof OutputEntry && entry.seq <= this.durableSeq && entry.seq <= this.publishedSeq) entry.release();
  }

  /**
   * Applies the retention policy to what the log holds now: for a log loaded at start, whose
   * retention may have been lowered since it was written (otherwise it would apply only once the
   * session appends again, which an ended session never does).
   */
  applyRetention(): void {
    this.enforceCountRetention();
    this.enforceByteRetention();
  }

  /** Trims by count at publication (so the published head is always kept and readable). */
  private enforceCountRetention(): void {
    const minFirst = this.publishedSeq - this.retention.maxEvents + 1;
    if (minFirst > this._first) this.trimTo(minFirst, undefined);
  }

  private enforceByteRetention(): void {
    if (this.retainedBytes <= this.retention.maxBytes) return;
    const { first, dropped } = firstKeptByBytes(this.store, this.sessionId, {
      first: this._first,
      retainedBytes: this.retainedBytes,
      durableSeq: this.durableSeq,
      maxBytes: this.retention.maxBytes,
    });
    if (first > this._first) this.trimTo(first, dropped);
  }

  private trimTo(first: number, droppedBytes: number | undefined): void {
    if (droppedBytes === undefined) droppedBytes = this.reader.sizeOfRange(this._first, first);
    this._first = first;
    this.retainedBytes = Math.max(0, this.retainedBytes - droppedBytes);
    this.store.enqueueTrim(this.sessionId, first);
    this.ring.evict(this.durableSeq, first, this.ringKeepsUnwritten);
  }
}
