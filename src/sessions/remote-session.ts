import type { Timer } from "../core/clock.js";
import type { LeaseChange, LeaseHolder } from "../core/control-lease.js";
import { LAST_LINE_TAIL_BYTES, LastLine } from "../core/last-line.js";
import { OutputEntry } from "../log/output-entry.js";
import type { SessionLog } from "../log/session-log.js";
import type { StoredEntry } from "../log/store.js";
import { SwitchboardError } from "../protocol/index.js";
import type { Actor, EventOf, SessionInfo } from "../protocol/index.js";
import { Session } from "./session.js";
import type { SessionContext, SessionRecord, SteerOp } from "./session.js";

/**
 * How long a request naming a position past this node's copy of a remote session waits for the
 * copy to get there (a viewer that read up to it on the owner and resumes here) before it is
 * answered as a position past the head.
 */
export const REMOTE_CATCH_UP_MS = 2_000;

/**
 * How long a node keeps copying a remote session after a request for it (a read, a lookup), on top
 * of while a viewer follows it: a copy nobody here wants is not kept up (docs/cluster.md, "Copies
 * on demand").
 */
export const COPY_INTEREST_MS = 30_000;

/** Where the owner's log is and its last line, as the cluster mirror last read them from Redis. */
export interface SharedPosition {
  head: number;
  first: number;
  outputBytes: number;
  tail: LastLine;
  tailHead: number;
  tailAt: number;
}

export interface RemoteSessionOptions {
  record: SessionRecord;
  log: SessionLog;
  ctx: SessionContext;
  /** The node that runs it. */
  nodeId: string;
  /** Brings the copy up to what Redis holds now; resolves once done (the cluster mirror's fill). */
  fill: () => Promise<void>;
}

/**
 * A session another node runs (cluster mode, see docs/cluster.md; its ownership on this node is
 * `copy` or `adopting`, see SessionManager.copyOf): this node lists it and serves its history and
 * live stream from its copy of the shared log, and steers nothing of it.
 */
export class RemoteSession extends Session {
  private readonly fillNow: () => Promise<void>;
  /**
   * The mirror keeps the copy up with each notification (it holds what Redis announced, within a
   * round trip); false while nobody wanted it and the mirror kept only its record.
   */
  private keptUp = false;
  private wantedUntil = -Infinity;
  /** Token names that asked for it lately, until when (see {@link copyFor}). */
  private readonly wantedBy = new Map<string, number>();

  /** The node that runs it (owns its log); another one once that node was taken over. */
  private owner: string;

  constructor(o: RemoteSessionOptions) {
    super(o.record, o.log, o.ctx);
    this.owner = o.nodeId;
    this.fillNow = o.fill;
    o.log.markCopy(() => this.elsewhere("be appended to"));
  }

  /** See {@link keptUp}: whether the mirror's last fill copied its entries. */
  get kept(): boolean {
    return this.keptUp;
  }

  /** The mirror copied its entries up to what Redis announced ({@link kept}). */
  markKept(): void {
    this.keptUp = true;
    this.shownChanged();
  }

  /** The mirror keeps only its record and position from now on ({@link showShared}). */
  markRecordOnly(): void {
    this.keptUp = false;
    this.shownChanged();
  }

  get nodeId(): string {
    return this.owner;
  }

  /** Redis names another owner (it took the session over): steering goes there from now on. */
  movedTo(nodeId: string): void {
    this.owner = nodeId;
  }

  private elsewhere(what: string): SwitchboardError {
    return new SwitchboardError(
      "WRONG_SESSION_KIND",
      `session ${this.id} runs on node ${this.nodeId}: this node shows it but cannot ${what} yet; send that to node ${this.nodeId}`,
    );
  }

  /**
   * An entry copied from the owner's log: output and final answers feed the list's last line,
   * as the owner's own session does (the owner shows an agent's answer while it streams too).
   */
  copied(entry: StoredEntry): void {
    if (lastLineOf(entry, this.outputTail)) return;
    if (entry.type === "control") {
      // The owner's lease changed: a connection here that held it through the owner (a forwarded
      // `control`) is told it lost it, CONTROL_LOST or close 4001, as the owner's own are.
      const change = leaseChangeOf(JSON.parse(entry.json) as EventOf<"control">);
      if (change !== undefined) this.tellLeaseListeners(change);
    }
  }

  /** Why this node cannot steer it (see `steerTarget`): its owner runs it. */
  refusal(op: SteerOp): SwitchboardError {
    return this.elsewhere(`take ${op}`);
  }

  async terminate(_by: Actor): Promise<void> {
    throw this.elsewhere("end it");
  }

  /** Nothing of it runs here. */
  override async shutdown(_by: Actor): Promise<void> {}

  /** Its owner writes its record. */
  override persist(): void {}

  override endEarlierGatewayLease(): void {}

  /**
   * While the copy is not kept: where the owner's log is and its last line, as the mirror last
   * read them from Redis (shown in the session's info instead of the copy's own).
   */
  get shown(): SharedPosition | undefined {
    return this.sharedAt;
  }

  private sharedAt: SharedPosition | undefined;

  override info(): SessionInfo {
    const info = super.info();
    const at = this.shown;
    if (this.keptUp || at === undefined) return info;
    return { ...info, head: at.head, first: at.first, outputBytes: at.outputBytes, lastLine: at.tail.value() };
  }

