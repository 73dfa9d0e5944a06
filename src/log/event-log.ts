import { AsyncLocalStorage } from "node:async_hooks";
import type { Clock, Timer } from "../core/clock.js";
import { WorkTimer } from "../core/work-timer.js";
import type { EventType, SessionEvent } from "../protocol/index.js";
import { DEFAULT_RETENTION } from "./retention.js";
import type { RetentionPolicy } from "./retention.js";
import { eventOf } from "./output-entry.js";
import { RING_IDLE_MS, SessionLog } from "./session-log.js";
import type { AppendMark } from "./session-log.js";
import { logUnavailable } from "./store.js";
import type { EventStore, LogWriteFailure, PersistedSession, StoredLogState } from "./store.js";
import { InternalError } from "../protocol/errors.js";

/** The key of a session record's meta under which its log's state is saved (see {@link EventLog.saveSession}). */
export const LOG_STATE_KEY = "logState";
/** How often an answer waiting for its events to be durable looks whether the store can write. */
const WRITE_FAILURE_CHECK_MS = 100;

/** A saved log state as it was written, or undefined (none, or not one). */
function asLogState(value: unknown): StoredLogState | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { head, first, outputBytes, retainedBytes } = value as Record<string, unknown>;
  const counts = [head, first, outputBytes, retainedBytes];
  if (!counts.every((n) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0)) return undefined;
  return { head, first, outputBytes, retainedBytes } as StoredLogState;
}

function sameLogState(a: StoredLogState | undefined, b: StoredLogState): boolean {
  return (
    a !== undefined &&
    a.head === b.head &&
    a.first === b.first &&
    a.outputBytes === b.outputBytes &&
    a.retainedBytes === b.retainedBytes
  );
}

export interface EventLogOptions {
  store: EventStore;
  clock: Clock;
  retention?: RetentionPolicy;
  ringMaxEntries?: number;
  ringMaxBytes?: number;
  onListenerError?: (error: unknown) => void;
  /** Observes each group commit (entries written, milliseconds taken) — for metrics. */
  onCommit?: (entries: number, ms: number) => void;
}

/** All sessions' logs over one store. Owns the store: `close()` flushes and closes it. */
export class EventLog {
  private readonly logs = new Map<string, SessionLog>();
  /** Observers of every session's events, each with the event types it wants (all when undefined). */
  private readonly taps = new Map<
    (sessionId: string, event: SessionEvent) => void,
    ReadonlySet<EventType> | undefined
  >();
  /** Told the session of each entry as it is published, with no event made (see {@link onPublished}). */
  private readonly publishWatchers = new Set<(sessionId: string) => void>();
  private readonly options: EventLogOptions;
  /** The appends of the request being handled (see {@link tracking}): the newest seq per log. */
  private readonly scope = new AsyncLocalStorage<Map<SessionLog, AppendMark>>();
  /** Calls of {@link tracking} not finished yet (an async one until its promise settles). */
  private tracked = 0;
  private closed = false;
  /** Records {@link load} found older than their logs, left for {@link saveStaleRecords}. */
  private readonly staleRecords = new Map<string, PersistedSession>();
  /** Gives idle logs' hot rings back; runs while logs append (a ring fills only by appends). */
  private readonly idleCheck: WorkTimer;

  constructor(options: EventLogOptions) {
    this.options = options;
    this.idleCheck = new WorkTimer({
      clock: options.clock,
      everyMs: RING_IDLE_MS,
      run: () => {
        for (const log of this.logs.values()) log.releaseRingIfIdle();
      },
    });
    options.store.onFlushed((durable, stats) => {
      for (const [sessionId, seq] of durable) this.logs.get(sessionId)?.markDurable(seq);
      options.onCommit?.(stats.writes, stats.ms);
    });
    options.store.onShared?.((sessionId, seq) => this.logs.get(sessionId)?.markShared(seq));
  }

  get store(): EventStore {
    return this.options.store;
  }

  /**
   * The log of a new session; `initial`: of a session whose log another node began (cluster
   * mode: it starts where the shared log's retained part does).
   */
  create(sessionId: string, initial?: StoredLogState): SessionLog {
    if (this.logs.has(sessionId)) throw new InternalError(`log ${sessionId} already exists`);
    const log = this.make(sessionId, initial);
    this.logs.set(sessionId, log);
    return log;
  }

