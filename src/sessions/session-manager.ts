import { randomBytes } from "node:crypto";
import type { Clock } from "../core/clock.js";
import { OWNED_HERE, shownAsCopy } from "../core/ownership.js";
import type { Ownership } from "../core/ownership.js";
import { endedToRemove } from "../log/ended-retention.js";
import type { EndedRetention } from "../log/ended-retention.js";
import type { EventLog } from "../log/event-log.js";
import type { SessionLog } from "../log/session-log.js";
import { SwitchboardError } from "../protocol/index.js";
import type { Actor, SessionKind, SessionWorktree } from "../protocol/index.js";
import type { Holders } from "./holders.js";
import { ownerKey, ownerKeyOf } from "./session.js";
import type { Session, SessionContext, SessionOwner, SessionRecord } from "./session.js";
import { RemoteSession } from "./remote-session.js";
import { StreamSession } from "./stream-session.js";
import { HOLDER_EXIT_WAIT_MS } from "./terminal-process.js";

/** Grace between TERM and KILL when a session is deleted or the gateway shuts down. */
export const TERMINATE_GRACE_MS = 3000;
/**
 * How long past {@link TERMINATE_GRACE_MS} a stop waits for the sessions' last events to reach
 * a disk that refuses writes (full, read-only) before it goes on without them.
 */
export const STOP_UNWRITTEN_WAIT_MS = 1000;
/**
 * The longest a stop waits for its sessions to end or let go of their processes, whatever they
 * do: past the processes' grace, a stuck holder's bound ({@link HOLDER_EXIT_WAIT_MS}) and a
 * margin, it goes on, so the data directory's lock is released (test/sessions/holder-stops.test.ts).
 */
export const STOP_SESSIONS_MAX_MS = TERMINATE_GRACE_MS + HOLDER_EXIT_WAIT_MS + 2 * STOP_UNWRITTEN_WAIT_MS;

/**
 * 128 random bits, url-safe (docs/architecture.md, guarantee 8). Ids never start with `-`, so command-line
 * tools cannot mistake one for an option.
 */
export function newSessionId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

export interface SessionManagerOptions {
  events: EventLog;
  clock: Clock;
  autoReleaseAfterMs: number;
  /** See ControlLease: how long a lease waits for its holder to reconnect (default DEFAULT_RECONNECT_GRACE_MS). */
  reconnectGraceMs?: number;
  /** Most running sessions in the gateway and per owner. */
  maxSessions: number;
  maxSessionsPerOwner: number;
  /** Run terminal processes under holders (holders.ts), so they outlive the gateway. */
  holders?: Holders;
  /** `sessions.quietAfterMs` (see SessionContext). */
  quietAfterMs?: number | undefined;
  /**
   * Cluster mode: each session's ownership as the store over Redis moves it (core/ownership.ts);
   * undefined for one it does not track. Without it, this gateway owns every session.
   */
  ownership?: (sessionId: string) => Ownership | undefined;
}

/** Builds a session of one kind around a prepared record and log. */
export type SessionFactory<S extends Session> = (record: SessionRecord, log: SessionLog, ctx: SessionContext) => S;
/** Builds and starts a session whose start takes a while (a process under a holder). */
export type StartingSessionFactory<S extends Session> = (
  record: SessionRecord,
  log: SessionLog,
  ctx: SessionContext,
) => Promise<S>;

/** What a new session is made of (see {@link SessionManager.create}). */
export interface NewSession {
  kind: SessionKind;
  owner: SessionOwner;
  name?: string | undefined;
  parent?: string | null;
  agent?: string | null;
  command?: string[] | null;
  cwd?: string | null;
  pty?: boolean;
  cols?: number | null;
  rows?: number | null;
  worktree?: SessionWorktree | undefined;
}

/**
 * Owns every session: creation (with limits), lookup, restore after a restart, termination
 * and shutdown. Sessions running when the gateway died come back as `lost`.
 */
/** The end of a session limit's LIMIT_EXCEEDED message: what to do (a caller with better advice cuts it). */
export const SESSION_LIMIT_ADVICE =
  ": stop one that is no longer needed (DELETE /v1/sessions/:id, switchboard kill), or raise the limit in the config";

