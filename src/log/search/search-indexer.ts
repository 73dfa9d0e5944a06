import type { Clock, Timer } from "../../core/clock.js";
import type { EventLog } from "../event-log.js";
import { InternalError } from "../../protocol/errors.js";
import { outputOf } from "../output-entry.js";
import { SEARCH_ERROR_PAUSE_MS } from "./search-messages.js";
import type { IndexBatch, SearchReply } from "./search-messages.js";
import type { SearchThread } from "./search-thread.js";

/**
 * Most batches posted to the search thread and not answered yet (one per session at a time): the
 * bounded queue between the event loop and the thread. A bigger backlog waits in the log, which
 * holds it anyway, and the thread holds at most this many batches of about
 * {@link SEARCH_READ_BYTES} (bench/search.ts measures the append throughput beside it).
 */
export const SEARCH_QUEUE_BATCHES = 4;
/**
 * The wait after a log published, after a quiet spell, before its sessions are read for the
 * thread: appends that come meanwhile go in the same batch. About how long after publication a
 * word typed into a quiet session can be found.
 */
export const SEARCH_BATCH_WAIT_MS = 20;
/**
 * While logs keep publishing, the least time between two rounds of batches: typing costs the
 * thread a batch per this long, not one per key (docs/benchmarks.md, "Keystroke echo, hop by
 * hop"). A word is found at most this long (and its indexing) after publication
 * (test/search/search-lag.test.ts). A backlog goes on at once, as the thread answers.
 */
export const SEARCH_BUSY_WAIT_MS = 250;
/** Most log bytes in one batch (at least one entry, at most an output entry of 64 KiB more). */
export const SEARCH_READ_BYTES = 64 * 1024;
/** Most log entries in one batch. */
export const SEARCH_READ_ENTRIES = 256;

export interface SearchIndexerOptions {
  thread: SearchThread;
  events: EventLog;
  clock: Clock;
  /** Reported, not thrown: a failing index leaves the log and its sessions alone. */
  onError?: (error: unknown) => void;
}

/**
 * Keeps the search index in step with the log, behind it. On the event loop: a published entry
 * marks its session; a batch is its entries past the thread's cursor, output bytes in one
 * transferred buffer. Documents, FTS5 and the file are the search thread's (search-worker.ts).
 * At start every session is marked, so what a crash left unindexed is indexed from its cursor.
 */
export class SearchIndexer {
  /** Sessions with entries past their cursor (as far as is known), waiting for the next round. */
  private readonly marked = new Set<string>();
  /** Sessions to post as soon as the queue has room (a round's, a backlog's), in the order they get turns. */
  private readonly due = new Set<string>();
  /** Sessions whose batch in flight stopped short of the log's head: the next goes on its answer. */
  private readonly behind = new Set<string>();
  /** When the last round of batches started (monotonic ms). */
  private lastRound = -Infinity;
  /** Per session, what the thread has indexed up to (its cursor, as it last answered). */
  private readonly cursors = new Map<string, number>();
  /** Sessions with a batch posted and not answered yet. */
  private readonly inFlight = new Set<string>();
  /** Removed sessions whose deletion the thread has not finished yet. */
  private readonly forgetting = new Set<string>();
  /** The sessions to index; undefined until {@link start}. */
  private live: Set<string> | undefined;
  /** The running thread has answered `open`: the cursors are its. */
  private opened = false;
  private paused = false;
  private failed = false;
  private timer: Timer | undefined;
  private closed = false;
  private readonly unwatch: () => void;

  constructor(private readonly options: SearchIndexerOptions) {
    this.unwatch = options.events.onPublished((sessionId) => {
      if (this.marked.has(sessionId) || this.due.has(sessionId) || this.forgetting.has(sessionId)) return;
      if (this.live !== undefined && !this.live.has(sessionId)) this.live.add(sessionId);
      this.marked.add(sessionId);
      this.arm(this.roundWait());
    });
  }

  /** Marks every session of the log; the thread forgets those of the index the log no longer holds. */
  start(sessionIds: Iterable<string>): void {
    this.live = new Set(sessionIds);
    for (const id of this.live) this.due.add(id);
    this.open();
  }

  /** Deletes a removed session's documents and cursor (in batches, behind the scenes). */
  forget(sessionId: string): void {
    this.live?.delete(sessionId);
    this.marked.delete(sessionId);
    this.due.delete(sessionId);
    this.behind.delete(sessionId);
    this.cursors.delete(sessionId);
    this.forgetting.add(sessionId);
    this.options.thread.post({ t: "forget", sessionId });
  }

  /** Whether everything published so far is indexed and every deletion asked for done. */
  get idle(): boolean {
    return this.marked.size === 0 && this.due.size === 0 && this.inFlight.size === 0 && this.forgetting.size === 0;
  }

