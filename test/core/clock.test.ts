import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";

/** A timer that sets itself again every `periodMs`, as a periodic check does; counts its runs. */
function periodic(clock: ManualClock, periodMs: number): { runs: number[] } {
  const seen = { runs: [] as number[] };
  const tick = (): void => {
    seen.runs.push(clock.now());
    clock.setTimeout(tick, periodMs);
  };
  clock.setTimeout(tick, periodMs);
  return seen;
}

describe("ManualClock", () => {
  it("advance() fires every timer that falls due, a periodic one once per period, in order", () => {
    const clock = new ManualClock(0);
    const check = periodic(clock, 5_000);
    const order: string[] = [];
    clock.setTimeout(() => order.push("at 12 s"), 12_000);
    clock.setTimeout(() => order.push("at 7 s"), 7_000);
    clock.advance(20_000);
    expect(check.runs).toEqual([5_000, 10_000, 15_000, 20_000]);
    expect(order).toEqual(["at 7 s", "at 12 s"]);
    expect(clock.now()).toBe(20_000);
  });

  it("jump() fires each timer due by then once, and the timers they set count from the new time", () => {
    const clock = new ManualClock(0);
    const check = periodic(clock, 5_000);
    const order: string[] = [];
    clock.setTimeout(() => order.push("at 12 s"), 12_000);
    clock.setTimeout(() => order.push("at 7 s"), 7_000);
    clock.setTimeout(() => order.push("after the jump"), 8 * 24 * 60 * 60 * 1000);
    clock.jump(7 * 24 * 60 * 60 * 1000);
    const week = 7 * 24 * 60 * 60 * 1000;
    expect(clock.now()).toBe(week);
    expect(check.runs).toEqual([week]);
    expect(order).toEqual(["at 7 s", "at 12 s"]);
    clock.advance(5_000);
    expect(check.runs).toEqual([week, week + 5_000]);
  });
});
