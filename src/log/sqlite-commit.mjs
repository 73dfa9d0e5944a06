// How the log's rows are written, shared by the two connections that write them: the main
// thread's (small commits, so a keystroke's echo waits microseconds, not a thread hop) and the
// writer thread's (floods, purges, retries). Plain JavaScript, as the writer thread loads it
// from a file both under the TypeScript sources and from dist/.

/** WAL bytes after which a reset WAL file is cut back to this size (a flood grows it; it is reused). */
const WAL_SIZE_LIMIT = 16 * 1024 * 1024;

/**
 * Sets up a connection that writes the log. No commit checkpoints: the writer thread does, between
 * its batches, when the main thread asks (see sqlite-writer.mjs), so no commit waits for the WAL
 * to be copied into the database file and synced.
 */
export function prepareWriter(db, { busyTimeoutMs }) {
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
          insert.run(op.sessionId, op.seq, op.type, op.outStart, op.outEnd, op.json, op.data);
          if (op.mark) mark.run(op.sessionId, op.outStart, op.seq);
          break;
        case "trim":
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
          deleteSession.run(op.sessionId);
          db.pragma("secure_delete = FAST");
          purged = true;
          break;
      }
    }
  });
  /** Commits `ops` in one transaction (all or nothing); true when it removed a session. */
  return (ops) => {
    purged = false;
    transaction.immediate(ops);
    return purged;
  };
}
