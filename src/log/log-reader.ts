import { SwitchboardError } from "../protocol/index.js";
import type { OutputStream } from "../protocol/index.js";
import type { HotRing } from "./hot-ring.js";
import { outputOf } from "./output-entry.js";
import { storedBytes } from "./retention.js";
import type { EventStore, StoredEntry } from "./store.js";
import type { LogEntry, ReadOptions, ReadResult } from "./types.js";

/** Most output bytes one `readOutput` collects (it may exceed this by one event). */
export const OUTPUT_READ_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Stored events a type-filtered read examines at most. A filter that matches few of a long log's
 * events (`types=exit` over a million outputs) would otherwise scan it all in one read on the
 * event loop (~0.3 µs an event with SQLite passing over the other types; ~2 µs before it did):
 * a stall in which no session's events go out. Such a read answers
 * with a page that ends there (`next` short of the head, maybe without events); readers go on
 * from `next` as with any page.
 */
export const FILTERED_SCAN_EVENTS = 16_384;

/** A chunk of raw output bytes starting at `offset`. */
export interface OutputSlice {
  offset: number;
  stream: OutputStream;
  bytes: Uint8Array;
}

/**
 * What a reader needs of its log's positions (SessionLog has them): what is published and
 * retained, and the newest seq appended. Declared here so the reader imports nothing back.
 */
interface ReadPositions {
  /** Seq of the newest published event. */
  readonly head: number;
  /** Seq of the oldest retained event. */
  readonly first: number;
  /** Output bytes published so far. */
  readonly outputBytes: number;
  /** Seq of the newest appended event, published or not. */
  readonly appendedHead: number;
}

/**
 * The reads of one session's history, behind SessionLog's `read`, `checkPosition` and `readOutput`
 * (and its retention's count of what a trim drops): the part older than the hot ring is durable
 * and read from the store, the rest from the ring, joined so that a page never has a gap or a
 * repeat.
 */
export class LogReader {
  constructor(
    private readonly sessionId: string,
    private readonly store: EventStore,
    private readonly ring: HotRing,
    private readonly log: ReadPositions,
  ) {}

  read(since: number, options: ReadOptions): ReadResult {
    this.checkPosition(since);
    const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
    const types = options.types;
    const entries: LogEntry[] = [];
    const head = this.log.head;
    const ringFirst = this.ring.firstSeq ?? this.log.appendedHead + 1;
    let storeFull = false;
    // A type filter examines at most FILTERED_SCAN_EVENTS stored events per read (seqs are
    // contiguous: `since + n` is n events on); the page then ends there, short of the head.
    const storeEnd = types ? Math.min(ringFirst - 1, since + FILTERED_SCAN_EVENTS) : ringFirst - 1;
    if (since + 1 < ringFirst) {
      // The part older than the ring is durable: read it from the store.
      const stored = this.store.readAfter(this.sessionId, since, limit, types, storeEnd, options.maxBytes);
      entries.push(...stored);
      // A read that stopped at its byte bound may end short of the ring: adding the ring would leave a gap.
      storeFull = options.maxBytes !== undefined && stored.reduce((n, e) => n + e.size, 0) >= options.maxBytes;
    }
    let cut = entries.length >= limit || storeFull;
    const scanBounded = !cut && storeEnd < ringFirst - 1;
    if (!cut && !scanBounded) {
      const after =
        entries.length > 0 ? Math.max(entries[entries.length - 1]!.seq, ringFirst - 1) : Math.max(since, ringFirst - 1);
      entries.push(...this.ring.readAfter(after, limit - entries.length, types, head));
      cut = entries.length >= limit;
    }
    if (options.maxBytes !== undefined) {
      let bytes = 0;
      for (let i = 0; i < entries.length; i++) {
        bytes += entries[i]!.size;
        if (bytes >= options.maxBytes && i + 1 < entries.length) {
          entries.length = i + 1;
          cut = true;
          break;
        }
      }
    }
    const next = cut ? entries[entries.length - 1]!.seq : scanBounded ? storeEnd : head;
    return { entries, head, first: this.log.first, next };
  }

