import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { WorkTimer } from "../../src/core/work-timer.js";

function timer(busy: () => boolean = () => false) {
  const clock = new ManualClock();
  const runs: number[] = [];
  let sleeps = 0;
  const t = new WorkTimer({
    clock,
    everyMs: 1_000,
    run: () => void runs.push(clock.monotonic()),
    busy,
    onSleep: () => sleeps++,
  });
  return { clock, runs, t, sleeps: () => sleeps };
}

describe("WorkTimer", () => {
  it("does not run before it is woken", () => {
    const { clock, runs, t } = timer();
    clock.advance(10_000);
    expect(runs).toEqual([]);
    expect(t.armed).toBe(false);
  });

  it("runs a whole period after the last wake, then sleeps", () => {
    const { clock, runs, t, sleeps } = timer();
    const start = clock.monotonic();
    t.wake();
    clock.advance(1_500);
    t.wake(); // during the second period: a third run follows
    clock.advance(10_000);
    expect(runs.map((at) => at - start)).toEqual([1_000, 2_000, 3_000]);
    expect(t.armed).toBe(false);
    expect(sleeps()).toBe(1);
    t.wake();
    clock.advance(10_000);
    expect(runs.map((at) => at - start)).toEqual([1_000, 2_000, 3_000, 12_500, 13_500]);
  });

  it("goes on while busy, and sleeps once it is not", () => {
    let work = 3;
    const { clock, runs, t } = timer(() => --work > 0);
    t.wake();
    clock.advance(60_000);
    // The woken period, then two more while busy (3 → 2 → 1), then the one that found 0.
    expect(runs).toHaveLength(4);
    expect(t.armed).toBe(false);
  });

  it("never runs after close", () => {
    const { clock, runs, t } = timer(() => true);
    t.wake();
    clock.advance(2_000);
    t.close();
    t.wake();
    clock.advance(10_000);
    expect(runs).toHaveLength(2);
  });
});
