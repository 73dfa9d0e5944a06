import type { Clock } from "../core/clock.js";
import { SwitchboardError } from "../protocol/index.js";
import { OutputEntry } from "../log/output-entry.js";
import type { SqliteEventStore } from "../log/sqlite-store.js";
import type {
  EventStore,
  FlushListener,
  LogWriteFailure,
  PersistedSession,
  StoredEntry,
  StoredLogState,
} from "../log/store.js";
import type { LogEntry } from "../log/types.js";
import { SessionOwnership } from "./session-ownership.js";
import { FencedError, sameEntry } from "./redis-log.js";
import type { RedisLog, RedisLogPosition } from "./redis-log.js";

/** How soon an append that failed for want of Redis is tried again. */
export const REDIS_RETRY_MS = 250;
/** Most entries, and about most bytes, one append script call carries. */
export const REDIS_APPEND_MAX_ENTRIES = 1000;
export const REDIS_APPEND_MAX_BYTES = 1024 * 1024;
/**
 * Most append script calls of one session in flight at once. One connection keeps them in
 * order, so Redis applies them in order; while one is on the wire the next batch is built
 * (bench/cluster.ts, append: one in flight left Redis idle between calls).
 */
export const REDIS_APPENDS_IN_FLIGHT = 4;

type Op =
  | { kind: "entry"; entry: StoredEntry }
  | { kind: "trim"; first: number }
  | { kind: "record"; session: PersistedSession };

type Position = RedisLogPosition;

/** One append script call: the next `count` ops not yet acknowledged, and the position after them. */
interface Call {
  readonly count: number;
  readonly position: Position;
  acknowledged: boolean;
}

/**
 * Where an outbox's sending is:
 * - `unclaimed`: a session created here that Redis does not hold yet; its first op claims it;
 * - `claiming`: the claim is on its way; nothing is sent until it is answered;
 * - `sending`: under `epoch`, up to {@link REDIS_APPENDS_IN_FLIGHT} calls at once;
 * - `retrying`: a call or the claim failed: once no call waits for an answer, every unacknowledged op is sent again;
 * - `fenced`: Redis refused it under a newer epoch: nothing more of it is sent (see RedisEventStore.fence).
 */
type Sending =
  | { at: "unclaimed" }
  | { at: "claiming" }
  | { at: "sending"; epoch: number }
  | { at: "retrying"; epoch: number | undefined }
  | { at: "fenced" };

/** An owned session's writes on their way to Redis. */
interface Outbox extends Position {
  readonly sessionId: string;
  sending: Sending;
  /** The newest seq any call carried: past the acknowledged ones, Redis may hold entries up to it. */
  sentHead: number;
  /** Ops not yet acknowledged by Redis, oldest first; the first `sent` of them are in `calls`. */
  ops: Op[];
  sent: number;
  /** Bytes of the entries among the ops not in flight. */
  unsentBytes: number;
  /** Calls in flight, in the order Redis applies them. */
  calls: Call[];
  /** Ops handed to the replica since the box was made (Redis holds them), and who waits for a count of them. */
  handedOver: number;
  /** The newest seq handed to the replica; the replica holds it once {@link RedisEventStore} hears of its commit. */
  handedHead: number;
  sharedWaiters: Array<{ count: number; resolve: () => void; reject: (error: Error) => void }>;
  // The Position fields: the log as the acknowledged ops leave it in Redis.
}

export interface RedisEventStoreOptions {
  /** The node's replica of the log (see docs/cluster.md): what every read is served from. */
  local: SqliteEventStore;
  redis: RedisLog;
  nodeId: string;
  clock: Clock;
  /** A session's append was refused under a newer epoch: the node stops it (nothing more of it is written). */
  onFenced: (sessionId: string, error: FencedError) => void;
  /**
   * Run after each append script call Redis acknowledged, before its entries are delivered
   * (`cluster.waitReplicas`, see replicaConfirmation); a rejection counts as a failed call.
   */
  confirmReplicas?: (sessionId: string, head: number) => Promise<void>;
  onWriteFailed?: (failure: LogWriteFailure) => void;
  onWriteRecovered?: (failure: LogWriteFailure) => void;
}

