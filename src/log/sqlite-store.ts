import { closeSync, fstatSync, openSync, readFileSync, readSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Statement } from "better-sqlite3";
import type { EventType } from "../protocol/index.js";
import { GroupCommit } from "./group-commit.js";
import type { GroupCommitOptions } from "./group-commit.js";
import { OUTPUT_ENTRY_OVERHEAD, OutputEntry } from "./output-entry.js";
import {
  OUTPUT_FILE_BYTES,
  OUTPUT_FILE_MIN_ENTRY,
  SESSION_ID_FILE,
  fileName,
  listFiles,
  outputDirOf,
  sessionDirName,
} from "./output-files.mjs";
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

interface Row {
  seq: number;
  type: string;
  body: string;
  /**
   * Output rows: the bytes (older logs kept them as text in `body`: then null); empty when they
   * are in the session's output file (see output-files.mjs).
   */
  data: Buffer | null;
  out_start: number | null;
  out_end: number | null;
}

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
 * An output row is marked (its byte offset noted in `output_marks`) when this many events or
 * bytes of output came since the session's last mark: a read from a byte offset starts at the
 * mark before it and scans forward in seq order, so it visits at most about this many rows or
 * bytes before the first one it needs.
 *
 * The marks replace an index on every output row's end offset, which every commit had to
 * rewrite beside the table: 64 KiB pages make a small commit cost about a page write per b-tree
 * it touches, and the index doubled a keystroke's commit (measured: 95 → 50 µs per commit of one
 * small output row, `.bench-tmp/idxcost.mjs`). A mark touches the second b-tree once per
 * 256 rows or 1 MiB instead of once per commit.
 */
export const OUTPUT_MARK_EVENTS = 256;
export const OUTPUT_MARK_BYTES = 1024 * 1024;

/** A session's output files in use (see output-files.mjs). */
interface SessionFiles {
  /** Per file (its start offset), ascending, the last seq with bytes in it (Infinity: not known yet). */
  lastSeq: Map<number, number>;
  /** The file its latest output went to. */
  current: number | undefined;
}

/**
 * The embedded log: one SQLite file in WAL mode, and beside it a directory of output files that
 * hold big output's bytes (see output-files.mjs). This class is the file's schema and its reads;
 * its writes are queued and committed in groups by {@link GroupCommit} (a session log publishes
 * an event only once it is committed). Reads use their own connection on this thread and see
 * exactly what is published.
 */
export interface SqliteEventStoreOptions extends GroupCommitOptions {
  /**
   * Told when the log opens and finds that an OS crash cost a session's last output file bytes
   * its rows point at: those rows and the session's later ones are removed (the message says which).
   */
  onOutputLost?: (message: string) => void;
  /** A session's output moves on to a new output file once its current one holds this much. Default {@link OUTPUT_FILE_BYTES}. */
  outputFileBytes?: number;
}

export class SqliteEventStore implements EventStore {
  private readonly db: Database.Database;
  private readonly writes: GroupCommit;
  private closed = false;
  /** Per session, the last output row marked in this run (see {@link OUTPUT_MARK_EVENTS}). */
  private readonly lastMark = new Map<string, { seq: number; offset: number }>();
  private readonly outputDir: string;
  private readonly outputFileBytes: number;
  /** Per session with output files, what they hold. */
  private readonly files = new Map<string, SessionFiles>();
  /**
   * Per session, the first seq kept by the last trim queued: rows before it are not read any
   * more (their output files are removed once the trim is committed).
   */
  private readonly trimmedBefore = new Map<string, number>();
  private readonly stmt: {
    readAfter: Statement<[string, number, number, number]>;
    markBefore: Statement<[string, number]>;
    readOutput: Statement<[string, number, number, number]>;
    oldest: Statement<[string, number, number]>;
  };

