/**
 * A user's search text as an FTS5 query. FTS5's syntax (quotes, `*`, `NEAR(`, `AND`, column
 * filters, `^`) is never taken from the user: each word becomes a quoted phrase, all of them
 * must match, and only a trailing `*` on the last word asks for a prefix
 * (test/search/search.test.ts, "hostile query strings never throw nor leak").
 */

/** Most words of a query used (the rest are ignored): each costs a doclist merge. */
export const SEARCH_QUERY_MAX_WORDS = 8;
/** Shortest prefix a trailing `*` may expand (a one-letter prefix matches a large part of the index). */
export const SEARCH_PREFIX_MIN_CHARS = 2;

/** A word that holds something FTS5 indexes: a letter or a digit (other characters are separators). */
const INDEXABLE = /[\p{L}\p{N}]/u;

/** `q` as an FTS5 expression, or undefined when it names nothing that can match. */
export function ftsQueryOf(q: string): string | undefined {
  // FTS5 reads its query as a C string: a NUL would end it inside a quoted phrase (an SQL error).
  const words = q
    // eslint-disable-next-line no-control-regex -- control characters are what it finds
    .replace(/[\x00-\x1f\x7f]/g, " ")
    .split(/\s+/)
    .filter((w) => INDEXABLE.test(w))
    .slice(0, SEARCH_QUERY_MAX_WORDS);
  if (words.length === 0) return undefined;
  return words
    .map((word, i) => {
      const prefix = i === words.length - 1 && word.endsWith("*");
      const bare = prefix ? word.replace(/\*+$/, "") : word;
      const phrase = `"${bare.replaceAll('"', '""')}"`;
      return prefix && [...bare.replace(/[^\p{L}\p{N}]/gu, "")].length >= SEARCH_PREFIX_MIN_CHARS
        ? `${phrase}*`
        : phrase;
    })
    .join(" ");
}

/** Marks FTS5's `snippet()` puts around a match: control characters the indexed text never holds. */
export const MATCH_OPEN = "\u0002";
export const MATCH_CLOSE = "\u0003";
/** What FTS5's `snippet()` puts where it left text out. */
export const SNIPPET_ELLIPSIS = "…";

/** A snippet with its matches as `[start, end)` offsets (UTF-16 code units) into `text`. */
export function marksOf(snippet: string): { text: string; marks: Array<[number, number]> } {
  let text = "";
  const marks: Array<[number, number]> = [];
  let open = -1;
  for (const ch of snippet) {
    if (ch === MATCH_OPEN) open = text.length;
    else if (ch === MATCH_CLOSE) {
      if (open >= 0 && text.length > open) marks.push([open, text.length]);
      open = -1;
    } else text += ch;
  }
  return { text, marks };
}
