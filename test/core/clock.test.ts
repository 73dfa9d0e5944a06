import { describe, expect, it } from "vitest";
import { ManualClock, systemClock, untilAligned } from "../../src/core/clock.js";

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

describe("systemClock", () => {
  // Found by exploratory testing: `control.autoReleaseAfterMs: 3000000000` (about 35 days) made
  // Node set every lease timer to 1 ms (TimeoutOverflowWarning), so a held lease re-armed its
  // timer every millisecond, flooding stderr with warnings and keeping a core busy.
  it("waits out delays longer than a 32-bit setTimeout allows instead of firing at once", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on("warning", onWarning);
    try {
      let fired = 0;
      const timer = systemClock.setTimeout(() => fired++, 3_000_000_000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      timer.cancel();
      expect(fired).toBe(0);
      expect(warnings.map((w) => w.name)).not.toContain("TimeoutOverflowWarning");
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("cancels a long timer before it fires", async () => {
    let fired = 0;
    const timer = systemClock.setTimeout(() => fired++, 2 ** 31 + 5);
    timer.cancel();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fired).toBe(0);
  });
});

describe("untilAligned", () => {
  it("arms timers of periods that divide one another for the same instants, never within a tenth of a period", () => {
    const clock = new ManualClock(0);
    const fired: Array<[string, number]> = [];
    const every = (name: string, period: number): void => {
      clock.setTimeout(
        () => {
          fired.push([name, clock.monotonic()]);
          every(name, period);
        },
        untilAligned(clock, period),
      );
    };
    clock.advance(1234);
    every("renewal", 3333);
    every("look", 9999);
    clock.advance(30_000);
    const at = (name: string) => fired.filter(([n]) => n === name).map(([, t]) => t);
    expect(at("renewal")).toEqual([3333, 6666, 9999, 13332, 16665, 19998, 23331, 26664, 29997]);
    expect(at("look")).toEqual([9999, 19998, 29997]);
    // Just short of a multiple (a timer a hair early): the one after it, not a second call within 1 ms.
    expect(untilAligned(new ManualClock(9998.6), 3333)).toBe(3334);
    expect(untilAligned(new ManualClock(10_000), 3333)).toBe(3332);
  });
});
