import { SwitchboardError } from "../protocol/index.js";
import type { Identity } from "./auth.js";

/**
 * Open streaming connections per token, across `/v1/ws`, `/ws/session` and SSE together,
 * against `limits.connectionsPerToken`; and the way to end them when their token is revoked.
 */
export class ConnectionCounter {
  private readonly perToken = new Map<string, number>();
  /** Each open connection's identity and how to end it. */
  private readonly live = new Set<{ identity: Identity; revoke: () => void }>();

  constructor(private readonly limit: number) {}

  /** Throws LIMIT_EXCEEDED when the token already has its maximum of connections. */
  check(identity: Identity): void {
    const n = this.perToken.get(identity.name) ?? 0;
    if (n >= this.limit) {
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `${identity.name} has ${n} connections open (limits.connectionsPerToken)`,
      );
    }
  }

  /**
   * Counts a new connection (after `check`). `revoke` ends it (see {@link revokeUnless}); it is
   * called at most once. Returns the connection's release function, which is idempotent.
   */
  open(identity: Identity, revoke: () => void): () => void {
    this.perToken.set(identity.name, (this.perToken.get(identity.name) ?? 0) + 1);
    const entry = { identity, revoke };
    this.live.add(entry);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.live.delete(entry);
      const left = (this.perToken.get(identity.name) ?? 1) - 1;
      if (left <= 0) this.perToken.delete(identity.name);
      else this.perToken.set(identity.name, left);
    };
  }

  /** Ends every open connection whose identity `valid` refuses (after a reload); returns how many. */
  revokeUnless(valid: (identity: Identity) => boolean): number {
    const doomed = [...this.live].filter((c) => !valid(c.identity));
    for (const c of doomed) {
      // Once: a connection that is closing may still be counted until its close completes.
      this.live.delete(c);
      c.revoke();
    }
    return doomed.length;
  }
}
