import {
  SHARE_EXPIRED_MESSAGE,
  SHARE_FRAGMENT_PREFIX,
  SHARE_REVOKED_MESSAGE,
  ShareRequest,
  SwitchboardError,
} from "../../protocol/index.js";
import type { ShareCreated } from "../../protocol/index.js";
import { sessionFor } from "../identity/access.js";
import { canSteer } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import type { Revocation } from "../ws/connection-counter.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { releaseRevokedLeases } from "../config/gateway-reload.js";
import { readOptionalJson, sendJson, validate } from "../http/http.js";
import type { ShareEnd } from "../identity/share-links.js";
import type { Router } from "../http/router.js";

/** A share request body holds a name, a TTL, a flag and a base URL: it needs no more than this. */
const SHARE_BODY_BYTES = 2048;

/** What a link's open connections are told, by why it ended (then 1008, or the end of an SSE stream). */
const SHARE_ENDED: Record<ShareEnd, Revocation> = {
  revoked: { code: "UNAUTHORIZED", message: SHARE_REVOKED_MESSAGE },
  expired: { code: "UNAUTHORIZED", message: SHARE_EXPIRED_MESSAGE },
};

/**
 * `POST /v1/sessions/:id/shares`, `GET /v1/sessions/:id/shares`,
 * `DELETE /v1/sessions/:id/shares/:shareId`: admins and the session's operators (whoever may
 * steer it); never a share link itself (`share-access.ts` refuses it before these run).
 */
export function shareRoutes(router: Router, core: GatewayCore): void {
  router.add("POST", "/v1/sessions/:id/shares", async (ctx) => {
    const session = mayShare(core, ctx);
    const body = validate(ShareRequest, (await readOptionalJson(ctx.req, SHARE_BODY_BYTES)) ?? {});
    const { share, token, synced } = core.shares.add({
      session: session.id,
      name: body.name,
      role: body.role,
      allowControl: body.allowControl,
      ttlMs: body.ttlMs,
      createdBy: ctx.identity.principal,
    });
    // Audit without the secret: who shared what, with which rights, until when.
    core.logger.info(
      {
        by: ctx.identity.name,
        byId: ctx.identity.principal,
        session: session.id,
        share: share.principal,
        name: share.name,
        allowControl: share.allowControl,
        expiresAt: share.expiresAt,
      },
      "share link made",
    );
    // Cluster mode: answered once every node can verify it, so the link opens on any node at once.
    await synced;
    const base = body.base ?? `${core.tls ? "https" : "http"}://${ctx.req.headers.host ?? "localhost"}`;
    const created: ShareCreated = {
      id: share.id,
      url: `${base}/${SHARE_FRAGMENT_PREFIX}${token}`,
      token,
      expiresAt: share.expiresAt,
      share,
    };
    sendJson(ctx.res, 201, created);
  });

  router.add("GET", "/v1/sessions/:id/shares", (ctx) => {
    const session = mayShare(core, ctx);
    sendJson(ctx.res, 200, { shares: core.shares.list(session.id) });
  });

  router.add("DELETE", "/v1/sessions/:id/shares/:shareId", (ctx) => {
    const session = mayShare(core, ctx);
    // Its connections end inside `remove` (the store's `ended`, wired to endShare).
    const share = core.shares.remove(session.id, ctx.params["shareId"]!);
    core.logger.info(
      { by: ctx.identity.name, byId: ctx.identity.principal, session: session.id, share: share.principal },
      "share link revoked",
    );
    sendJson(ctx.res, 200, share);
  });
}

/** The session of `ctx` when its caller may share it: an admin, or whoever may steer it and is no link. */
function mayShare(core: GatewayCore, ctx: RequestContext) {
  const session = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see");
  const { identity } = ctx;
  if (identity.share !== undefined || identity.role === "viewer" || !canSteer(identity, session.record))
    throw new SwitchboardError("FORBIDDEN", `${identity.name} (${identity.role}) may not share session ${session.id}`);
  return session;
}

/**
 * A link ended (revoked, or its time ran out): its WebSockets and event streams close at once,
 * its requests under way are cut, and the control lease it held over HTTP is freed (a lease held
 * by a connection ends with it). test/security/share-links.test.ts.
 */
export function endShare(core: GatewayCore, identity: Identity, why: ShareEnd): void {
  const connections = core.connections.revokeUnless((i) => i !== identity, SHARE_ENDED[why]);
  releaseRevokedLeases(core.sessions.list(), (principal) => principal !== identity.principal);
  core.push.subscriptions.forget((t) => t.principal === identity.principal);
  core.push.actions.forget((g) => g.principal === identity.principal);
  core.logger.info({ share: identity.principal, why, connections }, "share link ended");
}