/**
 * The event store of a node in cluster mode. Sessions this node owns are appended to Redis
 * first (the log of record, under the session's fencing epoch) and only once Redis acknowledged
 * them published ({@link onShared}) and handed to the node's replica: so nothing is delivered that
 * Redis does not hold. Other owners' entries come from Redis and go to the replica directly. Reads
 * are the replica's, and the hot ring's for what it has not committed.
 */
export class RedisEventStore implements EventStore {
  readonly refusesAppends = true;
  private readonly outboxes = new Map<string, Outbox>();
  /**
   * Whose each session is (src/cluster/session-ownership.ts): the mirror and the takeover move
   * it; this store reports what its send queue learns (claimed, fenced) and asks it where a write goes.
   */
  readonly ownerships = new SessionOwnership();
  /** The sessions whose writes Redis is failing now, and since when (one failure for all of them). */
  private readonly failing = new Set<string>();
  private failure: LogWriteFailure | undefined;
  private _closed = false;

  /** Told the newest seq Redis holds of a session whenever it moves (see EventStore.onShared). */
  private readonly sharedListeners: Array<(sessionId: string, seq: number) => void> = [];

  /** Per owned session, the newest seq the replica reported committed, and who waits for one. */
  private readonly replica = new Map<
    string,
    { durable: number; waiters: Array<{ seq: number; resolve: () => void }> }
  >();

  constructor(private readonly options: RedisEventStoreOptions) {
    // Registered before the event log's listener, which marks the entries durable in their session
    // logs: a waiter resumes after the whole dispatch, so after that mark (see fence).
    options.local.onFlushed((durable) => {
      for (const [sessionId, seq] of durable) {
        const replica = this.replica.get(sessionId);
        if (replica === undefined) continue;
        replica.durable = Math.max(replica.durable, seq);
        const ready = replica.waiters.filter((w) => w.seq <= replica.durable);
        replica.waiters = replica.waiters.filter((w) => w.seq > replica.durable);
        for (const waiter of ready) waiter.resolve();
      }
    });
  }

  /** The gateway closed it: nothing more is written. */
  get closed(): boolean {
    return this._closed;
  }

  get local(): SqliteEventStore {
    return this.options.local;
  }

  /**
   * The replica of a session being adopted holds Redis's head: its entries from now on are
   * appended to Redis under the epoch it was adopted with, from `position`.
   */
  adopt(sessionId: string, position: RedisLogPosition): void {
    const epoch = this.ownerships.adopted(sessionId);
    // A box this one replaces took its failure with it: only the new box's writes may hold new work back.
    this.recovered(sessionId);
    this.outboxes.set(sessionId, emptyOutbox(sessionId, epoch, position));
  }

  /**
   * A session this node owned until it was fenced: its entries come from Redis now, appended by
   * `owner`; nothing is left to send of what this node wrote (the fence dropped it).
   */
  follow(sessionId: string, owner: string): void {
    this.outboxes.delete(sessionId);
    this.replica.delete(sessionId);
    this.recovered(sessionId);
    this.ownerships.followed(sessionId, owner);
  }

  /**
   * Compares the epoch of each session this node appends to with Redis's, and fences those
   * another node took over (told as a refused append is): for a node back from a pause or a
   * partition past its lease, whose quiet sessions would not learn it by appending.
   */
  async checkEpochs(): Promise<void> {
    for (const box of [...this.outboxes.values()]) {
      const epoch = epochOf(box.sending);
      if (epoch === undefined) continue;
      const shared = await this.options.redis.session(box.sessionId);
      if (shared === undefined || shared.epoch === epoch || box.sending.at === "fenced") continue;
      this.fence(box, new FencedError(box.sessionId, epoch, String(shared.epoch), shared.owner));
    }
  }

  /**
   * Redis refused the box's session under a newer epoch. Nothing more is sent; the calls that got
   * no answer may have been applied before the epoch moved, so what Redis holds of them is read
   * back and, where it is this node's entries, handed to the replica as acknowledged (their
   * writers are told the truth: written). Then the node is told (`onFenced`): the rest is
   * dropped unwritten and refused to whoever waits for it.
   */
  private fence(box: Outbox, error: FencedError): void {
    if (box.sending.at === "fenced") return;
    box.sending = { at: "fenced" };
    box.calls = [];
    this.ownerships.fenced(box.sessionId, error.owner, error);
    // What Redis holds of this node's entries is handed to the replica; only once the replica has
    // committed it may the node drop what is left (SessionLog.dropUnwritten refuses every entry
    // past the durable position), or an entry Redis holds would be refused FENCED.
    void this.settleUnanswered(box)
      .then(() => this.replicaHolds(box.sessionId, box.handedHead))
      .then(() => {
        box.ops = [];
        box.sent = 0;
        box.unsentBytes = 0;
        for (const waiter of box.sharedWaiters.splice(0))
          waiter.reject(
            new SwitchboardError(
              "FENCED",
              `session ${box.sessionId} is run by node ${error.owner} now: this node was cut off from Redis past its lease; send the request again`,
              { node: error.owner },
            ),
          );
        this.recovered(box.sessionId);
        this.options.onFenced(box.sessionId, error);
      });
  }

