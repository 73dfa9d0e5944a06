import { SwitchboardError } from "../../protocol/index.js";
import type { SessionWorktree } from "../../protocol/index.js";
import { worktreeDiff, worktreeStatus } from "../../sessions/worktree.js";
import { sessionFor } from "../identity/access.js";
import type { Identity } from "../identity/identity.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { sendJson } from "../http/http.js";
import type { Router } from "../http/router.js";
import { forwardToOwner, ownerElsewhere } from "../cluster/session-forwarding.js";
import type { SessionAnswer, SessionCall } from "../cluster/session-forwarding.js";

/**
 * A worktree session's git state (docs/protocol.md, "Worktrees"): its branch, uncommitted changes
 * and commits ahead of the base, and its diff against the base. Read as the session's log is
 * (`see`): what the diff shows is what the agent's changes show. The worktree is on the machine
 * of the node that runs the session: another node forwards the read there
 * (test/gateway/worktree-sessions.test.ts, test/cluster/any-node-reads.test.ts).
 */
export function worktreeRoutes(router: Router, core: GatewayCore): void {
  const read = (action: "worktree" | "worktree-diff") => async (ctx: RequestContext) => {
    const call: SessionCall = {
      action,
      sessionId: ctx.params["id"]!,
      identity: ctx.identity,
      holderKey: ctx.holderKey,
      body: undefined,
      query: "",
    };
    const owner = ownerElsewhere(core, worktreeOf(core, ctx.identity, call.sessionId).sessionId, ctx.identity);
    const answer = owner === undefined ? await runWorktreeAction(core, call) : await forwardToOwner(core, owner, call);
    sendJson(ctx.res, answer.status, answer.body);
  };
  router.add("GET", "/v1/sessions/:id/worktree", read("worktree"));
  router.add("GET", "/v1/sessions/:id/worktree/diff", read("worktree-diff"));
}

/** Runs a worktree read on the node that runs the session (its own client's, or one forwarded to it). */
export async function runWorktreeAction(core: GatewayCore, call: SessionCall): Promise<SessionAnswer> {
  const { worktree } = worktreeOf(core, call.identity, call.sessionId);
  const body = call.action === "worktree-diff" ? await worktreeDiff(worktree) : await worktreeStatus(worktree);
  return { status: 200, body };
}

/** The session's worktree, while it exists; WRONG_SESSION_KIND for a session without one. */
function worktreeOf(
  core: GatewayCore,
  identity: Identity,
  id: string,
): { sessionId: string; worktree: SessionWorktree } {
  const session = sessionFor(core.sessions, identity, id, "see");
  const worktree = session.record.worktree;
  if (worktree === undefined) {
    throw new SwitchboardError("WRONG_SESSION_KIND", `session ${session.id} was not created in a worktree`);
  }
  if (worktree.removedAt !== undefined) {
    throw new SwitchboardError("WRONG_SESSION_KIND", `the worktree of session ${session.id} was removed`);
  }
  return { sessionId: session.id, worktree };
}
