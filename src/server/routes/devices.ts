import { networkInterfaces } from "node:os";
import { COOKIE_TTL_MS } from "../identity/auth.js";
import { PAIR_FRAGMENT_PREFIX, PairExchange, PairingRequest, SwitchboardError } from "../../protocol/index.js";
import type { Pairing } from "../../protocol/index.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { releaseRevokedLeases } from "../config/gateway-reload.js";
import { pairingAddresses, tailscaleName } from "../identity/pairing-addresses.js";
import type { RequestGuard } from "../http/guard.js";
import { readJson, readOptionalJson, sendJson, validate } from "../http/http.js";
import type { Router } from "../http/router.js";
import { DEVICE_REVOKED } from "../ws/ws-common.js";
import { sessionCookie } from "./misc.js";

/** A pairing exchange body holds a code and maybe a cookie key: it needs no more than this. */
const PAIR_BODY_BYTES = 1024;

/**
 * `POST /v1/devices/pairings`, `GET /v1/devices/addresses` (where a device may open the
 * gateway), `GET /v1/devices`, `DELETE /v1/devices/:id`: admins only.
 */
export function deviceRoutes(router: Router, core: GatewayCore): void {
  router.add("POST", "/v1/devices/pairings", async (ctx) => {
    adminOnly(ctx, "pair devices");
    const body = validate(PairingRequest, (await readOptionalJson(ctx.req, core.limits.bodyBytes)) ?? {});
    const grant = { name: body.name, role: body.role, sessions: body.sessions };
    core.devices.checkNameFree(grant.name);
    const { code, expiresAt } = core.pairings.create(grant, body.ttlMs, core.clock.now());
    const path = `/${PAIR_FRAGMENT_PREFIX}${code}`;
    const pairing: Pairing = { code, path, ...grant, sessions: [...grant.sessions], expiresAt };
    if (body.base !== undefined) {
      pairing.url = `${body.base}${path}`;
      // Loaded by the first pairing with a URL, not at every start.
      const { default: QRCode } = await import("qrcode");
      pairing.qrSvg = await QRCode.toString(pairing.url, { type: "svg", errorCorrectionLevel: "M", margin: 2 });
    }
    // Audit without the code: who may pair what, until when.
    core.logger.info(
      { by: ctx.identity.name, byId: ctx.identity.principal, device: grant.name, role: grant.role, expiresAt },
      "pairing code made",
    );
    sendJson(ctx.res, 201, pairing);
  });

  router.add("GET", "/v1/devices/addresses", async (ctx) => {
    adminOnly(ctx, "list the gateway's addresses");
    const addresses = pairingAddresses({
      host: core.listenHost,
      // The port this request came in on: the one the gateway listens on.
      port: ctx.req.socket.localPort ?? 0,
      tls: core.tls,
      allowedHosts: core.config.allowedHosts,
      interfaces: networkInterfaces(),
      tailscaleName: await tailscaleName(),
    });
    sendJson(ctx.res, 200, { addresses });
  });

  router.add("GET", "/v1/devices", (ctx) => {
    adminOnly(ctx, "list devices");
    sendJson(ctx.res, 200, { devices: core.devices.list() });
  });

  router.add("DELETE", "/v1/devices/:id", (ctx) => {
    adminOnly(ctx, "unpair devices");
    const { device, identity } = core.devices.remove(ctx.params["id"]!);
    // At once: its WebSockets and event streams end, and the control leases it held over HTTP.
    const connections = core.connections.revokeUnless((i) => i !== identity, DEVICE_REVOKED);
    releaseRevokedLeases(core.sessions.list(), (principal) => principal !== identity.principal);
    // Its notifications stop, and the buttons of those it got answer nothing.
    core.push.subscriptions.forget((t) => t.principal === identity.principal);
    core.push.actions.forget((g) => g.principal === identity.principal);
    core.logger.info(
      {
        by: ctx.identity.name,
        byId: ctx.identity.principal,
        device: device.name,
        principal: identity.principal,
        connections,
      },
      "device unpaired",
    );
    sendJson(ctx.res, 200, device);
  });
}

function adminOnly(ctx: RequestContext, what: string): void {
  if (ctx.identity.role !== "admin") throw new SwitchboardError("FORBIDDEN", `only admins ${what}`);
}

/**
 * `POST /v1/pair {code}`: redeems a pairing code for a device credential: the token itself, or
 * (`signIn`, a browser) a sign-in cookie and its key, so the page never holds the token.
 * Unauthenticated by nature; a code that does not redeem counts toward the address's slowdown as
 * a bad token does, and an address being slowed down is refused before its code is looked at.
 */
export async function pair(
  core: GatewayCore,
  req: Parameters<typeof readJson>[0],
  res: Parameters<typeof sendJson>[0],
  guard: Pick<RequestGuard, "refuse" | "signedIn" | "blocked">,
): Promise<void> {
  const body = validate(PairExchange, await readJson(req, PAIR_BODY_BYTES, "a pairing body"));
  const blocked = guard.blocked(req);
  if (blocked) throw blocked;
  const now = core.clock.now();
  const grant = core.pairings.redeem(body.code, now);
  if (!grant)
    throw guard.refuse(
      req,
      "the pairing code is unknown, already used or expired: make a new one",
      "PAIRING_CODE_INVALID",
    );
  guard.signedIn(req);
  const { device, token, identity } = core.devices.add(grant, now);
  core.logger.info({ device: device.name, role: device.role }, "device paired");
  if (!body.signIn) {
    sendJson(res, 200, { device, token });
    return;
  }
  const { cookie, key } = core.tokens.issueCookie(identity, now, body.cookieKey);
  res.setHeader("Set-Cookie", sessionCookie(core, cookie, Math.floor(COOKIE_TTL_MS / 1000)));
  sendJson(res, 200, { device, name: identity.name, role: identity.role, id: identity.principal, cookieKey: key });
}
