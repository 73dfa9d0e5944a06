// How the log's rows are written, shared by the two connections that write them: the main
// thread's (small commits, so a keystroke's echo waits microseconds, not a thread hop) and the
// writer thread's (floods, purges, retries). Plain JavaScript, as the writer thread loads it
// from a file both under the TypeScript sources and from dist/.
import { OutputFileWriter } from "./output-files.mjs";

/** WAL bytes after which a reset WAL file is cut back to this size (a flood grows it; it is reused). */
const WAL_SIZE_LIMIT = 16 * 1024 * 1024;

/** What a row holds in `data` when its bytes are in an output file (see output-files.mjs). */
const IN_FILE = Buffer.alloc(0);

/**
 * Sets up a connection that writes the log. No commit checkpoints: the writer thread does, between
 * its batches, when the main thread asks (see sqlite-writer.mjs), so no commit waits for the WAL
 * to be copied into the database file and synced. Output entries marked `file` are written to
 * the output files in `outputDir` first (`keepFilesOpen`: between batches too).
 */
export function prepareWriter(db, { busyTimeoutMs, outputDir, keepFilesOpen }) {
  const files = new OutputFileWriter(outputDir, { keepOpen: keepFilesOpen });
  db.pragma("journal_mode = WAL");
  // WAL + NORMAL: a commit survives a process crash; an OS crash may lose the last groups.
  db.pragma("synchronous = NORMAL");
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  db.pragma("wal_autocheckpoint = 0");
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
  // Deleted cells are zeroed where that costs no I/O (trims, page splits); a purge zeroes all.
  db.pragma("secure_delete = FAST");

  const insert = db.prepare(
    "INSERT INTO events (session_id, seq, type, out_start, out_end, body, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const mark = db.prepare("INSERT OR IGNORE INTO output_marks (session_id, out_start, seq) VALUES (?, ?, ?)");
  const trim = db.prepare("DELETE FROM events WHERE session_id = ? AND seq < ?");
  // Where the output of the rows a trim deletes ends: a restart takes the end of a session's
  // output from its rows, and retention may leave none with output.
  const noteOutputEnd = db.prepare(
    `INSERT INTO output_ends (session_id, out_end)
       SELECT session_id, MAX(out_end) FROM events WHERE session_id = ? AND seq < ? AND out_end IS NOT NULL GROUP BY session_id
     ON CONFLICT(session_id) DO UPDATE SET out_end = max(out_end, excluded.out_end)`,
  );
  const deleteOutputEnd = db.prepare("DELETE FROM output_ends WHERE session_id = ?");
  const trimMarks = db.prepare("DELETE FROM output_marks WHERE session_id = ? AND seq < ?");
  const upsertSession = db.prepare(
    `INSERT INTO sessions (id, kind, state, created_at, meta) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT(id) DO UPDATE SET state = excluded.state, meta = excluded.meta`,
  );
  const deleteEvents = db.prepare("DELETE FROM events WHERE session_id = ?");
  const deleteMarks = db.prepare("DELETE FROM output_marks WHERE session_id = ?");
  const deleteSession = db.prepare("DELETE FROM sessions WHERE id = ?");

  let purged = false;
  const transaction = db.transaction((ops) => {
    for (const op of ops) {
      switch (op.kind) {
        case "entry":
          insert.run(
            op.sessionId,
            op.seq,
            op.type,
            op.outStart,
            op.outEnd,
            op.json,
            op.file === null ? op.data : IN_FILE,
          );
          if (op.mark) mark.run(op.sessionId, op.outStart, op.seq);
          break;
        case "trim":
          noteOutputEnd.run(op.sessionId, op.first);
          trim.run(op.sessionId, op.first);
          trimMarks.run(op.sessionId, op.first);
          break;
        case "session":
          upsertSession.run(op.id, op.sessionKind, op.state, op.createdAt, op.meta);
          break;
        case "delete":
          // Removed for good means not left readable in free pages either: zero what is deleted.
          db.pragma("secure_delete = ON");
          deleteEvents.run(op.sessionId);
          deleteMarks.run(op.sessionId);
          deleteOutputEnd.run(op.sessionId);
          deleteSession.run(op.sessionId);
          db.pragma("secure_delete = FAST");
          purged = true;
          break;
      }
    }
  });
  /**
   * Commits `ops` in one transaction (all or nothing), their output files written first.
   * Returns whether it removed a session, and what went wrong after the commit (removing files no
   * row points at any more): warnings, as the commit itself stands.
   */
  const commit = (ops) => {
    purged = false;
    const warnings = [];
    // A session removed and then created again under the same id (tests do) in this batch: the
    // old files go before the new ones are written, not after.
    const deleted = new Set();
    const removedFirst = new Set();
    for (const op of ops) {
      if (op.kind === "delete") deleted.add(op.sessionId);
      else if (op.kind === "entry" && op.file !== null && deleted.has(op.sessionId)) removedFirst.add(op.sessionId);
    }
    try {
      for (const op of ops) {
        if (op.kind === "delete" && removedFirst.has(op.sessionId)) files.removeSession(op.sessionId);
        if (op.kind !== "entry" || op.file === null) continue;
        files.write(op.sessionId, op.file, op.outStart, op.data, op.syncFile);
      }
      transaction.immediate(ops);
      for (const op of ops) {
        try {
          if (op.kind === "trim" && op.unlink.length > 0) files.unlink(op.sessionId, op.unlink);
          else if (op.kind === "delete" && !removedFirst.has(op.sessionId)) files.removeSession(op.sessionId);
        } catch (error) {
          warnings.push(`removing output files of session ${op.sessionId} failed: ${String(error?.message ?? error)}`);
        }
      }
    } finally {
      files.endBatch();
    }
    return { purged, warnings };
  };
  commit.close = () => files.close();
  return commit;
}
