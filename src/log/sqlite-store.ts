import { chmodSync, closeSync, existsSync, openSync } from "node:fs";
import Database from "better-sqlite3";
import type { Statement } from "better-sqlite3";
import type { EventType } from "../protocol/index.js";
import { GroupCommit } from "./group-commit.js";
import type { GroupCommitOptions } from "./group-commit.js";
import { OUTPUT_ENTRY_OVERHEAD, OutputEntry } from "./output-entry.js";
import { OutputFileIndex } from "./output-file-index.js";
import type { OutputFileReader } from "./output-file-index.js";
import { OUTPUT_FILE_BYTES, OUTPUT_FILE_MIN_ENTRY, outputDirOf } from "./output-files.mjs";
import type {
  EventStore,
  FlushListener,
  LogWriteFailure,
  PersistedSession,
  StoredEntry,
  StoredLogState,
} from "./store.js";
import type { LogEntry } from "./types.js";
import { jsonSize } from "./types.js";

/**
 * SQLite page size for new log files. Every commit writes at least a page to the WAL, so this is
 * the disk cost of a keystroke's echo; 16 KiB keeps appends and reads well past their goals at a
 * quarter of 64 KiB's bytes per commit (bench/README.md, "Log writes"). Old logs keep theirs.
 */
export const SQLITE_PAGE_SIZE = 16384;

/**
 * An `events` row as its statements return it: an array (better-sqlite3's raw mode, about a
 * third faster to read than an object per row) — seq, type, body, data, out_start, out_end.
 * `data`: output rows' bytes (older logs kept them as text in `body`: then null); empty when
 * they are in the session's output file (see output-files.mjs).
 */
type Row = [
  seq: number,
  type: string,
  body: string,
  data: Buffer | null,
  outStart: number | null,
  outEnd: number | null,
];

/**
 * A row's size exactly as the session log counts its entry when appended (`OutputEntry.size`
 * for output rows, the JSON's length otherwise), so that what a trim subtracts is what the
 * appends added. Counted any other way the difference piled up with every trim, until byte
 * retention kept only the newest event.
 */
const ROW_SIZE = `(CASE WHEN data IS NULL THEN length(body) ELSE out_end - out_start + ${OUTPUT_ENTRY_OVERHEAD} END)`;

/** Most rows one output read visits (tiny events could otherwise make one read unbounded). */
const OUTPUT_SCAN_MAX_ROWS = 10_000;

/**
 * An output row is marked (offset noted in `output_marks`) after this many events or bytes since
 * the last mark; a read from a byte offset scans forward from the mark before it, so at most about
 * this much. Marks replace an index on every row's offset, which doubled a keystroke's commit
 * (bench/README.md, "Log writes").
 */
export const OUTPUT_MARK_EVENTS = 256;
export const OUTPUT_MARK_BYTES = 1024 * 1024;

export interface SqliteEventStoreOptions extends GroupCommitOptions {
  /**
   * Told when the log opens and finds that an OS crash cost a session's last output file bytes
   * its rows point at: those rows and the session's later ones are removed (the message says which).
   */
  onOutputLost?: (message: string) => void;
  /** A session's output moves on to a new output file once its current one holds this much. Default {@link OUTPUT_FILE_BYTES}. */
  outputFileBytes?: number;
}

/**
 * The embedded log: one SQLite file in WAL mode, and beside it a directory of output files that
 * hold big output's bytes (see output-files.mjs). This class is the file's schema and its reads;
 * its writes are queued and committed in groups by {@link GroupCommit} (a session log publishes
 * an event only once it is committed). Reads use their own connection on this thread and see
 * exactly what is published.
 */
export class SqliteEventStore implements EventStore {
  private readonly db: Database.Database;
  private readonly writes: GroupCommit;
  private closed = false;
  /** Set by {@link refuseWrites}. */
  private refusal: LogWriteFailure | undefined;
  /** Per session, the last output row marked in this run (see {@link OUTPUT_MARK_EVENTS}). */
  private readonly lastMark = new Map<string, { seq: number; offset: number }>();
  /** Which output file holds what (the bytes of big output). */
  private readonly files: OutputFileIndex;
  private readonly stmt: {
    readAfter: Statement<[string, number, number, number]>;
    /** Like readAfter, only rows whose type is in a JSON array of types. */
    readAfterTypes: Statement<[string, number, number, string, number]>;
    markBefore: Statement<[string, number]>;
    readOutput: Statement<[string, number, number, number]>;
    oldest: Statement<[string, number, number]>;
    head: Statement<[string]>;
    first: Statement<[string]>;
    trimmedEnd: Statement<[string]>;
    logState: Statement<[string]>;
  };

