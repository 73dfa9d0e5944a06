// Whose a session is, as this node sees it, as a closed union, and the moves between those
// states. In cluster mode SessionOwnership (src/cluster/session-ownership.ts) keeps one per session
// and names each move (the mirror's, the takeover's, and what the event store's send queue learns);
// everything else asks it (SessionManager.ownership, .copyOf), so the order of calls elsewhere cannot
// leave two owners or none. A gateway without a cluster owns every session.
import { InternalError } from "../protocol/errors.js";

/**
 * A session's ownership on this node ({@link OWNERSHIP_MOVES} lists the moves):
 * - `owned`: this node appends it to Redis under `epoch` (undefined: a new session not yet claimed);
 * - `copy`: `owner` appends it; this node copies what Redis holds into its replica;
 * - `adopting`: this node raised the epoch to `epoch` (a takeover, or its own sessions after a
 *   restart) and brings its replica up to Redis's head; nothing is appended until it is `owned`;
 * - `fenced`: Redis refused this node's append under an older epoch: what it appends is dropped,
 *   its process is being stopped, and it becomes a copy of `owner` (or is removed, `owner` "").
 */
export type Ownership =
  | { at: "owned"; epoch: number | undefined }
  | { at: "copy"; owner: string }
  | { at: "adopting"; epoch: number; from: string }
  | { at: "fenced"; owner: string; error: Error };
// A session whose process a holder keeps outside the gateway (src/sessions/holders.ts) is `owned`
// today; one that outlives its node would be a fifth state, `held`, with its own row below.
export type OwnershipAt = Ownership["at"];

/** A session this node runs and nobody else tracks (no cluster, or not yet written to Redis). */
export const OWNED_HERE: Ownership = { at: "owned", epoch: undefined };

/**
 * This node shows the session from another node's log and runs nothing of it: `copy`, and
 * `adopting` until the copy holds Redis's head. A `fenced` session still runs here while its
 * process is stopped, so it is not one.
 */
export function shownAsCopy(state: Ownership): boolean {
  return state.at === "copy" || state.at === "adopting";
}

/** The moves a session's ownership makes; any other is a bug, and {@link Ownerships.move} throws on it. */
export const OWNERSHIP_MOVES: Readonly<Record<OwnershipAt, readonly OwnershipAt[]>> = {
  // Fenced by a refused append or an epoch check; claimed (epoch set) on its first append.
  owned: ["owned", "fenced"],
  // Won a takeover; taken over by a third node (another owner named).
  copy: ["adopting", "copy"],
  // Adopted; raised again by someone else meanwhile.
  adopting: ["owned", "fenced"],
  // Its process stopped: it follows the new owner.
  fenced: ["copy"],
};

/** Every session's {@link Ownership} on this node; sessions it has not seen have none. */
export class Ownerships {
  private readonly states = new Map<string, Ownership>();

  get(sessionId: string): Ownership | undefined {
    return this.states.get(sessionId);
  }

  /** Records a session this node sees for the first time (created here, or found in Redis). */
  begin(sessionId: string, state: Ownership): void {
    const now = this.states.get(sessionId);
    if (now !== undefined)
      throw new InternalError(`session ${sessionId} is ${now.at} on this node already: it cannot begin as ${state.at}`);
    this.states.set(sessionId, state);
  }

  /** Moves a session to `state`; throws on a move {@link OWNERSHIP_MOVES} does not list. */
  move(sessionId: string, state: Ownership): void {
    const now = this.states.get(sessionId);
    if (now === undefined || !OWNERSHIP_MOVES[now.at].includes(state.at))
      throw new InternalError(`session ${sessionId}: ownership cannot move from ${now?.at ?? "none"} to ${state.at}`);
    this.states.set(sessionId, state);
  }

  /** The session is gone (deleted, or dropped by Redis): this node forgets it in any state. */
  forget(sessionId: string): void {
    this.states.delete(sessionId);
  }

  /** The node that appends a session this node does not (copy, fenced: the new owner; adopting: none yet). */
  ownerOf(sessionId: string): string | undefined {
    const state = this.states.get(sessionId);
    return state?.at === "copy" || state?.at === "fenced" ? state.owner : undefined;
  }
}
