import { describe, expect, it } from "vitest";
import { nestsDeeperThan } from "../../src/protocol/index.js";

const nested = (depth: number): unknown => JSON.parse("[".repeat(depth) + "]".repeat(depth));

describe("nestsDeeperThan", () => {
  it("counts arrays and objects as one level each, and primitives as none", () => {
    expect(nestsDeeperThan("text", 0)).toBe(false);
    expect(nestsDeeperThan(null, 0)).toBe(false);
    expect(nestsDeeperThan({}, 0)).toBe(true);
    expect(nestsDeeperThan({}, 1)).toBe(false);
    expect(nestsDeeperThan({ a: [1, { b: "x" }] }, 3)).toBe(false);
    expect(nestsDeeperThan({ a: [1, { b: [] }] }, 3)).toBe(true);
  });

  it("finds the deep branch among shallow ones", () => {
    const value = { wide: Array.from({ length: 1000 }, (_, i) => ({ i })), deep: nested(65) };
    expect(nestsDeeperThan(value, 66)).toBe(false);
    expect(nestsDeeperThan(value, 65)).toBe(true);
  });

  it("does not overflow the stack on a value nested 100,000 levels deep, as JSON.stringify does", () => {
    const deep = nested(100_000);
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(nestsDeeperThan(deep, 64)).toBe(true);
    expect(nestsDeeperThan(deep, 100_000)).toBe(false);
  });
});