  /** Holds batches back (marks are kept) until {@link resume}: the bench writes its logs first. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  /** A new thread started: it is told the live sessions and the deletions not finished, and batches start over from its cursors. */
  threadStarted(): void {
    this.opened = false;
    this.inFlight.clear();
    this.behind.clear();
    this.open();
    for (const id of this.forgetting) this.options.thread.post({ t: "forget", sessionId: id });
  }

  /** A reply of the thread (other than an answer to a question). */
  take(reply: Exclude<SearchReply, { req: number } | { t: "ready" }>): void {
    switch (reply.t) {
      case "opened":
        this.cursors.clear();
        for (const [id, seq] of reply.cursors) this.cursors.set(id, seq);
        this.opened = true;
        return this.pump();
      case "indexed": {
        const id = reply.sessionId;
        this.inFlight.delete(id);
        const backlog = this.behind.delete(id);
        if (this.live?.has(id) !== true) return this.pump();
        this.cursors.set(id, reply.cursor);
        if (reply.error !== undefined) {
          this.options.onError?.(new InternalError(`indexing session ${id} failed: ${reply.error}`));
          this.failed = true;
          this.marked.add(id);
          return this.arm(SEARCH_ERROR_PAUSE_MS);
        }
        const log = this.options.events.get(id);
        if (log !== undefined && reply.cursor < log.head && !this.due.has(id)) {
          // A backlog goes on at once; what was published while the batch was in flight, next round.
          if (backlog) this.due.add(id);
          else if (!this.marked.has(id)) {
            this.marked.add(id);
            this.arm(this.roundWait());
          }
        }
        return this.pump();
      }
      case "forgotten":
        this.forgetting.delete(reply.sessionId);
        return;
      case "error":
        this.options.onError?.(new InternalError(`search index: ${reply.error}`));
        return;
    }
  }

  /** Stops sending batches (the thread and its file are the SearchIndex's to close). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch();
    this.timer?.cancel();
    this.timer = undefined;
  }

  private open(): void {
    if (this.live === undefined || !this.options.thread.running) return;
    this.options.thread.post({ t: "open", live: [...this.live] });
  }

  private arm(ms: number): void {
    // A failure's longer pause replaces a batch's wait.
    if (ms === SEARCH_ERROR_PAUSE_MS) this.timer?.cancel();
    else if (this.timer !== undefined) return;
    if (this.closed) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      this.failed = false;
      this.lastRound = this.options.clock.monotonic();
      for (const id of this.marked) this.due.add(id);
      this.marked.clear();
      this.pump();
    }, ms);
  }

  /** The wait before the next round: SEARCH_BATCH_WAIT_MS after a quiet spell, else up to SEARCH_BUSY_WAIT_MS after the last. */
  private roundWait(): number {
    const since = this.options.clock.monotonic() - this.lastRound;
    return Math.max(SEARCH_BATCH_WAIT_MS, SEARCH_BUSY_WAIT_MS - since);
  }

  /** Posts batches of due sessions while the queue has room. */
  private pump(): void {
    if (this.closed || this.paused || this.failed || !this.opened || !this.options.thread.running) return;
    for (const id of this.due) {
      if (this.inFlight.size >= SEARCH_QUEUE_BATCHES) return;
      if (this.inFlight.has(id)) continue;
      this.due.delete(id);
      try {
        this.send(id);
      } catch (error) {
        // Read again after the pause, from the thread's cursor.
        this.marked.add(id);
        this.failed = true;
        this.options.onError?.(error);
        return this.arm(SEARCH_ERROR_PAUSE_MS);
      }
    }
  }

  /** Posts the next part of one session past its cursor, if it has one. */
  private send(sessionId: string): void {
    const log = this.options.events.get(sessionId);
    if (log === undefined) return;
    // Retention dropped events past the cursor: indexing resumes at the oldest kept one.
    const since = Math.max(this.cursors.get(sessionId) ?? 0, log.first - 1);
    if (since >= log.head) return;
    const read = log.read(since, { limit: SEARCH_READ_ENTRIES, maxBytes: SEARCH_READ_BYTES });
    const last = read.entries.at(-1)?.seq ?? read.next;
    const outputs = read.entries.map((e) => (e.type === "output" ? outputOf(e).bytes : undefined));
    const bytes = new Uint8Array(outputs.reduce((n, b) => n + (b?.length ?? 0), 0));
    let at = 0;
    const entries = read.entries.map((e, i): IndexBatch["entries"][number] => {
      const out = outputs[i];
      if (out === undefined) return { seq: e.seq, json: e.json };
      bytes.set(out, at);
      at += out.length;
      return { seq: e.seq, out: [at - out.length, at] };
    });
    const batch: IndexBatch = {
      t: "index",
      sessionId,
      since,
      first: log.first,
      settle: last >= read.head,
      entries,
      bytes,
    };
    this.options.thread.post(batch, [bytes.buffer]);
    this.inFlight.add(sessionId);
    if (!batch.settle) this.behind.add(sessionId);
  }
}