  /**
   * Shows the owner's position without copying its entries, and the last line of `tail`, its
   * newest entries up to `at.head` (undefined: the last line read before is kept).
   */
  showShared(at: { head: number; first: number; outputBytes: number }, tail?: readonly StoredEntry[]): void {
    this.shownChanged();
    const shown = this.sharedAt;
    if (tail === undefined && shown !== undefined) {
      this.sharedAt = { ...shown, ...at };
      return;
    }
    const lastLine = new LastLine();
    for (const entry of tail ?? []) lastLineOf(entry, lastLine);
    this.sharedAt = { ...at, tail: lastLine, tailHead: at.head, tailAt: this.ctx.clock.now() };
  }

  /** The mirror copies its entries: someone here follows it or asked for it lately. */
  get copying(): boolean {
    return this.log.watched || this.ctx.clock.now() < this.wantedUntil;
  }

  /**
   * A request names it (`by`: the caller's token name): the copy is kept up for
   * {@link COPY_INTEREST_MS}, and brought up now if it was not.
   */
  want(by?: string): void {
    this.wantedUntil = this.ctx.clock.now() + COPY_INTEREST_MS;
    if (by !== undefined) this.wantedBy.set(by, this.wantedUntil);
    if (!this.keptUp) void this.fillNow();
  }

  /** The token names its copy work is charged to: who watches it, and who asked for it lately. */
  copyFor(): string[] {
    const now = this.ctx.clock.now();
    const names = new Set(this.watcherNames());
    for (const [name, until] of this.wantedBy) {
      if (until <= now) this.wantedBy.delete(name);
      else names.add(name);
    }
    return [...names];
  }

  /**
   * Resolves once the copy holds what Redis held when called (at most {@link REMOTE_CATCH_UP_MS}):
   * at once for a copy the mirror keeps up, after a catch-up for one it did not.
   */
  async current(): Promise<void> {
    this.want();
    if (this.keptUp || this.log.closed) return;
    let timer: Timer | undefined;
    await Promise.race([
      this.fillNow(),
      new Promise<void>((resolve) => (timer = this.ctx.clock.setTimeout(resolve, REMOTE_CATCH_UP_MS))),
    ]);
    timer?.cancel();
  }

  /**
   * Resolves once this node's copy holds `seq` and what Redis held when called, or after
   * {@link REMOTE_CATCH_UP_MS}: a viewer that saw `seq` on another node gets the same answer here.
   */
  async reach(seq: number): Promise<void> {
    await this.current();
    await this.waitFor(() => seq <= this.log.head);
  }

  /** As {@link reach}, for a byte offset of the output (`/ws/session/:id?since=`). */
  async reachOutput(offset: number): Promise<void> {
    await this.current();
    await this.waitFor(() => offset <= this.log.outputBytes);
  }

  private async waitFor(reached: () => boolean): Promise<void> {
    if (reached() || this.log.closed) return;
    void this.fillNow();
    let timer: Timer | undefined;
    let unsubscribe: (() => void) | undefined;
    await new Promise<void>((resolve) => {
      timer = this.ctx.clock.setTimeout(resolve, REMOTE_CATCH_UP_MS);
      // Every copied entry is published to the log's listeners once copied (Redis holds it).
      unsubscribe = this.log.subscribe(() => {
        if (reached()) resolve();
      });
    });
    timer?.cancel();
    unsubscribe?.();
  }

  /** Takes the record as its owner last wrote it (its state, exit status, name). */
  update(record: SessionRecord): void {
    if (JSON.stringify(record) === JSON.stringify(this.record)) return;
    Object.assign(this.record, record);
    if (!this.running) this.log.markEnded();
    this.changed();
  }
}

/** Adds what an entry shows in the list's last line (output, an agent's final answer); false for other entries. */
function lastLineOf(entry: StoredEntry, into: LastLine): boolean {
  if (entry instanceof OutputEntry) {
    if (!entry.binary) into.push(entry.bytes);
    return true;
  }
  if (entry.type !== "chat.final") return false;
  const text = (JSON.parse(entry.json) as { text?: unknown }).text;
  if (typeof text === "string") into.push(`\n${text.slice(-LAST_LINE_TAIL_BYTES)}`);
  return true;
}

/**
 * A logged `control` event as the lease change it records. Holders are keyed as the owner keyed
 * them: by connection id, or `http:<token name>` for an HTTP caller.
 */
function leaseChangeOf(event: EventOf<"control">): LeaseChange | undefined {
  const holderOf = (actor: Actor): LeaseHolder => ({ key: actor.connId ?? `http:${actor.name}`, actor });
  const holder = event.holder === null ? null : holderOf(event.holder);
  const previous = event.previous === null ? null : holderOf(event.previous);
  if (event.action === "acquired" && holder !== null) return { action: "acquired", holder, previous: null };
  if (event.action === "taken-over" && holder !== null && previous !== null)
    return { action: "taken-over", holder, previous };
  if (event.action !== "acquired" && event.action !== "taken-over" && previous !== null)
    return { action: event.action, holder: null, previous };
  // The owner logs none other: a change without the holders it needs tells no connection anything.
  return undefined;
}
