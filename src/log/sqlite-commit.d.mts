import type Database from "better-sqlite3";

/** An op as the log writes it (see WireOp in sqlite-store.ts). */
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
    }
  | { kind: "trim"; sessionId: string; first: number }
  | { kind: "session"; id: string; sessionKind: string; state: string; createdAt: number; meta: string }
  | { kind: "delete"; sessionId: string };

/** Sets up a connection that writes the log; returns its commit function (true: a session was removed). */
export function prepareWriter(
  db: Database.Database,
  options: { busyTimeoutMs: number },
): (ops: readonly CommitOp[]) => boolean;
