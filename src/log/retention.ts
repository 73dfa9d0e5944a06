import type { EventStore } from "./store.js";

/** Per-session retention. The newest event is always kept, so `head` survives a restart. */
export interface RetentionPolicy {
  /** Most events kept per session. */
  maxEvents: number;
  /** Most bytes (serialized event size) kept per session. */
  maxBytes: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = {
  maxEvents: 1_000_000,
  maxBytes: 256 * 1024 * 1024,
};

/** Rows examined per step when trimming by bytes. */
export const RETENTION_SCAN_BATCH = 1024;

/**
 * Where byte retention lets a log start: the oldest entries from `first` on are dropped while
 * more than `maxBytes` would be kept, durable ones only (`< durableSeq`; the newest event is
 * never dropped). Reads their sizes from the store, a batch at a time. `dropped`: their bytes.
 */
export function firstKeptByBytes(
  store: Pick<EventStore, "oldestSizes">,
  sessionId: string,
  log: { first: number; retainedBytes: number; durableSeq: number; maxBytes: number },
): { first: number; dropped: number } {
  let first = log.first;
  let dropped = 0;
  while (log.retainedBytes - dropped > log.maxBytes && first < log.durableSeq) {
    const sizes = store.oldestSizes(sessionId, first, RETENTION_SCAN_BATCH);
    if (sizes.length === 0) break;
    for (const { seq, bytes } of sizes) {
      if (log.retainedBytes - dropped <= log.maxBytes || seq >= log.durableSeq) break;
      dropped += bytes;
      first = seq + 1;
    }
  }
  return { first, dropped };
}

/** The bytes (entry sizes) of a session's stored entries with `from <= seq < to`, a batch at a time. */
export function storedBytes(
  store: Pick<EventStore, "oldestSizes">,
  sessionId: string,
  from: number,
  to: number,
): number {
  let bytes = 0;
  let seq = from;
  while (seq < to) {
    const sizes = store.oldestSizes(sessionId, seq, Math.min(RETENTION_SCAN_BATCH, to - seq));
    if (sizes.length === 0) break;
    for (const row of sizes) if (row.seq < to) bytes += row.bytes;
    seq = sizes[sizes.length - 1]!.seq + 1;
  }
  return bytes;
}
