import { untilAligned } from "../../core/clock.js";
import type { Clock, Timer } from "../../core/clock.js";
import { oneWriteThisTurn, subscriberClient } from "../../cluster/redis-client.js";
import type { RedisClient } from "../../cluster/redis-client.js";
import { READ_FIRST_ENTRIES, nextReadCount } from "../../cluster/read-pages.js";
import { decodeNotice } from "../../cluster/live-notice.js";
import type { LiveNotice } from "../../cluster/live-notice.js";
import { sessionKeys } from "../../cluster/redis-log.js";
import { sameStamp, stampOf } from "../../cluster/redis-log.js";
import type { RedisLog, RedisLogPosition, SharedSession, SharedStamp } from "../../cluster/redis-log.js";
import type { RedisEventStore } from "../../cluster/redis-store.js";
import { LAST_LINE_TAIL_BYTES } from "../../core/last-line.js";
import { OutputEntry } from "../../log/output-entry.js";
import type { EventLog } from "../../log/event-log.js";
import type { SessionLog } from "../../log/session-log.js";
import type { PersistedSession, StoredEntry } from "../../log/store.js";
import { repairReplica } from "../../cluster/replica-repair.js";
import type { SessionContext, SessionRecord } from "../../sessions/session.js";
import type { SessionManager } from "../../sessions/session-manager.js";
import { RemoteSession } from "../../sessions/remote-session.js";
import type { CopyGate } from "./copy-gate.js";
import type { Logger } from "../ops/logger.js";

/**
 * How often every session's position in Redis is compared with this node's copy: finds what a
 * lost notification did not announce (pub/sub delivers at most once, see docs/cluster.md). A node
 * that shows no session sweeps at `idleSweepMs` instead, and within this again after a reconnection.
 */
export const MIRROR_SWEEP_MS = 1000;
/** What a session id can be (newSessionId: 22 url-safe characters; older ids may differ in length). */
const SESSION_ID = /^[A-Za-z0-9_-]{8,64}$/;
/** Newest entries read for the last line of a session this node does not copy (see RemoteSession.showShared). */
export const MIRROR_TAIL_ENTRIES = 16;

export interface ClusterMirrorOptions {
  redis: RedisClient;
  log: RedisLog;
  store: RedisEventStore;
  events: EventLog;
  sessions: SessionManager;
  nodeId: string;
  keyPrefix: string;
  clock: Clock;
  logger: Logger;
  /** The sweep's pace while this node shows no session and copies nothing (the lease's TTL). */
  idleSweepMs: number;
  /** Paces the copies' reads (copy-gate.ts): this node's own work goes first. */
  gate: CopyGate;
}

/** A record as Redis holds it, as the session manager keeps it (without the log state saved beside it). */
function recordOf(stored: PersistedSession): SessionRecord {
  const { logState: _logState, ...meta } = stored.meta;
  return {
    ...(meta as Omit<SessionRecord, "id" | "kind" | "state" | "createdAt">),
    id: stored.id,
    kind: stored.kind,
    state: stored.state,
    createdAt: stored.createdAt,
  } as SessionRecord;
}

/**
 * Keeps this node's copy of the sessions other nodes own: shows each (a RemoteSession) and
 * appends to its log, in seq order, what its owner appended to Redis — on each notification,
 * and every {@link MIRROR_SWEEP_MS} for what a lost notification did not say (a session whose
 * notices still come, at the sweep after they stop).
 */
