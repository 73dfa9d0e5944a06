import { systemClock } from "../core/clock.js";
import type { Clock } from "../core/clock.js";
import type { AppendableLog } from "../log/types.js";
import type { NewEvent, SessionEvent } from "../protocol/index.js";

/** Events a {@link MemoryLog} keeps; older ones are dropped (seq keeps counting). */
export const MEMORY_LOG_MAX_EVENTS = 100_000;

/**
 * An in-memory AppendableLog for tests and benchmarks of the agent layer (the gateway's real
 * log is the SQLite-backed one in src/log). Listeners run synchronously inside `append`, as
 * the real log's do.
 */
export class MemoryLog implements AppendableLog {
  readonly sessionId: string;
  private readonly clock: Clock;
  private readonly maxEvents: number;
  private readonly listeners = new Set<(event: SessionEvent) => void>();
  private retained: SessionEvent[] = [];
  private head = 0;

  constructor(sessionId: string, options: { clock?: Clock; maxEvents?: number } = {}) {
    this.sessionId = sessionId;
    this.clock = options.clock ?? systemClock;
    this.maxEvents = options.maxEvents ?? MEMORY_LOG_MAX_EVENTS;
  }

  /** The retained events, oldest first. */
  get events(): readonly SessionEvent[] {
    return this.retained;
  }

  append(event: NewEvent): SessionEvent {
    const stored = { ...event, seq: ++this.head, ts: this.clock.now() } as SessionEvent;
    this.retained.push(stored);
    if (this.retained.length > this.maxEvents) this.retained = this.retained.slice(-Math.ceil(this.maxEvents / 2));
    for (const listener of [...this.listeners]) listener(stored);
    return stored;
  }

  /** Calls `listener` for every appended event. Returns the unsubscribe function. */
  subscribe(listener: (event: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
