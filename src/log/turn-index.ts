import type { LogEntry, LogListener, ReadOptions, ReadResult } from "./types.js";

/**
 * Where each run (turn) of an agent session's log starts, so that a page can open on its last
 * turns without reading the log from seq 1 (docs/protocol.md, "Turns"). A run's *start* is its
 * first event after `run.queued`: `run.started`, or the `chat.aborted` / `chat.error` of one that
 * never started. Runs go one at a time, so the events from one start up to the next are that
 * run's (plus the `run.queued` of prompts sent meanwhile). Built with one filtered scan of the
 * log when first asked (the store passes over the other types itself), then kept as events are
 * published: no request scans the log (test/server/turns-route.test.ts).
 */

/**
 * The events that place a run: queued, and the first of these that starts it; and the session's
 * end, after which no queued run starts (a log from before the gateway aborted them itself).
 */
export const TURN_EVENT_TYPES: ReadonlySet<string> = new Set([
  "run.queued",
  "run.started",
  "chat.aborted",
  "chat.error",
  "exit",
  "lost",
]);
/** Runs remembered per session; past it the oldest are forgotten (their turns load as one page with the next). */
export const TURN_INDEX_MAX_RUNS = 50_000;
/** Events read per step of the first scan (each read is bounded by the log's own filtered-scan bound too). */
const SCAN_READ_LIMIT = 4096;

/** What the index needs of a session's log. */
export interface TurnLog {
  readonly head: number;
  readonly first: number;
  /** What the log holds, in bytes as retention counts them (`retainedBytes`). */
  readonly storedState: { readonly retainedBytes: number };
  read(since: number, options?: ReadOptions): ReadResult;
  subscribe(listener: LogListener, options?: { background?: boolean }): () => void;
}

export interface TurnMark {
  readonly runId: string;
  /** The seq of its `run.queued` (null when retention dropped it or the log never had it). */
  readonly queued: number | null;
  /** The seq of its first event after `run.queued`; null while it waits in the queue. */
  readonly start: number | null;
}

interface MutableMark {
  runId: string;
  queued: number | null;
  start: number | null;
}

export class TurnIndex {
  /** Runs with a start, in start order (ascending seqs). */
  private readonly started: MutableMark[] = [];
  /** Runs queued and not started, by id. */
  private readonly waiting = new Map<string, MutableMark>();

  constructor(private readonly log: TurnLog) {
    // The scan and the listener are set up in one synchronous step: no event falls between them.
    let since = log.first - 1;
    const head = log.head;
    while (since < head) {
      const page = log.read(since, { types: TURN_EVENT_TYPES, limit: SCAN_READ_LIMIT });
      for (const entry of page.entries) this.take(entry);
      if (page.next <= since) break;
      since = page.next;
    }
    log.subscribe((entry) => this.take(entry), { background: true });
  }

  /**
   * The last `limit` turns that start before `before` (ascending), and the start of the turn
   * after the last of them (null: none yet, the page runs on to the head).
   */
  before(before: number, limit: number): { turns: TurnMark[]; next: number | null } {
    const kept = this.kept();
    const end = firstAtOrAfter(kept, before);
    const turns = kept.slice(Math.max(0, end - limit), end);
    return { turns, next: kept[end]?.start ?? null };
  }

  /** The first `limit` turns that start at or after `from`, and the start of the turn after them. */
  from(from: number, limit: number): { turns: TurnMark[]; next: number | null } {
    const kept = this.kept();
    const at = firstAtOrAfter(kept, from);
    const turns = kept.slice(at, at + limit);
    return { turns, next: kept[at + limit]?.start ?? null };
  }

  /** Runs waiting in the queue, in the order they were queued. */
  get queued(): TurnMark[] {
    return [...this.waiting.values()];
  }

  /** The started runs whose start retention kept. */
  private kept(): MutableMark[] {
    const first = this.log.first;
    const at = firstAtOrAfter(this.started, first);
    if (at > 0) this.started.splice(0, at);
    return this.started;
  }

  private take(entry: LogEntry): void {
    if (!TURN_EVENT_TYPES.has(entry.type)) return;
    if (entry.type === "exit" || entry.type === "lost") {
      this.waiting.clear();
      return;
    }
    const runId = runIdOf(entry.json);
    if (runId === undefined) return;
    if (entry.type === "run.queued") {
      if (!this.waiting.has(runId)) this.waiting.set(runId, { runId, queued: entry.seq, start: null });
      return;
    }
    const waiting = this.waiting.get(runId);
    if (waiting === undefined) {
      // A run whose start is already known (chat.error after run.started), or whose `run.queued`
      // was trimmed away: only the first of its starts counts.
      if (this.started.at(-1)?.runId === runId) return;
      if (this.started.some((m) => m.runId === runId)) return;
      this.push({ runId, queued: null, start: entry.seq });
      return;
    }
    this.waiting.delete(runId);
    waiting.start = entry.seq;
    this.push(waiting);
  }

  private push(mark: MutableMark): void {
    this.started.push(mark);
    if (this.started.length > TURN_INDEX_MAX_RUNS) this.started.splice(0, this.started.length - TURN_INDEX_MAX_RUNS);
  }
}

/** The index of the first mark whose start is at or after `seq` (binary search: starts ascend). */
function firstAtOrAfter(marks: readonly MutableMark[], seq: number): number {
  let lo = 0;
  let hi = marks.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (marks[mid]!.start! < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The run id of a run event, read from its JSON (these events are small: no text). */
function runIdOf(json: string): string | undefined {
  const parsed = JSON.parse(json) as { runId?: unknown };
  return typeof parsed.runId === "string" ? parsed.runId : undefined;
}

const indexes = new WeakMap<TurnLog, TurnIndex>();

/** The turn index of `log`, built the first time it is asked for; it lives as long as the log. */
export function turnIndexOf(log: TurnLog): TurnIndex {
  let index = indexes.get(log);
  if (index === undefined) {
    index = new TurnIndex(log);
    indexes.set(log, index);
  }
  return index;
}
