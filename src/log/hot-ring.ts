import type { StoredEntry } from "./store.js";
import type { LogEntry } from "./types.js";

/** Default bounds of one session's in-memory ring. Older entries are read from the store. */
export const HOT_RING_MAX_ENTRIES = 4096;
export const HOT_RING_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The most recent entries of one session, contiguous by seq. Entries are evicted from the
 * front only once they are durable (`evictableThrough`), so the ring plus the store always
 * cover the whole retained range: the store has everything up to the durable seq, the ring
 * everything after it.
 */
export class HotRing {
  /** Slots before `start` are emptied as entries leave, so nothing keeps what was evicted alive. */
  private entries: Array<LogEntry | undefined> = [];
  private start = 0; // index of the oldest live entry in `entries`
  private bytes = 0;

  constructor(
    private readonly maxEntries = HOT_RING_MAX_ENTRIES,
    private readonly maxBytes = HOT_RING_MAX_BYTES,
    /** Told of every entry that leaves the ring (evicted or cleared). */
    private readonly onDrop: (entry: LogEntry) => void = () => {},
  ) {}

  /** Seq of the oldest entry held, or undefined when empty. */
  get firstSeq(): number | undefined {
    return this.entries[this.start]?.seq;
  }

  get size(): number {
    return this.entries.length - this.start;
  }

  get byteSize(): number {
    return this.bytes;
  }

  push(entry: LogEntry): void {
    this.entries.push(entry);
    this.bytes += entry.size;
  }

  /**
   * Drops the oldest entries while over the bounds (every durable one when `all`), but never
   * past `durableSeq` (entries after it exist nowhere else yet), and always everything below
   * `retainFrom`.
   */
  evict(durableSeq: number, retainFrom: number, all = false): void {
    while (this.start < this.entries.length) {
      const oldest = this.entries[this.start]!;
      const overBounds = all || this.size > this.maxEntries || this.bytes > this.maxBytes;
      const trimmed = oldest.seq < retainFrom;
      if (!trimmed && !(overBounds && oldest.seq <= durableSeq)) break;
      this.bytes -= oldest.size;
      // Until the compaction below, the array still held every evicted entry: up to 1024, or as
      // many as are live — the output the ring had let go of (~8 MiB for a session that printed
      // a burst, measured), which a pool could not take back, stayed in memory.
      this.entries[this.start++] = undefined;
      this.onDrop(oldest);
    }
    // Compact once the dead prefix dominates, so the array does not grow without bound.
    if (this.start > 1024 && this.start * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.start);
      this.start = 0;
    }
  }

  /** Entries with `since < seq <= upTo`, at most `limit`, optionally only of `types`. */
  readAfter(since: number, limit: number, types?: ReadonlySet<string>, upTo = Number.MAX_SAFE_INTEGER): LogEntry[] {
    const first = this.firstSeq;
    if (first === undefined) return [];
    const out: LogEntry[] = [];
    let i = this.start + Math.max(0, since + 1 - first);
    for (; i < this.entries.length && out.length < limit; i++) {
      const entry = this.entries[i]!;
      if (entry.seq > upTo) break;
      if (!types || types.has(entry.type)) out.push(entry);
    }
    return out;
  }

  /**
   * Output entries whose bytes end after `offset` (and whose seq is at most `upTo`), in order,
   * until they cover `maxBytes` from it. No copy of the ring: a binary search finds the first, since output ranges grow with seq.
   */
  outputFrom(offset: number, maxBytes: number, upTo = Number.MAX_SAFE_INTEGER): StoredEntry[] {
    const entries = this.entries as StoredEntry[];
    let lo = this.start;
    let hi = entries.length;
    while (lo < hi) {
      // The first index whose output (this entry's, or the next output entry's) ends after `offset`.
      const mid = (lo + hi) >>> 1;
      const end = outputEndAtOrAfter(entries, mid);
      if (end !== undefined && end <= offset) lo = mid + 1;
      else hi = mid;
    }
    const out: StoredEntry[] = [];
    let covered = 0;
    for (let i = lo; i < entries.length && covered < maxBytes; i++) {
      const e = entries[i]!;
      if (e.seq > upTo) break;
      if (e.outEnd === undefined || e.outEnd <= offset) continue;
      out.push(e);
      covered += e.outEnd - Math.max(e.outStart!, offset);
    }
    return out;
  }

  /** The entry with this seq, if held. */
  get(seq: number): LogEntry | undefined {
    const first = this.firstSeq;
    if (first === undefined || seq < first) return undefined;
    return this.entries[this.start + (seq - first)];
  }

  /** Drops the entries after `seq`, newest first (they were never written anywhere else). */
  dropAfter(seq: number): void {
    while (this.entries.length > this.start && this.entries[this.entries.length - 1]!.seq > seq) {
      const newest = this.entries.pop()!;
      this.bytes -= newest.size;
      this.onDrop(newest);
    }
  }

  clear(): void {
    for (let i = this.start; i < this.entries.length; i++) this.onDrop(this.entries[i]!);
    this.entries = [];
    this.start = 0;
    this.bytes = 0;
  }
}

/** The output end of entry `i`, or of the first output entry after it; undefined if there is none. */
function outputEndAtOrAfter(entries: readonly StoredEntry[], i: number): number | undefined {
  for (let j = i; j < entries.length; j++) {
    const end = entries[j]!.outEnd;
    if (end !== undefined) return end;
  }
  return undefined;
}
