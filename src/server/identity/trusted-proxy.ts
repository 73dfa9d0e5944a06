import type { IncomingMessage } from "node:http";
import {
  DEVICE_IDENTITY_PREFIX,
  SHARE_IDENTITY_PREFIX,
  SwitchboardError,
  displayTextProblem,
  principalId,
} from "../../protocol/index.js";
import { ADMIN_NAME } from "./identity.js";
import type { Identity } from "./identity.js";
import type { TrustedProxyConfig } from "../config/config.js";

/** Most proxy users kept as identities at once; past it the oldest is forgotten (its next request makes it again). */
export const MAX_PROXY_IDENTITIES = 1000;
/** Longest user name taken from the header. */
export const MAX_PROXY_USER_CHARS = 200;

/**
 * Trusted-proxy sign-in (`auth.trustedProxy`): a request whose TCP peer is one of `addresses`
 * and that carries `userHeader` is that user, with the role `roleMap` gives it (the user's own
 * entry, else `*`). The header from any other peer is ignored, so only the proxy can name a
 * user. A user is the principal `proxy:USER`, never a token's, whatever its name. Each user is
 * one identity object while the config stays, so a reload that keeps the same setting keeps its
 * connections. docs/security.md, "Trusted proxy".
 */
export class TrustedProxy {
  private readonly addresses: ReadonlySet<string>;
  private readonly identities = new Map<string, Identity>();

  private tokenNames: ReadonlySet<string>;

  /** `tokenNames`: the configured tokens' names, whose sessions from before principal ids are theirs (see `owns`). */
  constructor(
    readonly config: TrustedProxyConfig,
    tokenNames: readonly string[] = [],
  ) {
    this.addresses = new Set(config.addresses.map(normalizeAddress));
    this.tokenNames = new Set(tokenNames);
  }

  /**
   * This proxy, for a reload that keeps its setting, with `tokenNames` the configured tokens'
   * names now: a user whose name became or stopped being a token's is forgotten (its claim on
   * sessions stored before principal ids changed, so its connections end), the others kept.
   */
  retarget(tokenNames: readonly string[]): this {
    const next = new Set(tokenNames);
    for (const user of [...this.identities.keys()])
      if (this.tokenNames.has(user) !== next.has(user)) this.identities.delete(user);
    this.tokenNames = next;
    return this;
  }

  /** Whether the request came straight from one of the proxy's addresses. */
  fromProxy(req: IncomingMessage): boolean {
    const peer = req.socket.remoteAddress;
    return peer !== undefined && this.addresses.has(normalizeAddress(peer));
  }

  /**
   * The user the proxy names, or undefined when the request is not from the proxy or carries no
   * user header; UNAUTHORIZED when the proxy names a user the config gives no role.
   */
  identityOf(req: IncomingMessage): Identity | undefined {
    if (!this.fromProxy(req)) return undefined;
    const header = req.headers[this.config.userHeader];
    const user = (Array.isArray(header) ? header[0] : header)?.trim();
    if (user === undefined || user === "") return undefined;
    const known = this.identities.get(user);
    if (known) return known;
    const problem =
      user.length > MAX_PROXY_USER_CHARS
        ? `longer than ${MAX_PROXY_USER_CHARS} characters`
        : user === ADMIN_NAME || user.startsWith(DEVICE_IDENTITY_PREFIX) || user.startsWith(SHARE_IDENTITY_PREFIX)
          ? "a name the gateway reserves"
          : displayTextProblem(user);
    if (problem !== undefined)
      throw new SwitchboardError(
        "UNAUTHORIZED",
        `the proxy's ${this.config.userHeader} cannot be a user name: ${problem}`,
      );
    const grant = this.config.roleMap[user] ?? this.config.roleMap["*"];
    if (grant === undefined)
      throw new SwitchboardError(
        "UNAUTHORIZED",
        `the proxy signed in ${user}, who has no role in auth.trustedProxy.roleMap; add the user (or "*") there`,
      );
    const { role, sessions } = typeof grant === "string" ? { role: grant, sessions: undefined } : grant;
    const identity: Identity = {
      principal: principalId("proxy", user),
      name: user,
      role,
      sessions: sessions ?? (role === "admin" ? ["*"] : []),
      // A stored owner name that is a token's is the token's, not the user's who shares it.
      legacy: this.tokenNames.has(user) ? undefined : { owner: user, since: 0 },
    };
    if (this.identities.size >= MAX_PROXY_IDENTITIES) {
      const oldest = this.identities.keys().next().value;
      if (oldest !== undefined) this.identities.delete(oldest);
    }
    this.identities.set(user, identity);
    return identity;
  }

  /** The identity of the principal `proxy:USER`, while kept. */
  byPrincipal(principal: string): Identity | undefined {
    const prefix = principalId("proxy", "");
    return principal.startsWith(prefix) ? this.identities.get(principal.slice(prefix.length)) : undefined;
  }

  /** Whether `identity` is one this proxy setting made (see TokenRegistry.has). */
  has(identity: Identity): boolean {
    return this.identities.get(identity.name) === identity;
  }
}

/** An IPv4 peer as Node reports it on a dual-stack socket (`::ffff:127.0.0.2`) is that IPv4 address. */
function normalizeAddress(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith("::ffff:") && lower.includes(".") ? lower.slice(7) : lower;
}
