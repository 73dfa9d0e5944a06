import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { ControlLease } from "../../src/core/control-lease.js";
import { DeltaPacer } from "../../src/core/delta-pacer.js";
import { OUTPUT_COALESCE_MS, OutputCoalescer } from "../../src/core/output-coalescer.js";
import { RateWindow } from "../../src/plugins/rate-window.js";
import { AUTH_FAILURES_ALLOWED, AuthFailureLimiter, TokenBucket } from "../../src/server/http/rate-limit.js";

const HOUR = 3_600_000;

/**
 * A clock whose wall time can be set like the system's (NTP, a VM resumed, `date -s`) while
 * time itself, its timers and its monotonic reading, goes on evenly.
 */
class SteppedClock extends ManualClock {
  private offset = 0;

  override now(): number {
    return super.now() + this.offset;
  }

  stepWall(ms: number): void {
    this.offset += ms;
  }
}

// Each of these measured a wait or an idle time on the wall clock: set back an hour, a wait
// became an hour long; set forward, a lease expired or a plugin looked hung at once.
describe("durations do not follow the wall clock when it is set", () => {
  it("terminal output is not held back after the clock was set back", () => {
    const clock = new SteppedClock();
    const pieces: number[] = [];
    const coalescer = new OutputCoalescer({ clock, emit: (p) => pieces.push(p.bytes.byteLength) });
    coalescer.push("stdout", new Uint8Array([0x61]));
    clock.stepWall(-HOUR);
    coalescer.push("stdout", new Uint8Array([0x62, 0x63]));
    clock.advance(OUTPUT_COALESCE_MS);
    expect(pieces).toEqual([1, 2]);
  });

  it("an agent's answer is not held back after the clock was set back", () => {
    const clock = new SteppedClock();
    const texts: string[] = [];
    const pacer = new DeltaPacer({ clock, throttleMs: 50, emit: (text) => texts.push(text) });
    pacer.push("Hel");
    clock.stepWall(-HOUR);
    pacer.push("lo");
    clock.advance(50);
    expect(texts).toEqual(["Hel", "lo"]);
  });

  it("a control lease expires after its idle time, not when the clock is set forward or back", () => {
    for (const step of [HOUR, -HOUR]) {
      const clock = new SteppedClock();
      const changes: string[] = [];
      const lease = new ControlLease(clock, 60_000, (c) => changes.push(c.action));
      lease.acquire({ key: "c1", actor: { name: "alice", role: "operator" } });
      clock.advance(30_000);
      clock.stepWall(step);
      clock.advance(29_999);
      expect(changes, `stepped ${step}`).toEqual(["acquired"]);
      clock.advance(1);
      expect(changes, `stepped ${step}`).toEqual(["acquired", "expired"]);
    }
  });

  it("rate limits neither refuse everything nor keep refusing after the clock was set back", () => {
    const clock = new SteppedClock();
    const bucket = new TokenBucket(10, clock);
    expect(bucket.take(10)).toBe(true);
    clock.stepWall(-HOUR);
    clock.advance(1000);
    expect(bucket.take(10)).toBe(true);

    const window = new RateWindow(2, clock);
    expect([window.take(), window.take(), window.take()]).toEqual([true, true, false]);
    clock.stepWall(-HOUR);
    clock.advance(1000);
    expect(window.take()).toBe(true);

    const failures = new AuthFailureLimiter(clock);
    for (let i = 0; i < AUTH_FAILURES_ALLOWED; i++) failures.recordFailure("203.0.113.7");
    expect(failures.blocked("203.0.113.7")).toBe(true);
    clock.stepWall(-HOUR);
    clock.advance(61_000);
    expect(failures.blocked("203.0.113.7")).toBe(false);
  });
});
