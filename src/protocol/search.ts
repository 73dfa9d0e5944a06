import { z } from "zod";

/** Longest `q` of `GET /v1/search` (characters). */
export const SEARCH_QUERY_MAX_CHARS = 256;
/** Hits in one page of `GET /v1/search` when `limit` is not given. */
export const SEARCH_PAGE_DEFAULT = 20;
/** Most hits one page of `GET /v1/search` holds. */
export const SEARCH_PAGE_MAX = 100;

/** What a hit's document holds: terminal output, an agent's message, a prompt, a finished tool call, an error. */
export const SEARCH_HIT_KINDS = ["output", "message", "prompt", "tool", "error"] as const;

/**
 * One hit of `GET /v1/search`: where it is (the session, the seq its text starts at: open the
 * session there) and a snippet, with each match as `[start, end)` UTF-16 offsets into it.
 */
export const SearchHit = z.strictObject({
  sessionId: z.string(),
  /** The session's name when it has one. */
  name: z.string().nullable(),
  seq: z.number().int().positive(),
  kind: z.enum(SEARCH_HIT_KINDS),
  snippet: z.string(),
  marks: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()])),
});
export type SearchHit = z.infer<typeof SearchHit>;

/**
 * A page of hits, newest first; `next`: the `cursor` of the next page (absent on the last).
 * `partial` (cluster mode): the nodes that did not answer in time, whose sessions' hits are missing.
 */
export const SearchAnswer = z.strictObject({
  hits: z.array(SearchHit),
  next: z.string().optional(),
  partial: z.array(z.string()).optional(),
});
export type SearchAnswer = z.infer<typeof SearchAnswer>;
