// The log's writer thread. It commits each batch the main thread posts in one transaction (a
// flood's output, purges, and whatever waits behind a failed commit), so that big commits never
// stall the event loop that reads PTYs and feeds viewers; small commits are made on the main
// thread. Between batches, when the main thread asks, it runs the WAL checkpoints.
//
// Checkpoints copy the bulk PASSIVE (it takes no lock a writer needs: the main thread's small
// commits go on meanwhile), then the last frames RESTART, so that the WAL is started over (see
// checkpoint()), and run here, not on a thread of their own: run beside a flood's commits, a
// checkpoint never caught up with them, so the WAL was never reset and grew past the data
// (measured: 534 MiB of WAL for a 200 MiB flood, at half the throughput).
//
// Plain JavaScript on purpose: a worker is started from a file, and the same file must work
// from the TypeScript sources under test and from dist/ after the build (which copies it).
//
// Messages in:  {batch, ops, buffer?, signal?}  ops = [{kind: "entry", sessionId, seq, type, outStart, outEnd, json, data, packed?, mark, file, syncFile}
//                                            | {kind: "trim", sessionId, first, unlink}
//                                            | {kind: "session", id, sessionKind, state, createdAt, meta}
//                                            | {kind: "delete", sessionId}]
//               {checkpoint: true}
//               {close: true, signal}  (signal: set once the connection is closed)
// workerData: {file, outputDir, retryMs, started}  (started: an Int32Array over a SharedArrayBuffer,
//               set to 1 and notified once the start is over, opened or failed, for a close that
//               came while the thread was starting)
// Messages out: {ready: true} once the file is open (the main thread posts nothing before it);
//               {batch, ms, buffer?} after a commit (the batch's buffer handed back); {batch, error, code, attempt} when a commit failed;
//               {checkpointed: {log, done, busy, ms} | {error}} (WAL frames, of which copied into the database; busy: not all, or not started over).
// `signal` is an Int32Array over a SharedArrayBuffer: set to 1 and notified after the batch,
// for a main thread that waits synchronously (flush()); set to 2 when the batch could not be
// committed yet (it is kept and retried).
//
// A batch that fails (disk full, read-only file system, I/O error) is never dropped: it stays
// first in line, the batches posted after it wait behind it, and it is retried every
// `workerData.retryMs` until it commits. Dropping it left a hole in the log that a later
// commit then declared durable (measured: a 26 MB flood on a full 32 MiB disk kept 4.8 MB and
// the exit, with the seqs between missing for good).
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { prepareWriter } from "./sqlite-commit.mjs";

/** How long a commit here waits for the main thread's (they take well under a millisecond). */
const BUSY_TIMEOUT_MS = 5000;
/** How long the RESTART part of a checkpoint waits for the write lock and for readers to leave the WAL. */
const RESTART_WAIT_MS = 100;

let db;
let commit;
try {
  db = new Database(workerData.file);
  commit = prepareWriter(db, {
    busyTimeoutMs: BUSY_TIMEOUT_MS,
    outputDir: workerData.outputDir,
    keepFilesOpen: true,
  });
} catch (error) {
  // Nothing is open: a close waiting for this start may go on (the error ends the thread).
  wake(workerData.started, 1);
  throw error;
}

parentPort.postMessage({ ready: true });

/** Posted batches not committed yet, oldest first: the first is the one being retried. */
const pending = [];
let retryTimer;
let attempt = 0;

parentPort.on("message", (message) => {
  if (message.close) {
    try {
      // A last try for what waits; what still cannot be written is reported by the main thread.
      if (pending.length > 0) drain();
      commit.close();
      db.close();
    } finally {
      clearTimeout(retryTimer);
      wake(message.signal, 1);
      parentPort.close();
    }
    return;
  }
  if (message.checkpoint) {
    checkpoint();
    return;
  }
  // An entry's bytes are a range of the batch's buffer (see LOG_BATCH_BUFFER_BYTES in group-commit.ts).
  for (const op of message.ops) if (op.packed) op.data = new Uint8Array(message.buffer, op.packed[0], op.packed[1]);
  pending.push(message);
  // While a batch is being retried, new batches wait for its timer; a synchronous flush tries at once.
  if (retryTimer === undefined || message.signal) drain();
});

