import { existsSync, readFileSync } from "node:fs";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { COOKIE_TTL_MS, SESSION_COOKIE, credentialsOf, signInKey } from "../identity/auth.js";
import { SIGNED_OUT } from "../ws/ws-common.js";
import { SwitchboardError } from "../../protocol/index.js";
import { listAgents } from "../agents.js";
import type { GatewayCore } from "../context.js";
import type { RequestGuard } from "../http/guard.js";
import { SECURITY_HEADERS, readJson, sendJson, validate } from "../http/http.js";
import type { Router } from "../http/router.js";

/** Where the built UI lives: `web/dist` at the package root (two levels above src/server or dist/server). */
export const WEB_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "web", "dist");

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".png": "image/png",
  ".webmanifest": "application/manifest+json",
  ".svg": "image/svg+xml",
};

/** The UI's Content-Security-Policy: own scripts and styles only, WebSocket to the same host. */
const UI_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** A login body holds a token (at most 512 characters): it needs no more than this. */
const LOGIN_BODY_BYTES = 4096;
const LoginBody = z.strictObject({
  token: z.string().min(1).max(512),
  /**
   * The key this browser already keeps (from an earlier sign-in): the new cookie takes the same,
   * so that the browser's other tabs, which hold it too, go on with the new cookie.
   */
  cookieKey: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43}$/, "a cookieKey is the 43 characters an earlier POST /v1/login answered")
    .optional(),
});

/** `GET /metrics`, `POST /v1/login` and `POST /v1/logout`, `GET /v1/whoami`, `GET /v1/nodes`, `POST /v1/shutdown`. */
export function miscRoutes(router: Router, core: GatewayCore): void {
  router.add("GET", "/metrics", async (ctx) => {
    const text = await core.metrics.registry.metrics();
    ctx.res.writeHead(200, {
      ...SECURITY_HEADERS,
      "Content-Type": core.metrics.registry.contentType,
      "Cache-Control": "no-store",
    });
    ctx.res.end(text);
  });

  router.add("GET", "/v1/agents", (ctx) => {
    sendJson(ctx.res, 200, { agents: listAgents(core) });
  });

  // Cluster mode's members and the sessions each owns (docs/cluster.md, "Membership"); none on a single node.
  router.add("GET", "/v1/nodes", async (ctx) => {
    if (ctx.identity.role !== "admin") throw new SwitchboardError("FORBIDDEN", "only admins list the cluster's nodes");
    sendJson(ctx.res, 200, { nodes: core.nodes ? await core.nodes() : [] });
  });

  router.add("GET", "/v1/whoami", (ctx) => {
    const { name, role, principal, share } = ctx.identity;
    // A share link's caller learns the one session it opens (the page shows only that).
    sendJson(ctx.res, 200, { name, role, id: principal, ...(share !== undefined ? { share } : {}) });
  });

  router.add("POST", "/v1/logout", (ctx) => {
    const { cookie, cookieKey } = credentialsOf(ctx.req);
    if (cookie !== undefined && cookieKey !== undefined && core.tokens.revokeCookie(cookie, cookieKey)) {
      const signIn = signInKey(cookieKey);
      // Everything of the sign-in ends with it, as a revoked token's does: its open connections
      // and requests (WebSockets, event streams, downloads), its browser's push subscription and
      // the buttons of the notifications it got (test/security/sign-out-ends-all.test.ts).
      core.connections.revokeSignIn(signIn, SIGNED_OUT);
      core.push.subscriptions.forget((t) => t.signIn === signIn);
      core.push.actions.forget((g) => g.signIn === signIn);
    }
    ctx.res.setHeader("Set-Cookie", sessionCookie(core, "", 0));
    sendJson(ctx.res, 200, { ok: true });
  });

  // The gateway stops as on SIGTERM; `sessions: "end"` ends the held sessions too (docs/operations.md).
  router.add("POST", "/v1/shutdown", async (ctx) => {
    if (ctx.identity.role !== "admin") throw new SwitchboardError("FORBIDDEN", "only admins stop the gateway");
    const { sessions } = validate(ShutdownBody, await readJson(ctx.req, SHUTDOWN_BODY_BYTES, "a shutdown body"));
    const mode = sessions ?? "keep";
    if (!core.stopRequest.request({ sessions: mode, by: ctx.identity.name }))
      throw new SwitchboardError("SHUTTING_DOWN", "the gateway is already stopping");
    core.logger.info({ by: ctx.identity.name, byId: ctx.identity.principal, sessions: mode }, "stop asked over HTTP");
    sendJson(ctx.res, 202, { stopping: true, sessions: mode });
  });
}

