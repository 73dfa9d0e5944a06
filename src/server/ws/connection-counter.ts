import { SwitchboardError } from "../../protocol/index.js";
import type { Identity } from "../identity/identity.js";

/** Why a connection is ended from outside (see {@link ConnectionCounter.open}): what it is told. */
export interface Revocation {
  code: "UNAUTHORIZED";
  message: string;
}

/** Who opened a connection: its identity, and the browser sign-in it came with (see `signInOf`), if any. */
export interface Opener {
  identity: Identity;
  signIn?: string | undefined;
}

/**
 * Open streaming connections per principal, across `/v1/ws`, `/ws/session` and SSE together,
 * against `limits.connectionsPerToken`; and the way to end them, and every request under way
 * ({@link track}: downloads, long answers), when their token, device or sign-in is revoked.
 */
export class ConnectionCounter {
  private readonly perToken = new Map<string, number>();
  /** Each open connection's identity and how to end it. */
  private readonly live = new Set<{
    identity: Identity;
    signIn: string | undefined;
    revoke: (why: Revocation) => void;
  }>();

  constructor(private readonly limit: number) {}

  /** Throws LIMIT_EXCEEDED when the token already has its maximum of connections. */
  check(identity: Identity): void {
    const n = this.perToken.get(identity.principal) ?? 0;
    if (n >= this.limit) {
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `${identity.name} has ${n} connections open (limits.connectionsPerToken)`,
      );
    }
  }

  /**
   * Counts a new connection (after `check`). `revoke` ends it, telling it why (see
   * {@link revokeUnless}, {@link revokeSignIn}); it is called at most once. Returns the
   * connection's release function, which is idempotent.
   */
  open(opener: Opener, revoke: (why: Revocation) => void): () => void {
    const { identity } = opener;
    const key = identity.principal;
    this.perToken.set(key, (this.perToken.get(key) ?? 0) + 1);
    const untrack = this.track(opener, revoke);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      untrack();
      const left = (this.perToken.get(key) ?? 1) - 1;
      if (left <= 0) this.perToken.delete(key);
      else this.perToken.set(key, left);
    };
  }

  /**
   * Ends `end` with its opener's revocation, like {@link open}, without counting it against the
   * limit: an HTTP request under way (a transcript download, an events page). Returns the idempotent release.
   */
  track(opener: Opener, end: (why: Revocation) => void): () => void {
    const entry = { identity: opener.identity, signIn: opener.signIn, revoke: end };
    this.live.add(entry);
    return () => {
      this.live.delete(entry);
    };
  }

  /** How many connections and requests a revocation would end now (each request's is released when it closes). */
  get tracked(): number {
    return this.live.size;
  }

  /** Ends every open connection whose identity `valid` refuses (after a reload); returns how many. */
  revokeUnless(valid: (identity: Identity) => boolean, why: Revocation): number {
    return this.revokeWhere((c) => !valid(c.identity), why);
  }

  /** Ends every open connection opened with the browser sign-in `signIn` (a logout); returns how many. */
  revokeSignIn(signIn: string, why: Revocation): number {
    return this.revokeWhere((c) => c.signIn === signIn, why);
  }

  private revokeWhere(
    doomed: (c: { identity: Identity; signIn: string | undefined }) => boolean,
    why: Revocation,
  ): number {
    const ended = [...this.live].filter(doomed);
    for (const c of ended) {
      // Once: a connection that is closing may still be counted until its close completes.
      this.live.delete(c);
      c.revoke(why);
    }
    return ended.length;
  }
}
