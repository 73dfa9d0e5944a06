import { closeSync, fstatSync, openSync, readSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type Database from "better-sqlite3";
import type { Statement } from "better-sqlite3";
import type { OutputEntry } from "./output-entry.js";
import { SESSION_ID_FILE, fileName, listFiles, readId, sessionDirName, writeId } from "./output-files.mjs";
import { InternalError } from "../protocol/errors.js";

/** A session's output files in use (see output-files.mjs). */
interface SessionFiles {
  /** Per file (its start offset), ascending, the last seq with bytes in it (Infinity: not known yet). */
  lastSeq: Map<number, number>;
  /** The file its latest output went to. */
  current: number | undefined;
}

/**
 * What the event loop knows of the log's output files (see output-files.mjs): which file an
 * entry's bytes go to, which files a trim frees, what a read opens, and whether the files agree
 * with the rows when the log opens.
 */
export class OutputFileIndex {
  /** Per session with output files, what they hold. */
  private readonly files = new Map<string, SessionFiles>();
  /**
   * Per session, the first seq kept by the last trim queued: rows before it are not read any
   * more (their output files are removed once the trim is committed).
   */
  private readonly trimmedBefore = new Map<string, number>();

  /** `dir`: the output directory; `fileBytes`: how much output a file takes before the next one starts. */
  constructor(
    private readonly dir: string,
    private readonly fileBytes: number,
  ) {}

  /**
   * Chooses the output file `entry`'s bytes go to: the session's current one, or a new one
   * starting at the entry once the current one holds `fileBytes`.
   * `sync`: the previous file when it is a new one (synced first: see output-files.mjs).
   */
  place(sessionId: string, entry: OutputEntry): { start: number; sync: number | null } {
    let files = this.files.get(sessionId);
    if (!files) this.files.set(sessionId, (files = { lastSeq: new Map(), current: undefined }));
    const previous = files.current;
    if (previous !== undefined && entry.outStart < previous) {
      throw new InternalError(
        `output at byte ${entry.outStart} of session ${sessionId} comes before its output file at ${previous}`,
      );
    }
    if (previous !== undefined && entry.outStart - previous < this.fileBytes) {
      files.lastSeq.set(previous, entry.seq);
      return { start: previous, sync: null };
    }
    // What earlier files hold comes before this entry, whatever was not known of them.
    for (const [from, last] of files.lastSeq) if (last === Infinity) files.lastSeq.set(from, entry.seq - 1);
    files.lastSeq.set(entry.outStart, entry.seq);
    files.current = entry.outStart;
    return { start: entry.outStart, sync: previous ?? null };
  }

  /**
   * Notes a trim to `first` and returns the files it frees: those holding only earlier rows (removed
   * once the trim is committed); never the current one (more output goes there).
   */
  trim(sessionId: string, first: number): number[] {
    this.trimmedBefore.set(sessionId, first);
    const unlink: number[] = [];
    const files = this.files.get(sessionId);
    if (!files) return unlink;
    for (const [start, last] of files.lastSeq) {
      if (last >= first || start === files.current) continue;
      unlink.push(start);
      files.lastSeq.delete(start);
    }
    return unlink;
  }

  /** The first seq whose bytes may be read (rows before it are trimmed or about to be). */
  firstReadable(sessionId: string): number {
    return this.trimmedBefore.get(sessionId) ?? 0;
  }

  /** A reader of `sessionId`'s output files, to close after the read. */
  reader(sessionId: string): OutputFileReader {
    return new OutputFileReader(this.dir, sessionId, [...(this.files.get(sessionId)?.lastSeq.keys() ?? [])]);
  }

  /** The session was removed (its directory goes with the purge's commit). */
  forget(sessionId: string): void {
    this.files.delete(sessionId);
    this.trimmedBefore.delete(sessionId);
  }

  /**
   * Finds the output files when the log opens: directories of sessions the log no longer has
   * rows of (a purge interrupted between its commit and the removal) are removed; for the rest,
   * what each file holds (so a trim can remove it), and the last file of each session is checked
   * against its rows — the only one that can miss bytes its rows point at, after an OS crash (see
   * output-files.mjs): those rows and every later one of the session are removed, as SQLite itself
   * loses its last commits then.
   */
  open(db: Database.Database, onLost: ((message: string) => void) | undefined): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    const hasRows = db.prepare("SELECT 1 FROM events WHERE session_id = ? LIMIT 1").pluck();
    const lastOutputEnd = db
      .prepare("SELECT out_end FROM events WHERE session_id = ? AND out_end IS NOT NULL ORDER BY seq DESC LIMIT 1")
      .pluck();
    const firstOutputStart = db
      .prepare("SELECT out_start FROM events WHERE session_id = ? AND out_end IS NOT NULL ORDER BY seq LIMIT 1")
      .pluck();
    const markAfter = db
      .prepare("SELECT seq FROM output_marks WHERE session_id = ? AND out_start >= ? ORDER BY out_start LIMIT 1")
      .pluck();
    const check: LastFileCheck = {
      db,
      markBefore: db
        .prepare("SELECT seq FROM output_marks WHERE session_id = ? AND out_start <= ? ORDER BY out_start DESC LIMIT 1")
        .pluck(),
      outputRows: db.prepare(
        "SELECT seq, out_start, out_end, length(data) AS n FROM events WHERE session_id = ? AND seq >= ? AND data IS NOT NULL ORDER BY seq",
      ),
      onLost,
    };
    // Directories by name of the sessions on record, for one whose id file is missing or damaged
    // (a version before the id file was renamed into place could leave it empty on a full disk):
    // built only when one is found.
    let known: Map<string, string> | undefined;
    const recordedSession = (name: string): string | undefined => {
      known ??= new Map(
        (db.prepare("SELECT id FROM sessions").pluck().all() as string[]).map((id) => [sessionDirName(id), id]),
      );
      return known.get(name);
    };
    for (const name of names) {
      const dir = join(this.dir, name);
      let sessionId = readId(join(dir, SESSION_ID_FILE));
      if (sessionId === undefined || sessionDirName(sessionId) !== name) {
        sessionId = recordedSession(name);
        // Repaired, so that the next start finds it without the sessions' records.
        if (sessionId !== undefined && hasRows.get(sessionId)) {
          try {
            writeId(dir, sessionId);
          } catch {
            // Best effort: found by its record again next time.
          }
        }
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
      if (starts.length > 0 && checkLastFile(check, sessionId, dir, starts[starts.length - 1]!))
        starts = unused(starts);
      // Files wholly before the oldest output kept: a trim committed, and the gateway stopped
      // (a crash) before it removed them. Nothing would remove them later for a session that
      // appends no more. Offsets grow with seq, so the first output row kept has the lowest.
      const keptFrom = firstOutputStart.get(sessionId) as number | undefined;
      if (keptFrom !== undefined) {
        starts = starts.filter((start, i) => {
          const next = starts[i + 1];
          if (next === undefined || next > keptFrom) return true;
          unlinkSync(join(dir, fileName(start)));
          return false;
        });
      }
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
}

/** What {@link checkLastFile} needs, prepared once for all the sessions when the log opens. */
interface LastFileCheck {
  db: Database.Database;
  markBefore: Statement<[string, number]>;
  outputRows: Statement<[string, number]>;
  onLost: ((message: string) => void) | undefined;
}

/**
 * Removes the rows of `sessionId` from the first whose bytes its last output file (`last`) does
 * not hold; true when there was one.
 */
function checkLastFile(check: LastFileCheck, sessionId: string, dir: string, last: number): boolean {
  const path = join(dir, fileName(last));
  const fd = openSync(path, "r");
  let size: number;
  try {
    size = fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
  const from = (check.markBefore.get(sessionId, last) as number | undefined) ?? 0;
  let lost: { seq: number; offset: number } | undefined;
  const rows = check.outputRows.iterate(sessionId, from) as IterableIterator<{
    seq: number;
    out_start: number;
    out_end: number;
    n: number;
  }>;
  for (const r of rows) {
    // In SQLite, or in an earlier file (synced before this one was written).
    if (r.n !== 0 || r.out_end <= r.out_start || r.out_start < last) continue;
    if (r.out_end - last <= size) continue;
    lost = { seq: r.seq, offset: r.out_start };
    break;
  }
  if (!lost) return false;
  const { db } = check;
  db.transaction(() => {
    db.prepare("DELETE FROM events WHERE session_id = ? AND seq >= ?").run(sessionId, lost.seq);
    db.prepare("DELETE FROM output_marks WHERE session_id = ? AND seq >= ?").run(sessionId, lost.seq);
  }).immediate();
  check.onLost?.(
    `session ${sessionId}: its output from byte ${lost.offset} on is not in ${path} (${size} bytes), lost in a system crash; its events from seq ${lost.seq} on are removed`,
  );
  return true;
}

/** Reads one session's output from its files, keeping each file it opened open until {@link close}. */
export class OutputFileReader {
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
    if (start === undefined) throw new InternalError(`no output file of ${this.dir} holds byte ${from}`);
    let fd = this.fds.get(start);
    if (fd === undefined) this.fds.set(start, (fd = openSync(join(this.dir, fileName(start)), "r")));
    const bytes = Buffer.allocUnsafe(to - from);
    for (let done = 0; done < bytes.length;) {
      const n = readSync(fd, bytes, done, bytes.length - done, from - start + done);
      if (n === 0) {
        throw new InternalError(
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
