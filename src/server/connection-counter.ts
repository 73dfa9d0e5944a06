import { SwitchboardError } from "../protocol/index.js";
import type { Identity } from "./auth.js";

/**
 * Open streaming connections per token, across `/v1/ws`, `/ws/session` and SSE together,
 * against `limits.connectionsPerToken`.
 */
export class ConnectionCounter {
  private readonly perToken = new Map<string, number>();

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

  /** Counts a new connection (after `check`). Returns its release function, which is idempotent. */
  open(identity: Identity): () => void {
    this.perToken.set(identity.name, (this.perToken.get(identity.name) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.perToken.get(identity.name) ?? 1) - 1;
      if (left <= 0) this.perToken.delete(identity.name);
      else this.perToken.set(identity.name, left);
    };
  }
}
