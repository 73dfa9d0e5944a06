import { join } from "node:path";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog, SqliteEventStore } from "../../src/log/index.js";
import type { RetentionPolicy } from "../../src/log/index.js";
import { afterTest } from "../helpers/cleanup.js";

/** The store's writer thread (it commits on its own thread until that one has started). */
export const writerOf = (store: SqliteEventStore) =>
  (store as unknown as { writes: { writer: { ready: boolean; kill(): Promise<number> } } }).writes.writer;

/**
 * A store on `file` whose writer thread is started again `restartMs` after it stops, with what
 * it said: its errors, and how often the thread ran again.
 */
export function restartingStore(file: string, restartMs: number) {
  const errors: Error[] = [];
  const said = { errors, restarted: 0 };
  const store = new SqliteEventStore(file, {
    writerRestartMs: restartMs,
    onError: (error) => errors.push(error),
    onWriterRestarted: () => said.restarted++,
  });
  return { store, said };
}

/** A log on a SQLite file in `dir`, closed when the test ends (before `dir` is removed). */
export function openLog(dir: string, retention?: RetentionPolicy, ring?: { entries: number; bytes: number }): EventLog {
  const store = new SqliteEventStore(join(dir, "log.db"));
  const events = new EventLog({
    store,
    clock: new ManualClock(),
    ...(retention ? { retention } : {}),
    ...(ring ? { ringMaxEntries: ring.entries, ringMaxBytes: ring.bytes } : {}),
  });
  afterTest(() => events.close());
  return events;
}
