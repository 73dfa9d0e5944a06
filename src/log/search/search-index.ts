import { join } from "node:path";
import type { Clock } from "../../core/clock.js";
import type { EventLog } from "../event-log.js";
import { SearchIndexer } from "./search-indexer.js";
import { ftsQueryOf } from "./search-query.js";
import { SEARCH_DB_FILE, SearchStore } from "./search-store.js";
import type { SearchStoreHit } from "./search-store.js";

export interface SearchIndexOptions {
  /** The data directory: the index is its {@link SEARCH_DB_FILE}. */
  dataDir: string;
  events: EventLog;
  clock: Clock;
  onError?: (error: unknown) => void;
}

/** One page of hits, newest first; `next`: the cursor of the page after it. */
export interface SearchPage {
  hits: SearchStoreHit[];
  next: number | undefined;
}

/**
 * Full-text search over every session's log (`GET /v1/search`): the index file, the indexer that
 * keeps it in step with the log, and queries. Which sessions a query may see is the caller's
 * to say (the route asks the access rules); the index itself knows no identities.
 */
export class SearchIndex {
  readonly store: SearchStore;
  readonly indexer: SearchIndexer;

  constructor(options: SearchIndexOptions) {
    this.store = new SearchStore(join(options.dataDir, SEARCH_DB_FILE));
    this.indexer = new SearchIndexer({
      store: this.store,
      events: options.events,
      clock: options.clock,
      ...(options.onError ? { onError: options.onError } : {}),
    });
  }

  /**
   * Hits of the words of `q` (each must match; a trailing `*` makes the last a prefix) in the
   * `sessions` given, newest first, older than the cursor `before`.
   */
  search(q: string, options: { sessions: readonly string[]; limit: number; before?: number | undefined }): SearchPage {
    const match = ftsQueryOf(q);
    if (match === undefined || options.sessions.length === 0) return { hits: [], next: undefined };
    const hits = this.store.search(match, {
      sessions: options.sessions,
      before: options.before ?? Number.MAX_SAFE_INTEGER,
      // One more than asked tells whether a next page exists.
      limit: options.limit + 1,
    });
    const more = hits.length > options.limit;
    if (more) hits.length = options.limit;
    return { hits, next: more ? hits.at(-1)?.id : undefined };
  }

  close(): void {
    this.indexer.close();
    this.store.close();
  }
}