  /** See {@link fence}: reads back the entries up to `sentHead` and hands over those Redis holds; retried until Redis answers. */
  private async settleUnanswered(box: Outbox): Promise<void> {
    for (;;) {
      const maybe = box.ops.filter((op) => op.kind === "entry" && op.entry.seq <= box.sentHead);
      if (maybe.length === 0 || this.closed) return;
      const from = (maybe[0] as { entry: StoredEntry }).entry.seq;
      try {
        const held = await this.options.redis.read(box.sessionId, from, box.sentHead, maybe.length);
        let taken = 0;
        for (const [i, op] of box.ops.entries()) {
          if (op.kind !== "entry") continue;
          const stored = held[op.entry.seq - from];
          if (stored === undefined || !sameEntry(stored, op.entry)) break;
          taken = i + 1;
        }
        for (const op of box.ops.splice(0, taken)) this.handOver(box.sessionId, op);
        this.handedOverCount(box, taken);
        this.shared(box);
        return;
      } catch {
        // Not a failure of the node's writes: the session is fenced (its writers are refused), and a
        // Redis that is down fails the other sessions' appends by itself.
        await new Promise<void>((resolve) => this.options.clock.setTimeout(resolve, REDIS_RETRY_MS));
      }
    }
  }

  whenShared(sessionId: string): Promise<void> {
    const box = this.outboxes.get(sessionId);
    if (box === undefined || box.ops.length === 0) return Promise.resolve();
    const count = box.handedOver + box.ops.length;
    return new Promise((resolve, reject) => box.sharedWaiters.push({ count, resolve, reject }));
  }

  private handedOverCount(box: Outbox, ops: number): void {
    box.handedOver += ops;
    if (box.sharedWaiters.length === 0) return;
    const ready = box.sharedWaiters.filter((w) => w.count <= box.handedOver);
    box.sharedWaiters = box.sharedWaiters.filter((w) => w.count > box.handedOver);
    for (const waiter of ready) waiter.resolve();
  }

  /** Resolves once the replica reported `seq` of the session committed (at once for 0). */
  private replicaHolds(sessionId: string, seq: number): Promise<void> {
    const replica = this.replica.get(sessionId);
    if (replica === undefined || replica.durable >= seq || this.closed) return Promise.resolve();
    const holds = new Promise<void>((resolve) => replica.waiters.push({ seq, resolve }));
    this.hurry();
    return holds;
  }

  /**
   * An op Redis holds goes to the replica. Published before the replica commits it (a copy's by
   * the copy itself, an owned session's by {@link shared}), so its commit waits for company.
   */
  private handOver(sessionId: string, op: Op): void {
    if (op.kind === "entry") {
      const box = this.outboxes.get(sessionId);
      if (box !== undefined) box.handedHead = Math.max(box.handedHead, op.entry.seq);
      if (!this.replica.has(sessionId)) this.replica.set(sessionId, { durable: 0, waiters: [] });
    }
    if (op.kind === "entry") this.options.local.enqueue(sessionId, op.entry, { replica: true });
    else if (op.kind === "trim") this.options.local.enqueueTrim(sessionId, op.first);
    else this.options.local.enqueueSession(op.session);
  }

  /** Redis writes that failed and wait to be retried, or the replica's failure. */
  get writeFailure(): LogWriteFailure | undefined {
    return (this.failing.size > 0 ? this.failure : undefined) ?? this.options.local.writeFailure;
  }

  /** The sessions whose failed writes hold new work back, each with where its send queue is (for the log). */
  get failingSessions(): Array<{ sessionId: string; at: string; inFlight: number; queued: number }> {
    return [...this.failing].map((sessionId) => {
      const box = this.outboxes.get(sessionId);
      return {
        sessionId,
        at: box?.sending.at ?? "gone",
        inFlight: box?.calls.length ?? 0,
        queued: box?.ops.length ?? 0,
      };
    });
  }

