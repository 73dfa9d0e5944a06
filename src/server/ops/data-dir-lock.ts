import { accessSync, constants, mkdirSync, statSync, statfsSync } from "node:fs";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { InternalError } from "../../protocol/errors.js";

/** The file in the data directory whose lock says a gateway is using it. */
export const DATA_DIR_LOCK_FILE = "gateway.lock";

/**
 * Creates the data directory if needed and checks that the gateway can write there, or throws
 * an error that names the directory, why, and what to do, instead of SQLite's "unable to open
 * database file" (a read-only directory) or "ENOENT: no such file or directory, mkdir" (one
 * that cannot be created on a read-only file system).
 */
export function prepareDataDir(dataDir: string): { created: boolean } {
  try {
    // Only the process whose mkdir made it hears so (a racing one finds it there).
    const created = mkdirSync(dataDir, { recursive: true, mode: 0o700 }) !== undefined;
    accessSync(dataDir, constants.W_OK);
    return { created };
  } catch (error) {
    throw new InternalError(
      `the data directory ${dataDir} cannot be used: ${whyNotWritable(dataDir, error as NodeJS.ErrnoException)}; the gateway keeps its log, token and lock there: make it writable or give another --data-dir`,
      { cause: error },
    );
  }
}

/** What a file system out of space or quota fails with, in Node and in SQLite. */
const FULL_CODES: ReadonlySet<string> = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);

/**
 * The error a start that failed for lack of space in the data directory ends with, naming the
 * directory and what to do (undefined for any other failure), instead of SQLite's bare
 * "database or disk is full", or "ENOSPC: no space left on device, write" for the token file.
 */
export function dataDirFullError(dataDir: string, error: unknown): Error | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return undefined;
  // SQLite opening an existing database on a full disk fails to grow its shared-memory index,
  // SQLITE_IOERR_SHMSIZE ("disk I/O error"): an I/O error is taken for a full disk when it is one.
  const full = FULL_CODES.has(code) || (code.startsWith("SQLITE_IOERR") && freeBytes(dataDir) < FULL_BELOW_BYTES);
  if (!full) return undefined;
  return new InternalError(
    `the data directory ${dataDir} is full (${code}: ${(error as Error).message}): the gateway keeps its log and token there; free some space there or give another --data-dir`,
    { cause: error },
  );
}

/** Less free space than this, and a write error is put down to a full disk. */
const FULL_BELOW_BYTES = 1024 * 1024;

/** Bytes free for an unprivileged writer on the file system of `dir` (Infinity when unknown). */
function freeBytes(dir: string): number {
  try {
    const stats = statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** The reason, also when mkdir hides it (a recursive mkdir on a read-only file system says ENOENT). */
function whyNotWritable(dataDir: string, error: NodeJS.ErrnoException): string {
  // Was "EEXIST: EEXIST: file already exists, mkdir '…'".
  if (error.code === "EEXIST") return `${dataDir} exists and is not a directory`;
  let dir = dataDir;
  for (;;) {
    try {
      accessSync(dir, constants.W_OK);
      break;
    } catch (inner) {
      const code = (inner as NodeJS.ErrnoException).code;
      if (code === "EROFS") return `${dir} is on a read-only file system`;
      if (code === "EACCES") return `${dir} is not writable for this user`;
      // ENOENT, ENOTDIR: it does not exist (as a directory); look at what would contain it.
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return error.code === undefined || error.message.startsWith(error.code)
    ? error.message
    : `${error.code}: ${error.message}`;
}

/** Held for as long as a gateway uses its data directory. */
export interface DataDirLock {
  /**
   * Whether the lock file is still the one this gateway holds: false once the data directory was
   * removed or replaced under it (its log then goes to deleted files, and another gateway could
   * claim the path).
   */
  inPlace(): boolean;
  release(): void;
}

/**
 * Claims the data directory, or throws when another gateway holds it (the second would mark the
 * first's sessions `lost` and reuse its seqs). The lock is SQLite's exclusive locking mode on a
 * file of its own: POSIX locks, dropped by the kernel however the process dies (no stale lock),
 * and enforced by SQLite between two connections of one process too.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const file = join(dataDir, DATA_DIR_LOCK_FILE);
  const db = new Database(file, { timeout: 0 });
  try {
    db.pragma("locking_mode = EXCLUSIVE");
    // Nothing is ever written: no journal file next to the lock.
    db.pragma("journal_mode = MEMORY");
    db.exec("BEGIN EXCLUSIVE");
  } catch (error) {
    db.close();
    if ((error as { code?: unknown }).code !== "SQLITE_BUSY") throw error;
    throw new InternalError(
      `another gateway is using the data directory ${dataDir} (it holds ${file}): stop it, or give this one another --data-dir`,
      { cause: error },
    );
  }
  const held = statSync(file);
  let released = false;
  return {
    inPlace() {
      try {
        const now = statSync(file);
        return now.ino === held.ino && now.dev === held.dev;
      } catch {
        return false;
      }
    },
    release() {
      if (released) return;
      released = true;
      db.close();
    },
  };
}
