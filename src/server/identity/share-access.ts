import { SwitchboardError } from "../../protocol/index.js";
import type { ShareScope } from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import type { Identity } from "./identity.js";

/**
 * The routes a share link may call (`METHOD PATH` as the router registers them), each on its own
 * session only when the path names one (`:id`). `GET /v1/sessions` lists that one session only
 * (`canSee`). Every other route answers FORBIDDEN to a link, whatever it is: an admin route, a
 * plugin's, another session's, or the share routes themselves (a link cannot mint links).
 * test/security/share-links.test.ts walks every registered route against this list.
 */
export const SHARE_READ_ROUTES: ReadonlySet<string> = new Set([
  "GET /v1/whoami",
  "POST /v1/logout",
  "GET /v1/sessions",
  "GET /v1/sessions/:id",
  "GET /v1/sessions/:id/events",
  "GET /v1/sessions/:id/turns",
  "GET /v1/sessions/:id/output",
  "GET /v1/sessions/:id/stream",
  "GET /v1/sessions/:id/screen",
  "GET /v1/sessions/:id/cast",
  "GET /v1/sessions/:id/transcript",
  "GET /v1/sessions/:id/changes",
  "GET /v1/sessions/:id/runs/:run/changes",
  "GET /v1/sessions/:id/runs/:run/patch",
]);

/**
 * What a link made with `allowControl` may call on top: taking the control lease when it is free,
 * and steering while it holds it ({@link requireShareLease}). Uploads, appends, deletes, resumes,
 * the permission policy and `seen` stay the owner's.
 */
export const SHARE_CONTROL_ROUTES: ReadonlySet<string> = new Set([
  "POST /v1/sessions/:id/control",
  "POST /v1/sessions/:id/input",
  "POST /v1/sessions/:id/signal",
  "POST /v1/sessions/:id/resize",
  "POST /v1/sessions/:id/prompt",
  "POST /v1/sessions/:id/abort",
  "POST /v1/sessions/:id/permission",
  "POST /v1/sessions/:id/elicitation",
  "POST /v1/sessions/:id/mode",
  "POST /v1/sessions/:id/config",
]);

/**
 * Throws FORBIDDEN unless the share link `share` may call `route` (`METHOD PATH`, the registered
 * pattern) with `params`. Another session's id is refused the same way whether it exists or not.
 */
export function checkShareRoute(share: ShareScope, route: string, params: Readonly<Record<string, string>>): void {
  const allowed = SHARE_READ_ROUTES.has(route) || (share.allowControl && SHARE_CONTROL_ROUTES.has(route));
  if (!allowed) throw new SwitchboardError("FORBIDDEN", `a share link opens its session only: ${route} is not for it`);
  const id = params["id"];
  if (id !== undefined && id !== share.session)
    throw new SwitchboardError("FORBIDDEN", "a share link opens its own session only");
}

/**
 * A share link steers only while it holds the session's control lease (taken with `control`
 * acquire when free): FORBIDDEN otherwise, so that it never types over the owner's shoulder.
 */
export function requireShareLease(identity: Identity, session: Session): void {
  if (identity.share === undefined) return;
  if (session.lease.holder?.actor.id === identity.principal) return;
  throw new SwitchboardError(
    "FORBIDDEN",
    `${identity.name} may steer session ${session.id} only while it holds control: acquire control when it is free`,
  );
}

/** A share link never takes control by force: FORBIDDEN for `force`. */
export function refuseShareForce(identity: Identity, force: boolean): void {
  if (identity.share !== undefined && force)
    throw new SwitchboardError("FORBIDDEN", `${identity.name} may take control only when it is free, never by force`);
}