  /** Entries and records queued for Redis or the replica and not written yet (for metrics). */
  get unwrittenOps(): number {
    let ops = this.options.local.unwrittenOps;
    for (const box of this.outboxes.values()) ops += box.ops.length;
    return ops;
  }

  /** Bytes of entries waiting for Redis. */
  get bytesWaiting(): number {
    let bytes = 0;
    for (const box of this.outboxes.values()) for (const op of box.ops) if (op.kind === "entry") bytes += op.entry.size;
    return bytes;
  }

  enqueue(sessionId: string, entry: StoredEntry): void {
    this.route(sessionId, { kind: "entry", entry });
  }

  enqueueTrim(sessionId: string, first: number): void {
    this.route(sessionId, { kind: "trim", first });
  }

  enqueueSession(session: PersistedSession): void {
    this.route(session.id, { kind: "record", session });
  }

  /**
   * Where a write goes by the session's ownership: an owned session's to Redis first; a copy's
   * (or one being adopted) to the replica; a fenced one's nowhere (nothing it writes after the
   * fence may reach a viewer).
   */
  private route(sessionId: string, op: Op): void {
    switch (this.ownerships.writing(sessionId)) {
      case "owned":
        this.push(this.outbox(sessionId), op);
        return;
      case "copy":
      case "adopting":
        this.handOver(sessionId, op);
        return;
      case "fenced":
        return;
    }
  }

  /** Sends what is queued for Redis now; commits what Redis acknowledged to the replica. */
  flush(): number {
    for (const box of this.outboxes.values()) this.send(box);
    return this.options.local.flush();
  }

  onFlushed(listener: FlushListener): void {
    this.options.local.onFlushed(listener);
  }

  hurry(): void {
    this.options.local.hurry();
  }

  onShared(listener: (sessionId: string, seq: number) => void): void {
    this.sharedListeners.push(listener);
  }

  /** Tells the listeners that Redis holds the box's entries up to the newest handed to the replica. */
  private shared(box: Outbox): void {
    if (box.handedHead === 0) return;
    for (const listener of this.sharedListeners) listener(box.sessionId, box.handedHead);
  }

  readAfter(...args: Parameters<EventStore["readAfter"]>): LogEntry[] {
    return this.options.local.readAfter(...args);
  }

  readOutputFrom(...args: Parameters<EventStore["readOutputFrom"]>): StoredEntry[] {
    return this.options.local.readOutputFrom(...args);
  }

  oldestSizes(...args: Parameters<EventStore["oldestSizes"]>): Array<{ seq: number; bytes: number }> {
    return this.options.local.oldestSizes(...args);
  }

  loadSessions(): PersistedSession[] {
    return this.options.local.loadSessions();
  }

  loadLogState(sessionId: string, saved?: StoredLogState): StoredLogState {
    return this.options.local.loadLogState(sessionId, saved);
  }

  async deleteSession(sessionId: string): Promise<void> {
    const copy = this.ownerships.ownerOf(sessionId) !== undefined;
    this.outboxes.delete(sessionId);
    for (const waiter of this.replica.get(sessionId)?.waiters ?? []) waiter.resolve();
    this.replica.delete(sessionId);
    this.recovered(sessionId);
    this.ownerships.forget(sessionId);
    // A copy's keys are its owner's: dropping this node's copy leaves them (the owner removes them).
    if (!copy) await this.options.redis.delete(sessionId);
    await this.options.local.deleteSession(sessionId);
  }

  close(): void {
    if (this._closed) return;
    this._closed = true;
    for (const replica of this.replica.values()) for (const waiter of replica.waiters.splice(0)) waiter.resolve();
    this.options.local.close();
  }

  /** The outbox of a session this node owns, made on its first write. */
  private outbox(sessionId: string): Outbox {
    let box = this.outboxes.get(sessionId);
    if (box === undefined) {
      box = emptyOutbox(sessionId, undefined, { head: 0, first: 1, outputBytes: 0, retainedBytes: 0 });
      this.outboxes.set(sessionId, box);
    }
    return box;
  }

