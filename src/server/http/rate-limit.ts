import type { Clock } from "../../core/clock.js";

/** A token bucket: `ratePerSecond` refill, bursts up to one second's worth. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSecond: number,
    private readonly clock: Clock,
  ) {
    this.tokens = ratePerSecond;
    this.last = clock.monotonic();
  }

  /** Takes `amount` tokens if available. */
  take(amount: number): boolean {
    const now = this.clock.monotonic();
    this.tokens = Math.min(this.ratePerSecond, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
    if (amount > this.tokens) return false;
    this.tokens -= amount;
    return true;
  }

  /** Gives back what a refused request took: it did nothing, so it costs nothing. */
  giveBack(amount: number): void {
    this.tokens = Math.min(this.ratePerSecond, this.tokens + amount);
  }
}

/** Failed authentications tolerated per address per window before it is slowed down. */
export const AUTH_FAILURES_ALLOWED = 10;
export const AUTH_FAILURE_WINDOW_MS = 60_000;
/** Bound on tracked addresses, so a scan from many addresses cannot grow memory without limit. */
export const AUTH_FAILURE_TRACKED_ADDRESSES = 10_000;

/** Counts authentication failures per address; past the allowance the address is refused with 429 for the window. */
export class AuthFailureLimiter {
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(private readonly clock: Clock) {}

  /** Whether the address is currently blocked. */
  blocked(address: string): boolean {
    const entry = this.failures.get(address);
    if (!entry) return false;
    if (this.clock.monotonic() - entry.since > AUTH_FAILURE_WINDOW_MS) {
      this.failures.delete(address);
      return false;
    }
    return entry.count >= AUTH_FAILURES_ALLOWED;
  }

  /** How long the address stays blocked, in ms (0 when it is not). */
  blockedFor(address: string): number {
    if (!this.blocked(address)) return 0;
    return Math.max(0, this.failures.get(address)!.since + AUTH_FAILURE_WINDOW_MS - this.clock.monotonic());
  }

  recordFailure(address: string): void {
    const now = this.clock.monotonic();
    const entry = this.failures.get(address);
    if (!entry || now - entry.since > AUTH_FAILURE_WINDOW_MS) {
      // A new window goes to the end of the map's order, which is then by window start (an
      // expired entry kept its place, so it could push out a fresher address, or another
      // address was evicted to make room for one already counted).
      this.failures.delete(address);
      if (this.failures.size >= AUTH_FAILURE_TRACKED_ADDRESSES) {
        // Evict the oldest window (Map keeps insertion order).
        const oldest = this.failures.keys().next().value;
        if (oldest !== undefined) this.failures.delete(oldest);
      }
      this.failures.set(address, { count: 1, since: now });
    } else {
      entry.count++;
    }
  }
}
