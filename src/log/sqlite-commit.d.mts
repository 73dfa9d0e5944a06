import type Database from "better-sqlite3";

/**
 * An op as the log commits it, on the main thread or after crossing to the writer thread (plain
 * data: structured clone copies strings flat). For an entry, `json` is the event's JSON — for
 * output, its fields without the data (OutputEntry.meta) — and `data` output's raw bytes.
 */
export type CommitOp =
  | {
      kind: "entry";
      sessionId: string;
      seq: number;
      type: string;
      outStart: number | null;
      outEnd: number | null;
      json: string;
      data: Uint8Array | null;
      /** On the way to the writer thread: `data` is this range of the batch's buffer (and null here). */
      packed?: [at: number, length: number];
      /**
       * Output whose bytes go to the session's output file starting at this offset (`data` holds
       * them on the way), not into SQLite; null: into SQLite.
       */
      file: number | null;
      /** The start of the session's previous output file, to sync before this entry's is written (it is complete). */
      syncFile: number | null;
      /** An output row whose start offset is noted in `output_marks` (where reads by byte offset start). */
      mark: boolean;
      /** Committed without waiting for company (see StoredEntry.urgent); the writer ignores it. */
      urgent?: boolean;
      /** May wait for company (LOG_INPUT_LINGER_MS): nobody waits to see it committed (see EventStore.enqueue); the writer ignores it. */
      lingers?: boolean;
      /** A cluster copy's replica row, already published: may wait for company (LOG_REPLICA_LINGER_MS); the writer ignores it. */
      replica?: boolean;
    }
  | {
      kind: "trim";
      sessionId: string;
      first: number;
      /** Output files (their start offsets) no row at or after `first` points into: removed once committed. */
      unlink: number[];
    }
  | { kind: "session"; id: string; sessionKind: string; state: string; createdAt: number; meta: string }
  | { kind: "delete"; sessionId: string };

/** What a commit did besides committing (see sqlite-commit.mjs). */
export interface CommitResult {
  /** It removed a session. */
  purged: boolean;
  /** What failed after the commit (removing files nothing points at): the commit stands. */
  warnings: string[];
}

/** Sets up a connection that writes the log; returns its commit function. */
export function prepareWriter(
  db: Database.Database,
  options: { busyTimeoutMs: number; outputDir: string; keepFilesOpen: boolean },
): ((ops: readonly CommitOp[]) => CommitResult) & { close(): void };
