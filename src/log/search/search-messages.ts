import type { SearchCursor, SearchStoreHit } from "./search-store.js";

/** The wait after a batch or a deletion failed (a full disk, say): what failed is tried again then, at most this often. */
export const SEARCH_ERROR_PAUSE_MS = 5_000;

/**
 * What the event loop and the search thread (search-worker.ts) say to each other. Requests are
 * handled in the order they are posted; those with `req` are answered with the same `req`.
 */

/**
 * A part of one session's log past `since`, in seq order. `entries` name their text: an event's
 * JSON, or an output entry's bytes as a `[start, end)` range of `bytes` (one buffer per batch,
 * transferred, not copied again).
 */
export interface IndexBatch {
  t: "index";
  sessionId: string;
  /** The seq the entries follow: the thread's cursor, or `first - 1` when retention dropped what followed it. */
  since: number;
  /** The log's oldest retained seq: documents of older events are deleted. */
  first: number;
  /** The read reached the log's head: text pending at the end is indexed up to its last word. */
  settle: boolean;
  entries: Array<{ seq: number; json: string } | { seq: number; out: [number, number] }>;
  bytes: Uint8Array;
}

export type SearchRequest =
  /** Forgets the sessions of the index not in `live`; answered with every cursor kept. */
  | { t: "open"; live: string[] }
  | IndexBatch
  /** Deletes a removed session's documents and cursor; answered with `forgotten` once they are gone. */
  | { t: "forget"; sessionId: string }
  | { t: "query"; req: number; match: string; sessions: readonly string[]; before: number; limit: number }
  | { t: "cursor"; req: number; sessionId: string }
  /**
   * Finishes the deletions queued, closes the file, then sets its `done` (SearchThreadData) and
   * wakes it: the event loop waits on it, as it does for the log's writer thread at close.
   */
  | { t: "close" };

export type SearchReply =
  /** The indexing thread has opened the file (made it, the first time): a query thread may open it. */
  | { t: "ready" }
  | { t: "opened"; cursors: Array<[string, number]> }
  /** A batch's end: the session's cursor now (unchanged when `error` says why it failed). */
  | { t: "indexed"; sessionId: string; cursor: number; error?: string }
  | { t: "forgotten"; sessionId: string }
  /** A deletion failed (it is tried again after {@link SEARCH_ERROR_PAUSE_MS}). */
  | { t: "error"; error: string }
  | { t: "hits"; req: number; hits?: SearchStoreHit[]; error?: string }
  | { t: "cursor"; req: number; cursor: SearchCursor | undefined };