  constructor(file: string, options: SqliteEventStoreOptions = {}) {
    ownerOnly(file);
    this.db = new Database(file);
    // See SQLITE_PAGE_SIZE. Only takes effect on a new file.
    this.db.pragma(`page_size = ${SQLITE_PAGE_SIZE}`);
    // Free pages can be given back (`incremental_vacuum` after a session is removed), so a removed
    // session's bytes leave the file instead of waiting in free pages. Also only on a new file.
    this.db.pragma("auto_vacuum = INCREMENTAL");
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("busy_timeout = 5000");
    // Closing the last connection checkpoints; nothing else on this one does (the writer thread does).
    this.db.pragma("wal_autocheckpoint = 0");
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
      CREATE TABLE IF NOT EXISTS output_ends (
        session_id TEXT PRIMARY KEY,
        out_end INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS output_marks (
        session_id TEXT NOT NULL,
        out_start INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (session_id, out_start)
      ) WITHOUT ROWID;
    `);
    // Logs from before output was stored as bytes: add the column; their rows keep the JSON in `body`.
    const columns = this.db.prepare("SELECT name FROM pragma_table_info('events')").pluck().all() as string[];
    if (!columns.includes("data")) this.db.exec("ALTER TABLE events ADD COLUMN data BLOB");
    // Logs from before the marks had an index on every output row's end instead: mark them, drop it.
    this.db
      .transaction(() => {
        if (this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'events_output'").get()) {
          this.db.exec(`
          INSERT OR IGNORE INTO output_marks (session_id, out_start, seq)
            SELECT session_id, out_start, seq FROM (
              SELECT session_id, out_start, seq, row_number() OVER (PARTITION BY session_id ORDER BY seq) AS n
              FROM events WHERE out_end IS NOT NULL
            ) WHERE n % ${OUTPUT_MARK_EVENTS} = 1;
          DROP INDEX events_output;
        `);
        }
      })
      .immediate();
    this.stmt = {
      readAfter: this.db
        .prepare(
          "SELECT seq, type, body, data, out_start, out_end FROM events WHERE session_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
        )
        .raw(),
      readAfterTypes: this.db
        .prepare(
          "SELECT seq, type, body, data, out_start, out_end FROM events WHERE session_id = ? AND seq > ? AND seq <= ? AND type IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?",
        )
        .raw(),
      markBefore: this.db
        .prepare("SELECT seq FROM output_marks WHERE session_id = ? AND out_start <= ? ORDER BY out_start DESC LIMIT 1")
        .pluck(),
      readOutput: this.db
        .prepare(
          "SELECT seq, type, body, data, out_start, out_end FROM events WHERE session_id = ? AND seq >= ? AND out_end > ? ORDER BY seq LIMIT ?",
        )
        .raw(),
      oldest: this.db.prepare(
        `SELECT seq, ${ROW_SIZE} AS bytes FROM events WHERE session_id = ? AND seq >= ? ORDER BY seq LIMIT ?`,
      ),
      // Each alone in its query: SQLite answers a lone MIN/MAX from the key, without a scan.
      head: this.db.prepare("SELECT MAX(seq) FROM events WHERE session_id = ?").pluck(),
      first: this.db.prepare("SELECT MIN(seq) FROM events WHERE session_id = ?").pluck(),
      trimmedEnd: this.db.prepare("SELECT out_end FROM output_ends WHERE session_id = ?").pluck(),
      // Prepared once: a restart after a crash asks it of every session that was running.
      logState: this.db.prepare(
        `SELECT COALESCE(MAX(seq), 0) AS head, COALESCE(MIN(seq), 0) AS first,
                COALESCE(MAX(out_end), 0) AS outputBytes, COALESCE(SUM(${ROW_SIZE}), 0) AS retainedBytes
         FROM events WHERE session_id = ?`,
      ),
    };
    this.files = new OutputFileIndex(outputDirOf(file), options.outputFileBytes ?? OUTPUT_FILE_BYTES);
    this.files.open(this.db, options.onOutputLost);
    this.writes = new GroupCommit(file, this.db.pragma("page_size", { simple: true }) as number, options);
  }

  /**
   * Queues an entry (`lingers`: see EventStore.enqueue); `replica`: cluster mode, its log published
   * it already (Redis holds it), so its commit may wait for company (see LOG_REPLICA_LINGER_MS).
   */
  enqueue(sessionId: string, entry: StoredEntry, options: { lingers?: boolean; replica?: boolean } = {}): void {
    const output = entry instanceof OutputEntry;
    const file = output && entry.bytes.length >= OUTPUT_FILE_MIN_ENTRY ? this.files.place(sessionId, entry) : undefined;
    this.writes.push(sessionId, entry.size, {
      mark: output && this.marks(sessionId, entry),
      kind: "entry",
      sessionId,
      seq: entry.seq,
      type: entry.type,
      outStart: entry.outStart ?? null,
      outEnd: entry.outEnd ?? null,
      json: output ? entry.meta() : entry.json,
      data: output ? entry.bytes : null,
      file: file?.start ?? null,
      syncFile: file?.sync ?? null,
      ...(entry.urgent === true ? { urgent: true } : {}),
      ...(options.lingers === true ? { lingers: true } : {}),
      ...(options.replica === true ? { replica: true } : {}),
    });
  }

  /** Whether output `entry` is marked (see {@link OUTPUT_MARK_EVENTS}). */
  private marks(sessionId: string, entry: OutputEntry): boolean {
    const last = this.lastMark.get(sessionId);
    if (last && entry.seq - last.seq < OUTPUT_MARK_EVENTS && entry.outStart - last.offset < OUTPUT_MARK_BYTES)
      return false;
    this.lastMark.set(sessionId, { seq: entry.seq, offset: entry.outStart });
    return true;
  }

  enqueueTrim(sessionId: string, first: number): void {
    this.writes.push(sessionId, 64, { kind: "trim", sessionId, first, unlink: this.files.trim(sessionId, first) });
  }

  enqueueSession(session: PersistedSession): void {
    this.writes.push(session.id, 256, {
      kind: "session",
      id: session.id,
      sessionKind: session.kind,
      state: session.state,
      createdAt: session.createdAt,
      meta: JSON.stringify(session.meta),
    });
  }

  /**
   * Commits everything queued and waits for it (used at shutdown and by tests). Returns the number
   * of writes that were queued; throws when they cannot be committed now (see {@link GroupCommit.flush}).
   */
  flush(): number {
    return this.writes.flush();
  }

  hurry(): void {
    this.writes.hurry();
  }

  onFlushed(listener: FlushListener): void {
    this.writes.onFlushed(listener);
  }

  /** Why commits fail, while they do (undefined when the last commit succeeded), or why writes are refused. */
  get writeFailure(): LogWriteFailure | undefined {
    // A refusal (the data directory is gone) is the cause of whatever else fails after it.
    return this.refusal ?? this.writes.writeFailure;
  }

  /**
   * Makes the store report `failure` (undefined: no more) as if its commits failed, so that new
   * work is refused, while they still succeed: the database file was deleted under the gateway,
   * say, and what goes into it is lost at the next stop.
   */
  refuseWrites(failure: LogWriteFailure | undefined): void {
    this.refusal = failure;
  }

  /** Events and records appended and not committed yet. */
  get unwrittenOps(): number {
    return this.writes.unwrittenOps;
  }

  readAfter(
    sessionId: string,
    since: number,
    limit: number,
    types?: ReadonlySet<string>,
    upTo = Number.MAX_SAFE_INTEGER,
    maxBytes = Number.MAX_SAFE_INTEGER,
  ): LogEntry[] {
    const out: LogEntry[] = [];
    const files = this.files.reader(sessionId);
    let bytes = 0;
    since = Math.max(since, this.files.firstReadable(sessionId) - 1);
    try {
      // Iterated, so a read bounded by bytes does not load every row up to `limit` first; with
      // `types`, SQLite passes over the other types itself and only matching rows reach JS.
      const rows = (
        types
          ? this.stmt.readAfterTypes.iterate(sessionId, since, upTo, JSON.stringify([...types]), limit)
          : this.stmt.readAfter.iterate(sessionId, since, upTo, limit)
      ) as IterableIterator<Row>;
      for (const row of rows) {
        const entry = toEntry(row, files);
        out.push(entry);
        bytes += entry.size;
        if (bytes >= maxBytes) break;
      }
      return out;
    } finally {
      files.close();
    }
  }

  readOutputFrom(sessionId: string, byteOffset: number, maxBytes: number): StoredEntry[] {
    const out: StoredEntry[] = [];
    const files = this.files.reader(sessionId);
    let covered = 0;
    // From the last mark at or before the offset (none: from the start), forward in seq order;
    // not before the last trim (its rows' files may be gone).
    const from = Math.max(
      (this.stmt.markBefore.get(sessionId, byteOffset) as number | undefined) ?? 0,
      this.files.firstReadable(sessionId),
    );
    try {
      // Iterated, so a reader far behind does not load the whole rest of the output at once.
      for (const r of this.stmt.readOutput.iterate(
        sessionId,
        from,
        byteOffset,
        OUTPUT_SCAN_MAX_ROWS,
      ) as IterableIterator<Row>) {
        const entry = toEntry(r, files);
        const outStart = r[4]!;
        const outEnd = r[5]!;
        out.push(entry instanceof OutputEntry ? entry : { ...entry, outStart, outEnd });
        covered += outEnd - Math.max(outStart, byteOffset);
        if (covered >= maxBytes) break;
      }
    } finally {
      files.close();
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

  /** The newest seq the store holds of a session (0: none), from the key alone. */
  headOf(sessionId: string): number {
    return (this.stmt.head.get(sessionId) as number | null) ?? 0;
  }

  loadLogState(sessionId: string, saved?: StoredLogState): StoredLogState {
    // Output bytes survive trimming: the offset counter is never reset. Where the output of trimmed
    // rows ended is noted by the trim (the gateway also looks at the session record, written only
    // when a session starts and ends: a crash leaves the one from its start).
    const trimmedEnd = (this.stmt.trimmedEnd.get(sessionId) as number | undefined) ?? 0;
    if (saved) {
      // Rows are never changed, only removed: a trim from the front (moves `first`), the loss of
      // the last ones in an OS crash (moves `head`). The same first and head are the same rows.
      const head = (this.stmt.head.get(sessionId) as number | null) ?? 0;
      const first = head === 0 ? 1 : (this.stmt.first.get(sessionId) as number);
      if (head === saved.head && first === saved.first) {
        return { ...saved, outputBytes: Math.max(saved.outputBytes, trimmedEnd) };
      }
    }
    // Reads every row of the session (the sum of their sizes): only for a log whose saved state
    // is missing or out of date (an older version's record, a crash while it appended).
    const row = this.stmt.logState.get(sessionId) as StoredLogState;
    return {
      ...row,
      first: row.head === 0 ? 1 : row.first,
      outputBytes: Math.max(row.outputBytes, trimmedEnd),
    };
  }

  /** Queues the removal of a session's rows, record and output files; resolves once it is committed. */
  deleteSession(sessionId: string): Promise<void> {
    this.lastMark.delete(sessionId);
    this.files.forget(sessionId);
    const op = { kind: "delete", sessionId } as const;
    // Waited for before it is pushed: a push that fills a batch commits it at once, here.
    const committed = this.writes.whenCommitted(op);
    this.writes.push(sessionId, 64, op);
    return committed;
  }

  /** Commits what is queued (see {@link GroupCommit.close}) and closes the file. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // The writing connections close first, so that this one is the last: closing it checkpoints
    // and removes the WAL synchronously, and nothing touches the files after close().
    this.writes.close();
    this.db.close();
  }
}

function toEntry(row: Row, files: OutputFileReader): LogEntry {
  const [seq, type, body, data, outStart, outEnd] = row;
  if (data === null) return { seq, type: type as EventType, json: body, size: jsonSize(body) };
  const inFile = data.length === 0 && outEnd! > outStart!;
  const bytes = inFile ? files.read(outStart!, outEnd!) : data;
  return OutputEntry.fromStored(seq, body, outStart!, bytes);
}

/**
 * Makes the log's files readable by the gateway's user only (mode 0600), whatever the umask and
 * the data dir's mode: they hold everything the sessions printed and were typed into. The
 * database is created that way (SQLite gives its -wal and -shm files the database's mode), and
 * files an older version left with a wider mode are narrowed.
 */
export function ownerOnly(file: string): void {
  if (file === ":memory:" || file === "") return;
  closeSync(openSync(file, "a", 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
}
