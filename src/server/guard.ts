import type { IncomingMessage } from "node:http";
import { SwitchboardError } from "../protocol/index.js";
import { credentialsOf } from "./auth.js";
import type { Identity } from "./auth.js";
import type { GatewayCore } from "./context.js";
import { hostnameOf } from "./http.js";
import type { AuthFailureLimiter } from "./rate-limit.js";

/**
 * Checks that run before any route or upgrade, in this order (as ws's handleUpgrade does):
 * Host (DNS rebinding), Origin (browsers), rate of failed logins, credentials.
 */
export class RequestGuard {
  constructor(
    private readonly core: GatewayCore,
    private readonly failures: AuthFailureLimiter,
  ) {}

  checkHost(req: IncomingMessage): void {
    const host = req.headers.host;
    if (host === undefined || !this.core.allowedHosts.has(hostnameOf(host))) {
      throw new SwitchboardError(
        "HOST_NOT_ALLOWED",
        "the Host header is not an allowed host; add it to allowedHosts in the config",
      );
    }
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

  /**
   * RATE_LIMITED while the caller's address is slowed down after repeated authentication
   * failures. Every place that checks a credential calls it first — `authenticate` does, and
   * so must `POST /v1/login`, or a slowed address keeps guessing tokens there at full speed.
   */
  checkNotSlowed(req: IncomingMessage): void {
    if (this.failures.blocked(addressOf(req))) {
      throw new SwitchboardError("RATE_LIMITED", "too many failed authentications from this address; wait a minute");
    }
  }

  /** The caller's identity, or UNAUTHORIZED; repeated failures from one address answer RATE_LIMITED. */
  authenticate(req: IncomingMessage): Identity {
    const address = addressOf(req);
    this.checkNotSlowed(req);
    const creds = credentialsOf(req);
    let identity: Identity | undefined;
    if (creds.token !== undefined) identity = this.core.tokens.verify(creds.token);
    else if (creds.cookie !== undefined) identity = this.core.tokens.verifyCookie(creds.cookie, this.core.clock.now());
    if (!identity) {
      this.failures.recordFailure(address);
      this.core.metrics.authFailures.inc();
      throw new SwitchboardError(
        "UNAUTHORIZED",
        creds.token === undefined && creds.cookie === undefined
          ? "send Authorization: Bearer <token>"
          : "the token is not valid",
      );
    }
    return identity;
  }
}

/** The peer address failures are counted against (behind a reverse proxy: the proxy's). */
function addressOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? "unknown";
}
