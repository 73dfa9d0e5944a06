/**
 * Whose each session is on a node in cluster mode, and the cluster's reasons to move it
 * (src/core/ownership.ts has the states and the moves allowed). The mirror moves a session to
 * `copy` when Redis names another owner, the takeover to `adopting`; the event store
 * (src/cluster/redis-store.ts) reports what its send queue learns (claimed, fenced) and where a
 * session it adopted or follows now stands. Everything else asks (SessionManager.ownership).
 */
import { Ownerships } from "../core/ownership.js";
import type { Ownership, OwnershipAt } from "../core/ownership.js";
import { InternalError } from "../protocol/errors.js";

export class SessionOwnership {
  private readonly states = new Ownerships();

  /** The session's ownership on this node (undefined: never seen here). */
  of(sessionId: string): Ownership | undefined {
    return this.states.get(sessionId);
  }

  /** The node that appends a session this node does not (copy, fenced: the new owner; adopting: none yet). */
  ownerOf(sessionId: string): string | undefined {
    return this.states.ownerOf(sessionId);
  }

  /** The session's entries come from Redis: `owner` appends them (a copy, or a copy whose owner changed). */
  mirror(sessionId: string, owner: string): void {
    const now = this.states.get(sessionId);
    if (now === undefined) this.states.begin(sessionId, { at: "copy", owner });
    else if (now.at === "copy") this.states.move(sessionId, { at: "copy", owner });
    // Adopting or owned: Redis named another owner since this node raised the epoch; its next
    // append is refused (FENCED) and it follows then, through the one fence path.
  }

  /**
   * This node raised the session's epoch to `epoch` (a takeover, or its own session after a
   * restart): it brings its replica up to Redis's head before it appends (see {@link adopted}).
   */
  adopting(sessionId: string, epoch: number, from: string): void {
    const state: Ownership = { at: "adopting", epoch, from };
    if (this.states.get(sessionId) === undefined) this.states.begin(sessionId, state);
    else this.states.move(sessionId, state);
  }

  /** The replica of a session being adopted holds Redis's head: owned under its epoch, returned. */
  adopted(sessionId: string): number {
    const state = this.states.get(sessionId);
    if (state?.at !== "adopting")
      throw new InternalError(`session ${sessionId} is ${state?.at ?? "unknown"}: not adopting`);
    this.states.move(sessionId, { at: "owned", epoch: state.epoch });
    return state.epoch;
  }

  /** A fenced session's process stopped: `owner` appends it from now on. */
  followed(sessionId: string, owner: string): void {
    this.states.move(sessionId, { at: "copy", owner });
  }

  /** Redis refused this node's append under a newer epoch (`owner` holds it now). */
  fenced(sessionId: string, owner: string, error: Error): void {
    this.states.move(sessionId, { at: "fenced", owner, error });
  }

  /** A session created here was made this node's in Redis under `epoch`. */
  claimed(sessionId: string, epoch: number): void {
    this.states.move(sessionId, { at: "owned", epoch });
  }

  /** Where a write of the session goes: a session first seen by a write was created here (owned, not yet claimed). */
  writing(sessionId: string): OwnershipAt {
    const state = this.states.get(sessionId);
    if (state !== undefined) return state.at;
    this.states.begin(sessionId, { at: "owned", epoch: undefined });
    return "owned";
  }

  /** The session is gone (deleted, or dropped by Redis): this node forgets it in any state. */
  forget(sessionId: string): void {
    this.states.forget(sessionId);
  }
}