  private push(box: Outbox, op: Op): void {
    box.ops.push(op);
    if (op.kind === "entry") box.unsentBytes += op.entry.size;
    const unsent = box.ops.length - box.sent;
    // The first op not in flight: send it, with whatever else this tick queues, at the tick's end.
    if (unsent === 1) queueMicrotask(() => this.send(box));
    // A full batch goes now: Redis applies it while this tick goes on appending (a producer
    // with room appends up to the log's backlog limit, 16 MiB, in one tick).
    else if (unsent >= REDIS_APPEND_MAX_ENTRIES || box.unsentBytes >= REDIS_APPEND_MAX_BYTES) this.send(box);
  }

  /**
   * Sends the box's ops not yet in flight to Redis, one script call per batch, up to
   * {@link REDIS_APPENDS_IN_FLIGHT} calls at once. Each call names the position its batch ends at, so
   * the script refuses a batch that does not follow the one before it (GAP); see {@link settle}.
   */
  private send(box: Outbox): void {
    if (this.closed) return;
    const sending = box.sending;
    if (sending.at === "unclaimed" && box.ops.length > 0) void this.claim(box);
    if (sending.at !== "sending") return;
    while (box.calls.length < REDIS_APPENDS_IN_FLIGHT && box.sent < box.ops.length) this.call(box, sending.epoch);
  }

  /**
   * Makes a session created here this node's in Redis (epoch 1). One Redis already holds under
   * another owner was taken over (this node's first claim was applied, its answer lost, and the
   * node was cut off past its lease meanwhile): fenced, as a refused append is.
   */
  private async claim(box: Outbox): Promise<void> {
    box.sending = { at: "claiming" };
    let claimed: { epoch: number; owner: string };
    try {
      claimed = await this.options.redis.claim(box.sessionId, this.options.nodeId);
    } catch (error) {
      box.sending = { at: "unclaimed" };
      if (this.outboxes.get(box.sessionId) === box) this.failed(box, error as Error);
      return;
    }
    box.sending = { at: "unclaimed" };
    if (this.outboxes.get(box.sessionId) !== box) return;
    if (claimed.owner !== this.options.nodeId) {
      this.fence(box, new FencedError(box.sessionId, 1, String(claimed.epoch), claimed.owner));
      return;
    }
    box.sending = { at: "sending", epoch: claimed.epoch };
    this.ownerships.claimed(box.sessionId, claimed.epoch);
    this.send(box);
  }

  /** Starts one script call with the next batch of ops after those in flight. */
  private call(box: Outbox, epoch: number): void {
    let count = 0;
    let bytes = 0;
    const start = box.sent;
    while (start + count < box.ops.length && count < REDIS_APPEND_MAX_ENTRIES && bytes < REDIS_APPEND_MAX_BYTES) {
      const op = box.ops[start + count++]!;
      if (op.kind === "entry") bytes += op.entry.size;
    }
    box.unsentBytes -= bytes;
    const before = box.calls.at(-1)?.position ?? box;
    const position: Position = {
      head: before.head,
      first: before.first,
      outputBytes: before.outputBytes,
      retainedBytes: before.retainedBytes,
    };
    const entries: StoredEntry[] = [];
    let record: PersistedSession | undefined;
    let trimmedTo: number | undefined;
    for (let i = start; i < start + count; i++) {
      const op = box.ops[i]!;
      if (op.kind === "entry") {
        entries.push(op.entry);
        position.head = op.entry.seq;
        if (op.entry instanceof OutputEntry) position.outputBytes = op.entry.outEnd;
      } else if (op.kind === "trim") {
        trimmedTo = position.first = op.first;
      } else {
        record = op.session;
        const state = op.session.meta["logState"] as Partial<StoredLogState> | undefined;
        if (typeof state?.retainedBytes === "number") position.retainedBytes = state.retainedBytes;
      }
    }
    const call: Call = { count, position, acknowledged: false };
    box.calls.push(call);
    box.sent += count;
    box.sentHead = Math.max(box.sentHead, position.head);
    // (Output bytes stay readable meanwhile: the session log's hot ring keeps every entry until it is durable in the replica.)
    const confirm = this.options.confirmReplicas;
    const appended = this.options.redis.append(box.sessionId, epoch, {
      entries,
      position,
      ...(trimmedTo !== undefined ? { trimmedTo } : {}),
      ...(record ? { record } : {}),
      ...(confirm ? { held: true } : {}),
    });
    (confirm ? appended.then(() => confirm(box.sessionId, position.head)) : appended).then(
      () => this.settle(box, call, undefined),
      (error: Error) => this.settle(box, call, error),
    );
  }

