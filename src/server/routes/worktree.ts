import { SwitchboardError } from "../../protocol/index.js";
import type { SessionWorktree } from "../../protocol/index.js";
import { worktreeDiff, worktreeStatus } from "../../sessions/worktree.js";
import { sessionFor } from "../identity/access.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { sendJson } from "../http/http.js";
import type { Router } from "../http/router.js";
import { ownerElsewhere } from "../cluster/session-forwarding.js";

/**
 * A worktree session's git state (docs/protocol.md, "Worktrees"): its branch, uncommitted changes
 * and commits ahead of the base, and its diff against the base. Read as the session's log is
 * (`see`): what the diff shows is what the agent's changes show. test/gateway/worktree-sessions.test.ts.
 */
export function worktreeRoutes(router: Router, core: GatewayCore): void {
  router.add("GET", "/v1/sessions/:id/worktree", async (ctx) => {
    sendJson(ctx.res, 200, await worktreeStatus(worktreeOf(core, ctx)));
  });
  router.add("GET", "/v1/sessions/:id/worktree/diff", async (ctx) => {
    sendJson(ctx.res, 200, await worktreeDiff(worktreeOf(core, ctx)));
  });
}

/** The session's worktree, while it exists on this node; WRONG_SESSION_KIND for a session without one. */
function worktreeOf(core: GatewayCore, ctx: RequestContext): SessionWorktree {
  const session = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see");
  const worktree = session.record.worktree;
  if (worktree === undefined) {
    throw new SwitchboardError("WRONG_SESSION_KIND", `session ${session.id} was not created in a worktree`);
  }
  if (worktree.removedAt !== undefined) {
    throw new SwitchboardError("WRONG_SESSION_KIND", `the worktree of session ${session.id} was removed`);
  }
  const owner = ownerElsewhere(core, session.id, ctx.identity);
  if (owner !== undefined) {
    throw new SwitchboardError(
      "BAD_REQUEST",
      `session ${session.id} runs on node ${owner}: its worktree is read through that node's address`,
    );
  }
  return worktree;
}
