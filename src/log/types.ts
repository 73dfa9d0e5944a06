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
  /** About the size of `json` in bytes, known without building it: what budgets and retention count. */
  readonly size: number;
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

/** Called synchronously inside `append`, after seq assignment, for every new event (see `eventOf`). */
export type LogListener = (entry: LogEntry) => void;

/** The per-session log as producers and consumers see it. */
export interface AppendableLog {
  readonly sessionId: string;
  /** Appends one event, assigning `seq` and `ts`. Returns the stored event. */
  append(event: NewEvent): SessionEvent;
}
