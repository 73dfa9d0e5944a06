import { PushAnswerBody, PushSubscriptionBody, PushUnsubscribeBody, SwitchboardError } from "../../protocol/index.js";
import type { GatewayCore } from "../context.js";
import type { RequestGuard } from "../http/guard.js";
import { signInOf } from "../identity/auth.js";
import { HTTP_HOLDER_PREFIX } from "../http/http-constants.js";
import { readJson, sendJson, validate } from "../http/http.js";
import type { Router } from "../http/router.js";
import { forwardToOwner, ownerElsewhere } from "../cluster/session-forwarding.js";
import type { SessionCall } from "../cluster/session-forwarding.js";
import { runSessionAction } from "./sessions.js";

/** A subscription body is an endpoint and two keys; an answer a token and a word. */
const PUSH_BODY_BYTES = 2048;

/**
 * `GET /v1/push/key`, `POST` and `DELETE /v1/push/subscriptions`, `POST /v1/push/test`: any
 * signed-in identity, for its own browsers.
 */
export function pushRoutes(router: Router, core: GatewayCore): void {
  router.add("GET", "/v1/push/key", (ctx) => {
    sendJson(ctx.res, 200, { publicKey: core.push.vapid.publicKey });
  });

  router.add("POST", "/v1/push/subscriptions", async (ctx) => {
    const body = validate(PushSubscriptionBody, await readJson(ctx.req, PUSH_BODY_BYTES, "a push subscription"));
    // A browser's subscription is its sign-in's: notified while it lasts, forgotten at its logout.
    core.push.subscriptions.add(ctx.identity.principal, signInOf(ctx.req), body, core.clock.now());
    core.logger.info(
      { by: ctx.identity.name, byId: ctx.identity.principal, host: new URL(body.endpoint).host },
      "push subscription added",
    );
    sendJson(ctx.res, 201, { ok: true });
  });

  router.add("POST", "/v1/push/test", (ctx) => {
    // The caller's own browser only: a sign-in's subscriptions, a bearer token's all of its principal's.
    const sent = core.push.test(ctx.identity.principal, signInOf(ctx.req));
    sendJson(ctx.res, 200, { sent });
  });

  router.add("DELETE", "/v1/push/subscriptions", async (ctx) => {
    const { endpoint } = validate(PushUnsubscribeBody, await readJson(ctx.req, PUSH_BODY_BYTES, "a push subscription"));
    sendJson(ctx.res, 200, { removed: core.push.subscriptions.remove(ctx.identity.principal, endpoint) });
  });
}

/**
 * `POST /v1/push/answer {token, action}`: a permission notification's Allow or Reject. The
 * one-time token is the credential (a service worker has neither the token nor the cookie's
 * key): it answers only the request it was made for, as the principal whose browser got it (by
 * principal id, never by name; while that browser's sign-in lasts),
 * through the same checks as `POST /v1/sessions/:id/permission`. A token that does not redeem
 * counts toward the address's slowdown, as a bad token does.
 */
export async function answerPushAction(
  core: GatewayCore,
  req: Parameters<typeof readJson>[0],
  res: Parameters<typeof sendJson>[0],
  guard: Pick<RequestGuard, "refuse" | "blocked">,
): Promise<void> {
  const body = validate(PushAnswerBody, await readJson(req, PUSH_BODY_BYTES, "a push answer"));
  const blocked = guard.blocked(req);
  if (blocked) throw blocked;
  const now = core.clock.now();
  const grant = core.push.actions.redeem(body.token, now);
  const identity = grant && core.tokens.byPrincipal(grant.principal);
  // The browser's sign-in ended (signed out, expired): its notifications' buttons went with it.
  const live = grant?.signIn === undefined || core.tokens.signedIn(grant.signIn, now);
  if (!grant || !identity || !live)
    throw guard.refuse(
      req,
      "this notification's buttons no longer answer (used, expired, the request was answered or the gateway restarted): open the session to answer",
      "PUSH_ACTION_INVALID",
    );
  const optionId = grant.options[body.action];
  if (optionId === undefined)
    throw new SwitchboardError(
      "INVALID_OPTION",
      `the request offers no ${body.action} option: open the session to answer`,
    );
  const call: SessionCall = {
    action: "permission",
    sessionId: grant.sessionId,
    identity,
    holderKey: `${HTTP_HOLDER_PREFIX}${identity.principal}`,
    body: { requestId: grant.requestId, optionId },
    query: "",
  };
  const owner = ownerElsewhere(core, grant.sessionId, identity);
  const answer = owner === undefined ? await runSessionAction(core, call) : await forwardToOwner(core, owner, call);
  core.logger.info(
    { by: identity.name, byId: identity.principal, session: grant.sessionId, action: body.action },
    "permission answered from a notification",
  );
  sendJson(res, answer.status, { ...(answer.body as object), sessionId: grant.sessionId, optionId });
}
