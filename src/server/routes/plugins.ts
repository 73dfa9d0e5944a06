import { SwitchboardError } from "../../protocol/index.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { readJson, sendJson } from "../http.js";
import type { Router } from "../router.js";

/** `GET /v1/plugins[/:id]`, `POST /v1/plugins/:id/restart` (admins), and the plugins' HTTP hooks. */
export function pluginRoutes(router: Router, core: GatewayCore): void {
  const host = () => {
    if (!core.plugins) throw new SwitchboardError("PLUGIN_NOT_FOUND", "no plugins are loaded");
    return core.plugins;
  };

  router.add("GET", "/v1/plugins", (ctx) => {
    sendJson(ctx.res, 200, { plugins: core.plugins?.status() ?? [] });
  });

  router.add("GET", "/v1/plugins/:id", (ctx) => {
    sendJson(ctx.res, 200, host().get(ctx.params["id"]!));
  });

  router.add("POST", "/v1/plugins/:id/restart", async (ctx) => {
    if (ctx.identity.role !== "admin") throw new SwitchboardError("FORBIDDEN", "only admins restart plugins");
    await host().restart(ctx.params["id"]!);
    sendJson(ctx.res, 200, host().get(ctx.params["id"]!));
  });

  const hook = async (ctx: RequestContext) => {
    if (ctx.identity.role === "viewer") throw new SwitchboardError("FORBIDDEN", "viewers cannot post to plugins");
    const body = ctx.req.headers["content-length"] === "0" ? null : await readJson(ctx.req, core.limits.bodyBytes);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(ctx.req.headers)) if (typeof v === "string") headers[k] = v;
    const result = await host().handleHttp(ctx.params["id"]!, {
      method: ctx.req.method ?? "POST",
      path: ctx.params["*"] ?? "/",
      query: Object.fromEntries(ctx.url.searchParams),
      headers,
      body,
    });
    // The host let through only the headers a plugin may set (x-*, cache-control, retry-after).
    sendJson(ctx.res, result.status, result.body ?? null, result.headers ?? {});
  };
  router.add("POST", "/v1/plugins/:id/http/*", hook);
}
