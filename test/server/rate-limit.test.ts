import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import {
  AUTH_FAILURES_ALLOWED,
  AUTH_FAILURE_TRACKED_ADDRESSES,
  AUTH_FAILURE_WINDOW_MS,
  AuthFailureLimiter,
} from "../../src/server/http/rate-limit.js";

/** `address` fails until it is blocked. */
function block(limiter: AuthFailureLimiter, address: string): void {
  for (let i = 0; i < AUTH_FAILURES_ALLOWED; i++) limiter.recordFailure(address);
}

describe("AuthFailureLimiter", () => {
  it("blocks an address past the allowance for the window, then lets it in again", () => {
    const clock = new ManualClock();
    const limiter = new AuthFailureLimiter(clock);
    limiter.recordFailure("10.0.0.1");
    expect(limiter.blocked("10.0.0.1")).toBe(false);
    block(limiter, "10.0.0.1");
    expect(limiter.blocked("10.0.0.1")).toBe(true);
    expect(limiter.blocked("10.0.0.2")).toBe(false);
    clock.advance(AUTH_FAILURE_WINDOW_MS + 1);
    expect(limiter.blocked("10.0.0.1")).toBe(false);
  });

  // Regression (soak pass): at the bound, an address whose window had expired and that failed
  // again kept its old place in the eviction order (another address was evicted for it), so the
  // next addresses to fail pushed out its fresh block.
  it("at its bound on addresses, evicts the oldest window, never a fresh one", () => {
    const clock = new ManualClock();
    const limiter = new AuthFailureLimiter(clock);
    limiter.recordFailure("first");
    limiter.recordFailure("attacker");
    for (let i = 2; i < AUTH_FAILURE_TRACKED_ADDRESSES; i++) limiter.recordFailure(`scan-${i}`);
    clock.advance(AUTH_FAILURE_WINDOW_MS + 1);
    block(limiter, "attacker");
    expect(limiter.blocked("attacker")).toBe(true);
    // Two more addresses fail: the oldest windows (the scan's) make room, not the attacker's block.
    limiter.recordFailure("other-1");
    limiter.recordFailure("other-2");
    expect(limiter.blocked("attacker")).toBe(true);
  });
});