  /**
   * Loads the persisted sessions and their logs' positions (at start). A log is read whole only
   * when its record has no saved state that still matches it (see {@link saveSession}); its
   * record is then written again with the state found, so that the next start need not: at once,
   * or, with `saveStale: false`, by {@link saveStaleRecords} (a gateway calls it once it listens:
   * after a kill -9 every running session's record is stale, a thousand writes on the way).
   */
  load(options: { saveStale?: boolean } = {}): Array<{ session: PersistedSession; log: SessionLog }> {
    return this.options.store.loadSessions().map((stored) => {
      const { [LOG_STATE_KEY]: saved, ...meta } = stored.meta;
      const session = { ...stored, meta };
      const known = asLogState(saved);
      const state = this.options.store.loadLogState(session.id, known);
      const metaBytes = typeof meta["outputBytes"] === "number" ? meta["outputBytes"] : 0;
      const log = this.make(session.id, { ...state, outputBytes: Math.max(state.outputBytes, metaBytes) });
      this.logs.set(session.id, log);
      // Retention lowered since the last start applies now, not only once the session appends.
      log.applyRetention();
      if (!sameLogState(known, log.storedState)) {
        if (options.saveStale === false) this.staleRecords.set(session.id, session);
        else this.saveSession(session);
      }
      return { session, log };
    });
  }

  /**
   * Observes every event of any session as it is published (durable; plugins subscribe through
   * this), or only those of `types`. Returns the function that removes the tap. An event is made
   * into an object only for a tap that wants its type: a tap of `chat.error` costs an output
   * flood nothing.
   */
  tap(listener: (sessionId: string, event: SessionEvent) => void, types?: ReadonlySet<EventType>): () => void {
    this.taps.set(listener, types);
    return () => this.taps.delete(listener);
  }

  /**
   * Tells `listener` the session of each entry of any log as it is published: for work that
   * sleeps until a log moves (the screen feed), at the cost of a call per entry. Returns the
   * function that removes it.
   */
  onPublished(listener: (sessionId: string) => void): () => void {
    this.publishWatchers.add(listener);
    return () => this.publishWatchers.delete(listener);
  }

  get(sessionId: string): SessionLog | undefined {
    return this.logs.get(sessionId);
  }

  /**
   * Queues a session's record, with its log's state as of now (after everything the log queued
   * before it: see {@link load}).
   */
  saveSession(session: PersistedSession): void {
    // A record saved since the load is newer than the one it found stale.
    this.staleRecords.delete(session.id);
    const log = this.logs.get(session.id);
    this.options.store.enqueueSession(
      log ? { ...session, meta: { ...session.meta, [LOG_STATE_KEY]: log.storedState } } : session,
    );
  }

  /** Whether commits succeed now (false while the disk refuses them: full, read-only, failing). */
  get writable(): boolean {
    return this.options.store.writeFailure === undefined;
  }

  /** Throws LOG_UNAVAILABLE while the store cannot write (see {@link SessionLog.assertWritable}). */
  assertWritable(): void {
    const failure = this.options.store.writeFailure;
    if (failure) throw logUnavailable(failure);
  }

  /**
   * Runs `fn` noting in `appended` what it (and what it awaits) appends to any log, so that its
   * answer can wait for exactly that ({@link published}). The scope is switched off again once no
   * tracked call is in flight: while on, Node runs a hook for every promise and callback of the
   * process (a fifth more CPU for a loop of Redis calls), appends and deliveries included.
   */
  tracking<T>(appended: Map<SessionLog, AppendMark>, fn: () => T): T {
    this.tracked++;
    let result: T;
    try {
      result = this.scope.run(appended, fn);
    } catch (error) {
      this.untrack();
      throw error;
    }
    if (result instanceof Promise) result.then(this.untrack, this.untrack);
    else this.untrack();
    return result;
  }

  /** A tracked call ended: the last one switches the scope off (the next `run` switches it on). */
  private readonly untrack = (): void => {
    if (--this.tracked === 0) this.scope.disable();
  };

  /**
   * Resolves once the appends noted by {@link tracking} are published (durable and given to the
   * listeners); undefined when nothing is waiting. An answer that follows an append waits for
   * this (read-your-writes: what a client POSTed is then in what it GETs) — and only for its
   * own appends, not for another session's backlog. And for what an append said its answer
   * waits for besides (`AppendMark.until`).
   */
  published(appended: ReadonlyMap<SessionLog, AppendMark>): Promise<void> | undefined {
    let waits: Array<Promise<void>> | undefined;
    for (const [log, { seq, drops, until }] of appended) {
      if (until !== undefined) (waits ??= []).push(until);
      if (seq <= log.head && drops === log.drops) continue;
      (waits ??= []).push(log.whenPublished(seq, drops));
    }
    return waits ? Promise.all(waits).then(() => undefined) : undefined;
  }

