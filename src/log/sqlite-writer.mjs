// The log's writer thread. It owns the only writing connection to the SQLite file and
// commits each batch the main thread posts in one transaction, so commits, fsyncs and WAL
// checkpoints never stall the event loop that reads PTYs and feeds viewers.
//
// Plain JavaScript on purpose: a worker is started from a file, and the same file must work
// from the TypeScript sources under test and from dist/ after the build (which copies it).
//
// Messages in:  {batch, ops, signal?}  ops = [{kind: "entry", sessionId, seq, type, outStart, outEnd, json, data}
//                                            | {kind: "trim", sessionId, first}
//                                            | {kind: "session", id, kind_, state, createdAt, meta}
//                                            | {kind: "delete", sessionId}]
//               {close: true, signal}  (signal: set once the connection is closed)
// Messages out: {batch, ms} after a commit, {batch, error} when it failed.
// `signal` is an Int32Array over a SharedArrayBuffer: set to 1 and notified after the batch,
// for a main thread that waits synchronously (flush()).
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const db = new Database(workerData.file);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.pragma("busy_timeout = 5000");
// Checkpoint every 64 pages (4 MiB with 64 KiB pages) rather than the default 1000 (64 MiB): events
// are published only once committed, and a checkpoint of 64 MiB held a commit (so a keystroke's
// echo) up to ~50 ms during a flood; small ones cost about the same in all.
db.pragma("wal_autocheckpoint = 64");
// Deleted cells are zeroed where that costs no I/O (trims, page splits); a purge zeroes all.
db.pragma("secure_delete = FAST");

const insert = db.prepare(
  "INSERT INTO events (session_id, seq, type, out_start, out_end, body, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
);
const trim = db.prepare("DELETE FROM events WHERE session_id = ? AND seq < ?");
const upsertSession = db.prepare(
  `INSERT INTO sessions (id, kind, state, created_at, meta) VALUES (?, ?, ?, ?, ?)
   ON CONFLICT(id) DO UPDATE SET state = excluded.state, meta = excluded.meta`,
);
const deleteEvents = db.prepare("DELETE FROM events WHERE session_id = ?");
const deleteSession = db.prepare("DELETE FROM sessions WHERE id = ?");

/** Set by a batch that removed a session. */
let purged = false;

const commit = db.transaction((ops) => {
  for (const op of ops) {
    switch (op.kind) {
      case "entry":
        insert.run(op.sessionId, op.seq, op.type, op.outStart, op.outEnd, op.json, op.data);
        break;
      case "trim":
        trim.run(op.sessionId, op.first);
        break;
      case "session":
        upsertSession.run(op.id, op.sessionKind, op.state, op.createdAt, op.meta);
        break;
      case "delete":
        // Removed for good means not left readable in free pages either: zero what is deleted.
        db.pragma("secure_delete = ON");
        deleteEvents.run(op.sessionId);
        deleteSession.run(op.sessionId);
        db.pragma("secure_delete = FAST");
        purged = true;
        break;
    }
  }
});

parentPort.on("message", (message) => {
  if (message.close) {
    try {
      db.close();
    } finally {
      Atomics.store(message.signal, 0, 1);
      Atomics.notify(message.signal, 0);
      parentPort.close();
    }
    return;
  }
  const started = performance.now();
  try {
    purged = false;
    commit(message.ops);
    if (purged) {
      // Give the free pages back (what earlier page splits freed may still hold the session's
      // bytes; files from before auto_vacuum have none to give), then empty the WAL, which
      // still holds pages as they were (best effort: with readers in the way it is reused later).
      db.pragma("incremental_vacuum");
      db.pragma("wal_checkpoint(TRUNCATE)");
    }
    parentPort.postMessage({ batch: message.batch, ms: performance.now() - started });
  } catch (error) {
    parentPort.postMessage({ batch: message.batch, error: String(error?.message ?? error) });
  } finally {
    if (message.signal) {
      Atomics.store(message.signal, 0, 1);
      Atomics.notify(message.signal, 0);
    }
  }
});
