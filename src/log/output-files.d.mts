/** A session's output moves on to a new file once its current one holds this much (the default). */
export const OUTPUT_FILE_BYTES: number;
/** An output entry at least this big is kept in a file; smaller ones stay in SQLite. */
export const OUTPUT_FILE_MIN_ENTRY: number;
/** The file in a session's directory that holds the session's id. */
export const SESSION_ID_FILE: string;
/** The directory of output files that belongs to the SQLite file `dbFile`. */
export function outputDirOf(dbFile: string): string;
/** A session's directory name: any id maps to a safe, fixed-length name. */
export function sessionDirName(sessionId: string): string;
/** A file's name: its start offset, zero-padded so names sort as offsets do. */
export function fileName(start: number): string;
/** The session id a session directory's id file holds; undefined when it cannot be read. */
export function readId(idFile: string): string | undefined;
/** Writes a session directory's id file whole or not at all (beside, synced, renamed into place); the caller syncs the directory. */
export function writeId(sessionDir: string, sessionId: string): void;
/** The start offsets of a session directory's files, ascending (none when it does not exist). */
export function listFiles(sessionDir: string): number[];

/** Writes output files for one connection (see output-files.mjs). */
export class OutputFileWriter {
  constructor(dir: string, options: { keepOpen: boolean });
  write(sessionId: string, start: number, offset: number, bytes: Uint8Array, syncFile?: number | null): void;
  endBatch(): void;
  unlink(sessionId: string, starts: readonly number[]): void;
  removeSession(sessionId: string): void;
  close(): void;
}