/** Commits the pending batches in order, until one fails (then retries it later) or none is left. */
function drain() {
  clearTimeout(retryTimer);
  retryTimer = undefined;
  while (pending.length > 0) {
    const message = pending[0];
    const started = performance.now();
    let result;
    try {
      result = commit(message.ops);
    } catch (error) {
      attempt++;
      parentPort.postMessage({
        batch: message.batch,
        error: String(error?.message ?? error),
        code: typeof error?.code === "string" ? error.code : undefined,
        attempt,
      });
      // Whoever waits synchronously learns now that its batch is not durable yet (it stays queued).
      for (const waiting of pending) {
        wake(waiting.signal, 2);
        waiting.signal = undefined;
      }
      retryTimer = setTimeout(drain, workerData.retryMs);
      return;
    }
    attempt = 0;
    pending.shift();
    if (result.purged) vacuum();
    for (const warning of result.warnings) parentPort.postMessage({ warning });
    // The buffer goes back to be filled again (its views here are done with).
    const buffer = message.buffer;
    parentPort.postMessage({ batch: message.batch, ms: performance.now() - started, buffer }, buffer ? [buffer] : []);
    wake(message.signal, 1);
  }
}

/**
 * After a purge: give the free pages back (what earlier page splits freed may still hold the
 * session's bytes; files from before auto_vacuum have none to give), then empty the WAL, which
 * still holds pages as they were. Best effort, after the commit: with readers in the way the WAL
 * is reused later, and on a full disk the next purge or checkpoint does it.
 */
function vacuum() {
  try {
    db.pragma("incremental_vacuum");
    db.pragma("wal_checkpoint(TRUNCATE)");
  } catch (error) {
    // The purge itself is committed; failing here must not make the batch look failed (a retry would insert it twice).
    parentPort.postMessage({ warning: `removing a session's free pages failed: ${String(error?.message ?? error)}` });
  }
}

/**
 * Copies the WAL into the database so the next commit starts the WAL over, which SQLite does only
 * when a commit finds every frame copied. PASSIVE alone never got there under steady load (the
 * main thread commits during it; bench/README.md, "Log writes"), so: PASSIVE twice for the bulk,
 * then RESTART, which holds the write lock until no reader is left in the WAL. Main-thread commits
 * that find the lock taken (busy timeout 0) come here behind it. It waits at most
 * {@link RESTART_WAIT_MS}, then reports busy and a later checkpoint starts the WAL over.
 */
function checkpoint() {
  const started = performance.now();
  try {
    let [row] = db.pragma("wal_checkpoint(PASSIVE)");
    if (row.busy === 0 && row.checkpointed === row.log) [row] = db.pragma("wal_checkpoint(PASSIVE)");
    if (row.busy === 0 && row.checkpointed === row.log) {
      db.pragma(`busy_timeout = ${RESTART_WAIT_MS}`);
      try {
        [row] = db.pragma("wal_checkpoint(RESTART)");
      } finally {
        db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      }
    }
    parentPort.postMessage({
      checkpointed: { log: row.log, done: row.checkpointed, busy: row.busy !== 0, ms: performance.now() - started },
    });
  } catch (error) {
    // A failed checkpoint loses nothing (the WAL keeps the pages); a later one tries again.
    parentPort.postMessage({ checkpointed: { error: String(error?.message ?? error) } });
  }
}

function wake(signal, value) {
  if (!signal) return;
  Atomics.store(signal, 0, value);
  Atomics.notify(signal, 0);
}
