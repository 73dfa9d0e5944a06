import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LagProbe, PAGE_LAG_MS, PROBE_BYTES } from "../../web/src/lag-probe.js";

/** A ping answered when the test says, with the round trip it says. */
function pings() {
  const waiting: Array<(ms: number) => void> = [];
  return {
    ping: () => new Promise<number>((resolve) => waiting.push(resolve)),
    sent: () => waiting.length,
    answer: (ms: number) => waiting.shift()!(ms),
  };
}

describe("the page's lag probe", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("pings only during a flood, one ping at a time", async () => {
    const p = pings();
    const probe = new LagProbe(p.ping, () => undefined);
    probe.taken(PROBE_BYTES - 1);
    expect(p.sent()).toBe(0);
    probe.taken(1);
    probe.taken(PROBE_BYTES);
    expect(p.sent()).toBe(1);
    p.answer(5);
    await vi.advanceTimersByTimeAsync(0);
    probe.taken(PROBE_BYTES);
    expect(p.sent()).toBe(1);
  });

  it("says the page is behind once a pong is PAGE_LAG_MS later than the quickest, without waiting for it", async () => {
    const p = pings();
    let behind = 0;
    const probe = new LagProbe(p.ping, () => behind++);
    probe.taken(PROBE_BYTES);
    await vi.advanceTimersByTimeAsync(40);
    p.answer(40);
    await vi.advanceTimersByTimeAsync(0);
    probe.taken(PROBE_BYTES);
    await vi.advanceTimersByTimeAsync(40 + PAGE_LAG_MS - 1);
    expect(behind).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(behind).toBe(1);
    p.answer(2_000);
    await vi.advanceTimersByTimeAsync(0);
    // The slow pong does not raise the bar.
    probe.taken(PROBE_BYTES);
    await vi.advanceTimersByTimeAsync(40 + PAGE_LAG_MS);
    expect(behind).toBe(2);
  });

  it("stays quiet when pongs come in time, and after dispose", async () => {
    const p = pings();
    let behind = 0;
    const probe = new LagProbe(p.ping, () => behind++);
    for (let i = 0; i < 5; i++) {
      probe.taken(PROBE_BYTES);
      await vi.advanceTimersByTimeAsync(100);
      p.answer(100);
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(behind).toBe(0);
    probe.taken(PROBE_BYTES);
    probe.dispose();
    await vi.advanceTimersByTimeAsync(10 * PAGE_LAG_MS);
    expect(behind).toBe(0);
  });
});
