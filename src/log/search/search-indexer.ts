import type { Clock, Timer } from "../../core/clock.js";
import type { EventLog } from "../event-log.js";
import { documentsOf } from "./search-documents.js";
import type { SessionTextState } from "./search-documents.js";
import type { SearchStore } from "./search-store.js";

/**
 * Most milliseconds one indexing slice runs on the event loop before it yields, so a request
 * waits at most about this long behind it (test/search/search.test.ts, "stays responsive").
 */
export const SEARCH_SLICE_MS = 5;
/**
 * The wait before the next slice while some log published since the last one: indexing then takes
 * at most about a twentieth of the event loop, and the appends that publish keep the rest
 * (bench/search.ts measures appends with the indexer following against without).
 */
export const SEARCH_BUSY_PAUSE_MS = 95;
/** The wait before the next slice while no log publishes: a backlog (after a start) is indexed at about full speed. */
export const SEARCH_QUIET_PAUSE_MS = 1;
/** The wait after a slice failed (a full disk, say): what failed is tried again then, at most this often. */
export const SEARCH_ERROR_PAUSE_MS = 5_000;
/**
 * Most log bytes read for one session at a time (at least one entry, at most an output entry of
 * 64 KiB): indexing one such read takes a few ms, so a slice ends close to {@link SEARCH_SLICE_MS}.
 */
export const SEARCH_READ_BYTES = 64 * 1024;
/** Most log entries read for one session at a time. */
export const SEARCH_READ_ENTRIES = 256;

export interface SearchIndexerOptions {
  store: SearchStore;
  events: EventLog;
  clock: Clock;
  /** Reported, not thrown: a failing index leaves the log and its sessions alone. */
  onError?: (error: unknown) => void;
}

/**
 * Keeps the search index in step with the log, behind it: a published entry marks its session,
 * and slices on the event loop (a tenth of it while logs publish) read what each marked session published past its cursor, turn it
 * into documents (search-documents.ts) and commit them with the cursor moved on. The append path
 * only marks a session (a set insert). At start every session of the log is marked, so what a
 * stop or crash left unindexed is indexed from its cursor; cursors of sessions the log no longer
 * holds are forgotten with their documents.
 */
export class SearchIndexer {
  /** Sessions with entries past their cursor (as far as is known), in the order they get turns. */
  private readonly marked = new Set<string>();
  /** Sessions whose documents are deleted, a batch per slice (removed sessions, or retention). */
  private readonly trims = new Map<string, { before: number; dropCursor: boolean }>();
  private timer: Timer | undefined;
  private closed = false;
  /** Some log published since the last slice began: the next waits {@link SEARCH_BUSY_PAUSE_MS}. */
  private busy = true;
  /** The last slice failed: the next waits {@link SEARCH_ERROR_PAUSE_MS}. */
  private failed = false;
  private readonly unwatch: () => void;

  constructor(private readonly options: SearchIndexerOptions) {
    this.unwatch = options.events.onPublished((sessionId) => {
      this.busy = true;
      if (this.marked.has(sessionId)) return;
      this.marked.add(sessionId);
      this.arm();
    });
  }

  /** Marks every session of the log and forgets those of the index the log no longer holds. */
  start(sessionIds: Iterable<string>): void {
    const live = new Set(sessionIds);
    for (const id of this.options.store.sessions()) if (!live.has(id)) this.forget(id);
    for (const id of live) this.marked.add(id);
    this.arm();
  }

  /** Deletes a removed session's documents and cursor (in batches, behind the scenes). */
  forget(sessionId: string): void {
    this.marked.delete(sessionId);
    this.trims.set(sessionId, { before: Number.MAX_SAFE_INTEGER, dropCursor: true });
    this.arm();
  }

  /** Whether everything published so far is indexed and every deletion done. */
  get idle(): boolean {
    return this.marked.size === 0 && this.trims.size === 0;
  }

  /**
   * Indexes for up to `ms` (one slice): deletions first, then marked sessions in turn. Returns
   * whether work is left. Called by the indexer's own timer; a bench calls it to build at full speed.
   */
  runSlice(ms = SEARCH_SLICE_MS): boolean {
    const clock = this.options.clock;
    const until = clock.monotonic() + ms;
    this.busy = false;
    this.failed = false;
    let current: string | undefined;
    try {
      for (const [id, trim] of this.trims) {
        if (clock.monotonic() >= until) return true;
        if (!this.options.store.trim(id, trim.before, trim.dropCursor)) this.trims.delete(id);
      }
      for (const id of this.marked) {
        if (clock.monotonic() >= until) return true;
        current = id;
        this.marked.delete(id);
        if (this.indexSome(id)) this.marked.add(id);
        current = undefined;
      }
    } catch (error) {
      // Tried again after the pause, from its cursor (nothing of the failed batch was committed).
      if (current !== undefined) this.marked.add(current);
      this.failed = true;
      this.options.onError?.(error);
    }
    return !this.idle;
  }

  /**
   * Stops indexing. Deletions still queued are finished first: a removed session's text must not
   * stay in the index's file after the gateway stops (test/server/remove-sessions.test.ts).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      for (const [id, trim] of this.trims) while (this.options.store.trim(id, trim.before, trim.dropCursor));
      this.trims.clear();
    } catch (error) {
      // The next start forgets the sessions the log no longer holds (start), so nothing is lost.
      this.options.onError?.(error);
    }
    this.unwatch();
    this.timer?.cancel();
    this.timer = undefined;
  }

  private arm(): void {
    if (this.closed || this.timer !== undefined) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.runSlice()) this.arm();
    }, this.pause());
  }

  private pause(): number {
    if (this.failed) return SEARCH_ERROR_PAUSE_MS;
    return this.busy ? SEARCH_BUSY_PAUSE_MS : SEARCH_QUIET_PAUSE_MS;
  }

  /** Indexes the next part of one session past its cursor; returns whether more is published after it. */
  private indexSome(sessionId: string): boolean {
    const { store } = this.options;
    const log = this.options.events.get(sessionId);
    if (log === undefined) return false;
    const cursor = store.cursor(sessionId);
    let since = cursor?.seq ?? 0;
    let state: SessionTextState = cursor?.state ?? {};
    // Retention dropped events: their documents go, and indexing resumes at the oldest kept one.
    if (store.hasBefore(sessionId, log.first)) this.trims.set(sessionId, { before: log.first, dropCursor: false });
    if (since < log.first - 1) {
      since = log.first - 1;
      state = {};
    }
    if (since >= log.head) return false;
    const read = log.read(since, { limit: SEARCH_READ_ENTRIES, maxBytes: SEARCH_READ_BYTES });
    const last = read.entries.at(-1)?.seq ?? read.next;
    const more = last < read.head;
    const docs = documentsOf(state, read.entries, !more);
    store.write([{ sessionId, docs, cursor: { seq: last, state } }]);
    return more;
  }
}
