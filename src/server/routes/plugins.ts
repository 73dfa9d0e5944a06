import type { IncomingMessage, ServerResponse } from "node:http";
import type { PluginHost } from "../../plugins/host.js";
import type { HttpHookResponse } from "../../plugins/ipc.js";
import type { HookBodyKind, HttpHookCall } from "../../plugins/types.js";
import { SwitchboardError } from "../../protocol/index.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { isJsonContentType, parseJsonBody, readBody, sendJson } from "../http/http.js";
import { Router } from "../http/router.js";
import { InternalError } from "../../protocol/errors.js";

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
    const plugins = host();
    const call = await hookCall(ctx.req, ctx.url, ctx.params["*"] ?? "/", plugins, false);
    answerHook(ctx.res, await plugins.handleHttp(ctx.params["id"]!, call));
  };
  router.add("POST", "/v1/plugins/:id/http/*", hook);
}

/**
 * Where public hooks live: `/hooks/<plugin id>/<path below the plugin's mount point>`, answered
 * before authentication (see {@link publicHook}). Matched as every route is; the handlers are
 * never called.
 */
export const PUBLIC_HOOK_ROUTES = new Router().add("GET", "/hooks/:id/*", unused).add("POST", "/hooks/:id/*", unused);

export const isPublicHookPath = (pathname: string): boolean => pathname.startsWith("/hooks/");

/**
 * `GET` or `POST /hooks/<id>/…` without credentials, for a plugin whose `publicHooks` is on (a
 * chat platform's or a forge's webhooks, which cannot send a token): the plugin checks them
 * itself. Any other plugin, and none at all, is `404 NOT_FOUND` alike. Host and Origin were
 * checked before (a browser page of another origin cannot post here).
 */
export async function publicHook(
  core: GatewayCore,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const match = PUBLIC_HOOK_ROUTES.match(req.method ?? "GET", url.pathname);
  if (match.kind === "not-found" || core.plugins === undefined)
    throw new SwitchboardError("NOT_FOUND", `no public hook at ${url.pathname.slice(0, 200)}`);
  if (match.kind === "method-not-allowed") {
    res.setHeader("Allow", match.allow.join(", "));
    throw new SwitchboardError("METHOD_NOT_ALLOWED", `${req.method} is not allowed here; use POST or GET`);
  }
  const call = await hookCall(req, url, match.params["*"]!, core.plugins, true);
  answerHook(res, await core.plugins.handleHttp(match.params["id"]!, call));
}

function unused(): never {
  throw new InternalError("public hooks are answered by publicHook(), not through the router");
}

/**
 * A hook request as the plugin host takes it. Any content type is forwarded raw (bounded by
 * {@link PluginHost.hookBodyBytes}); a JSON one must parse (400 INVALID_JSON here, not in the plugin).
 */
async function hookCall(
  req: IncomingMessage,
  url: URL,
  path: string,
  plugins: PluginHost,
  isPublic: boolean,
): Promise<HttpHookCall> {
  const rawBody = await readBody(req, plugins.hookBodyBytes, "a hook's body");
  const type = req.headers["content-type"];
  let bodyKind: HookBodyKind = "none";
  if (rawBody.length > 0 && isJsonContentType(type)) {
    parseJsonBody(rawBody);
    bodyKind = "json";
  } else if (rawBody.length > 0 && /^application\/x-www-form-urlencoded\s*(;|$)/i.test(type ?? "")) bodyKind = "form";
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
  return {
    method: req.method ?? "POST",
    path,
    query: Object.fromEntries(url.searchParams),
    headers,
    rawBody,
    bodyKind,
    public: isPublic,
  };
}

/** The host let through only the headers a plugin may set (x-*, cache-control, retry-after). */
function answerHook(res: ServerResponse, result: HttpHookResponse): void {
  sendJson(res, result.status, result.body ?? null, result.headers ?? {});
}
