import { SwitchboardError } from "../protocol/index.js";
import type { LogEntry } from "./types.js";

/** A session's durable record: what `GET /v1/sessions/:id` shows, minus the live counters. */
export interface PersistedSession {
  id: string;
  kind: "terminal" | "agent" | "stream";
  state: "running" | "exited" | "lost";
  createdAt: number;
  /** Everything else about the session (name, command, owner, exit code, ...), as JSON. */
  meta: Record<string, unknown>;
}

/** What the store knows about a session's log when the gateway starts. */
export interface StoredLogState {
  head: number;
  first: number;
  outputBytes: number;
  retainedBytes: number;
}

/** One entry as the store keeps it. Output entries also carry their byte range. */
export interface StoredEntry extends LogEntry {
  readonly outStart?: number | undefined;
  readonly outEnd?: number | undefined;
  /** Somebody waits for this very entry's commit (held input): it does not linger for company. */
  readonly urgent?: boolean;
}

/** Why the log cannot write, from the first failed commit on, until a commit succeeds again. */
export interface LogWriteFailure {
  /** The storage's message, e.g. "database or disk is full". */
  message: string;
  /** The storage's code, e.g. SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR_WRITE (undefined when it has none). */
  code: string | undefined;
  /** When the first commit failed (epoch ms). */
  since: number;
  /** Failed commit attempts so far. */
  attempts: number;
}

/** The error new work gets while the log cannot write. */
export function logUnavailable(failure: LogWriteFailure): SwitchboardError {
  // Not a failing disk, which recovers: the directory is gone (watchDataDir), until a restart.
  if (failure.code === "DATA_DIR_GONE")
    return new SwitchboardError("LOG_UNAVAILABLE", `${failure.message}; nothing new is accepted until then`);
  return new SwitchboardError(
    "LOG_UNAVAILABLE",
    `the event log cannot write to the data directory since ${new Date(failure.since).toISOString()} (${failure.message}), so nothing new is accepted; free space there (or make it writable again): the gateway retries by itself and accepts work again once a write succeeds`,
  );
}

/** Observes a group commit: the durable seq per session, and the batch's size and duration. */
export type FlushListener = (durable: ReadonlyMap<string, number>, stats: { writes: number; ms: number }) => void;

/**
 * Durable storage behind the per-session logs. Writes are queued and committed in groups
 * (`flush`), reads see only committed data: the hot ring covers what is not yet flushed.
 */
export interface EventStore {
  /**
   * Queues an entry for the next group commit. `lingers`: it may wait for company (as input does,
   * LOG_INPUT_LINGER_MS) instead of going at the end of this tick: nobody waits to see it committed.
   */
  enqueue(sessionId: string, entry: StoredEntry, options?: { lingers?: boolean }): void;
  /** Queues deletion of every entry with seq < `first`. */
  enqueueTrim(sessionId: string, first: number): void;
  /** Queues a session record upsert, ordered with the entries around it. */
  enqueueSession(session: PersistedSession): void;
  /** Commits everything queued in one transaction. Returns the number of entries written. */
  flush(): number;
  /** Called after each commit with the highest durable seq per session written in it. */
  onFlushed(listener: FlushListener): void;
  /**
   * Commits soon what waits for company (a cluster node's replica rows, LOG_REPLICA_LINGER_MS):
   * someone waits for it to be durable. Absent where nothing waits that long.
   */
  hurry?(): void;
  /**
   * Cluster mode: called once the log of record (Redis) holds a session's entries up to `seq`,
   * which may be before they commit here: they are published then (SessionLog.markShared).
   */
  onShared?(listener: (sessionId: string, seq: number) => void): void;
  /**
   * Cluster mode: the log of record may refuse what this node appended (fencing), so nothing is
   * shown before it holds it (SessionLog.showOutputEarly is refused). Absent: an appended entry is
   * lost only with this process.
   */
  readonly refusesAppends?: true;
  /**
   * Entries with `since < seq <= upTo`, at most `limit`, only of `types` when given, stopping
   * after the entry whose size brings the total to `maxBytes` (so at least one is returned).
   */
  readAfter(
    sessionId: string,
    since: number,
    limit: number,
    types?: ReadonlySet<string>,
    upTo?: number,
    maxBytes?: number,
  ): LogEntry[];
  /** Output entries whose byte range ends after `byteOffset`, in order, until they cover about `maxBytes` from it. */
  readOutputFrom(sessionId: string, byteOffset: number, maxBytes: number): StoredEntry[];
  /** Sizes (LogEntry.size) of the oldest entries, for byte-based retention. */
  oldestSizes(sessionId: string, fromSeq: number, limit: number): Array<{ seq: number; bytes: number }>;
  loadSessions(): PersistedSession[];
  /**
   * The position of a session's log when the gateway starts. `saved`: the state noted with the
   * session's record when it was last written (EventLog.saveSession); taken as it is
   * when the log still holds exactly the events it describes (the same `first` and `head`), so
   * that a start need not read every event of every session.
   */
  loadLogState(sessionId: string, saved?: StoredLogState): StoredLogState;
  /**
   * Queues the deletion of a session's entries and record (after anything queued for it before);
   * a promise resolves once that is durable.
   */
  deleteSession(sessionId: string): void | Promise<void>;
  /**
   * Resolves once every write queued so far for the session is in the store every node reads
   * (cluster mode: Redis), so that a request on any node finds it; absent where the store is
   * this node's alone.
   */
  whenShared?(sessionId: string): Promise<void>;
  /**
   * Why commits fail, while they do (undefined when they succeed): what was appended meanwhile
   * waits in memory and is written, in order, once the storage takes it again.
   */
  readonly writeFailure?: LogWriteFailure | undefined;
  close(): void;
}
