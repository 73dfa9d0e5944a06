import { SwitchboardError, controlHolder, InternalError } from "../protocol/errors.js";
import type { Actor } from "../protocol/events.js";
import type { Clock, Timer } from "./clock.js";

/** Default holder silence after which a lease is released (docs/architecture.md, guarantee 7). */
export const DEFAULT_AUTO_RELEASE_AFTER_MS = 5 * 60 * 1000;
/**
 * Default time a lease outlives its holder's connection for a new connection of the same holder
 * (`control.reconnectGraceMs`): a page reload or a network blip takes a few seconds.
 */
export const DEFAULT_RECONNECT_GRACE_MS = 10_000;

export interface LeaseHolder {
  /** Identifies the holder: a connection id, or `http:<token name>` for HTTP callers. */
  key: string;
  actor: Actor;
  /**
   * Who may take the lease back after this holder's connection closed, within the grace period:
   * a digest of the holder's sign-in and the key its client keeps across reconnects
   * (`clientKey`). Absent: the lease ends with the connection.
   */
  reclaimKey?: string;
}

export type LeaseChange =
  | { action: "acquired"; holder: LeaseHolder; previous: null }
  | { action: "taken-over"; holder: LeaseHolder; previous: LeaseHolder }
  | { action: "released" | "expired" | "disconnected"; holder: null; previous: LeaseHolder };

/**
 * The single-writer control lease of one session. Whoever holds it may steer; it is renewed
 * by the holder's activity and released after `autoReleaseAfterMs` of silence, on release,
 * on disconnect (after `reconnectGraceMs` for a holder with a `reclaimKey`, unless it comes
 * back), or taken over with force. Nobody can hold it forever.
 */
export class ControlLease {
  private current: LeaseHolder | null = null;
  private lastActivity = 0;
  private timer: Timer | undefined;
  /** Set while the holder's connection is gone and the lease waits for it to come back. */
  private graceTimer: Timer | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly autoReleaseAfterMs: number,
    private readonly onChange: (change: LeaseChange) => void,
    private readonly reconnectGraceMs = DEFAULT_RECONNECT_GRACE_MS,
  ) {}

  get holder(): LeaseHolder | null {
    return this.current;
  }

  /** The holder's connection is gone: the lease waits `reconnectGraceMs` for {@link reclaims}. */
  get awaitingReconnect(): boolean {
    return this.graceTimer !== undefined;
  }

  /**
   * Takes the lease. Throws CONTROL_HELD when someone else holds it and `force` is not set. A
   * holder whose connection closed within the grace period is no one else to a new connection
   * with its `reclaimKey`: that one takes the lease without force.
   */
  acquire(holder: LeaseHolder, force = false): void {
    const held = this.current;
    if (held && held.key === holder.key) {
      this.touch(holder.key);
      return;
    }
    const reclaimed = held !== null && this.reclaims(holder);
    if (reclaimed) this.clear();
    const previous = this.current;
    if (previous && !force)
      throw this.heldError(
        holder.actor.name,
        (by) => `control of this session is held by ${by}; use force to take it over`,
      );
    this.graceTimer?.cancel();
    this.graceTimer = undefined;
    this.current = holder;
    this.lastActivity = this.clock.monotonic();
    this.schedule(this.autoReleaseAfterMs);
    this.onChange(
      previous ? { action: "taken-over", holder, previous } : { action: "acquired", holder, previous: null },
    );
  }

  /**
   * The connection `key` closed. Its lease ends now (`disconnected`), or, for a holder with a
   * `reclaimKey`, after `reconnectGraceMs` unless a connection with that key takes it back.
   * `now`: no grace (the client closed it with 1000, or its credentials were revoked).
   */
  disconnect(key: string, now = false): void {
    const holder = this.current;
    if (holder?.key !== key) return;
    if (now || holder.reclaimKey === undefined || this.reconnectGraceMs <= 0) {
      this.release(key, "disconnected");
      return;
    }
    this.graceTimer?.cancel();
    this.graceTimer = this.clock.setTimeout(() => {
      this.graceTimer = undefined;
      this.release(key, "disconnected");
    }, this.reconnectGraceMs);
  }

  /** Whether `holder` may take back the lease of a holder whose connection closed (see {@link disconnect}). */
  private reclaims(holder: LeaseHolder): boolean {
    return (
      this.graceTimer !== undefined && holder.reclaimKey !== undefined && holder.reclaimKey === this.current?.reclaimKey
    );
  }

  /** Releases the lease if `key` holds it. Returns whether it did. */
  release(key: string, reason: "released" | "disconnected" = "released"): boolean {
    const previous = this.current;
    if (!previous || previous.key !== key) return false;
    this.clear();
    this.onChange({ action: reason, holder: null, previous });
    return true;
  }

  /**
   * Whether `key` may steer now: nobody holds the lease, or `key` does (which renews it).
   * Throws CONTROL_HELD otherwise.
   */
  checkWriter(key: string, name: string): void {
    if (this.current === null) return;
    if (this.current.key === key) {
      this.touch(key);
      return;
    }
    // Says what to do: a steering call refused this way has no other hint (exploratory test).
    const seconds = Math.round(this.autoReleaseAfterMs / 1000);
    throw this.heldError(
      name,
      (by) =>
        `control of this session is held by ${by}: it is free once released, or after ${seconds} s without their activity; acquire control with force to steer now`,
    );
  }

  /**
   * CONTROL_HELD for a caller named `name`, with `holder`. Held under the caller's own name, it
   * says which connection holds it (only then, and only the id its own `hello` gave it), so a
   * client that reconnects after a network drop can tell its old connection, which the gateway
   * has not found dead yet (it does within 45 s), from someone else with the same token (the
   * default setup has only one): "held by admin" told admin nothing.
   */
  heldError(name: string, message: (by: string) => string): SwitchboardError {
    const holder = this.current;
    if (holder === null) throw new InternalError("heldError: nobody holds the lease");
    const sameName = holder.actor.name === name;
    const by = controlHolder(holder.actor.name, sameName);
    return new SwitchboardError("CONTROL_HELD", message(by), {
      holder: holder.actor.name,
      ...(sameName ? { holderConnId: holder.key } : {}),
    });
  }

  /** Renews the lease on the holder's activity or heartbeat. */
  touch(key: string): void {
    if (this.current?.key === key) this.lastActivity = this.clock.monotonic();
  }

  dispose(): void {
    this.clear();
  }

  private clear(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.graceTimer?.cancel();
    this.graceTimer = undefined;
    this.current = null;
  }

  // One timer per lease: when it fires early because of renewals, it re-arms for the rest.
  private schedule(ms: number): void {
    this.timer?.cancel();
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      const holder = this.current;
      if (!holder) return;
      const idle = this.clock.monotonic() - this.lastActivity;
      if (idle >= this.autoReleaseAfterMs) {
        this.clear();
        this.onChange({ action: "expired", holder: null, previous: holder });
      } else {
        this.schedule(this.autoReleaseAfterMs - idle);
      }
    }, ms);
  }
}
