import { randomBytes, timingSafeEqual } from "node:crypto";
import { PAIRING_CODE_PATTERN, SwitchboardError } from "../../protocol/index.js";
import { sha256 } from "./identity.js";
import type { DeviceGrant } from "./devices.js";

/** Most pairing codes waiting to be redeemed at once; past it, LIMIT_EXCEEDED until one is used or expires. */
export const MAX_PENDING_PAIRINGS = 32;

interface PendingPairing {
  hash: Buffer;
  grant: DeviceGrant;
  expiresAt: number;
}

/**
 * One-time pairing codes, in memory only and by hash: a code is redeemed at most once, before
 * its TTL, and compared with every pending hash in constant time. A restart forgets them (pair
 * again). docs/security.md, "Pairing codes".
 */
export class PairingCodes {
  private pending: PendingPairing[] = [];

  /** A new code for `grant`, valid for `ttlMs` from `now`. */
  create(grant: DeviceGrant, ttlMs: number, now: number): { code: string; expiresAt: number } {
    this.prune(now);
    if (this.pending.length >= MAX_PENDING_PAIRINGS)
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `${MAX_PENDING_PAIRINGS} pairing codes are waiting to be used: wait for them to expire (at most their TTL)`,
      );
    const code = randomBytes(16).toString("base64url");
    const expiresAt = now + ttlMs;
    this.pending.push({ hash: sha256(code), grant, expiresAt });
    return { code, expiresAt };
  }

  /** The grant of `code` when it is pending and not expired, removing it; else undefined. */
  redeem(code: string, now: number): DeviceGrant | undefined {
    this.prune(now);
    if (!PAIRING_CODE_PATTERN.test(code)) return undefined;
    const presented = sha256(code);
    let found: PendingPairing | undefined;
    for (const p of this.pending) {
      // No early exit: every pending code is compared.
      if (timingSafeEqual(presented, p.hash) && found === undefined) found = p;
    }
    if (found === undefined) return undefined;
    this.pending = this.pending.filter((p) => p !== found);
    return found.grant;
  }

  /** Codes waiting now (for tests and metrics). */
  get size(): number {
    return this.pending.length;
  }

  private prune(now: number): void {
    this.pending = this.pending.filter((p) => p.expiresAt > now);
  }
}