export class ClusterMirror {
  private subscriber: RedisClient | undefined;
  /** Per session: a fill runs (`done` once it ends); `again`: another was asked for meanwhile. */
  private readonly filling = new Map<string, { again: boolean; done: Promise<void> }>();
  private sweepTimer: Timer | undefined;
  /** Whether the armed sweep is at the idle pace. */
  private sweepIdle = false;
  /** A fill failed since the last sweep: the next one retries it at the busy pace. */
  private fillFailed = false;
  /**
   * Copies that took a notice since the sweep before: the next sweep skips them, since a lost
   * notice shows at the sweep after it, once a whole interval passed with none. A node copying
   * many busy sessions so does not read each of them every second.
   */
  private heard = new Set<string>();
  /** Per copied session, the epoch Redis held at this node's last read: a notice under another is read again. */
  private readonly epochs = new Map<string, number>();
  /**
   * Per copy, Redis's meta as of what the copy holds (set when a fill completed, moved by each
   * notice taken): a sweep reads only the stamp of a quiet copy, and fills it only when the stamp
   * moved (test/cluster/mirror-sweep.test.ts).
   */
  private readonly stamps = new Map<string, SharedStamp>();
  private closed = false;

  constructor(private readonly o: ClusterMirrorOptions) {}

  /**
   * Before the log loads (at start): makes the replica consistent with Redis (replica-repair.ts)
   * and gives each session its ownership. Sessions Redis names this node the owner of (it ran them
   * before a crash or a stop) are adopted: their epoch raised, so that nothing of an earlier run of
   * this node id (one paused, not dead) is written any more, and their replica brought up to
   * Redis's head; the others are copies. Sessions Redis no longer has are dropped.
   */
  async prepare(): Promise<void> {
    const local = this.o.store.local;
    const stored = new Map(local.loadSessions().map((s) => [s.id, s]));
    const ids = await this.o.log.sessionIds();
    const listed = new Set(ids);
    for (const id of stored.keys()) if (!listed.has(id)) await this.repair(id, undefined, stored, false);
    for (const id of ids) {
      let shared = await this.o.log.session(id);
      if (shared === undefined) continue;
      const epoch =
        shared.owner === this.o.nodeId ? await this.o.log.bumpEpoch(id, this.o.nodeId, this.o.nodeId) : undefined;
      if (epoch === undefined) {
        this.o.store.ownerships.mirror(id, shared.owner);
        await this.repair(id, shared, stored, false);
        continue;
      }
      this.o.store.ownerships.adopting(id, epoch, this.o.nodeId);
      // Read again under the new epoch: nobody moves its head from here on but this node.
      shared = (await this.o.log.session(id)) ?? shared;
      await this.repair(id, shared, stored, true);
      this.o.store.adopt(id, shared.position);
    }
  }

  private async repair(
    id: string,
    shared: SharedSession | undefined,
    stored: ReadonlyMap<string, PersistedSession>,
    owned: boolean,
  ): Promise<void> {
    const local = this.o.store.local;
    const done = await repairReplica({ log: this.o.log, local, id, shared, stored: stored.get(id), owned });
    if (done === "rebuilt" || (done === "dropped" && stored.has(id)))
      this.o.logger.warn(
        { sessionId: id, repair: done, head: shared?.position.head },
        done === "dropped"
          ? "cluster: this node's replica of a session did not match Redis (or Redis no longer has it): dropped, copied again on demand"
          : "cluster: this node's replica of its own session did not match Redis: rebuilt from Redis",
      );
  }

  /** A session restored at start from this node's replica, as its copy (filled on demand too). */
  restored(record: SessionRecord, log: SessionLog, ctx: SessionContext, owner: string): RemoteSession {
    return new RemoteSession({ record, log, ctx, nodeId: owner, fill: () => this.fill(record.id) });
  }

  /**
   * Lists a session this node has not heard of yet if Redis has it (another node created it a
   * moment ago and its notification is on its way): the request that names it is then answered
   * as on its owner, never SESSION_NOT_FOUND. Ids that cannot be session ids cost no round trip.
   */
  async discover(id: string): Promise<void> {
    if (this.closed || !SESSION_ID.test(id) || this.o.sessions.get(id) !== undefined) return;
    await this.fill(id);
  }

