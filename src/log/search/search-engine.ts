import { documentsOf } from "./search-documents.js";
import type { SearchEntry, SessionTextState } from "./search-documents.js";
import type { IndexBatch } from "./search-messages.js";
import type { SearchStore } from "./search-store.js";

/**
 * The search thread's work on its index file (search-worker.ts runs it; it holds no thread of its
 * own, so a test can run it in place): batches of a session's log turned into documents and
 * committed with the session's cursor, deletions in steps, queries. A batch that starts past the
 * cursor is refused and one that overlaps it is cut, so a batch sent twice (after the thread was
 * restarted) is indexed once (test/search/search.test.ts, "a batch sent again after a restart is indexed once").
 */
export class SearchEngine {
  /** Sessions whose documents are deleted, a batch per step (removed sessions, or retention). */
  private readonly trims = new Map<string, { before: number; dropCursor: boolean }>();

  constructor(private readonly store: SearchStore) {}

  /** Forgets the sessions not in `live` (in steps) and returns the cursors of the others. */
  open(live: readonly string[]): Array<[string, number]> {
    const keep = new Set(live);
    const cursors: Array<[string, number]> = [];
    for (const [id, seq] of this.store.cursors()) {
      if (keep.has(id)) cursors.push([id, seq]);
      else this.forget(id);
    }
    return cursors;
  }

  /** Indexes a batch; returns the session's cursor after it. */
  index(batch: IndexBatch): number {
    const { sessionId, first } = batch;
    const cursor = this.store.cursor(sessionId);
    let at = cursor?.seq ?? 0;
    let state: SessionTextState = cursor?.state ?? {};
    // Retention dropped events: their documents go, and indexing resumes at the oldest kept one.
    if (!this.trims.get(sessionId)?.dropCursor && this.store.hasBefore(sessionId, first))
      this.trims.set(sessionId, { before: first, dropCursor: false });
    if (at < batch.since) {
      // Only retention may leave a gap: anything else is read again from the cursor.
      if (batch.since !== first - 1) return at;
      at = batch.since;
      state = {};
    }
    const entries: SearchEntry[] = [];
    for (const e of batch.entries) {
      if (e.seq <= at) continue;
      entries.push("out" in e ? { seq: e.seq, output: batch.bytes.subarray(e.out[0], e.out[1]) } : e);
    }
    const last = entries.at(-1)?.seq;
    if (last === undefined) return at;
    const docs = documentsOf(state, entries, batch.settle);
    this.store.write([{ sessionId, docs, cursor: { seq: last, state } }]);
    return last;
  }

  /** Deletes a removed session's documents and cursor (in steps: see {@link step}). */
  forget(sessionId: string): void {
    this.trims.set(sessionId, { before: Number.MAX_SAFE_INTEGER, dropCursor: true });
  }

  /** Whether a removed session's documents are still being deleted. */
  forgetting(sessionId: string): boolean {
    return this.trims.get(sessionId)?.dropCursor === true;
  }

  /** Whether deletions are left. */
  get trimming(): boolean {
    return this.trims.size > 0;
  }

  /** One deletion step (at most SEARCH_DELETE_BATCH documents); returns the session it finished, if it did. */
  step(): string | undefined {
    for (const [id, trim] of this.trims) {
      if (this.store.trim(id, trim.before, trim.dropCursor)) return undefined;
      this.trims.delete(id);
      return id;
    }
    return undefined;
  }

  /**
   * Finishes every deletion: a removed session's text must not stay in the index's file after
   * the gateway stops (test/server/remove-sessions.test.ts).
   */
  finish(): void {
    for (const [id, trim] of this.trims) while (this.store.trim(id, trim.before, trim.dropCursor));
    this.trims.clear();
  }
}
