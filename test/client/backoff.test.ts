import { describe, expect, it } from "vitest";
import { RECONNECT_INITIAL_DELAY_MS, RECONNECT_MAX_DELAY_MS, backoffDelay } from "../../src/client/index.js";

describe("backoffDelay", () => {
  it("doubles from the initial delay up to the cap, with half of each delay random", () => {
    const low = (attempt: number) => backoffDelay(attempt, { random: () => 0 });
    const high = (attempt: number) => backoffDelay(attempt, { random: () => 0.999999 });
    expect(low(1)).toBe(RECONNECT_INITIAL_DELAY_MS / 2);
    expect(high(1)).toBe(RECONNECT_INITIAL_DELAY_MS);
    expect(high(2)).toBe(RECONNECT_INITIAL_DELAY_MS * 2);
    expect(high(30)).toBe(RECONNECT_MAX_DELAY_MS);
    expect(low(30)).toBe(RECONNECT_MAX_DELAY_MS / 2);
    for (let a = 1; a < 40; a++) expect(low(a + 1)).toBeGreaterThanOrEqual(low(a));
  });

  it("takes its bounds as options", () => {
    expect(backoffDelay(5, { initialDelayMs: 10, maxDelayMs: 50, factor: 3, random: () => 0.5 })).toBe(38);
  });
});
