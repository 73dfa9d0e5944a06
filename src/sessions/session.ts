import type { Clock } from "../core/clock.js";
import { ControlLease } from "../core/control-lease.js";
import { LastLine } from "../core/last-line.js";
import { ListSummary, listedJson } from "./list-summary.js";
import type { ListPositions } from "./list-summary.js";
import type { LeaseChange } from "../core/control-lease.js";
import type { SessionLog } from "../log/session-log.js";
import type { PersistedSession } from "../log/store.js";
import type { HolderRef, Holders } from "./holders.js";
import { SwitchboardError } from "../protocol/index.js";
import { ATTENTION_TEXT_CHARS } from "../protocol/index.js";
import type { SessionWorktree } from "../protocol/index.js";
import type {
  Actor,
  AgentState,
  Attention,
  AttentionReason,
  SessionEvent,
  SessionInfo,
  SessionKind,
  SessionState,
} from "../protocol/index.js";

/** What a caller may ask of a running terminal session (TerminalSession; `resize`: PTYs only). */
export type TerminalOp = "input" | "signal" | "resize";
/** What a caller may ask of a running agent session (AgentGatewaySession). */
export type AgentOp = "prompt" | "abort" | "permission" | "choose" | "elicitation" | "policy";
/** What a caller may ask of any running terminal or agent session: `seen` ends its attention. */
export type AnyOp = "seen";
/** What a caller may ask of a running session; `steerTarget` narrows a session to the kind that takes it. */
export type SteerOp = TerminalOp | AgentOp | AnyOp;

/** Why a session (its record's `kind` and `pty`) takes no `op` at all: WRONG_SESSION_KIND. */
export function wrongKind(record: Pick<SessionRecord, "kind" | "pty">, op: SteerOp): SwitchboardError {
  const kind = record.kind;
  switch (op) {
    case "input":
      return new SwitchboardError(
        "WRONG_SESSION_KIND",
        kind === "agent"
          ? "agent sessions take no input: send the agent a prompt (POST .../prompt, switchboard prompt)"
          : `${kind} sessions take no input`,
      );
    case "signal":
      return new SwitchboardError("WRONG_SESSION_KIND", `${kind} sessions take no signals`);
    case "resize":
      return new SwitchboardError(
        "WRONG_SESSION_KIND",
        kind === "terminal" && !record.pty
          ? "only PTY sessions can be resized; this one uses pipes"
          : "only PTY sessions can be resized",
      );
    case "prompt":
      return new SwitchboardError("WRONG_SESSION_KIND", `only agent sessions take prompts; this is a ${kind} session`);
    case "abort":
      return new SwitchboardError("WRONG_SESSION_KIND", `only agent sessions have runs; this is a ${kind} session`);
    case "permission":
      return new SwitchboardError(
        "WRONG_SESSION_KIND",
        `only agent sessions ask for permission; this is a ${kind} session`,
      );
    case "choose":
      return new SwitchboardError(
        "WRONG_SESSION_KIND",
        `only agent sessions have modes and settings; this is a ${kind} session`,
      );
    case "elicitation":
      return new SwitchboardError("WRONG_SESSION_KIND", `only agent sessions ask questions; this is a ${kind} session`);
    case "policy":
      return new SwitchboardError(
        "WRONG_SESSION_KIND",
        `only agent sessions have a permission policy; this is a ${kind} session`,
      );
    case "seen":
      return new SwitchboardError("WRONG_SESSION_KIND", `${kind} sessions never need anyone's attention`);
  }
}

/**
 * Whom a session is made for: the owner's principal id (`token:NAME`, ...) and the name to show.
 * Without an id only for a child of a session stored before principal ids, which inherits its owner.
 */
export interface SessionOwner {
  id: string | undefined;
  name: string;
}

/** The owner of `record`, for the sessions made on its behalf (an agent's terminals). */
export function ownerOf(record: Pick<SessionRecord, "owner" | "ownerId">): SessionOwner {
  return { id: record.ownerId, name: record.owner };
}

/** Who counts as one owner (`limits.sessionsPerToken`, a message key's session): its principal id, or (stored before them) its name, marked as such. */
export function ownerKey(owner: SessionOwner): string {
  return owner.id ?? `name:${owner.name}`;
}