  constructor(file: string, options: SqliteEventStoreOptions = {}) {
    this.db = new Database(file);
    // Events are ~100 B to 64 KiB; with the default 4 KiB pages most rows overflow and a
    // WITHOUT ROWID insert costs several page writes. 64 KiB pages measured 5-6x faster
    // appends and 2x faster catch-up reads (bench/log.ts). Only takes effect on a new file.
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
      readAfter: this.db.prepare(
        "SELECT seq, type, body, data, out_start, out_end FROM events WHERE session_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
      ),
      markBefore: this.db
        .prepare("SELECT seq FROM output_marks WHERE session_id = ? AND out_start <= ? ORDER BY out_start DESC LIMIT 1")
        .pluck(),
      readOutput: this.db.prepare(
        "SELECT seq, type, body, data, out_start, out_end FROM events WHERE session_id = ? AND seq >= ? AND out_end > ? ORDER BY seq LIMIT ?",
      ),
      oldest: this.db.prepare(
        `SELECT seq, ${ROW_SIZE} AS bytes FROM events WHERE session_id = ? AND seq >= ? ORDER BY seq LIMIT ?`,
      ),
    };
    this.outputDir = outputDirOf(file);
    this.outputFileBytes = options.outputFileBytes ?? OUTPUT_FILE_BYTES;
    this.openOutputFiles(options.onOutputLost);
    this.writes = new GroupCommit(file, this.db.pragma("page_size", { simple: true }) as number, options);
  }

  enqueue(sessionId: string, entry: StoredEntry): void {
    const output = entry instanceof OutputEntry;
    const file = output && entry.bytes.length >= OUTPUT_FILE_MIN_ENTRY ? this.intoFile(sessionId, entry) : undefined;
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
    });
  }

  /**
   * Chooses the output file `entry`'s bytes go to: the session's current one, or a new one
   * starting at the entry once the current one holds {@link SqliteEventStoreOptions.outputFileBytes}.
   * `sync`: the previous file when it is a new one (synced first: see output-files.mjs).
   */
  private intoFile(sessionId: string, entry: OutputEntry): { start: number; sync: number | null } {
    let files = this.files.get(sessionId);
    if (!files) this.files.set(sessionId, (files = { lastSeq: new Map(), current: undefined }));
    const previous = files.current;
    if (previous !== undefined && entry.outStart < previous) {
      throw new Error(
        `output at byte ${entry.outStart} of session ${sessionId} comes before its output file at ${previous}`,
      );
    }
    if (previous !== undefined && entry.outStart - previous < this.outputFileBytes) {
      files.lastSeq.set(previous, entry.seq);
      return { start: previous, sync: null };
    }
    // What earlier files hold comes before this entry, whatever was not known of them.
    for (const [from, last] of files.lastSeq) if (last === Infinity) files.lastSeq.set(from, entry.seq - 1);
    files.lastSeq.set(entry.outStart, entry.seq);
    files.current = entry.outStart;
    return { start: entry.outStart, sync: previous ?? null };
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
    this.trimmedBefore.set(sessionId, first);
    // Files holding only trimmed rows go once the trim is committed; the current one stays (more output goes there).
    const unlink: number[] = [];
    const files = this.files.get(sessionId);
    if (files) {
      for (const [start, last] of files.lastSeq) {
        if (last >= first || start === files.current) continue;
        unlink.push(start);
        files.lastSeq.delete(start);
      }
    }
    this.writes.push(sessionId, 64, { kind: "trim", sessionId, first, unlink });
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

  onFlushed(listener: FlushListener): void {
    this.writes.onFlushed(listener);
  }

  /** Why commits fail, while they do (undefined when the last commit succeeded). */
  get writeFailure(): LogWriteFailure | undefined {
    return this.writes.writeFailure;
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
    const files = this.reader(sessionId);
    let bytes = 0;
    since = Math.max(since, (this.trimmedBefore.get(sessionId) ?? 0) - 1);
    try {
      if (!types) {
        // Iterated, so a read bounded by bytes does not load every row up to `limit` first.
        for (const row of this.stmt.readAfter.iterate(sessionId, since, upTo, limit) as IterableIterator<Row>) {
          const entry = toEntry(row, files);
          out.push(entry);
          bytes += entry.size;
          if (bytes >= maxBytes) break;
        }
        return out;
      }
      // Filtered reads page through the range so a sparse type cannot make one query scan everything twice.
      let cursor = since;
      const page = Math.max(256, limit);
      while (out.length < limit && bytes < maxBytes) {
        const rows = this.stmt.readAfter.all(sessionId, cursor, upTo, page) as Row[];
        for (const row of rows) {
          if (types.has(row.type)) {
            const entry = toEntry(row, files);
            out.push(entry);
            bytes += entry.size;
            if (out.length === limit || bytes >= maxBytes) break;
          }
        }
        if (rows.length < page) break;
        cursor = rows[rows.length - 1]!.seq;
      }
      return out;
    } finally {
      files.close();
    }
  }

  readOutputFrom(sessionId: string, byteOffset: number, maxBytes: number): StoredEntry[] {
    const out: StoredEntry[] = [];
    const files = this.reader(sessionId);
    let covered = 0;
    // From the last mark at or before the offset (none: from the start), forward in seq order;
    // not before the last trim (its rows' files may be gone).
    const from = Math.max(
      (this.stmt.markBefore.get(sessionId, byteOffset) as number | undefined) ?? 0,
      this.trimmedBefore.get(sessionId) ?? 0,
    );
    try {
      // Iterated, so a reader far behind does not load the whole rest of the output at once.
      for (const r of this.stmt.readOutput.iterate(
        sessionId,
        from,
        byteOffset,
        OUTPUT_SCAN_MAX_ROWS,
      ) as IterableIterator<Row & { out_start: number; out_end: number }>) {
        const entry = toEntry(r, files);
        out.push(entry instanceof OutputEntry ? entry : { ...entry, outStart: r.out_start, outEnd: r.out_end });
        covered += r.out_end - Math.max(r.out_start, byteOffset);
        if (covered >= maxBytes) break;
      }
    } finally {
      files.close();
    }
    return out;
  }

  private reader(sessionId: string): OutputFileReader {
    return new OutputFileReader(this.outputDir, sessionId, [...(this.files.get(sessionId)?.lastSeq.keys() ?? [])]);
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
    this.lastMark.delete(sessionId);
    this.files.delete(sessionId);
    this.trimmedBefore.delete(sessionId);
    this.writes.push(sessionId, 64, { kind: "delete", sessionId });
  }

  /**
   * Finds the output files when the log opens: directories of sessions the log no longer has
   * rows of (a purge interrupted between its commit and the removal) are removed; for the rest,
   * what each file holds (so a trim can remove it), and the last file of each session is checked
   * against its rows — the only one that can miss bytes its rows point at, after an OS crash (see
   * output-files.mjs): those rows and every later one of the session are removed, as SQLite itself
   * loses its last commits then.
   */
  private openOutputFiles(onLost: ((message: string) => void) | undefined): void {
    let names: string[];
    try {
      names = readdirSync(this.outputDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    const hasRows = this.db.prepare("SELECT 1 FROM events WHERE session_id = ? LIMIT 1").pluck();
    const lastOutputEnd = this.db
      .prepare("SELECT out_end FROM events WHERE session_id = ? AND out_end IS NOT NULL ORDER BY seq DESC LIMIT 1")
      .pluck();
    const markAfter = this.db
      .prepare("SELECT seq FROM output_marks WHERE session_id = ? AND out_start >= ? ORDER BY out_start LIMIT 1")
      .pluck();
    for (const name of names) {
      const dir = join(this.outputDir, name);
      let sessionId: string | undefined;
      try {
        sessionId = readFileSync(join(dir, SESSION_ID_FILE), "utf8");
      } catch {
        sessionId = undefined;
      }
      if (sessionId === undefined || sessionDirName(sessionId) !== name || !hasRows.get(sessionId)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      // Files from where the committed output ends hold nothing a row points at (written by a
      // commit that never happened, or lost): the next output is written from that point.
      const unused = (starts: number[]): number[] => {
        const end = (lastOutputEnd.get(sessionId) as number | undefined) ?? 0;
        for (const start of starts) if (start >= end) unlinkSync(join(dir, fileName(start)));
        return starts.filter((start) => start < end);
      };
      let starts = unused(listFiles(dir));
      if (starts.length > 0 && this.checkLastFile(sessionId, dir, starts[starts.length - 1]!, onLost))
        starts = unused(starts);
      if (starts.length === 0) continue;
      const current = starts[starts.length - 1]!;
      // A file holds the rows from its start to the next file's: those before the first mark at or after that.
      const lastSeq = new Map<number, number>();
      starts.forEach((start, i) => {
        const next =
          i + 1 < starts.length ? (markAfter.get(sessionId, starts[i + 1]) as number | undefined) : undefined;
        lastSeq.set(start, next === undefined ? Infinity : next - 1);
      });
      this.files.set(sessionId, { lastSeq, current });
    }
  }

  /**
   * Removes the rows of `sessionId` from the first whose bytes its last output file (`last`) does
   * not hold; true when there was one.
   */
  private checkLastFile(
    sessionId: string,
    dir: string,
    last: number,
    onLost: ((message: string) => void) | undefined,
  ): boolean {
    const path = join(dir, fileName(last));
    const fd = openSync(path, "r");
    let size: number;
    try {
      size = fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
    const from = (this.stmt.markBefore.get(sessionId, last) as number | undefined) ?? 0;
    let lost: { seq: number; offset: number } | undefined;
    const rows = this.db
      .prepare(
        "SELECT seq, out_start, out_end, length(data) AS n FROM events WHERE session_id = ? AND seq >= ? AND data IS NOT NULL ORDER BY seq",
      )
      .iterate(sessionId, from) as IterableIterator<{ seq: number; out_start: number; out_end: number; n: number }>;
    for (const r of rows) {
      // In SQLite, or in an earlier file (synced before this one was written).
      if (r.n !== 0 || r.out_end <= r.out_start || r.out_start < last) continue;
      if (r.out_end - last <= size) continue;
      lost = { seq: r.seq, offset: r.out_start };
      break;
    }
    if (!lost) return false;
    this.db
      .transaction(() => {
        this.db.prepare("DELETE FROM events WHERE session_id = ? AND seq >= ?").run(sessionId, lost.seq);
        this.db.prepare("DELETE FROM output_marks WHERE session_id = ? AND seq >= ?").run(sessionId, lost.seq);
      })
      .immediate();
    onLost?.(
      `session ${sessionId}: its output from byte ${lost.offset} on is not in ${path} (${size} bytes), lost in a system crash; its events from seq ${lost.seq} on are removed`,
    );
    return true;
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
  if (row.data === null) return { seq: row.seq, type: row.type as EventType, json: row.body, size: row.body.length };
  const inFile = row.data.length === 0 && row.out_end! > row.out_start!;
  const bytes = inFile ? files.read(row.out_start!, row.out_end!) : row.data;
  return OutputEntry.fromStored(row.seq, row.body, row.out_start!, bytes);
}

/** Reads one session's output from its files, keeping each file it opened open until {@link close}. */
class OutputFileReader {
  private readonly dir: string;
  private readonly fds = new Map<number, number>();

  /** `starts`: the session's files, ascending. */
  constructor(
    outputDir: string,
    sessionId: string,
    private readonly starts: readonly number[],
  ) {
    this.dir = join(outputDir, sessionDirName(sessionId));
  }

  /** The bytes of output range [from, to), all of them (a file that ends before is an error). */
  read(from: number, to: number): Buffer {
    // The file with the greatest start at or before `from` (a session has a few dozen at most).
    let start: number | undefined;
    for (const s of this.starts) if (s <= from) start = s;
    if (start === undefined) throw new Error(`no output file of ${this.dir} holds byte ${from}`);
    let fd = this.fds.get(start);
    if (fd === undefined) this.fds.set(start, (fd = openSync(join(this.dir, fileName(start)), "r")));
    const bytes = Buffer.allocUnsafe(to - from);
    for (let done = 0; done < bytes.length;) {
      const n = readSync(fd, bytes, done, bytes.length - done, from - start + done);
      if (n === 0) {
        throw new Error(
          `the output file ${join(this.dir, fileName(start))} ends at ${from - start + done} bytes, before byte ${to} of the session's output it should hold`,
        );
      }
      done += n;
    }
    return bytes;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