  /**
   * Like {@link published}, but stops waiting once the store reports that it cannot write (a
   * full disk): resolves with that failure then, undefined once published. What was appended is
   * kept and written when the disk recovers; an answer that waited for it would otherwise hang
   * until then, and a client would take the timeout for a request that was not applied.
   */
  publishedOrFailing(appended: ReadonlyMap<SessionLog, AppendMark>): Promise<LogWriteFailure | undefined> | undefined {
    const published = this.published(appended);
    return published === undefined ? undefined : this.unlessFailing(published);
  }

  /**
   * Resolves with `work`'s end (undefined), or with the store's write failure if one comes first;
   * rejects as `work` does (its entries were dropped unwritten, see SessionLog.whenPublished).
   */
  unlessFailing(work: Promise<unknown>): Promise<LogWriteFailure | undefined> {
    return new Promise((resolve, reject) => {
      let timer: Timer | undefined;
      const check = () => {
        const failure = this.options.store.writeFailure;
        if (failure) resolve(failure);
        else timer = this.options.clock.setTimeout(check, WRITE_FAILURE_CHECK_MS);
      };
      void work.then(
        () => {
          timer?.cancel();
          resolve(undefined);
        },
        (error: unknown) => {
          timer?.cancel();
          reject(error);
        },
      );
      check();
    });
  }

  /**
   * Resolves once what was queued for the session is where every node reads it (cluster mode;
   * at once on a single node): a session's creation is answered then, so that the client's next
   * request finds it on any node.
   */
  shared(sessionId: string): Promise<void> {
    return this.options.store.whenShared?.(sessionId) ?? Promise.resolve();
  }

  /** Commits everything queued now. */
  flush(): void {
    for (const log of this.logs.values()) log.appendSoonNow();
    this.options.store.flush();
  }

  /**
   * Writes again, with their logs' state now, the records {@link load} found stale and left to
   * this call (`saveStale: false`), those not saved since; a removed session's is not.
   */
  saveStaleRecords(): void {
    for (const session of [...this.staleRecords.values()]) this.saveSession(session);
  }

  /**
   * Deletes a session's log and record (queued with the next group commit, after anything queued
   * for it before). Resolves once that is committed: an answer that says a session is removed
   * waits for it, or a crash just after brought the session back whole at the next start.
   */
  async remove(sessionId: string): Promise<void> {
    this.staleRecords.delete(sessionId);
    this.logs.get(sessionId)?.retire();
    this.logs.delete(sessionId);
    await this.options.store.deleteSession(sessionId);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.idleCheck.close();
    // Before the store: a reader's deferred step (a filtered feed's, see SessionFeed) may still come.
    for (const log of this.logs.values()) {
      log.appendSoonNow();
      log.markClosed();
    }
    this.options.store.close();
  }

  private make(sessionId: string, initial: ConstructorParameters<typeof SessionLog>[0]["initial"]): SessionLog {
    const o = this.options;
    const log = new SessionLog({
      sessionId,
      store: o.store,
      clock: o.clock,
      retention: o.retention ?? DEFAULT_RETENTION,
      ...(initial ? { initial } : {}),
      ...(o.ringMaxEntries !== undefined ? { ringMaxEntries: o.ringMaxEntries } : {}),
      ...(o.ringMaxBytes !== undefined ? { ringMaxBytes: o.ringMaxBytes } : {}),
      ...(o.onListenerError ? { onListenerError: o.onListenerError } : {}),
      onAppend: (mark) => {
        const appended = this.scope.getStore();
        if (appended !== undefined) appended.set(log, laterMark(appended.get(log), mark));
        this.idleCheck.wake();
      },
    });
    log.subscribe(
      (entry) => {
        for (const watcher of this.publishWatchers) watcher(sessionId);
        if (this.taps.size === 0) return;
        let event: SessionEvent | undefined;
        for (const [tap, types] of this.taps) {
          if (types === undefined || types.has(entry.type)) tap(sessionId, (event ??= eventOf(entry)));
        }
      },
      { background: true },
    );
    return log;
  }
}

/**
 * What a call's answer waits for in one log after `mark` too: the later seq, and what either
 * append said it waits for besides (a later append keeps an earlier one's `until`).
 */
function laterMark(earlier: AppendMark | undefined, mark: AppendMark): AppendMark {
  if (earlier === undefined) return mark;
  const later = mark.seq >= earlier.seq || mark.drops !== earlier.drops ? mark : earlier;
  const until =
    earlier.until === undefined || mark.until === undefined
      ? (mark.until ?? earlier.until)
      : Promise.all([earlier.until, mark.until]).then(() => undefined);
  return until === undefined ? { seq: later.seq, drops: later.drops } : { seq: later.seq, drops: later.drops, until };
}