/** {@link ownerKey} of `record`'s owner. */
export function ownerKeyOf(record: Pick<SessionRecord, "owner" | "ownerId">): string {
  return ownerKey(ownerOf(record));
}

/** What is persisted about a session besides its log. */
export interface SessionRecord {
  id: string;
  kind: SessionKind;
  name: string | null;
  /** The owner's name, to show (and what owned a session stored before principal ids). */
  owner: string;
  /** The owner's principal id: what ownership compares (auth.ts `owns`). Absent on a session stored before them. */
  ownerId?: string | undefined;
  state: SessionState;
  command: string[] | null;
  cwd: string | null;
  pty: boolean;
  cols: number | null;
  rows: number | null;
  pid: number | null;
  /** When `pid` started (`processStartTime`): tells the process from a later one with its pid. */
  pidStart?: number | null;
  exitCode: number | null;
  signal: string | null;
  createdAt: number;
  endedAt: number | null;
  parent: string | null;
  agent: string | null;
  /**
   * Who held the control lease when the record was last persisted. The lease lives in the gateway
   * process only: a session that outlives it (a stream) has a lease the record still names ended
   * in its log at the next start ({@link Session.endEarlierGatewayLease}).
   */
  leaseHolder?: Actor | null;
  /** A terminal session whose process runs under a holder (holders.ts): which one. */
  holder?: HolderRef | null;
  /**
   * An agent session's `agentState` (SessionInfo), kept with the record so that a restart and a
   * cluster copy show it without reading the log.
   */
  agentState?: AgentState;
  /** Why the session needs someone (SessionInfo `attention`), as its last `attention` event said. */
  attention?: Attention | undefined;
  /** The git worktree the session was created in (its cwd), kept until the session is removed (worktree.ts). */
  worktree?: SessionWorktree | undefined;
}

/** See {@link Session.shutdown}. */
export interface ShutdownOptions {
  endHeld?: boolean;
}

export interface SessionContext {
  clock: Clock;
  autoReleaseAfterMs: number;
  /** See ControlLease (default DEFAULT_RECONNECT_GRACE_MS). */
  reconnectGraceMs?: number;
  /** Persists the record (queued with the log's group commit). */
  save(session: PersistedSession): void;
  /**
   * Commits what is queued (records among it) before it returns: what must be durable before the
   * gateway acts on it (an agent's answer, held-turn.ts). Absent: nothing waits.
   */
  flush?: () => void;
  /** Told whenever something shown in the session list changed. */
  changed(session: Session): void;
  /** Where terminal processes run under holders, so they outlive the gateway; absent: in the gateway. */
  holders?: Holders;
  /** `sessions.quietAfterMs`: a PTY session quiet this long after output needs someone (`quiet`); absent: never. */
  quietAfterMs?: number | undefined;
}

/** `text` as an attention carries it: one line of visible characters, at most ATTENTION_TEXT_CHARS. */
function attentionText(text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ").trim();
  const chars = Array.from(flat);
  return chars.length > ATTENTION_TEXT_CHARS ? `${chars.slice(0, ATTENTION_TEXT_CHARS - 1).join("")}…` : flat;
}

/** The most watcher names a session summary lists (`viewers` still counts them all). */
export const WATCHER_NAMES_MAX = 20;

/**
 * A session: an id, a kind, an append-only log and, for terminals and agents, something
 * running. Access rules and the control lease are checked by the server before these
 * methods are called; the methods check only what the session itself can know (state, kind).
 */
export abstract class Session {
  readonly log: SessionLog;
  readonly record: SessionRecord;
  readonly lease: ControlLease;
  lastActivityAt: number;
  /** The newest output, for the list's last line (terminal sessions feed it; agents show their answer). */
  protected readonly outputTail = new LastLine();
  /** Who watches (subscriptions, terminal sockets, SSE streams), by token name, with how many each. */
  private readonly watchers = new Map<string, number>();
  protected readonly ctx: SessionContext;
  /** Its entry in `GET /v1/sessions`, kept between changes (list-summary.ts). */
  private readonly summary = new ListSummary();
  private readonly listedAt: ListPositions = { head: 0, first: 0, outputBytes: 0, lastActivityAt: 0, tailPushes: 0 };
  private readonly endWaiters: Array<() => void> = [];
  private readonly stopWaiters: Array<() => void> = [];
  private readonly leaseListeners = new Set<(change: LeaseChange) => void>();
  private readonly removeListeners = new Set<() => void>();
  private _removed = false;
  /** The session ended and its final event is not published (durable) yet: it is still shown running. */
  private endPending = false;

