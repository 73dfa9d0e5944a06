import { join } from "node:path";
import type { Clock } from "../../core/clock.js";
import { InternalError } from "../../protocol/errors.js";
import type { EventLog } from "../event-log.js";
import { SearchIndexer } from "./search-indexer.js";
import { ftsQueryOf } from "./search-query.js";
import { SEARCH_DB_FILE } from "./search-store.js";
import type { SearchCursor, SearchStoreHit } from "./search-store.js";
import { SearchThread } from "./search-thread.js";
import type { SearchThreadRole } from "./search-thread.js";

export interface SearchIndexOptions {
  /** The data directory: the index is its {@link SEARCH_DB_FILE}. */
  dataDir: string;
  events: EventLog;
  clock: Clock;
  onError?: (error: unknown) => void;
  /** The search thread stopped (it is started again in `restartInMs`). */
  onThreadStopped?: (reason: string, restartInMs: number) => void;
  /** Default SEARCH_RESTART_MS; tests make it short. */
  restartMs?: number;
}

/** One page of hits, newest first; `next`: the cursor of the page after it. */
export interface SearchPage {
  hits: SearchStoreHit[];
  next: number | undefined;
}

/**
 * Full-text search over every session's log (`GET /v1/search`): the indexer that keeps the index
 * in step with the log, and queries. They run on two search threads (search-thread.ts), one that
 * writes the index's file and one that reads it; the event loop only hands them batches of the
 * log and questions. Which
 * sessions a query may see is the caller's to say (the route asks the access rules); the index
 * itself knows no identities.
 */
export class SearchIndex {
  readonly indexer: SearchIndexer;
  /** Writes the file. */
  private readonly thread: SearchThread;
  /** Reads it; started once the indexing thread has made the file (it says `ready`). */
  private readonly queries: SearchThread;

  constructor(options: SearchIndexOptions) {
    const file = join(options.dataDir, SEARCH_DB_FILE);
    const restart = options.restartMs !== undefined ? { restartMs: options.restartMs } : {};
    const onStopped = (reason: string, ms: number) => options.onThreadStopped?.(reason, ms);
    this.thread = new SearchThread({
      file,
      role: "index",
      onStarted: () => this.indexer.threadStarted(),
      onReply: (reply) => {
        if (reply.t === "ready") this.queries.start();
        else this.indexer.take(reply);
      },
      onStopped,
      ...restart,
    });
    this.queries = new SearchThread({
      file,
      role: "query",
      onStarted: () => undefined,
      // It answers questions only.
      onReply: () => undefined,
      onStopped,
      ...restart,
    });
    this.indexer = new SearchIndexer({
      thread: this.thread,
      events: options.events,
      clock: options.clock,
      ...(options.onError ? { onError: options.onError } : {}),
    });
    this.thread.start();
  }

  /**
   * Hits of the words of `q` (each must match; a trailing `*` makes the last a prefix) in the
   * `sessions` given, newest first, older than the cursor `before`.
   * @example
   * const page = await index.search("segfault", { sessions: ["s1", "s2"], limit: 20 });
   * const next = page.next !== undefined ? await index.search("segfault", { sessions, limit: 20, before: page.next }) : undefined;
   */
  async search(
    q: string,
    options: { sessions: readonly string[]; limit: number; before?: number | undefined },
  ): Promise<SearchPage> {
    const match = ftsQueryOf(q);
    if (match === undefined || options.sessions.length === 0) return { hits: [], next: undefined };
    const answer = await this.queries.ask<"hits">((req) => ({
      t: "query",
      req,
      match,
      sessions: options.sessions,
      before: options.before ?? Number.MAX_SAFE_INTEGER,
      // One more than asked tells whether a next page exists.
      limit: options.limit + 1,
    }));
    if (answer.hits === undefined) throw new InternalError(`search failed: ${answer.error ?? "no hits"}`);
    const hits = answer.hits;
    const more = hits.length > options.limit;
    if (more) hits.length = options.limit;
    return { hits, next: more ? hits.at(-1)?.id : undefined };
  }

  /** Where indexing of a session stands in the index's file (undefined: not begun, or forgotten). */
  async cursor(sessionId: string): Promise<SearchCursor | undefined> {
    return (await this.queries.ask<"cursor">((req) => ({ t: "cursor", req, sessionId }))).cursor;
  }

  /** Stops a search thread as if it had died (tests): it is started again after its restart delay. */
  killThread(role: SearchThreadRole = "index"): Promise<number> {
    return (role === "index" ? this.thread : this.queries).kill();
  }

  /** Stops indexing; the thread finishes the deletions queued and closes the file (waits for it). */
  close(): void {
    this.indexer.close();
    this.queries.close();
    this.thread.close();
  }
}