const SHUTDOWN_BODY_BYTES = 1024;
const ShutdownBody = z.strictObject({ sessions: z.enum(["keep", "end"]).optional() });

/**
 * `POST /v1/login {token}`: exchanges a token for an HttpOnly, SameSite=Strict session cookie
 * and the key that must come with it (`cookieKey`, see COOKIE_KEY_HEADER), so the browser UI
 * does not keep the token in its address bar or storage. Unauthenticated by nature; failures
 * count toward the per-address limit like any other.
 */
export async function login(
  core: GatewayCore,
  req: Parameters<typeof readJson>[0],
  res: Parameters<typeof sendJson>[0],
  guard: Pick<RequestGuard, "refuse" | "signedIn">,
): Promise<void> {
  const { token, cookieKey } = validate(LoginBody, await readJson(req, LOGIN_BODY_BYTES, "a login body"));
  const identity = core.tokens.verify(token);
  if (!identity) throw guard.refuse(req, "the token is not valid");
  guard.signedIn(req);
  const { cookie, key } = core.tokens.issueCookie(identity, core.clock.now(), cookieKey);
  res.setHeader("Set-Cookie", sessionCookie(core, cookie, Math.floor(COOKIE_TTL_MS / 1000)));
  sendJson(res, 200, { name: identity.name, role: identity.role, id: identity.principal, cookieKey: key });
}

/**
 * Serves the built UI from web/dist (GET only, no directory traversal), the precompressed
 * `.br` or `.gz` copy when the browser accepts it. Returns false when there is no such file.
 */
export function serveStatic(
  pathname: string,
  acceptEncoding: string | undefined,
  res: Parameters<typeof sendJson>[0],
): boolean {
  const rel = pathname === "/" ? "index.html" : pathname.slice(1);
  const file = normalize(join(WEB_ROOT, rel));
  if (!file.startsWith(WEB_ROOT + sep) || !existsSync(file) || !CONTENT_TYPES[extname(file)]) return false;
  const accepts = (enc: string) => new RegExp(`\\b${enc}\\b`).test(acceptEncoding ?? "");
  const encoding =
    accepts("br") && existsSync(`${file}.br`) ? "br" : accepts("gzip") && existsSync(`${file}.gz`) ? "gzip" : undefined;
  const body = readFileSync(encoding === "br" ? `${file}.br` : encoding === "gzip" ? `${file}.gz` : file);
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    "Content-Type": CONTENT_TYPES[extname(file)]!,
    "Content-Length": body.length,
    Vary: "Accept-Encoding",
    ...(encoding ? { "Content-Encoding": encoding } : {}),
    "Content-Security-Policy": UI_CSP,
    // The page and its service worker are checked on every load, so a new build takes over at once.
    "Cache-Control": rel === "index.html" || rel === "sw.js" ? "no-cache" : "public, max-age=300",
  });
  res.end(body);
  return true;
}

/** The `Set-Cookie` value of the UI's session cookie (HttpOnly, SameSite=Strict; Secure when configured). */
export function sessionCookie(core: GatewayCore, value: string, maxAgeSeconds: number): string {
  const secure = core.config.secureCookies || core.tls ? "; Secure" : "";
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}
