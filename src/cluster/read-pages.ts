// How many entries one read of a session's stream in Redis asks for: XRANGE counts entries, not
// bytes, so the count follows the size of the entries read last (a PTY's are up to 64 KiB, a
// stream session's notes a few bytes). A page is held whole while it is decoded and appended.
import type { StoredEntry } from "../log/store.js";

/** Bytes one read of a session's stream aims at. */
export const READ_PAGE_BYTES = 1024 * 1024;
/** Entries of a read before any entry's size is known: 16 PTY reads of 64 KiB make one page. */
export const READ_FIRST_ENTRIES = 16;
/** Most entries one read asks for, however small they are. */
export const READ_MAX_ENTRIES = 1000;

/** The count of the read after `page`: about {@link READ_PAGE_BYTES} of entries as big as its biggest. */
export function nextReadCount(page: readonly StoredEntry[]): number {
  let biggest = 0;
  for (const entry of page) biggest = Math.max(biggest, entry.size);
  if (biggest === 0) return READ_FIRST_ENTRIES;
  return Math.max(1, Math.min(READ_MAX_ENTRIES, Math.floor(READ_PAGE_BYTES / biggest)));
}
