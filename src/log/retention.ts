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
