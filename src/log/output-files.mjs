// Where the log keeps big output: append-only files beside the SQLite file, one directory per
// session, a new file after about OUTPUT_FILE_BYTES of the session's output. SQLite in WAL mode
// writes every byte twice (into the WAL, then into the database at a checkpoint) and rewrites a
// page per commit: measured on a 50 MiB PTY flood with the 64 KiB pages of then, 320 MB written
// to disk and 5-7 ms of the writer thread's CPU per MB; with the bytes in files, 85 MB and about 2 ms.
//
// The row of such an entry stays in SQLite (seq, offsets, stream, time) with an empty `data`: the
// bytes of output range [out_start, out_end) are in the session's file with the greatest start
// offset (its name) at or before out_start, at position out_start - that start. Small output (a
// keystroke's echo) stays in SQLite: its commit is made on the event loop, where a file would add
// system calls to it.
//
// Ordering that keeps a crash from losing what a row points at:
// - the bytes are written (pwrite, at their position: a retried batch writes the same bytes at
//   the same place) before the transaction that adds their rows commits;
// - a file is synced when the session's output moves on to the next file, before anything is
//   written there, and a new directory or file is made durable (its parent synced) before any row
//   can point at it: after an OS crash, only the last file of a session can miss bytes its rows
//   point at, and the store checks that file when it opens (SqliteEventStore);
// - files are removed only after the commit that stops pointing at them (a trim, a purge).
//
// Plain JavaScript for the same reason as sqlite-commit.mjs: the writer thread loads it.
import { createHash } from "node:crypto";
import {
  closeSync,
  constants,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";

/** A session's output moves on to a new file once its current one holds this much. */
export const OUTPUT_FILE_BYTES = 16 * 1024 * 1024;

/** An output entry at least this big is kept in a file; smaller ones stay in SQLite. */
export const OUTPUT_FILE_MIN_ENTRY = 8 * 1024;

/** The file in a session's directory that holds the session's id. */
export const SESSION_ID_FILE = "session";

/** The directory of output files that belongs to the SQLite file `dbFile`. */
export function outputDirOf(dbFile) {
  return `${dbFile}-output`;
}

/** A session's directory name: any id (tests use any string) maps to a safe, fixed-length name. */
export function sessionDirName(sessionId) {
  return createHash("sha256").update(sessionId).digest("hex").slice(0, 32);
}

/** A file's name: its start offset, zero-padded so names sort as offsets do. */
export function fileName(start) {
  return `${String(start).padStart(16, "0")}.out`;
}

/** The start offsets of a session directory's files, ascending (none when it does not exist). */
export function listFiles(sessionDir) {
  let names;
  try {
    names = readdirSync(sessionDir);
  } catch (error) {
    if (error?.code === "ENOENT") return [];
    throw error;
  }
  return names
    .filter((name) => /^\d{16}\.out$/.test(name))
    .map((name) => Number(name.slice(0, 16)))
    .sort((a, b) => a - b);
}

/** The session id a session directory's id file holds; undefined when it cannot be read. */
export function readId(idFile) {
  try {
    return readFileSync(idFile, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * Writes a session directory's id file whole or not at all: beside it, synced, then renamed into
 * place (an empty one, left by a write a full disk refused, made the store remove the directory —
 * all of the session's output files — when it next opened). The caller syncs the directory.
 */
export function writeId(sessionDir, sessionId) {
  const idFile = join(sessionDir, SESSION_ID_FILE);
  const temp = `${idFile}.tmp`;
  const fd = openSync(temp, "w", 0o600);
  try {
    writeSync(fd, sessionId);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, idFile);
}

/**
 * Writes output files for one connection. `keepOpen`: keep a session's current file open from
 * one batch to the next (the writer thread, which writes floods); otherwise every file is closed
 * after its batch (the event loop, which writes one now and then).
 */
export class OutputFileWriter {
  constructor(dir, { keepOpen }) {
    this.dir = dir;
    this.keepOpen = keepOpen;
    /** Open files by path, with the batch that last used them. */
    this.open = new Map();
    this.batch = 0;
    /** Session directories this writer made sure hold their session's id (see {@link makeSessionDir}). */
    this.named = new Set();
  }

  /**
   * Writes `bytes` of `sessionId`'s output starting at `offset` into its file starting at
   * `start`. `syncFile`: the start of the session's previous file, synced first (it is complete).
   */
  write(sessionId, start, offset, bytes, syncFile) {
    const sessionDir = join(this.dir, sessionDirName(sessionId));
    if (syncFile !== undefined && syncFile !== null) this.sync(join(sessionDir, fileName(syncFile)));
    const fd = this.fd(sessionId, sessionDir, join(sessionDir, fileName(start)));
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, offset - start + done);
  }

  /** Ends a batch: files not used in it are closed (all of them, unless `keepOpen`). */
  endBatch() {
    for (const [path, entry] of this.open) {
      if (this.keepOpen && entry.batch === this.batch) continue;
      closeSync(entry.fd);
      this.open.delete(path);
    }
    this.batch++;
  }

  /** Removes files (after the commit that trimmed their rows); missing ones are fine. */
  unlink(sessionId, starts) {
    const sessionDir = join(this.dir, sessionDirName(sessionId));
    for (const start of starts) {
      const path = join(sessionDir, fileName(start));
      this.forget(path);
      try {
        unlinkSync(path);
      } catch (error) {
        if (error?.code !== "ENOENT") throw error;
      }
    }
  }

  /** Removes a session's directory (after the commit that purged its rows). */
  removeSession(sessionId) {
    const sessionDir = join(this.dir, sessionDirName(sessionId));
    for (const path of [...this.open.keys()]) if (path.startsWith(`${sessionDir}/`)) this.forget(path);
    this.named.delete(sessionDir);
    rmSync(sessionDir, { recursive: true, force: true });
  }

  close() {
    for (const path of [...this.open.keys()]) this.forget(path);
  }

  fd(sessionId, sessionDir, path) {
    const cached = this.open.get(path);
    if (cached) {
      cached.batch = this.batch;
      return cached.fd;
    }
    // Checked once per directory, not only when the directory is new: a commit that failed (a
    // full disk) after making the directory and before its id file was written is retried with
    // the directory already there.
    if (!this.named.has(sessionDir)) {
      this.makeSessionDir(sessionDir, sessionId);
      this.named.add(sessionDir);
    }
    let fd = this.create(path);
    if (fd === undefined) {
      this.makeSessionDir(sessionDir, sessionId);
      fd = this.create(path);
    }
    if (fd === undefined) throw new Error(`cannot create ${path}: its directory vanished`);
    this.open.set(path, { fd, batch: this.batch });
    return fd;
  }

  /**
   * A session's first file: its directory first, with the session's id in it (the store finds
   * a directory's session by it when it opens), made durable before a row can point into it.
   * The id file is written beside and renamed into place, so it is there whole or not at all: an
   * empty one, left by a write the full disk refused, made the store remove the directory — all
   * of the session's output files — when it next opened.
   */
  makeSessionDir(sessionDir, sessionId) {
    const created = mkdirSync(sessionDir, { recursive: true, mode: 0o700 });
    const idFile = join(sessionDir, SESSION_ID_FILE);
    if (created === undefined && readId(idFile) === sessionId) return;
    writeId(sessionDir, sessionId);
    this.syncDir(sessionDir);
    this.syncDir(this.dir);
    // The output directory itself is new too: its entry in the data directory.
    if (created === this.dir) this.syncDir(dirname(this.dir));
  }

  /** Opens `path` for writing, creating it (and syncing its directory) if new; undefined when its directory is missing. */
  create(path) {
    let fd;
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (error) {
      if (error?.code === "EEXIST") return openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
      if (error?.code === "ENOENT") return undefined;
      throw error;
    }
    try {
      // A new file: its directory entry is made durable before a row can point at it.
      this.syncDir(join(path, ".."));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return fd;
  }

  sync(path) {
    const cached = this.open.get(path);
    if (cached) {
      fsyncSync(cached.fd);
      return;
    }
    let fd;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      // Trimmed already, or never written (its entries stayed in SQLite): nothing to sync.
      if (error?.code === "ENOENT") return;
      throw error;
    }
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  syncDir(dir) {
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  forget(path) {
    const entry = this.open.get(path);
    if (!entry) return;
    this.open.delete(path);
    closeSync(entry.fd);
  }
}
