/**
 * Where a session is, as this node sees it, and what that lets a caller do with it: run here, or
 * a copy of another node's (cluster mode, docs/cluster.md). The one place outside the cluster
 * room that asks `SessionManager.copyOf`; routes, frames, steering and push ask a
 * {@link Resolution} instead (test/architecture/copy-budget.test.ts holds the budget).
 */
import type { SwitchboardError } from "../../protocol/index.js";
import type { RemoteSession } from "../../sessions/remote-session.js";
import type { Session, SteerOp } from "../../sessions/session.js";
import type { SessionManager } from "../../sessions/session-manager.js";

/** What the resolver reads of the session manager. */
export type CopyLookup = Pick<SessionManager, "copyOf">;

/** Awaited where nothing is to wait for: one microtask, as awaiting nothing takes. */
const HELD: Promise<void> = Promise.resolve();

/**
 * A session resolved on this node. For one it runs (or does not know) every wait is over at
 * once, nothing is forwarded and steering is its own to check; for a copy of another node's,
 * reads wait for the copy (bounded by REMOTE_CATCH_UP_MS), steering goes to the owner.
 */
export class Resolution {
  constructor(private readonly copy: RemoteSession | undefined) {}

  /** The node that runs it, when another does; undefined when this node runs it (or does not know it). */
  get owner(): string | undefined {
    return this.copy?.nodeId;
  }

  /** A caller (`by`: its token name) asks for it: a copy is kept up for a while and brought up now. */
  want(by: string): void {
    this.copy?.want(by);
  }

  /** Resolves once a copy holds what Redis held when called (at once for a session run here). */
  current(): Promise<void> {
    return this.copy?.current() ?? HELD;
  }

  /** Resolves once this node holds seq `seq` of it (a copy waits for it, bounded; here at once). */
  reach(seq: number): Promise<void> {
    return this.copy?.reach(seq) ?? HELD;
  }

  /** As {@link reach}, for an output byte offset (`/ws/session?since=`). */
  reachOutput(offset: number): Promise<void> {
    return this.copy?.reachOutput(offset) ?? HELD;
  }

  /**
   * A read from seq `seq` waits for this node to hold it ({@link reach}) before it starts: a copy
   * behind it. False for a session run here: a position past its head is the caller's error.
   */
  behind(seq: number, session: Session): boolean {
    return this.copy !== undefined && seq > session.log.head;
  }

  /** As {@link behind}, for an output byte offset ({@link reachOutput}). */
  behindOutput(offset: number, session: Session): boolean {
    return this.copy !== undefined && offset > session.log.outputBytes;
  }

  /** Why this node may not steer it: its owner runs it (WRONG_SESSION_KIND naming the node); undefined here. */
  steerRefusal(op: SteerOp): SwitchboardError | undefined {
    return this.copy?.refusal(op);
  }
}

/** A session (or its id) as this node holds it; see {@link Resolution}. */
export function resolveSession(sessions: CopyLookup, session: Session | string | undefined): Resolution {
  const copy = sessions.copyOf(session);
  return copy === undefined ? HERE : new Resolution(copy);
}

/** Every session this node runs resolves alike: one instance, nothing made per keystroke. */
const HERE = new Resolution(undefined);