  constructor(record: SessionRecord, log: SessionLog, ctx: SessionContext) {
    this.record = record;
    this.log = log;
    this.ctx = ctx;
    this.lastActivityAt = record.endedAt ?? record.createdAt;
    this.lease = new ControlLease(
      ctx.clock,
      ctx.autoReleaseAfterMs,
      (change) => this.handleLeaseChange(change),
      ctx.reconnectGraceMs,
    );
  }

  get id(): string {
    return this.record.id;
  }

  get running(): boolean {
    return this.record.state === "running";
  }

  /** How many subscriptions, terminal sockets and SSE streams watch the session. */
  get viewers(): number {
    let n = 0;
    for (const count of this.watchers.values()) n += count;
    return n;
  }

  /** The token names watching it now. */
  watcherNames(): IterableIterator<string> {
    return this.watchers.keys();
  }

  /** Counts `name` as watching until the returned function is called (once; later calls do nothing). */
  watch(name: string): () => void {
    this.demand();
    this.watchers.set(name, (this.watchers.get(name) ?? 0) + 1);
    this.summary.changed();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.watchers.get(name) ?? 1) - 1;
      if (left > 0) this.watchers.set(name, left);
      else this.watchers.delete(name);
      this.summary.changed();
    };
  }

  /** The session was removed (its log deleted): it is no longer listed and nothing may read it. */
  get removed(): boolean {
    return this._removed;
  }

  /**
   * Observes the session's removal: consumers end what they serve of it (a `reset` with reason
   * `deleted`, close 4004). Returns the function that stops observing.
   */
  onRemoved(listener: () => void): () => void {
    this.removeListeners.add(listener);
    return () => this.removeListeners.delete(listener);
  }

  /** Called by the session manager when it forgets an ended session: tells its consumers. */
  markRemoved(): void {
    if (this._removed) return;
    this._removed = true;
    this.dispose();
    const listeners = [...this.removeListeners];
    this.removeListeners.clear();
    for (const listener of listeners) listener();
  }

  /** Resolves once the session has ended (exit or lost) and its last event is published in the log (durable). */
  ended(): Promise<void> {
    if (!this.running && !this.endPending) return Promise.resolve();
    return new Promise((resolve) => this.endWaiters.push(resolve));
  }

  /**
   * Resolves once the session has ended and its final event is appended, published or not (a
   * fenced node's never is): nothing of it runs any more.
   */
  stopped(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.stopWaiters.push(resolve));
  }

  info(): SessionInfo {
    const r = this.record;
    // The end shows once the final event is readable: a client that sees `exited` finds the exit in the log.
    const ending = this.endPending;
    return {
      id: r.id,
      kind: r.kind,
      name: r.name,
      state: ending ? "running" : r.state,
      owner: r.owner,
      ...(r.ownerId !== undefined ? { ownerId: r.ownerId } : {}),
      command: r.command,
      cwd: r.cwd,
      pty: r.pty,
      cols: r.cols,
      rows: r.rows,
      pid: r.pid,
      exitCode: ending ? null : r.exitCode,
      signal: ending ? null : r.signal,
      createdAt: r.createdAt,
      endedAt: ending ? null : r.endedAt,
      head: this.log.head,
      first: this.log.first,
      outputBytes: this.log.outputBytes,
      viewers: this.viewers,
      watchers: [...this.watchers.keys()].sort().slice(0, WATCHER_NAMES_MAX),
      lastLine: this.lastLine(),
      controller: this.lease.holder?.actor.name ?? null,
      ...(this.lease.holder?.actor.via !== undefined ? { controllerVia: this.lease.holder.actor.via } : {}),
      parent: r.parent,
      agent: r.agent,
      run: this.runInfo(),
      lastActivityAt: this.lastActivityAt,
      ...(r.agentState !== undefined ? { agentState: r.agentState } : {}),
      ...(r.attention !== undefined ? { attention: r.attention } : {}),
      ...(r.worktree !== undefined ? { worktree: r.worktree } : {}),
    };
  }

  /**
   * Its entry in `GET /v1/sessions`, `listedJson(info())` as UTF-8, serialised again only when
   * something it shows changed (list-summary.ts); an agent's at each list ({@link summaryKept}).
   */
  listEntry(): Buffer {
    if (!this.summaryKept) return Buffer.from(listedJson(this.info()));
    // Read into one object of its own: a list of 1,000 allocates nothing per quiet session.
    const { log, listedAt } = this;
    listedAt.head = log.head;
    listedAt.first = log.first;
    listedAt.outputBytes = log.outputBytes;
    listedAt.lastActivityAt = this.lastActivityAt;
    listedAt.tailPushes = this.outputTail.pushes;
    return this.summary.entry(listedAt, this);
  }

  /**
   * Whether {@link info} changes only as the session says ({@link changed}, {@link shownChanged})
   * or its list positions move, so its list entry may be kept between changes.
   */
  protected get summaryKept(): boolean {
    return true;
  }

  /** Something its info shows changed: its list entry is taken again, and the list's observers are told. */
  protected changed(): void {
    this.summary.changed();
    this.ctx.changed(this);
  }

  /** Something its info shows changed that the list's observers need not hear of: its list entry is taken again. */
  protected shownChanged(): void {
    this.summary.changed();
  }

  /**
   * The session needs someone for `reason`: logged as an `attention` event, kept in the record and
   * shown in its info. The same reason and text again changes nothing (a bell loop logs one event).
   */
  setAttention(reason: AttentionReason, text?: string): void {
    if (!this.running || this._removed) return;
    const current = this.record.attention;
    const shown = text === undefined ? undefined : attentionText(text);
    if (current !== undefined && current.reason === reason && current.text === shown) return;
    const attention: Attention = {
      reason,
      ...(shown !== undefined ? { text: shown } : {}),
      since: this.ctx.clock.now(),
    };
    this.record.attention = attention;
    this.log.append({ type: "attention", attention });
    this.persist();
    this.changed();
  }

  /** Its worktree was removed (`DELETE … removeWorktree=true`): the record keeps when, to show. */
  worktreeRemoved(at: number): void {
    if (this.record.worktree === undefined || this._removed) return;
    this.record.worktree = { ...this.record.worktree, removedAt: at };
    this.persist();
    this.changed();
  }

  /** A viewer with control looked at the session (`POST .../seen`): its attention ends. */
  seen(by: Actor): void {
    this.clearAttention(by);
  }

  /**
   * Someone with control looked or typed (`by`), or the reason is gone (no `by`: an agent's request
   * was answered): the attention ends. `only`: ends it only while it is one of these reasons.
   */
  clearAttention(by?: Actor, only?: readonly AttentionReason[]): void {
    const current = this.record.attention;
    if (current === undefined || this._removed) return;
    if (only !== undefined && !only.includes(current.reason)) return;
    this.record.attention = undefined;
    if (this.running) this.log.append({ type: "attention", attention: null, ...(by !== undefined ? { by } : {}) });
    this.persist();
    this.changed();
  }

  protected lastLine(): string | null {
    return this.outputTail.value();
  }

  protected runInfo(): SessionInfo["run"] {
    return null;
  }

  /** Ends the session: terminates its process (TERM, grace, KILL) or closes its stream. */
  abstract terminate(by: Actor): Promise<void>;

  /**
   * What the gateway does with this session when it shuts down: processes are terminated (a held
   * one runs on under its holder unless `endHeld`: a stop that ends them, or a fenced session).
   */
  async shutdown(by: Actor, _options: ShutdownOptions = {}): Promise<void> {
    if (this.running) await this.terminate(by);
  }

  /** Releases resources without touching the log (gateway shutdown). */
  dispose(): void {
    this.lease.dispose();
    this.shownChanged();
  }

  /**
   * Gateway shutdown, once {@link shutdown} is done: a session that stays running (a stream) keeps
   * no control lease, since every holder's connection goes with the gateway, so its log says so
   * (`control disconnected`), or it would name the holder forever.
   */
  endLease(): void {
    const holder = this.lease.holder;
    if (holder !== null) this.lease.release(holder.key, "disconnected");
  }

  /**
   * At start, for a session restored running: the lease its record names ended with the gateway
   * that granted it (killed before it could say so, see {@link endLease}). Says so in the log.
   */
  endEarlierGatewayLease(): void {
    const previous = this.record.leaseHolder;
    if (previous === undefined || previous === null || !this.running) return;
    this.log.append({ type: "control", action: "disconnected", holder: null, previous });
    this.record.leaseHolder = null;
    this.persist();
  }

  /** Throws SESSION_NOT_RUNNING unless the session is running. */
  assertRunning(): void {
    if (!this.running)
      throw new SwitchboardError("SESSION_NOT_RUNNING", `session ${this.id} has ended (${this.record.state})`);
  }

  protected touch(): void {
    this.lastActivityAt = this.ctx.clock.now();
  }

  /** Persists the record. */
  persist(): void {
    // A removed session's record is deleted: writing it again would bring it back at the next start.
    if (this._removed) return;
    const { id, kind, state, createdAt, ...meta } = this.record;
    this.ctx.save({ id, kind, state, createdAt, meta: { ...meta, outputBytes: this.log.appendedOutputBytes } });
  }

  /**
   * At start, for a session restored running: takes over its process from the holder an earlier
   * gateway left it under (terminal sessions). False: there is none, and the session is lost.
   */
  adoptHeld(): boolean {
    return false;
  }

  /**
   * Something needs the session's process now (a viewer, a screen): one restored at start whose
   * holder is not taken over yet is taken over at once, ahead of the background (terminal sessions).
   */
  demand(): void {}

  /**
   * A viewer resumes at output byte `offset`, past what the log holds: a promise that settles once
   * it may be there (then ask the log again), or undefined when it cannot come (the caller's error).
   * Only terminal sessions whose log shows output before it is durable have such viewers.
   */
  outputComing(_offset: number): Promise<void> | undefined {
    return undefined;
  }

  /** Marks a session whose process is gone without an exit status (e.g. the gateway died under it). */
  markLost(reason: string): void {
    this.finish("lost", null, null, reason);
  }

  /** Marks the session ended: appends its final event, persists, wakes waiters. */
  protected finish(
    state: "exited" | "lost",
    exitCode: number | null,
    signal: string | null,
    reason?: string,
  ): SessionEvent | undefined {
    if (!this.running) return undefined;
    this.record.state = state;
    this.record.exitCode = exitCode;
    this.record.signal = signal;
    this.record.endedAt = this.ctx.clock.now();
    // An ended session needs nobody: its end event says what happened.
    this.record.attention = undefined;
    const last =
      state === "exited"
        ? this.log.append({ type: "exit", exitCode, signal })
        : this.log.append({ type: "lost", reason: reason ?? "lost" });
    this.log.markEnded();
    // The lease ends with the session; the end says so in the log.
    this.lease.dispose();
    this.record.leaseHolder = null;
    this.touch();
    this.persist();
    for (const wake of this.stopWaiters.splice(0)) wake();
    this.endPending = true;
    // Its attention and controller are gone now; its end shows once published (settled, below).
    this.shownChanged();
    const settled = () => {
      this.endPending = false;
      if (!this._removed) this.changed();
      for (const wake of this.endWaiters.splice(0)) wake();
    };
    // Refused when the end is never written (removed, or fenced in cluster mode): nobody waits on.
    this.log.whenPublished(last.seq).then(settled, settled);
    return last;
  }

  private handleLeaseChange(change: LeaseChange): void {
    // Its controller shows in the list whether or not the change is logged.
    this.shownChanged();
    if (!this.running) return;
    this.log.append({
      type: "control",
      action: change.action,
      holder: change.holder?.actor ?? null,
      previous: change.previous?.actor ?? null,
    });
    // Persisted with the event, for a start after a crash to end it (endEarlierGatewayLease).
    this.record.leaseHolder = change.holder?.actor ?? null;
    this.persist();
    this.changed();
    this.tellLeaseListeners(change);
  }

  /** Tells the observers of {@link onLeaseChange} of a change (a copy, of one its owner logged). */
  protected tellLeaseListeners(change: LeaseChange): void {
    this.leaseListeners.forEach((l) => l(change));
  }

  /** Observes control changes (connections use it to tell a holder it lost control). */
  onLeaseChange(listener: (change: LeaseChange) => void): () => void {
    this.leaseListeners.add(listener);
    return () => this.leaseListeners.delete(listener);
  }
}