  checkPosition(since: number): void {
    const head = this.log.head;
    const first = this.log.first;
    if (since > head) {
      throw new SwitchboardError("BAD_REQUEST", `since=${since} is past the head (${head}) of this session`, {
        head,
        first,
      });
    }
    if (since + 1 < first) {
      throw new SwitchboardError(
        "HISTORY_TRIMMED",
        `events up to ${first - 1} were dropped by retention; resume from since=${first - 1}`,
        { head, first },
      );
    }
  }

  readOutput(offset: number, maxBytes: number): OutputSlice[] {
    const end = this.log.outputBytes;
    if (offset > end) {
      throw new SwitchboardError("BAD_REQUEST", `since=${offset} is past the end of the output (${end} bytes)`);
    }
    // At the end already (an agent session may have no output at all): nothing to look for.
    if (offset === end) return [];
    const slices: OutputSlice[] = [];
    let bytes = 0;
    for (const row of this.outputEntriesFrom(offset, maxBytes)) {
      const out = outputOf(row);
      const data = out.offset < offset ? out.bytes.subarray(offset - out.offset) : out.bytes;
      slices.push({ offset: Math.max(out.offset, offset), stream: out.stream, bytes: data });
      bytes += data.length;
      if (bytes >= maxBytes) break;
    }
    // Retention dropped bytes from `offset` on. With no output event left after it at all (it
    // kept only newer events of other types), the oldest byte kept is the end of the output.
    const first = slices.length > 0 ? slices[0]!.offset : end;
    if (first > offset) {
      throw new SwitchboardError(
        "HISTORY_TRIMMED",
        `output before byte ${first} was dropped by retention; resume from since=${first}`,
        { first, head: end },
      );
    }
    return slices;
  }

  /** Output entries whose bytes end after `offset`, in order, covering about `maxBytes` from it. */
  private outputEntriesFrom(offset: number, maxBytes: number): StoredEntry[] {
    // The ring holds its entries with their byte ranges; older ones come from the store's index.
    const ringFirst = this.ring.firstSeq ?? this.log.appendedHead + 1;
    const fromRing = this.ring.outputFrom(offset, maxBytes, this.log.head);
    const firstInRing = fromRing[0];
    if (firstInRing && firstInRing.outStart! <= offset) return fromRing;
    // Rows before `first` are trimmed, even while their deletion is still queued for the store.
    const first = this.log.first;
    const stored = this.store
      .readOutputFrom(this.sessionId, offset, maxBytes)
      .filter((e) => e.seq < ringFirst && e.seq >= first);
    // The ring continues the store only where the store's read reached it (a read bounded by
    // bytes or rows may stop short): never return a gap.
    const last = stored[stored.length - 1];
    const reachesRing = last === undefined || firstInRing === undefined || last.outEnd! >= firstInRing.outStart!;
    return reachesRing ? [...stored, ...fromRing] : stored;
  }

  /**
   * The bytes (entry sizes) of the retained entries with `from <= seq < to`: from the ring where it
   * holds them, else from the store (entries older than the ring are durable, so the store has
   * them). Counting only the ring's (count retention of a session with more events than its ring
   * holds, the default) left every trimmed event's size in the log's `retainedBytes`, so that byte
   * retention later trimmed that much too much, more with every trim, until it kept only the
   * newest event.
   */
  sizeOfRange(from: number, to: number): number {
    const ringFirst = this.ring.firstSeq ?? this.log.appendedHead + 1;
    let bytes = storedBytes(this.store, this.sessionId, from, Math.min(to, ringFirst));
    for (let seq = Math.max(from, ringFirst); seq < to; seq++) bytes += this.ring.get(seq)?.size ?? 0;
    return bytes;
  }
}
