// A node's replica made consistent with Redis at start (cluster mode), before it serves or takes
// over anything: the replica is a cache of Redis, so whatever it cannot show to be a prefix of
// Redis's log is dropped and copied again (docs/cluster.md, "A node that restarts").
import { LOG_STATE_KEY } from "../log/event-log.js";
import type { SqliteEventStore } from "../log/sqlite-store.js";
import type { PersistedSession, StoredEntry } from "../log/store.js";
import { READ_FIRST_ENTRIES, nextReadCount } from "./read-pages.js";
import { sameEntry } from "./redis-log.js";
import type { RedisLog, SharedSession } from "./redis-log.js";

/** What {@link repairReplica} did to one session's replica. */
export type Repair = "kept" | "rebuilt" | "dropped";

/**
 * Whether the replica's log of a session is a prefix of Redis's: its head is one Redis holds (not
 * past Redis's head, not trimmed there) with the same entry. Reads one entry from each.
 */
async function isPrefix(log: RedisLog, local: SqliteEventStore, id: string, shared: SharedSession): Promise<boolean> {
  const head = local.headOf(id);
  if (head === 0) return true;
  if (head > shared.position.head || head < shared.position.first) return false;
  const mine = local.readAfter(id, head - 1, 1)[0];
  const theirs = (await log.read(id, head, head, 1))[0];
  return mine !== undefined && theirs !== undefined && sameEntry(mine as StoredEntry, theirs);
}

/**
 * Checks one session's replica against Redis (`shared`; undefined: Redis no longer has it) and
 * repairs it. `owned`: this node runs the session (it raised its epoch), so the replica is brought
 * up to Redis's head now, record included; a copy is only dropped when it is not a prefix (the
 * mirror copies it again when someone wants it).
 */
export async function repairReplica(o: {
  log: RedisLog;
  local: SqliteEventStore;
  id: string;
  shared: SharedSession | undefined;
  /** The session's record in the replica, if it has one. */
  stored: PersistedSession | undefined;
  owned: boolean;
}): Promise<Repair> {
  const { log, local, id, shared, stored } = o;
  // A copy's rows have no record beside them (its owner writes the record): without one, what
  // the replica holds cannot be restored as a log, and a new copy would write the same seqs again.
  const held = stored !== undefined || local.headOf(id) > 0;
  if (shared === undefined) {
    if (held) await local.deleteSession(id);
    return "dropped";
  }
  const kept = stored !== undefined && (await isPrefix(log, local, id, shared));
  if (!kept && held) await local.deleteSession(id);
  if (!o.owned) return kept ? "kept" : "dropped";
  const at = shared.position;
  let next = kept ? local.headOf(id) + 1 : at.first;
  let count = READ_FIRST_ENTRIES;
  while (next <= at.head) {
    const entries = await log.read(id, next, at.head, count);
    if (entries.length === 0) break;
    count = nextReadCount(entries);
    for (const entry of entries) local.enqueue(id, entry);
    next = entries.at(-1)!.seq + 1;
    local.flush();
  }
  // The record as Redis holds it, with the position the replica now has (EventLog.load trusts it).
  const position = { head: at.head, first: at.first, outputBytes: at.outputBytes, retainedBytes: at.retainedBytes };
  local.enqueueSession({ ...shared.record, meta: { ...shared.record.meta, [LOG_STATE_KEY]: position } });
  local.flush();
  return kept ? "kept" : "rebuilt";
}
