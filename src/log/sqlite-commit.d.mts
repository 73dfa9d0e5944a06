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
      /** An output row whose start offset is noted in `output_marks` (where reads by byte offset start). */
      mark: boolean;
    }
  | { kind: "trim"; sessionId: string; first: number }
  | { kind: "session"; id: string; sessionKind: string; state: string; createdAt: number; meta: string }
  | { kind: "delete"; sessionId: string };

/** Sets up a connection that writes the log; returns its commit function (true: a session was removed). */
export function prepareWriter(
  db: Database.Database,
  options: { busyTimeoutMs: number },
): (ops: readonly CommitOp[]) => boolean;