  /** Subscribes to the notifications and fills every copy once; then keeps them filled. */
  async start(): Promise<void> {
    // In a Redis Cluster a session's channel (SPUBLISH) is heard only on the shard that holds its
    // slot: one subscriber per shard (ioredis's sharded subscribers). With the one subscriber of
    // a plain duplicate, SSUBSCRIBE of another shard's channel failed (MOVED, "Too many Cluster
    // redirections") and that session's copy was filled by the sweep alone, if at all.
    const subscriber = subscriberClient(this.o.redis, true);
    this.subscriber = subscriber;
    subscriber.on("error", () => undefined);
    // Notifications published while it was away are lost: the next sweep reads every session.
    subscriber.on("ready", () => {
      this.heard.clear();
      this.wakeSweep();
    });
    subscriber.on("message", (_channel: string, id: string) => void this.fill(id));
    subscriber.on("smessageBuffer", (channel: Buffer, message: Buffer) => {
      const id = /\{([^}]*)\}:live$/.exec(channel.toString())?.[1];
      if (id === undefined) return;
      const notice = decodeNotice(message);
      if (notice !== undefined && (this.takeNotice(id, notice) || this.leaveToSweep(id, notice))) return;
      void this.fill(id);
    });
    // After a reconnection the subscriptions are made again (ioredis) and the sweep fills the gaps.
    await subscriber.subscribe(this.o.log.sessionsKey);
    await this.sweep();
  }

  private async sweep(): Promise<void> {
    this.sweepTimer = undefined;
    if (this.closed) return;
    this.fillFailed = false;
    const heard = this.heard;
    this.heard = new Set();
    try {
      // Only copies this node had before the list was read can be gone from it: one a
      // notification added meanwhile is new, not deleted (dropping it deleted the owner's keys in
      // Redis, and the owner was fenced: "Redis has epoch none").
      const known = this.o.sessions.list().filter((s) => this.o.sessions.copyOf(s) !== undefined);
      const ids = await this.o.log.sessionIds();
      const listed = new Set(ids);
      // A session this node owns has nothing to fill (fillOnce).
      const quiet = ids.filter((id) => !heard.has(id) && !this.owns(id));
      const unchanged = await this.unchanged(quiet);
      for (const id of quiet) if (!unchanged.has(id)) await this.fill(id);
      for (const session of known) {
        if (listed.has(session.id)) continue;
        this.epochs.delete(session.id);
        this.stamps.delete(session.id);
        await this.o.sessions.dropRemote(session.id);
      }
    } catch (error) {
      this.o.logger.warn({ err: error }, "cluster: reading the shared log's sessions failed; trying again");
    }
    this.armSweep(this.o.sessions.list().length === 0 && this.filling.size === 0 && !this.fillFailed);
  }

  /**
   * Which of `ids` are copies whose stamp Redis still holds: nothing was written to them since
   * the copy took it all. One small read each, sent together; a failed read counts as changed.
   */
  private async unchanged(ids: readonly string[]): Promise<Set<string>> {
    const checked = ids.filter((id) => this.stamps.has(id) && this.upToStamp(id));
    if (checked.length === 0) return new Set();
    oneWriteThisTurn(this.o.redis);
    const read = await Promise.all(checked.map((id) => this.o.log.stamp(id).catch(() => undefined)));
    const same = new Set<string>();
    checked.forEach((id, i) => {
      const stamp = this.stamps.get(id);
      const now = read[i];
      if (stamp !== undefined && now !== undefined && sameStamp(stamp, now) && this.upToStamp(id)) same.add(id);
    });
    return same;
  }

  private owns(id: string): boolean {
    const found = this.o.sessions.get(id);
    return found !== undefined && this.o.sessions.copyOf(found) === undefined;
  }

  /** A copy holds what its stamp says: no fill runs, and one that copies entries is kept up. */
  private upToStamp(id: string): boolean {
    if (this.filling.has(id)) return false;
    const copy = this.o.sessions.copyOf(this.o.sessions.get(id));
    return copy !== undefined && (!copy.copying || copy.kept);
  }

  private armSweep(idle: boolean): void {
    if (this.closed) return;
    this.sweepIdle = idle;
    const after = idle ? untilAligned(this.o.clock, this.o.idleSweepMs) : MIRROR_SWEEP_MS;
    this.sweepTimer = this.o.clock.setTimeout(() => {
      oneWriteThisTurn(this.o.redis);
      void this.sweep();
    }, after);
  }

  /** Brings a sweep armed at the idle pace to within {@link MIRROR_SWEEP_MS}. */
  private wakeSweep(): void {
    if (this.sweepTimer === undefined || !this.sweepIdle) return;
    this.sweepTimer.cancel();
    this.armSweep(false);
  }

  /**
   * Appends the entries a notice carries to a copy that is kept up and holds everything before
   * them, under the epoch and with the record it last read: one wake-up per append, no read back.
   * False when a fill must read Redis instead (anything else changed, a notice was lost, a fill runs).
   */
  private takeNotice(id: string, notice: LiveNotice): boolean {
    const last = notice.entries.at(-1);
    if (last === undefined || notice.recordChanged || this.filling.has(id)) return false;
    const copy = this.o.sessions.copyOf(this.o.sessions.get(id));
    if (copy === undefined || !copy.copying || !copy.kept || this.o.store.ownerships.of(id)?.at !== "copy")
      return false;
    if (this.epochs.get(id) !== notice.epoch) return false;
    const log = copy.log;
    if (notice.entries[0]!.seq !== log.appendedHead + 1 || notice.first > log.appendedHead + 1) return false;
    this.wakeSweep();
    this.heard.add(id);
    if (notice.first > log.first) log.trimCopy(notice.first);
    for (const entry of notice.entries) {
      log.appendCopy(entry);
      copy.copied(entry);
    }
    log.markShared(last.seq);
    const stamp = this.stamps.get(id);
    if (stamp !== undefined) this.stamps.set(id, { ...stamp, head: last.seq, first: notice.first });
    return true;
  }

  /**
   * A notice that moved only the position of a copy whose record alone is kept here (nobody on
   * this node follows it) is left to the next sweep, within {@link MIRROR_SWEEP_MS}, as its last
   * line is: a node that merely lists a session does not read its meta once per append
   * (test/cluster/mirror-sweep.test.ts). A changed record or epoch is read at once.
   */
  private leaveToSweep(id: string, notice: LiveNotice): boolean {
    if (notice.recordChanged || this.filling.has(id) || this.epochs.get(id) !== notice.epoch) return false;
    const copy = this.o.sessions.copyOf(this.o.sessions.get(id));
    if (copy === undefined || copy.copying) return false;
    this.wakeSweep();
    return true;
  }

  /** Brings this node's copy of a session up to what Redis holds; one at a time per session. */
  private fill(id: string): Promise<void> {
    this.wakeSweep();
    const running = this.filling.get(id);
    if (running) {
      running.again = true;
      return running.done;
    }
    const state = { again: true, done: Promise.resolve() };
    state.done = this.fillLoop(id, state);
    this.filling.set(id, state);
    return state.done;
  }

  private async fillLoop(id: string, state: { again: boolean }): Promise<void> {
    // Starts after fill() registered it: a fill asked for from here on runs another round.
    await Promise.resolve();
    try {
      while (state.again && !this.closed) {
        state.again = false;
        await this.fillOnce(id);
      }
    } catch (error) {
      this.fillFailed = true;
      this.o.logger.warn(
        { err: error, sessionId: id },
        "cluster: copying a session from the shared log failed; the next sweep tries again",
      );
    } finally {
      this.filling.delete(id);
    }
  }

  private async fillOnce(id: string): Promise<void> {
    // Set again once this fill has taken all it read (a failed one leaves none: the sweep fills).
    this.stamps.delete(id);
    if (this.owns(id)) return;
    const local = this.o.sessions.copyOf(this.o.sessions.get(id));
    if (local !== undefined && !local.copying) {
      // Nobody here wants it: only its record is kept; its entries are copied once asked for.
      local.markRecordOnly();
      const shared = await this.o.log.session(id);
      if (shared === undefined || shared.owner === this.o.nodeId) return;
      this.epochs.set(id, shared.epoch);
      const head = Math.min(shared.position.head, shared.confirmed ?? shared.position.head);
      local.showShared({ ...shared.position, head }, await this.tailFor(local, head));
      this.updated(local, shared);
      // A last line left for later (tailFor) is read by the next sweep's fill.
      if (local.shown?.tailHead === head) this.stamps.set(id, stampOf(shared));
      return;
    }
    // A copy it has: the position and the first entries after its head in one round trip (a
    // keystroke's echo waits for it); a copy further behind goes on in paced pages.
    const ahead =
      local === undefined
        ? undefined
        : await this.o.log.sessionFrom(id, local.log.appendedHead + 1, READ_FIRST_ENTRIES);
    const shared = ahead ? ahead.session : await this.o.log.session(id);
    if (shared === undefined || shared.owner === this.o.nodeId) return;
    this.epochs.set(id, shared.epoch);
    let session = local;
    if (session === undefined) {
      this.o.store.ownerships.mirror(id, shared.owner);
      const first = await this.o.log.read(id, shared.position.first, "+", 1);
      const start = first[0]?.seq ?? shared.position.head + 1;
      const firstOutput = await outputOffsetAt(this.o.log, id, start, shared.position);
      const log = this.o.events.create(id, {
        head: start - 1,
        first: start,
        outputBytes: firstOutput,
        retainedBytes: 0,
      });
      session = this.o.sessions.addRemote(recordOf(shared.record), log, shared.owner, () => this.fill(id));
      await this.subscriber?.ssubscribe(sessionKeys(this.o.keyPrefix, id).live);
    }
    if (session.copying) {
      // An owner with waitReplicas: only what enough replicas hold (docs/cluster.md, "Replicas and failover").
      const head = Math.min(shared.position.head, shared.confirmed ?? shared.position.head);
      const copy = session;
      // The record is taken in the same tick as the last entry, before the entry is published: a
      // viewer that gets the final event finds the session ended (an SSE stream ends there).
      await copyShared(
        this.o.log,
        id,
        copy.log,
        { ...shared.position, head },
        {
          ...(ahead ? { ahead: ahead.entries } : {}),
          paced: { gate: this.o.gate, tokens: () => copy.copyFor() },
          onEntry: (e) => copy.copied(e),
          done: () => {
            copy.markKept();
            this.updated(copy, shared);
          },
        },
      );
      if (copy.log.appendedHead >= head) this.stamps.set(id, stampOf(shared));
    } else this.updated(session, shared);
  }

  /**
   * The newest entries of a session this node does not copy, for its last line: read when its head
   * moved, at most every {@link MIRROR_SWEEP_MS} (a flood's notifications do not each read up to
   * a MiB of output); undefined keeps the last line shown. The sweep reads the final one.
   */
  private async tailFor(session: RemoteSession, head: number): Promise<StoredEntry[] | undefined> {
    const shown = session.shown;
    if (shown !== undefined && (shown.tailHead === head || this.o.clock.now() - shown.tailAt < MIRROR_SWEEP_MS))
      return undefined;
    // One entry usually holds the last line; a few more when the newest are short.
    const newest = await this.o.log.tail(session.id, head, 1);
    const bytes = newest.reduce((n, e) => n + (e instanceof OutputEntry ? e.bytes.length : 0), 0);
    return bytes >= LAST_LINE_TAIL_BYTES ? newest : this.o.log.tail(session.id, head, MIRROR_TAIL_ENTRIES);
  }

  /** Takes the owner and the record Redis names for a copy. */
  private updated(session: RemoteSession, shared: SharedSession): void {
    // Taken over by a third node: what this node forwards, and the owner its errors name, go there.
    if (shared.owner !== session.nodeId) {
      this.o.store.ownerships.mirror(session.id, shared.owner);
      session.movedTo(shared.owner);
    }
    session.update(recordOf(shared.record));
  }

  /**
   * A session this node ran until another node took it over (this node was fenced, `owner` owns it
   * now): from here on this node shows it as a copy like any other node's, filled from the shared
   * log from the last entry Redis took from this node, so its viewers here see the new owner's
   * entries (a `lost`, a stream's next output).
   */
  async follow(id: string, owner: string): Promise<void> {
    // What Redis acknowledged and the replica has not committed yet is published first: the copy
    // goes on after it, and the entries Redis refused are dropped (SessionManager.follow).
    this.o.events.flush();
    this.o.store.follow(id, owner);
    const copy = this.o.sessions.follow(id, owner, () => this.fill(id));
    if (copy === undefined) return;
    await this.subscriber?.ssubscribe(sessionKeys(this.o.keyPrefix, id).live);
    await this.fill(id);
  }

  close(): void {
    this.closed = true;
    this.sweepTimer?.cancel();
    this.subscriber?.disconnect();
  }
}

