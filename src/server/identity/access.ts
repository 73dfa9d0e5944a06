import { SwitchboardError } from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import type { SessionManager } from "../../sessions/session-manager.js";
import { canSee, canSteer } from "./auth.js";
import { resolveSession } from "../cluster/session-resolver.js";
import type { Identity } from "./identity.js";
import { requireShareLease } from "./share-access.js";

/** `control`: may take or drop the control lease; `steer`: may steer now (a share link: only while holding it). */
export type Access = "see" | "control" | "steer";

/**
 * The session `id` if `identity` may see it (and steer it, for `"steer"`). A session the
 * caller may not see answers SESSION_NOT_FOUND exactly like one that does not exist, so its
 * existence does not leak; one it may see but not steer answers FORBIDDEN.
 */
export function sessionFor(sessions: SessionManager, identity: Identity, id: string, access: Access): Session {
  const session = sessions.get(id);
  if (!session || !canSee(identity, session.record)) {
    throw new SwitchboardError("SESSION_NOT_FOUND", `no session ${truncateId(id)}`);
  }
  if (access !== "see" && !canSteer(identity, session.record)) {
    throw new SwitchboardError(
      "FORBIDDEN",
      `${identity.name} (${identity.role}) may watch session ${session.id} but not steer it`,
    );
  }
  if (access === "steer") requireShareLease(identity, session);
  // A copy of another node's session is kept up while someone here asks for it (docs/cluster.md).
  resolveSession(sessions, session).want(identity.name);
  return session;
}

/** Brings a copy of another node's session up to what Redis holds before a read of its history. */
export async function currentCopy(sessions: SessionManager, session: Session): Promise<void> {
  await resolveSession(sessions, session).current();
}

/** Ids come from clients: never echo more than a bounded prefix. */
export function truncateId(id: string): string {
  return id.length > 64 ? `${id.slice(0, 64)}…` : id;
}
