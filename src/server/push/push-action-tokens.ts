import { randomBytes, timingSafeEqual } from "node:crypto";
import { PUSH_ACTION_TOKEN_PATTERN } from "../../protocol/index.js";
import { sha256 } from "../identity/identity.js";

/** Most action tokens held at once (one per notified browser and request); past it the oldest is dropped. */
export const MAX_PUSH_ACTION_TOKENS = 1024;
/** Longest life of an action token, whatever the request's own timeout. */
export const PUSH_ACTION_TTL_MAX_MS = 60 * 60_000;

/** What an action token answers: one permission request, as one principal. */
export interface PushActionGrant {
  sessionId: string;
  requestId: string;
  /** Who answers: the principal whose browser got the notification. */
  principal: string;
  /** The browser sign-in that subscribed, if it was one: the token answers only while it is live. */
  signIn: string | undefined;
  /** The option each button picks (the request's first of that kind), if it offered one. */
  options: { allow?: string | undefined; reject?: string | undefined };
}

interface HeldToken {
  hash: Buffer;
  grant: PushActionGrant;
  expiresAt: number;
}

/**
 * The one-time tokens behind a permission notification's Allow / Reject: in memory and by hash
 * only, each bound to one request and the principal (and sign-in) whose browser got it, used at most once,
 * compared with every held hash in constant time, gone when the request is answered or expires.
 * docs/security.md, "Push action tokens".
 */
export class PushActionTokens {
  private held: HeldToken[] = [];

  /** A new token for `grant`, valid until `expiresAt` (at most {@link PUSH_ACTION_TTL_MAX_MS} from `now`). */
  issue(grant: PushActionGrant, expiresAt: number, now: number): string {
    this.prune(now);
    if (this.held.length >= MAX_PUSH_ACTION_TOKENS) this.held.shift();
    const token = randomBytes(16).toString("base64url");
    this.held.push({ hash: sha256(token), grant, expiresAt: Math.min(expiresAt, now + PUSH_ACTION_TTL_MAX_MS) });
    return token;
  }

  /** The grant of `token` when it is held and not expired, spending it; else undefined. */
  redeem(token: string, now: number): PushActionGrant | undefined {
    this.prune(now);
    if (!PUSH_ACTION_TOKEN_PATTERN.test(token)) return undefined;
    const presented = sha256(token);
    let found: HeldToken | undefined;
    for (const h of this.held) {
      // No early exit: every held token is compared.
      if (timingSafeEqual(presented, h.hash) && found === undefined) found = h;
    }
    if (found === undefined) return undefined;
    this.held = this.held.filter((h) => h !== found);
    return found.grant;
  }

  /** Drops the tokens of a request that was answered or cancelled: no button may answer it again. */
  settled(sessionId: string, requestId: string): void {
    this.held = this.held.filter((h) => h.grant.sessionId !== sessionId || h.grant.requestId !== requestId);
  }

  /** Drops the tokens `gone` picks (an unpaired device's, a removed token's, a signed-out browser's); returns how many. */
  forget(gone: (grant: PushActionGrant) => boolean): number {
    const before = this.held.length;
    this.held = this.held.filter((h) => !gone(h.grant));
    return before - this.held.length;
  }

  get size(): number {
    return this.held.length;
  }

  private prune(now: number): void {
    this.held = this.held.filter((h) => h.expiresAt > now);
  }
}