/**
 * Copies a session's entries from the shared log into `copy`, in seq order, up to `to.head`
 * (`o.ahead`: entries already read), in pages (read-pages.ts) that `o.paced` paces for the tokens
 * it names; unpaced (a takeover of the node's own session) each page is appended as it comes. A
 * copy not kept up whose next entries the owner trimmed meanwhile goes on from `to.first`
 * (SessionLog.skipCopyTo).
 */
export async function copyShared(
  log: RedisLog,
  id: string,
  copy: SessionLog,
  to: RedisLogPosition,
  o: {
    ahead?: readonly StoredEntry[];
    paced?: { gate: CopyGate; tokens: () => readonly string[] };
    onEntry?: (entry: StoredEntry) => void;
    /** Run once, in the tick of the last entry copied (see ClusterMirror.fillOnce). */
    done?: () => void;
  } = {},
): Promise<void> {
  if (to.first > copy.appendedHead + 1) {
    await copy.whenPublished();
    copy.skipCopyTo(to.first, await outputOffsetAt(log, id, to.first, to));
  } else if (to.first > copy.first) copy.trimCopy(to.first);
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    o.done?.();
  };
  const append = (entries: readonly StoredEntry[]): number | undefined => {
    let last: number | undefined;
    for (const entry of entries) {
      // Copied meanwhile by another catch-up of the same log (a takeover beside the mirror).
      if (entry.seq <= copy.appendedHead || entry.seq > to.head) continue;
      copy.appendCopy(entry);
      o.onEntry?.(entry);
      last = entry.seq;
    }
    if (copy.appendedHead >= to.head) finish();
    // Redis holds them: viewers here get them now, after the record `finish` took; the replica
    // commits them in batches (LOG_REPLICA_LINGER_MS).
    if (last !== undefined) copy.markShared(last);
    return last;
  };
  const ahead = o.ahead ?? [];
  append(ahead);
  let count = nextReadCount(ahead);
  while (copy.appendedHead < to.head) {
    const read = () => log.read(id, copy.appendedHead + 1, to.head, count);
    const entries = o.paced
      ? await o.paced.gate.copy({
          tokens: o.paced.tokens(),
          read,
          append,
          durable: (seq) => copy.whenDurable(seq),
        })
      : await read().then((page) => (append(page), page));
    if (entries.length === 0) break;
    count = nextReadCount(entries);
  }
  finish();
}

/**
 * The output byte offset at seq `start`: the offset of the first output entry from `start` to
 * the head, or `outputBytes` (the total at the head) when there is none. Not the total alone: the
 * owner may have appended output after a first non-output entry (test/cluster/mirror-start.test.ts).
 */
async function outputOffsetAt(log: RedisLog, id: string, start: number, at: RedisLogPosition): Promise<number> {
  let count = READ_FIRST_ENTRIES;
  for (let from = start; from <= at.head;) {
    const entries = await log.read(id, from, at.head, count);
    const output = entries.find((e) => e instanceof OutputEntry);
    if (output instanceof OutputEntry) return output.outStart;
    if (entries.length === 0) break;
    from = entries.at(-1)!.seq + 1;
    count = nextReadCount(entries);
  }
  return at.outputBytes;
}
