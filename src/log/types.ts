import type { EventType, NewEvent, SessionEvent } from "../protocol/index.js";

/**
 * One stored event. `json` is the event serialized once (at append time, or for output on
 * first use, see OutputEntry), so fan-out and catch-up can build frames by concatenation
 * instead of re-serializing per viewer.
 */
export interface LogEntry {
  readonly seq: number;
  readonly type: EventType;
  readonly json: string;
  /**
   * About the size of `json` in bytes, known without building it: what budgets and retention
   * count. An event's is {@link jsonSize}; output's is its bytes plus an allowance (OutputEntry).
   */
  readonly size: number;
}

/** A pair of UTF-16 surrogates: one character beyond the BMP (JSON.stringify escapes lone ones). */
const SURROGATE_PAIRS = /[\uD800-\uDBFF][\uDC00-\uDFFF]/g;
const HIGH_SURROGATE = /[\uD800-\uDBFF]/;

/**
 * The size of an event's JSON as the log counts it: its characters (code points), which is
 * what SQLite's `length()` gives for the stored text, so that the bytes a trim subtracts (counted
 * by the store) are those the appends added. A string's `length` counts a character beyond the
 * BMP (an emoji) twice, and byte retention drifted with each trim of such events. The check
 * costs nothing on strings V8 holds as one byte per character, the common case.
 */
export function jsonSize(json: string): number {
  if (!HIGH_SURROGATE.test(json)) return json.length;
  return json.length - (json.match(SURROGATE_PAIRS)?.length ?? 0);
}

export interface ReadOptions {
  /** Most entries to return (default: all available). */
  limit?: number;
  /** Stop adding entries once their serialized size reaches this many bytes (at least one is returned). */
  maxBytes?: number;
  /** Only these event types (the `next` position still advances past the others). */
  types?: ReadonlySet<string> | undefined;
}

export interface ReadResult {
  entries: LogEntry[];
  /** Newest seq in the log at the time of the read. */
  head: number;
  /** Oldest retained seq (head + 1 when nothing is retained). */
  first: number;
  /** The position to pass as `since` for the next page. */
  next: number;
}

/** Called with each entry, in seq order, once it is published (durable in the store): see `SessionLog.subscribe`. */
export type LogListener = (entry: LogEntry) => void;

/** The per-session log as producers and consumers see it. */
export interface AppendableLog {
  readonly sessionId: string;
  /** Appends one event, assigning `seq` and `ts`. Returns the stored event. */
  append(event: NewEvent): SessionEvent;
}
