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
const FIELDS = 7;

/** Reads a notice; undefined for one this node cannot read (an older node's `<head> <first>`, or damaged). */
export function decodeNotice(message: Buffer): LiveNotice | undefined {
  const end = message.indexOf(NEWLINE);
  const header = message.toString("latin1", 0, end < 0 ? message.length : end).split(" ");
  if (header.length < 4) return undefined;
  const [head, first, epoch] = header.slice(0, 3).map(Number) as [number, number, number];
  if (![head, first, epoch].every(Number.isSafeInteger)) return undefined;
  const notice: LiveNotice = { head, first, epoch, recordChanged: header[3] === "r", entries: [] };
  if (end < 0) return notice;
  const fields: Buffer[] = [];
  for (let at = end + 1; at < message.length;) {
    const colon = message.indexOf(COLON, at);
    if (colon < 0) return undefined;
    const length = Number(message.toString("latin1", at, colon));
    if (!Number.isSafeInteger(length) || colon + 1 + length > message.length) return undefined;
    fields.push(message.subarray(colon + 1, colon + 1 + length));
    at = colon + 1 + length;
  }
  if (fields.length % FIELDS !== 0) return undefined;
  for (let i = 0; i < fields.length; i += FIELDS) notice.entries.push(entryOf(fields.slice(i, i + FIELDS)));
  const from = Number(header[4]);
  const contiguous = notice.entries.every((e, i) => e.seq === from + i);
  return contiguous && notice.entries.at(-1)?.seq === head ? notice : { ...notice, entries: [] };
}

/** One entry from its 7 script arguments: seq, type, json (output: binary flag), stream, ts, offset, bytes. */
function entryOf(f: Buffer[]): StoredEntry {
  const seq = Number(f[0]!.toString("latin1"));
  const type = f[1]!.toString("latin1");
  if (type === "output") {
    return new OutputEntry(
      seq,
      Number(f[4]!.toString("latin1")),
      f[3]!.toString("latin1") as OutputStream,
      Number(f[5]!.toString("latin1")),
      // Memory of its own: the notice's buffer is not kept alive by an entry a ring holds.
      Buffer.from(f[6]!),
      f[2]!.length === 1 && f[2]![0] === 0x31,
    );
  }
  const json = f[2]!.toString();
  return { seq, type: type as EventType, json, size: jsonSize(json) };
}
