import { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import type { Statement } from "better-sqlite3";
import type { EventType } from "../protocol/index.js";
import { OUTPUT_ENTRY_OVERHEAD, OutputEntry } from "./output-entry.js";
import type {
  EventStore,
  FlushListener,
  LogWriteFailure,
  PersistedSession,
  StoredEntry,
  StoredLogState,
} from "./store.js";
import type { LogEntry } from "./types.js";

/** SQLite page size for new log files. */
export const SQLITE_PAGE_SIZE = 65536;

/** A group is posted to the writer at once when it reaches this many queued writes (even with one in flight). */
export const LOG_FLUSH_MAX_BATCH = 8192;
/**
 * About the most bytes one batch carries, shared fairly among the sessions with queued writes
 * (each gets at least its oldest write): a session flooding output cannot make another wait
 * behind its whole backlog — a keystroke's echo waits for about one batch of the flood, not 16 MiB.
 */
export const LOG_BATCH_MAX_BYTES = 256 * 1024;

/** An op as it crosses to the writer thread (plain data: structured clone copies strings flat). */
type WireOp =
  | {
      kind: "entry";
      sessionId: string;
      seq: number;
      type: string;
      outStart: number | null;
      outEnd: number | null;
      /** The event's JSON; for output, its fields without the data (OutputEntry.meta). */
      json: string;
      /** Output only: the raw bytes. */
      data: Uint8Array | null;
    }
  | { kind: "trim"; sessionId: string; first: number }
  | { kind: "session"; id: string; sessionKind: string; state: string; createdAt: number; meta: string }
  | { kind: "delete"; sessionId: string };

interface Row {
  seq: number;
  type: string;
  body: string;
  /** Output rows: the bytes (older logs kept them as text in `body`: then null). */
  data: Buffer | null;
  out_start: number | null;
}

/**
 * A row's size exactly as the session log counts its entry when appended (`OutputEntry.size`
 * for output rows, the JSON's length otherwise), so that what a trim subtracts is what the
 * appends added. Counted any other way the difference piled up with every trim, until byte
 * retention kept only the newest event.
 */
const ROW_SIZE = `(CASE WHEN data IS NULL THEN length(body) ELSE length(data) + ${OUTPUT_ENTRY_OVERHEAD} END)`;

/** Most rows one output read visits (tiny events could otherwise make one read unbounded). */
const OUTPUT_SCAN_MAX_ROWS = 10_000;

/** How long `flush()` waits for the writer thread before giving up (a stuck disk). */
export const LOG_FLUSH_WAIT_MS = 30_000;

/** How often the writer thread retries a batch it could not commit (disk full, read-only, I/O error). */
export const LOG_WRITE_RETRY_MS = 1000;

export interface SqliteEventStoreOptions {
  /** Told when the writer thread itself failed (not a failed commit: those are retried, see below). */
  onError?: (error: Error) => void;
  /**
   * Told after each failed commit attempt. The batch is kept and retried every `retryMs`;
   * later batches wait behind it, so the log never gets a hole.
   */
  onWriteFailed?: (failure: LogWriteFailure) => void;
  /** Told when a commit succeeds after failed ones: the failure it ends. */
  onWriteRecovered?: (failure: LogWriteFailure) => void;
  /** Told when something not needed for durability failed (freeing a purged session's pages). */
  onWarning?: (message: string) => void;
  /** Default {@link LOG_WRITE_RETRY_MS}. */
  retryMs?: number;
}

/**
 * The embedded log: one SQLite file in WAL mode. Appends are queued and committed in one
 * transaction per batch (group commit) by a writer thread. The group commit is adaptive:
 * with no batch in flight, what is queued is posted at the end of the current tick (the log
 * publishes an event only once it is durable, so a keystroke's echo waits for one commit, not
 * for a timer); while a batch is in flight, appends accumulate and the next batch is posted
 * when it is acknowledged, or at once when `LOG_FLUSH_MAX_BATCH` writes are queued. A batch
 * takes a fair share of `LOG_BATCH_MAX_BYTES` from each session's queue, so one session's
 * backlog does not delay another's events. A writer thread (`sqlite-writer.mjs`) that owns the only writing connection:
 * commits, fsyncs and WAL checkpoints never block the event loop that reads processes and
 * feeds viewers (measured: a 50 MiB PTY flood stalled the loop up to 60 ms per checkpoint
 * when commits ran on it). Reads use a second connection on this thread; WAL lets them run
 * while the writer commits, and the hot ring covers whatever is not committed yet.
 */
export class SqliteEventStore implements EventStore {
  private readonly db: Database.Database;
  private readonly writer: Worker;
  /** Queued ops per session, in order (ops of different sessions may be committed in any order). */
  private queues = new Map<string, { ops: WireOp[]; sizes: number[]; start: number }>();
  private queuedOps = 0;
  private nextBatch = 1;
  /** Batches posted and not yet acknowledged, with what each makes durable. */
  private readonly inflight = new Map<number, { durable: Map<string, number>; writes: number }>();
  /** A post is scheduled for the end of this tick. */
  private scheduled = false;
  private readonly flushedListeners: FlushListener[] = [];
  private readonly onError: (error: Error) => void;
  private readonly options: SqliteEventStoreOptions;
  private _writeFailure: LogWriteFailure | undefined;
  private closed = false;
  private readonly stmt: {
    readAfter: Statement<[string, number, number, number]>;
    readOutput: Statement<[string, number, number]>;
    oldest: Statement<[string, number, number]>;
  };

  constructor(file: string, options: SqliteEventStoreOptions = {}) {
    this.options = options;
    this.onError =
      options.onError ??
      ((error) =>
        queueMicrotask(() => {
          throw error;
        }));
    this.db = new Database(file);
    // Events are ~100 B to 64 KiB; with the default 4 KiB pages most rows overflow and a
    // WITHOUT ROWID insert costs several page writes. 64 KiB pages measured 5-6x faster
    // appends and 2x faster catch-up reads (bench/log.ts). Only takes effect on a new file.
    this.db.pragma(`page_size = ${SQLITE_PAGE_SIZE}`);
    // Free pages can be given back (`incremental_vacuum` after a session is removed), so a removed
    // session's bytes leave the file instead of waiting in free pages. Also only on a new file.
    this.db.pragma("auto_vacuum = INCREMENTAL");
    this.db.pragma("journal_mode = WAL");
    // WAL + NORMAL: a commit survives a process crash; an OS crash may lose the last groups.
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        meta TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS events (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        out_start INTEGER,
        out_end INTEGER,
        body TEXT NOT NULL,
        data BLOB,
        PRIMARY KEY (session_id, seq)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS events_output ON events (session_id, out_end) WHERE out_end IS NOT NULL;
    `);
    // Logs from before output was stored as bytes: add the column; their rows keep the JSON in `body`.
    const columns = this.db.prepare("SELECT name FROM pragma_table_info('events')").pluck().all() as string[];
    if (!columns.includes("data")) this.db.exec("ALTER TABLE events ADD COLUMN data BLOB");
    this.stmt = {
      readAfter: this.db.prepare(
        "SELECT seq, type, body, data, out_start FROM events WHERE session_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
      ),
      readOutput: this.db.prepare(
        "SELECT seq, type, body, data, out_start, out_end FROM events WHERE session_id = ? AND out_end > ? ORDER BY out_end LIMIT ?",
      ),
      oldest: this.db.prepare(
        `SELECT seq, ${ROW_SIZE} AS bytes FROM events WHERE session_id = ? AND seq >= ? ORDER BY seq LIMIT ?`,
      ),
    };
    this.writer = new Worker(new URL("./sqlite-writer.mjs", import.meta.url), {
      workerData: { file, retryMs: options.retryMs ?? LOG_WRITE_RETRY_MS },
    });
    this.writer.unref();
    this.writer.on("message", (m: WriterMessage) => this.onWriterMessage(m));
    this.writer.on("error", (error) => this.onError(error));
  }

  enqueue(sessionId: string, entry: StoredEntry): void {
    const output = entry instanceof OutputEntry;
    this.push(sessionId, entry.size, {
      kind: "entry",
      sessionId,
      seq: entry.seq,
      type: entry.type,
      outStart: entry.outStart ?? null,
      outEnd: entry.outEnd ?? null,
      json: output ? entry.meta() : entry.json,
      data: output ? exact(entry.bytes) : null,
    });
  }

  enqueueTrim(sessionId: string, first: number): void {
    this.push(sessionId, 64, { kind: "trim", sessionId, first });
  }

  enqueueSession(session: PersistedSession): void {
    this.push(session.id, 256, {
      kind: "session",
      id: session.id,
      sessionKind: session.kind,
      state: session.state,
      createdAt: session.createdAt,
      meta: JSON.stringify(session.meta),
    });
  }

  private push(key: string, size: number, op: WireOp): void {
    if (this.closed) throw new Error("event store is closed");
    let queue = this.queues.get(key);
    if (!queue) this.queues.set(key, (queue = { ops: [], sizes: [], start: 0 }));
    queue.ops.push(op);
    queue.sizes.push(size);
    this.queuedOps++;
    if (this.queuedOps >= LOG_FLUSH_MAX_BATCH) {
      this.post(undefined);
    } else if (!this.scheduled && this.inflight.size === 0) {
      // Nothing in flight: post once this tick's appends are queued (one batch for all of them).
      this.scheduled = true;
      queueMicrotask(() => {
        this.scheduled = false;
        if (!this.closed && this.inflight.size === 0) this.post(undefined);
      });
    }
  }

  /**
   * Hands queued ops to the writer thread as one batch: every session's oldest ops, about a fair
   * share of {@link LOG_BATCH_MAX_BYTES} each (all of them with `signal`, a synchronous flush).
   * Returns the batch number (0: nothing to send).
   */
  private post(signal: Int32Array | undefined): number {
    if (this.queuedOps === 0 && signal === undefined) return 0;
    const ops: WireOp[] = [];
    const durable = new Map<string, number>();
    const share = signal ? Infinity : LOG_BATCH_MAX_BYTES / Math.max(1, this.queues.size);
    for (const [key, queue] of this.queues) {
      let bytes = 0;
      let i = queue.start;
      while (i < queue.ops.length && (i === queue.start || bytes < share)) {
        const op = queue.ops[i]!;
        bytes += queue.sizes[i]!;
        ops.push(op);
        if (op.kind === "entry") durable.set(op.sessionId, op.seq);
        i++;
      }
      if (i === queue.ops.length) this.queues.delete(key);
      else if (i > 1024 && i * 2 > queue.ops.length) {
        queue.ops = queue.ops.slice(i);
        queue.sizes = queue.sizes.slice(i);
        queue.start = 0;
      } else queue.start = i;
    }
    this.queuedOps -= ops.length;
    const batch = this.nextBatch++;
    this.inflight.set(batch, { durable, writes: ops.length });
    this.writer.postMessage({ batch, ops, ...(signal ? { signal } : {}) });
    return batch;
  }

  /**
   * Why commits fail, while they do (undefined when the last commit succeeded). What was
   * appended meanwhile is kept in memory and written once a commit succeeds.
   */
  get writeFailure(): LogWriteFailure | undefined {
    return this._writeFailure;
  }

  /** Events and records appended and not committed yet (queued here or posted to the writer). */
  get unwrittenOps(): number {
    let n = this.queuedOps;
    for (const batch of this.inflight.values()) n += batch.writes;
    return n;
  }

  private onWriterMessage(message: WriterMessage): void {
    if ("warning" in message) {
      this.options.onWarning?.(message.warning);
      return;
    }
    if (message.error !== undefined) {
      // The writer keeps the batch and retries it: it stays in flight, nothing is marked durable.
      this._writeFailure = {
        message: message.error,
        code: message.code,
        since: this._writeFailure?.since ?? Date.now(),
        attempts: message.attempt ?? (this._writeFailure?.attempts ?? 0) + 1,
      };
      this.options.onWriteFailed?.(this._writeFailure);
      return;
    }
    this.recovered();
    // (Not in flight: acknowledged already by a synchronous flush.)
    if (this.inflight.has(message.batch)) this.complete(message.batch, message.ms ?? 0);
    // What accumulated while the writer was busy goes as the next batch.
    if (!this.closed && this.inflight.size === 0 && this.queuedOps > 0) this.post(undefined);
  }

  private recovered(): void {
    const failure = this._writeFailure;
    if (!failure) return;
    this._writeFailure = undefined;
    this.options.onWriteRecovered?.(failure);
  }

  /** Marks `batch` and every earlier one durable (the writer commits in order). */
  private complete(batch: number, ms: number): void {
    for (const [id, done] of this.inflight) {
      if (id > batch) break;
      this.inflight.delete(id);
      for (const listener of this.flushedListeners) listener(done.durable, { writes: done.writes, ms });
    }
  }

  /**
   * Commits everything queued and waits for the writer thread (used at shutdown and by tests).
   * Returns the number of writes that were queued. Throws when they cannot be committed now
   * (they stay queued and the writer goes on retrying them).
   */
  flush(): number {
    if (this.closed) return 0;
    const writes = this.queuedOps;
    if (writes === 0 && this.inflight.size === 0) return 0;
    const signal = new Int32Array(new SharedArrayBuffer(4));
    const started = performance.now();
    const batch = this.post(signal);
    // The main thread may block here: this is the one place the log waits for the disk.
    if (Atomics.wait(signal, 0, 0, LOG_FLUSH_WAIT_MS) === "timed-out") {
      throw new Error(`the log's writer did not commit within ${LOG_FLUSH_WAIT_MS} ms`);
    }
    if (Atomics.load(signal, 0) === 2) {
      // The failure message is posted before the signal is set, but not read yet: this thread was blocked.
      throw new Error(`the log cannot write ${this.unwrittenOps} queued events and records: the disk refused them`);
    }
    this.recovered();
    this.complete(batch, performance.now() - started);
    return writes;
  }

  onFlushed(listener: FlushListener): void {
    this.flushedListeners.push(listener);
  }

  readAfter(
    sessionId: string,
    since: number,
    limit: number,
    types?: ReadonlySet<string>,
    upTo = Number.MAX_SAFE_INTEGER,
  ): LogEntry[] {
    if (!types) return (this.stmt.readAfter.all(sessionId, since, upTo, limit) as Row[]).map(toEntry);
    // Filtered reads page through the range so a sparse type cannot make one query scan everything twice.
    const out: LogEntry[] = [];
    let cursor = since;
    const page = Math.max(256, limit);
    while (out.length < limit) {
      const rows = this.stmt.readAfter.all(sessionId, cursor, upTo, page) as Row[];
      for (const row of rows) {
        if (types.has(row.type)) {
          out.push(toEntry(row));
          if (out.length === limit) break;
        }
      }
      if (rows.length < page) break;
      cursor = rows[rows.length - 1]!.seq;
    }
    return out;
  }

  readOutputFrom(sessionId: string, byteOffset: number, maxBytes: number): StoredEntry[] {
    const out: StoredEntry[] = [];
    let covered = 0;
    // Iterated, so a reader far behind does not load the whole rest of the output at once.
    for (const r of this.stmt.readOutput.iterate(sessionId, byteOffset, OUTPUT_SCAN_MAX_ROWS) as IterableIterator<
      Row & { out_start: number; out_end: number }
    >) {
      const entry = toEntry(r);
      out.push(entry instanceof OutputEntry ? entry : { ...entry, outStart: r.out_start, outEnd: r.out_end });
      covered += r.out_end - Math.max(r.out_start, byteOffset);
      if (covered >= maxBytes) break;
    }
    return out;
  }

  oldestSizes(sessionId: string, fromSeq: number, limit: number): Array<{ seq: number; bytes: number }> {
    return this.stmt.oldest.all(sessionId, fromSeq, limit) as Array<{ seq: number; bytes: number }>;
  }

  loadSessions(): PersistedSession[] {
    const rows = this.db
      .prepare("SELECT id, kind, state, created_at, meta FROM sessions ORDER BY created_at, id")
      .all() as Array<{
      id: string;
      kind: PersistedSession["kind"];
      state: PersistedSession["state"];
      created_at: number;
      meta: string;
    }>;
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      state: r.state,
      createdAt: r.created_at,
      meta: JSON.parse(r.meta) as Record<string, unknown>,
    }));
  }

  loadLogState(sessionId: string): StoredLogState {
    const row = this.db
      .prepare(
        `SELECT COALESCE(MAX(seq), 0) AS head, COALESCE(MIN(seq), 0) AS first,
                COALESCE(MAX(out_end), 0) AS outputBytes, COALESCE(SUM(${ROW_SIZE}), 0) AS retainedBytes
         FROM events WHERE session_id = ?`,
      )
      .get(sessionId) as StoredLogState;
    // Output bytes survive trimming: the offset counter is never reset, so also look at the session record.
    return { ...row, first: row.head === 0 ? 1 : row.first };
  }

  deleteSession(sessionId: string): void {
    this.push(sessionId, 64, { kind: "delete", sessionId });
  }

  /**
   * Commits what is queued and closes the files. When the disk still refuses the last writes,
   * they are lost: `onError` says how many, and the store closes anyway (a gateway that cannot
   * write must still be able to stop and free its data directory).
   */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } catch (error) {
      this.onError(
        new Error(
          `${this.unwrittenOps} events and records were not written before the log closed, and are lost: ${this._writeFailure?.message ?? (error as Error).message}`,
          { cause: error },
        ),
      );
    }
    this.closed = true;
    // Wait for the writer to close its connection, so that ours is the last: closing it
    // checkpoints and removes the WAL synchronously, and nothing touches the files after close().
    const signal = new Int32Array(new SharedArrayBuffer(4));
    this.writer.postMessage({ close: true, signal });
    Atomics.wait(signal, 0, 0, LOG_FLUSH_WAIT_MS);
    this.db.close();
  }
}

/** What the writer thread posts back (see sqlite-writer.mjs). */
type WriterMessage =
  | { batch: number; ms?: number; error?: undefined }
  | { batch: number; error: string; code?: string; attempt?: number }
  | { warning: string };

/**
 * The bytes with a backing buffer of their own size: posting a view to the writer clones its
 * whole ArrayBuffer (a small Buffer may sit in Node's 8 KiB pool).
 *
 * Output is copied to the writer thread, not shared: SharedArrayBuffers were tried (no copy per
 * event) and let a flood pile up memory — V8 does not count shared memory towards starting a
 * GC, so buffers the ring and the writer had let go of stayed allocated (measured: 300 MiB
 * through a pipe session, `arrayBuffers` grew by 297 MiB; with copies it stays under 80 MiB).
 */
function exact(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : Uint8Array.prototype.slice.call(bytes);
}

function toEntry(row: Row): LogEntry {
  if (row.data !== null) return OutputEntry.fromStored(row.seq, row.body, row.out_start!, row.data);
  return { seq: row.seq, type: row.type as EventType, json: row.body, size: row.body.length };
}
