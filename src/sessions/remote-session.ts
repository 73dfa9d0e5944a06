import type { Timer } from "../core/clock.js";
import type { LeaseChange, LeaseHolder } from "../core/control-lease.js";
import { LAST_LINE_TAIL_BYTES } from "../core/last-line.js";
import { OutputEntry } from "../log/output-entry.js";
import type { SessionLog } from "../log/session-log.js";
import type { StoredEntry } from "../log/store.js";
import { SwitchboardError } from "../protocol/index.js";
import type { Actor, EventOf } from "../protocol/index.js";
import { Session } from "./session.js";
import type { SessionContext, SessionRecord, SteerOp } from "./session.js";

/**
 * How long a request naming a position past this node's copy of a remote session waits for the
 * copy to get there (a viewer that read up to it on the owner and resumes here) before it is
 * answered as a position past the head.
 */
export const REMOTE_CATCH_UP_MS = 2_000;

/**
 * A session another node runs (cluster mode, see docs/cluster.md): this node lists it and
 * serves its history and live stream from its copy of the shared log, and steers nothing of it.
 */
export class RemoteSession extends Session {
  /** Asks for the copy to be brought up to Redis now (set by the cluster mirror). */
  fillNow: (() => void) | undefined;

  /** The node that runs it (owns its log); another one once that node was taken over. */
  private owner: string;

  constructor(record: SessionRecord, log: SessionLog, ctx: SessionContext, nodeId: string) {
    super(record, log, ctx);
    this.owner = nodeId;
    log.markCopy(() => this.elsewhere("be appended to"));
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
    if (entry instanceof OutputEntry) {
      if (!entry.binary) this.outputTail.push(entry.bytes);
    } else if (entry.type === "chat.final") {
      const text = (JSON.parse(entry.json) as { text?: unknown }).text;
      if (typeof text === "string") this.outputTail.push(`\n${text.slice(-LAST_LINE_TAIL_BYTES)}`);
    } else if (entry.type === "control") {
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
   * Resolves once this node's copy holds `seq`, or after {@link REMOTE_CATCH_UP_MS}: a viewer
   * that saw `seq` on another node gets the same answer here.
   */
  reach(seq: number): Promise<void> {
    return this.waitFor(() => seq <= this.log.head);
  }

  /** As {@link reach}, for a byte offset of the output (`/ws/session/:id?since=`). */
  reachOutput(offset: number): Promise<void> {
    return this.waitFor(() => offset <= this.log.outputBytes);
  }

  private async waitFor(reached: () => boolean): Promise<void> {
    if (reached() || this.log.closed) return;
    this.fillNow?.();
    let timer: Timer | undefined;
    let unsubscribe: (() => void) | undefined;
    await new Promise<void>((resolve) => {
      timer = this.ctx.clock.setTimeout(resolve, REMOTE_CATCH_UP_MS);
      // Every copied entry is published to the log's listeners once the replica holds it.
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
    this.ctx.changed(this);
  }
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
