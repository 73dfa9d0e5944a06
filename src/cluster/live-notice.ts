import type { EventType, OutputStream } from "../protocol/index.js";
import { OutputEntry } from "../log/output-entry.js";
import type { StoredEntry } from "../log/store.js";
import { jsonSize } from "../log/types.js";

/**
 * Most bytes of entries one notice on a session's live channel carries (redis-log.ts, APPEND): a
 * copy that follows the session takes them from the notice, without reading Redis back (one
 * wake-up per append instead of two). A bigger append's notice carries none: copies read it.
 */
export const NOTICE_ENTRIES_MAX_BYTES = 16 * 1024;

/**
 * What an append announces on the live channel:
 * `<head> <first> <epoch> <r|-> [<from>\n<fields>]`, where `r` says the record changed and
 * `fields` are the appended entries' script arguments (7 each, see redis-log.ts), each written as
 * `<length>:<bytes>`. `entries` is empty when the notice carries none.
 */
export interface LiveNotice {
  head: number;
  first: number;
  epoch: number;
  recordChanged: boolean;
  entries: StoredEntry[];
}

const COLON = 0x3a;
const NEWLINE = 0x0a;
const SPACE = 0x20;
const DIGIT_0 = 0x30;
const FIELDS = 7;
/** Longer runs of digits than this are not read as numbers (past Number.MAX_SAFE_INTEGER). */
const MAX_DIGITS = 15;

/**
 * Reads a notice; undefined for one this node cannot read (an older node's `<head> <first>`, or
 * damaged). Read in place, by offsets: every copying node decodes every notice of every session
 * it follows, and a Buffer view and a string per field cost it 5% of its CPU (docs/benchmarks.md,
 * "Where a delivery's CPU goes"). test/cluster/live-notice.test.ts checks it against the format.
 */
export function decodeNotice(message: Buffer): LiveNotice | undefined {
  const newline = message.indexOf(NEWLINE);
  const end = newline < 0 ? message.length : newline;
  // The header's words: head, first, epoch, r|-, and (with entries) from.
  const words: number[] = [];
  for (let at = 0; at <= end && words.length < 10;) {
    const space = message.indexOf(SPACE, at);
    const stop = space < 0 || space > end ? end : space;
    words.push(at, stop);
    at = stop + 1;
  }
  if (words.length < 8) return undefined;
  const head = digitsAt(message, words[0]!, words[1]!);
  const first = digitsAt(message, words[2]!, words[3]!);
  const epoch = digitsAt(message, words[4]!, words[5]!);
  if (head < 0 || first < 0 || epoch < 0) return undefined;
  const recordChanged = words[7]! - words[6]! === 1 && message[words[6]!] === 0x72;
  const notice: LiveNotice = { head, first, epoch, recordChanged, entries: [] };
  if (newline < 0) return notice;
  // Each field `<length>:<bytes>`, kept as its start and end offsets.
  const fields: number[] = [];
  for (let at = newline + 1; at < message.length;) {
    const colon = message.indexOf(COLON, at);
    if (colon < 0) return undefined;
    const length = digitsAt(message, at, colon);
    if (length < 0 || colon + 1 + length > message.length) return undefined;
    fields.push(colon + 1, colon + 1 + length);
    at = colon + 1 + length;
  }
  if (fields.length % (2 * FIELDS) !== 0) return undefined;
  const from = words.length >= 10 ? digitsAt(message, words[8]!, words[9]!) : -1;
  for (let i = 0; i < fields.length; i += 2 * FIELDS) {
    const entry = entryAt(message, fields, i);
    // Entries that do not run on from `from` to `head` are not taken: copies read them instead.
    if (entry === undefined || entry.seq !== from + i / (2 * FIELDS)) return { ...notice, entries: [] };
    notice.entries.push(entry);
  }
  return notice.entries.length === 0 || notice.entries.at(-1)!.seq === head ? notice : { ...notice, entries: [] };
}

/**
 * The number written in `buffer` from `start` to `end` in ASCII digits; -1 if it is not one. Also
 * reads a stream id's seq (redis-log.ts).
 */
export function digitsAt(buffer: Buffer, start: number, end: number): number {
  if (end <= start || end - start > MAX_DIGITS) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = buffer[i]! - DIGIT_0;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * One entry from its 7 script arguments, the fields from `i` on (start and end offsets): seq,
 * type, json (output: binary flag), stream, ts, offset, bytes. Undefined if a number is not one.
 */
function entryAt(message: Buffer, f: number[], i: number): StoredEntry | undefined {
  const seq = digitsAt(message, f[i]!, f[i + 1]!);
  if (seq < 0) return undefined;
  const type = message.toString("latin1", f[i + 2]!, f[i + 3]!);
  if (type === "output") {
    const ts = digitsAt(message, f[i + 8]!, f[i + 9]!);
    const offset = digitsAt(message, f[i + 10]!, f[i + 11]!);
    if (ts < 0 || offset < 0) return undefined;
    return new OutputEntry(
      seq,
      ts,
      message.toString("latin1", f[i + 6]!, f[i + 7]!) as OutputStream,
      offset,
      // Memory of its own: the notice's buffer is not kept alive by an entry a ring holds.
      Buffer.from(message.subarray(f[i + 12]!, f[i + 13]!)),
      f[i + 5]! - f[i + 4]! === 1 && message[f[i + 4]!] === 0x31,
    );
  }
  const json = message.toString("utf8", f[i + 4]!, f[i + 5]!);
  return { seq, type: type as EventType, json, size: jsonSize(json) };
}
