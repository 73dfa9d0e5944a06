import { SwitchboardError, controlHolder } from "../protocol/errors.js";
import type { Actor } from "../protocol/events.js";
import type { Clock, Timer } from "./clock.js";

/** Default holder silence after which a lease is released (docs/architecture.md, guarantee 7). */
export const DEFAULT_AUTO_RELEASE_AFTER_MS = 5 * 60 * 1000;

export interface LeaseHolder {
  /** Identifies the holder: a connection id, or `http:<token name>` for HTTP callers. */
  key: string;
  actor: Actor;
}

export type LeaseChange =
  | { action: "acquired"; holder: LeaseHolder; previous: null }
  | { action: "taken-over"; holder: LeaseHolder; previous: LeaseHolder }
  | { action: "released" | "expired" | "disconnected"; holder: null; previous: LeaseHolder };

/**
 * The single-writer control lease of one session. Whoever holds it may steer; it is renewed
 * by the holder's activity and released after `autoReleaseAfterMs` of silence, on release,
 * on disconnect, or taken over with force. Nobody can hold it forever.
 */
export class ControlLease {
  private current: LeaseHolder | null = null;
  private lastActivity = 0;
  private timer: Timer | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly autoReleaseAfterMs: number,
    private readonly onChange: (change: LeaseChange) => void,
  ) {}

  get holder(): LeaseHolder | null {
    return this.current;
  }

  /** Takes the lease. Throws CONTROL_HELD when someone else holds it and `force` is not set. */
  acquire(holder: LeaseHolder, force = false): void {
    const previous = this.current;
    if (previous && previous.key === holder.key) {
      this.touch(holder.key);
      return;
    }
    if (previous && !force)
      throw this.heldError(
        holder.actor.name,
        (by) => `control of this session is held by ${by}; use force to take it over`,
      );
    this.current = holder;
    this.lastActivity = this.clock.monotonic();
    this.schedule(this.autoReleaseAfterMs);
    this.onChange(
      previous ? { action: "taken-over", holder, previous } : { action: "acquired", holder, previous: null },
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
    if (holder === null) throw new Error("heldError: nobody holds the lease");
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
    this.timer?.cancel();
    this.timer = undefined;
    this.current = null;
  }

  private clear(): void {
    this.timer?.cancel();
    this.timer = undefined;
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
        this.current = null;
        this.onChange({ action: "expired", holder: null, previous: holder });
      } else {
        this.schedule(this.autoReleaseAfterMs - idle);
      }
    }, ms);
  }
}
