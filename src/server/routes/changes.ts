import { currentCopy, sessionFor } from "../identity/access.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { SECURITY_HEADERS, sendJson } from "../http/http.js";
import type { Router } from "../http/router.js";
import { changesOf, patchOf } from "../../agents/run-changes.js";

/**
 * What agents changed in files (docs/protocol.md, "Changes"): a run's change list and its git
 * patch, and the session's list across runs. Read as the session's log is (`see`); a run id
 * `latest` is the session's last run.
 */
export function changeRoutes(router: Router, core: GatewayCore): void {
  const session = async (ctx: RequestContext) => {
    const found = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see");
    await currentCopy(core.sessions, found);
    return found;
  };
  router.add("GET", "/v1/sessions/:id/changes", async (ctx) => {
    sendJson(ctx.res, 200, await changesOf(await session(ctx), undefined));
  });
  router.add("GET", "/v1/sessions/:id/runs/:run/changes", async (ctx) => {
    sendJson(ctx.res, 200, await changesOf(await session(ctx), ctx.params["run"]!));
  });
  router.add("GET", "/v1/sessions/:id/runs/:run/patch", async (ctx) => {
    const patch = await patchOf(await session(ctx), ctx.params["run"]!);
    ctx.res.writeHead(200, {
      "cache-control": "no-store",
      ...SECURITY_HEADERS,
      "Content-Type": "text/x-diff; charset=utf-8",
      "Content-Length": Buffer.byteLength(patch),
    });
    ctx.res.end(ctx.req.method === "HEAD" ? undefined : patch);
  });
}