export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly listeners = new Set<(session: Session) => void>();
  private readonly options: SessionManagerOptions;
  private readonly ctx: SessionContext;
  private closing = false;
  /** The gateway is stopping (see {@link beginStop}). */
  private stopping = false;
  /** Sessions being started ({@link createStarting}), with their owners: they count against the limits. */
  private readonly starting = new Map<Promise<Session>, string>();
  private lastCreatedAt = 0;

  constructor(options: SessionManagerOptions) {
    this.options = options;
    this.ctx = {
      clock: options.clock,
      autoReleaseAfterMs: options.autoReleaseAfterMs,
      ...(options.reconnectGraceMs !== undefined ? { reconnectGraceMs: options.reconnectGraceMs } : {}),
      save: (s) => options.events.saveSession(s),
      flush: () => options.events.flush(),
      changed: (s) => this.emitChange(s),
      ...(options.holders !== undefined ? { holders: options.holders } : {}),
      ...(options.quietAfterMs !== undefined ? { quietAfterMs: options.quietAfterMs } : {}),
    };
  }

  /**
   * Loads persisted sessions. Those that were running come back as `lost`, with a `lost` event,
   * or, held, queued to be taken over from their holders. Reads nothing per session beyond the
   * log's store: what can wait (holders, stale records) waits for {@link adoptInBackground}.
   */
  restore(build: (record: SessionRecord, log: SessionLog, ctx: SessionContext) => Session): void {
    for (const { session: stored, log } of this.options.events.load({ saveStale: false })) {
      const record = {
        ...(stored.meta as Omit<SessionRecord, "id" | "kind" | "state" | "createdAt">),
        id: stored.id,
        kind: stored.kind,
        state: stored.state,
        createdAt: stored.createdAt,
      } as SessionRecord;
      const session = build(record, log, this.ctx);
      this.sessions.set(record.id, session);
      this.lastCreatedAt = Math.max(this.lastCreatedAt, record.createdAt);
      // A session another node runs (cluster mode) did not stop with this gateway; one under a
      // holder (holders.ts) runs on and is adopted.
      if (record.state === "running" && record.kind !== "stream" && this.copyOf(session) === undefined) {
        if (!session.adoptHeld()) session.markLost("the gateway stopped while this session was running");
      }
      session.endEarlierGatewayLease();
    }
  }

  /**
   * Once the gateway listens: writes again the records {@link restore} found stale (with their
   * logs' state, so the next start reads no log whole), and takes over the held sessions it
   * queued, in background slices (Holders.adoptions), those something needs first.
   */
  adoptInBackground(): void {
    this.options.events.saveStaleRecords();
    this.options.holders?.adoptions.start();
  }

  /** Held sessions restored at start whose processes are not taken over yet. */
  get adoptionsPending(): number {
    return this.options.holders?.adoptions.pending ?? 0;
  }

  /**
   * Registers a new session built by `factory`. Checks the running-session limits first, so a
   * refused create changes nothing.
   */
  create<S extends Session>(init: NewSession, factory: SessionFactory<S>): S {
    this.assertRoomFor(ownerKey(init.owner), init.owner.name);
    const record = this.newRecord(init);
    const log = this.options.events.create(record.id);
    let session: S;
    try {
      session = factory(record, log, this.ctx);
    } catch (error) {
      // Nothing started: forget the log so a refused create leaves no trace.
      void this.options.events.remove(record.id);
      throw error;
    }
    this.register(session);
    return session;
  }

  /**
   * As {@link create}, for a session whose start is awaited (a process under a holder): it is
   * registered, persisted and listed only once started, so nobody sees it running before its
   * process runs. Meanwhile it counts against the limits (concurrent creates cannot pass them
   * together), and a gateway stop waits for it.
   */
  async createStarting<S extends Session>(init: NewSession, factory: StartingSessionFactory<S>): Promise<S> {
    this.assertRoomFor(ownerKey(init.owner), init.owner.name);
    const record = this.newRecord(init);
    const log = this.options.events.create(record.id);
    const starting = factory(record, log, this.ctx);
    this.starting.set(starting, ownerKey(init.owner));
    let session: S;
    try {
      session = await starting;
    } catch (error) {
      void this.options.events.remove(record.id);
      throw error;
    } finally {
      this.starting.delete(starting);
    }
    // Listed in `createdAt` order: it is created, for a client walking the pages, when it is listed.
    record.createdAt = this.nextCreatedAt();
    this.register(session);
    return session;
  }

  private newRecord(init: NewSession): SessionRecord {
    return {
      id: newSessionId(),
      kind: init.kind,
      name: init.name ?? null,
      owner: init.owner.name,
      ...(init.owner.id !== undefined ? { ownerId: init.owner.id } : {}),
      state: "running",
      command: init.command ?? null,
      cwd: init.cwd ?? null,
      pty: init.pty ?? false,
      cols: init.cols ?? null,
      rows: init.rows ?? null,
      pid: null,
      exitCode: null,
      signal: null,
      createdAt: this.nextCreatedAt(),
      endedAt: null,
      parent: init.parent ?? null,
      agent: init.agent ?? null,
      ...(init.worktree !== undefined ? { worktree: init.worktree } : {}),
    };
  }

  private register(session: Session): void {
    this.sessions.set(session.id, session);
    session.persist();
    this.emitChange(session);
  }

  /**
   * Now, or 1 ms after the newest `createdAt` so far when that is not earlier (two sessions in
   * one millisecond, a clock that stepped back). `GET /v1/sessions` lists in `createdAt` order
   * and a page's cursor is a position in it: a session created while a client walks the pages
   * must sort after every session that existed, not before the cursor (ids, the tie-break, are
   * random).
   */
  private nextCreatedAt(): number {
    this.lastCreatedAt = Math.max(this.options.clock.now(), this.lastCreatedAt + 1);
    return this.lastCreatedAt;
  }

  /** Whose the session is on this node (core/ownership.ts): the cluster store's state, or owned here. */
  ownership(id: string): Ownership {
    return this.options.ownership?.(id) ?? OWNED_HERE;
  }

  /**
   * The copy this node shows of a session another node runs (its ownership `copy` or
   * `adopting`); undefined for one this node runs, or that it does not know.
   */
  copyOf(session: Session | string | undefined): RemoteSession | undefined {
    const id = typeof session === "string" ? session : session?.id;
    if (id === undefined || !shownAsCopy(this.ownership(id))) return undefined;
    return this.shownCopy(typeof session === "string" ? this.sessions.get(id) : session);
  }

  /**
   * `session` as the RemoteSession addRemote, follow or a restore made for a copy. Its kind follows
   * the ownership: made as the store moves it to `copy`, replaced as it moves to `owned` (adopt).
   */
  private shownCopy(session: Session | undefined): RemoteSession | undefined {
    return session instanceof RemoteSession ? session : undefined;
  }

  /**
   * Shows a session another node runs (cluster mode: the store holds it as a `copy`), its log
   * filled from the shared one by `fill` (see RemoteSession).
   */
  addRemote(record: SessionRecord, log: SessionLog, nodeId: string, fill: () => Promise<void>): RemoteSession {
    const session = new RemoteSession({ record, log, ctx: this.ctx, nodeId, fill });
    this.sessions.set(record.id, session);
    this.lastCreatedAt = Math.max(this.lastCreatedAt, record.createdAt);
    this.emitChange(session);
    return session;
  }

  /**
   * Runs here from now on a session another node ran (cluster mode: that node died and this one
   * took the session over, the store moved it from `adopting` to `owned`): `build` makes it from
   * its record and log, as at a restore.
   */
  adopt(
    id: string,
    build: (record: SessionRecord, log: SessionLog, ctx: SessionContext) => Session,
  ): Session | undefined {
    const remote = this.shownCopy(this.sessions.get(id));
    if (remote === undefined || this.ownership(id).at !== "owned") return undefined;
    remote.log.markOwned();
    const session = build({ ...remote.record }, remote.log, this.ctx);
    this.sessions.set(id, session);
    this.emitChange(session);
    return session;
  }

  /**
   * Shows as a copy (a RemoteSession over the same log, so its viewers stay) a session this node
   * ran until `nodeId` took it over (cluster mode: this node was fenced, its process is stopped,
   * the store moved it from `fenced` to `copy`): the entries the shared log refused are dropped,
   * and the copy goes on from what viewers saw, filled by `fill`.
   */
  follow(id: string, nodeId: string, fill: () => Promise<void>): RemoteSession | undefined {
    const owned = this.sessions.get(id);
    if (owned === undefined || this.shownCopy(owned) !== undefined || this.ownership(id).at !== "copy")
      return undefined;
    owned.dispose();
    owned.log.dropUnwritten(
      () =>
        new SwitchboardError(
          "FENCED",
          `session ${id} is run by node ${nodeId} now: this node was cut off from Redis past its lease and ${nodeId} took the session over, so these events were not written; send them again`,
          { node: nodeId },
        ),
    );
    const copy = new RemoteSession({ record: { ...owned.record }, log: owned.log, ctx: this.ctx, nodeId, fill });
    this.sessions.set(id, copy);
    this.emitChange(copy);
    return copy;
  }

  /** Forgets a session another node runs that was removed there (its log is gone from the shared one). */
  async dropRemote(id: string): Promise<void> {
    const session = this.copyOf(id);
    if (session === undefined) return;
    this.sessions.delete(id);
    session.markRemoved();
    this.emitChange(session);
    await this.options.events.remove(id);
  }

  createStream(owner: SessionOwner, name: string | undefined): StreamSession {
    return this.create({ kind: "stream", owner, name }, (r, l, c) => new StreamSession(r, l, c));
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  list(): Session[] {
    return [...this.sessions.values()];
  }

  /** Observes changes to anything the session list shows. */
  onChange(listener: (session: Session) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Forgets a session for good: deletes its record and log, and those of its child sessions
   * (the terminals an agent ran). A session (or child) that still runs is refused with
   * SESSION_RUNNING unless `force`: then it is terminated first. Its consumers are told (see
   * {@link Session.onRemoved}). Resolves, with the removed sessions (`id` last), once the removal
   * is committed; refused with LOG_UNAVAILABLE while the log cannot write.
   */
  async remove(id: string, by: Actor, options: { force?: boolean } = {}): Promise<Session[]> {
    const session = this.sessions.get(id);
    if (!session) throw new SwitchboardError("SESSION_NOT_FOUND", `no session ${id}`);
    // Answered once it is on disk (see below), which it cannot be while the log cannot write:
    // refused then, as new work is, rather than an answer that waits for the disk.
    this.options.events.assertWritable();
    const tree = this.tree(session);
    const running = tree.find((s) => s.running);
    if (running && options.force !== true) {
      const what = running === session ? `session ${id} is running` : `session ${id} has a running child ${running.id}`;
      throw new SwitchboardError(
        "SESSION_RUNNING",
        `${what}: terminate it first (DELETE without purge, "switchboard kill"), or remove it with force=true ("switchboard rm -f")`,
      );
    }
    // The parent first, so an agent's run ends before the terminals it works in.
    if (session.running) await session.terminate(by);
    await Promise.all(tree.filter((s) => s.running).map((s) => s.terminate(by)));
    const removed: Session[] = [];
    const deleted: Array<Promise<void>> = [];
    // Children first, so no child outlives its parent in the store; concurrent removes may have taken some.
    for (const s of tree.reverse()) {
      if (this.sessions.get(s.id) !== s) continue;
      this.sessions.delete(s.id);
      s.markRemoved();
      deleted.push(this.options.events.remove(s.id));
      this.emitChange(s);
      removed.push(s);
    }
    // Answered once it is on disk: a crash right after a removal was answered brought the session back.
    await Promise.all(deleted);
    return removed;
  }

  /** `root` and its descendants, parents before children. */
  private tree(root: Session): Session[] {
    const out = [root];
    for (let i = 0; i < out.length; i++) {
      const parent = out[i]!.id;
      for (const s of this.sessions.values()) if (s.record.parent === parent && !out.includes(s)) out.push(s);
    }
    return out;
  }

  /**
   * Removes ended sessions (with their children) as `rule` says (`retention.endedSessions`:
   * by age, count and the bytes of their logs). One with a child still running is kept for now.
   * Returns what was removed.
   */
  async prune(rule: EndedRetention, by: Actor): Promise<Session[]> {
    // Nothing can be removed while the log cannot write (see remove): the next pass tries again.
    if (this.options.events.store.writeFailure !== undefined) return [];
    const now = this.options.clock.now();
    // Children go with their parent, so only top-level sessions are counted and aged, and the
    // bytes of a tree are counted with its top (one walk up per session: a pass runs every
    // minute and after every end, over every session).
    const treeBytes = new Map<Session, number>();
    for (const s of this.sessions.values()) {
      let top = s;
      for (let depth = 0; depth < this.sessions.size; depth++) {
        const up = top.record.parent === null ? undefined : this.sessions.get(top.record.parent);
        if (up === undefined) break;
        top = up;
      }
      treeBytes.set(top, (treeBytes.get(top) ?? 0) + s.log.storedState.retainedBytes);
    }
    const ended = this.list()
      .filter((s) => !s.running && (s.record.parent === null || !this.sessions.has(s.record.parent)))
      .map((s) => ({ item: s, endedAt: s.record.endedAt ?? now, bytes: treeBytes.get(s) ?? 0 }))
      .sort((a, b) => a.endedAt - b.endedAt);
    const doomed = endedToRemove(ended, rule, now);
    const removed: Session[] = [];
    for (const s of doomed) {
      // Retention never stops a process: a session with a child still running waits for it.
      if (this.sessions.get(s.id) !== s || this.tree(s).some((t) => t.running)) continue;
      removed.push(...(await this.remove(s.id, by)));
    }
    return removed;
  }

  /** The sessions this gateway runs under holders: they outlive a stop (`sessions.onStop` `keep`). */
  held(): Session[] {
    return this.list().filter((s) => s.running && s.record.holder != null && this.copyOf(s) === undefined);
  }

  async terminate(id: string, by: Actor): Promise<void> {
    const session = this.sessions.get(id);
    if (!session) throw new SwitchboardError("SESSION_NOT_FOUND", `no session ${id}`);
    await session.terminate(by);
  }

  /**
   * Terminates every running session (TERM, grace, KILL) and releases resources; held ones run on
   * under their holders when `sessions.onStop` is `keep`, unless `endHeld`.
   */
  async close(options: { endHeld?: boolean } = {}): Promise<void> {
    this.beginStop();
    if (this.closing) return;
    this.closing = true;
    if (options.endHeld === true && this.options.holders !== undefined) this.options.holders.onStop = "end";
    // A session being started is registered once it runs, and then stopped as the others.
    await Promise.allSettled(this.starting.keys());
    const system: Actor = { name: "gateway", role: "system" };
    await this.endedOrUnwritable(Promise.all(this.list().map((s) => s.shutdown(system))));
    for (const s of this.sessions.values()) {
      s.endLease();
      // A session that stays running (a stream) notes where its log is, so the next start
      // need not read its events to find out (EventLog.load).
      if (s.running) s.persist();
      s.dispose();
    }
  }

  /**
   * `ended`, or sooner on a disk that refuses writes: a session's end is awaited until its last
   * event is on disk, which on a full disk waits for space without end (a stop hung 45–70 s).
   * Past the processes' grace and {@link STOP_UNWRITTEN_WAIT_MS}, a stop goes on while the log
   * cannot write; closing the log then says how many events it could not write. Past
   * {@link STOP_SESSIONS_MAX_MS} it goes on whatever the sessions do.
   */
  private async endedOrUnwritable(ended: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;
    const unwritable = new Promise<void>((resolve) => {
      const check = () => {
        if (!this.options.events.writable) resolve();
        else timer = setTimeout(check, STOP_UNWRITTEN_WAIT_MS);
      };
      timer = setTimeout(check, TERMINATE_GRACE_MS + STOP_UNWRITTEN_WAIT_MS);
      deadline = setTimeout(resolve, STOP_SESSIONS_MAX_MS);
    });
    try {
      await Promise.race([ended, unwritable]);
    } finally {
      clearTimeout(timer);
      clearTimeout(deadline);
    }
  }

  /**
   * The gateway's stop has begun (its first step, before it stops listening): from now on every
   * request that would change something is refused with SHUTTING_DOWN ({@link assertNotStopping}),
   * never with an answer that says a session ended — a held one runs on for the next gateway.
   */
  beginStop(): void {
    this.stopping = true;
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** Throws SHUTTING_DOWN (503, retry against the next gateway) once the gateway's stop has begun. */
  assertNotStopping(): void {
    if (this.stopping) throw shuttingDown();
  }

  /**
   * Throws why the owner `ownerKey` (ownerKeyOf) may not have one more running session now
   * (SHUTTING_DOWN, LOG_UNAVAILABLE, LIMIT_EXCEEDED): checked when one is created, and when a lost
   * one is resumed. `name` is what the refusal shows.
   */
  assertRoomFor(ownerKey: string, name: string): void {
    if (this.stopping || this.closing) throw shuttingDown();
    this.options.events.assertWritable();
    this.checkLimits(ownerKey, name);
  }

  private checkLimits(ownerKey: string, name: string): void {
    let running = this.starting.size;
    let mine = [...this.starting.values()].filter((o) => o === ownerKey).length;
    for (const s of this.sessions.values()) {
      if (!s.running) continue;
      running++;
      if (ownerKeyOf(s.record) === ownerKey) mine++;
    }
    const refuse = (limit: string) => new SwitchboardError("LIMIT_EXCEEDED", `${limit}${SESSION_LIMIT_ADVICE}`);
    if (running >= this.options.maxSessions)
      throw refuse(`the gateway runs at most ${this.options.maxSessions} sessions at once (limits.sessions)`);
    if (mine >= this.options.maxSessionsPerOwner)
      throw refuse(
        `${name} runs at most ${this.options.maxSessionsPerOwner} sessions at once (limits.sessionsPerToken)`,
      );
  }

  private emitChange(session: Session): void {
    for (const l of this.listeners) l(session);
  }
}

/** What a request that reaches a stopping gateway gets: nothing of it was applied. */
export function shuttingDown(): SwitchboardError {
  return new SwitchboardError(
    "SHUTTING_DOWN",
    "the gateway is stopping: nothing of this request was applied; send it again once the next gateway is up (sessions under holders run on)",
  );
}
