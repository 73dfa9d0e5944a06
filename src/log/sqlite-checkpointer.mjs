// The log's checkpointer thread: copies committed WAL pages into the database file and syncs it,
// when the main thread asks (after every few MiB of commits). PASSIVE: it takes no lock a writer
// needs, so commits — and the events they publish — never wait for it. Plain JavaScript for the
// same reason as sqlite-writer.mjs.
//
// Messages in:  {checkpoint: true}; {close: true, signal}
// Messages out: {checkpointed: {log, done, ms}} (WAL frames, of which copied) or {checkpointed: {error}}
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const db = new Database(workerData.file);
db.pragma("busy_timeout = 5000");
db.pragma("wal_autocheckpoint = 0");

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
    const [row] = db.pragma("wal_checkpoint(PASSIVE)");
    parentPort.postMessage({ checkpointed: { log: row.log, done: row.checkpointed, ms: performance.now() - started } });
  } catch (error) {
    // A failed checkpoint loses nothing (the WAL keeps the pages); the next request tries again.
    parentPort.postMessage({ checkpointed: { error: String(error?.message ?? error) } });
  }
});
