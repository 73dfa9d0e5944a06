import type { IncomingMessage } from "node:http";
import { CREDENTIAL_REMOVED_MESSAGE, SwitchboardError } from "../../protocol/index.js";
import { COOKIE_KEY_HEADER, credentialsOf } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import type { AnonymousConnectionGate } from "./anonymous-gate.js";
import type { GatewayCore } from "../context.js";
import { hostnameOf } from "./http.js";
import { isOwnAddress, isWildcard } from "../identity/pairing-addresses.js";
import type { AuthFailureLimiter } from "./rate-limit.js";

/**
 * Checks that run before any route or upgrade, in this order (as ws's handleUpgrade does):
 * Host (DNS rebinding), Origin (browsers), credentials — a failed one counts toward the
 * address's slowdown.
 */
export class RequestGuard {
  constructor(
    private readonly core: GatewayCore,
    private readonly failures: AuthFailureLimiter,
    private readonly anonymous: AnonymousConnectionGate,
  ) {}

  checkHost(req: IncomingMessage): void {
    const host = req.headers.host;
    if (host === undefined) throw hostNotAllowed();
    const name = hostnameOf(host);
    if (this.core.allowedHosts.has(name)) return;
    // Listening on every address: the machine's own IP literals too (a phone on the LAN).
    if (isWildcard(this.core.listenHost) && isOwnAddress(name)) return;
    throw hostNotAllowed();
  }

  /** Browsers send Origin; requests from other origins than the gateway's own (or allowed ones) are refused. */
  checkOrigin(req: IncomingMessage): void {
    const origin = req.headers.origin;
    if (origin === undefined) return;
    if (this.core.allowedOrigins.has(origin)) return;
    const host = req.headers.host;
    if (host !== undefined && (origin === `http://${host}` || origin === `https://${host}`)) return;
    throw new SwitchboardError(
      "ORIGIN_NOT_ALLOWED",
      `origin ${origin.slice(0, 100)} is not allowed; add it to allowedOrigins in the config`,
    );
  }

  /** `POST /v1/login` verified its token itself: the connection no longer counts as anonymous. */
  signedIn(req: IncomingMessage): void {
    this.anonymous.authenticated(req.socket);
  }

  /**
   * The answer to a credential that did not verify (requests, upgrades, `POST /v1/login`):
   * RATE_LIMITED while the address is slowed down, else counted and UNAUTHORIZED. A valid one is
   * never refused for its address: all local users share 127.0.0.1, so that would let anyone lock
   * out the UI; 256-bit tokens bound guessing (docs/security.md, "Token guessing").
   */
  refuse(
    req: IncomingMessage,
    message: string,
    code: "UNAUTHORIZED" | "PAIRING_CODE_INVALID" | "PUSH_ACTION_INVALID" = "UNAUTHORIZED",
  ): SwitchboardError {
    const blocked = this.blocked(req);
    if (blocked) return blocked;
    this.failures.recordFailure(addressOf(req));
    this.core.metrics.authFailures.inc();
    return new SwitchboardError(code, message);
  }

  /** RATE_LIMITED while the request's address is slowed down after failed authentications, else undefined. */
  blocked(req: IncomingMessage): SwitchboardError | undefined {
    const blockedMs = this.failures.blockedFor(addressOf(req));
    if (blockedMs <= 0) return undefined;
    return new SwitchboardError("RATE_LIMITED", "too many failed authentications from this address; wait a minute", {
      retryAfterSeconds: Math.ceil(blockedMs / 1000),
    });
  }

  /** The caller's identity, or UNAUTHORIZED (RATE_LIMITED after repeated failures from its address). */
  authenticate(req: IncomingMessage): Identity {
    const creds = credentialsOf(req);
    let identity: Identity | undefined;
    if (creds.token !== undefined) identity = this.core.tokens.verify(creds.token);
    else if (creds.cookie !== undefined && creds.cookieKey !== undefined)
      identity = this.core.tokens.verifyCookie(creds.cookie, creds.cookieKey, this.core.clock.now());
    // Without credentials of its own, a request from a trusted proxy is the user it names.
    else identity = this.core.tokens.proxied(req);
    if (identity) {
      this.anonymous.authenticated(req.socket);
      return identity;
    }
    // No credentials is no guess (a browser's first visit, a CLI without a token): never counted, never slowed.
    // Nor is a cookie without its key: every server on the gateway's host name is sent the cookie.
    if (creds.token === undefined && creds.cookieKey === undefined) {
      throw new SwitchboardError(
        "UNAUTHORIZED",
        creds.cookie === undefined
          ? "send Authorization: Bearer <token>"
          : `the sign-in cookie counts only with its key (the ${COOKIE_KEY_HEADER} header): sign in again`,
      );
    }
    if (
      creds.cookie !== undefined &&
      creds.cookieKey !== undefined &&
      this.core.tokens.cookieOrphaned(creds.cookie, creds.cookieKey, this.core.clock.now())
    )
      throw this.refuse(req, CREDENTIAL_REMOVED_MESSAGE);
    throw this.refuse(
      req,
      creds.token !== undefined ? "the token is not valid" : "the sign-in has expired: sign in again",
    );
  }
}

/** The peer address failures are counted against (behind a reverse proxy: the proxy's). */
function addressOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? "unknown";
}

function hostNotAllowed(): SwitchboardError {
  return new SwitchboardError(
    "HOST_NOT_ALLOWED",
    "the Host header is not an allowed host; add it to allowedHosts in the config",
  );
}
