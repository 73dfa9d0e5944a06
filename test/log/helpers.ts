import { join } from "node:path";
import { ManualClock } from "../../src/core/clock.js";
import { EventLog, SqliteEventStore } from "../../src/log/index.js";
import type { RetentionPolicy } from "../../src/log/index.js";
import { afterTest } from "../helpers/cleanup.js";

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