  /**
   * A call's answer. Acknowledged calls hand their ops to the replica strictly in order, from the
   * oldest in flight. After a failure nothing later is handed over (Redis may hold it or not); once
   * every call has settled the unacknowledged ops are sent again, and the script skips what Redis
   * already holds.
   */
  private settle(box: Outbox, call: Call, error: Error | undefined): void {
    // Deleted, fenced or closed meanwhile: nothing more of this box reaches the replica.
    if (this.outboxes.get(box.sessionId) !== box || box.sending.at === "fenced" || this.closed) return;
    if (error instanceof FencedError) {
      this.fence(box, error);
      return;
    }
    if (error) this.failed(box, error);
    else call.acknowledged = true;
    if (box.sending.at === "retrying") {
      // Only calls still waiting for an answer hold the retry back. Later calls acknowledged while
      // an earlier one waited (on a connection that dropped, answered only by its timeout) are
      // done: their ops are sent again with the rest, and Redis skips what it holds.
      box.calls = box.calls.filter((c) => c !== call && !c.acknowledged);
      return;
    }
    while (box.calls[0]?.acknowledged) {
      const done = box.calls.shift()!;
      const ops = box.ops.splice(0, done.count);
      box.sent -= done.count;
      Object.assign(box, done.position);
      for (const op of ops) this.handOver(box.sessionId, op);
      this.handedOverCount(box, ops.length);
    }
    this.shared(box);
    this.recovered(box.sessionId);
    this.send(box);
  }

  /**
   * The session's writes no longer fail (acknowledged, fenced or gone): once no session's do,
   * new work is taken again. A failure is never left behind by a session that stopped writing.
   */
  private recovered(sessionId: string): void {
    if (!this.failing.delete(sessionId) || this.failing.size > 0 || this.failure === undefined) return;
    const ended = this.failure;
    this.failure = undefined;
    this.options.onWriteRecovered?.(ended);
  }

  /** Redis did not answer (or refused a batch that did not follow): the box is sent again later. */
  private failed(box: Outbox, error: Error): void {
    this.failing.add(box.sessionId);
    this.failure = {
      message: error.message,
      code: "REDIS_UNAVAILABLE",
      since: this.failure?.since ?? this.options.clock.now(),
      attempts: (this.failure?.attempts ?? 0) + 1,
    };
    this.options.onWriteFailed?.(this.failure);
    if (box.sending.at !== "retrying" && box.sending.at !== "fenced") {
      box.sending = { at: "retrying", epoch: epochOf(box.sending) };
      this.options.clock.setTimeout(() => this.retry(box), REDIS_RETRY_MS);
    }
  }

  /** Once no call is in flight, sends every unacknowledged op again from the oldest. */
  private retry(box: Outbox): void {
    if (box.sending.at !== "retrying") return;
    // Replaced (adopted anew) or deleted meanwhile: the current box sends what is to be sent.
    if (this.outboxes.get(box.sessionId) !== box) return;
    if (box.calls.length > 0) {
      this.options.clock.setTimeout(() => this.retry(box), REDIS_RETRY_MS);
      return;
    }
    const epoch = box.sending.epoch;
    box.sending = epoch === undefined ? { at: "unclaimed" } : { at: "sending", epoch };
    box.sent = 0;
    box.unsentBytes = 0;
    for (const op of box.ops) if (op.kind === "entry") box.unsentBytes += op.entry.size;
    this.send(box);
  }
}

/** An outbox with nothing to send, for a log that `position` describes in Redis (epoch undefined: not claimed yet). */
function emptyOutbox(sessionId: string, epoch: number | undefined, position: Position): Outbox {
  const idle = {
    ops: [],
    sent: 0,
    unsentBytes: 0,
    calls: [],
    sentHead: position.head,
    handedOver: 0,
    handedHead: 0,
    sharedWaiters: [],
  };
  const sending: Sending = epoch === undefined ? { at: "unclaimed" } : { at: "sending", epoch };
  return { sessionId, sending, ...idle, ...position };
}

/** The epoch an outbox appends under (undefined: not claimed yet, or fenced). */
function epochOf(sending: Sending): number | undefined {
  return sending.at === "sending" || sending.at === "retrying" ? sending.epoch : undefined;
}
