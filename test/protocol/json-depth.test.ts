import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nestsDeeperThan, textNestsDeeperThan } from "../../src/protocol/index.js";

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

describe("textNestsDeeperThan", () => {
  it("agrees with nestsDeeperThan on the parsed value of any JSON text, brackets in strings and keys included", () => {
    const brackety = fc.string({ unit: fc.constantFrom("[", "]", "{", "}", '"', "\\", "a", "\u00e9") });
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        brackety,
        fc.integer(),
        fc.constant(null),
        fc.array(tie("node"), { maxLength: 3 }),
        fc.dictionary(brackety, tie("node"), { maxKeys: 3 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 8 }), fc.boolean(), (v, max, pretty) => {
        const text = JSON.stringify(v, null, pretty ? 2 : undefined);
        expect(textNestsDeeperThan(text, max)).toBe(nestsDeeperThan(v, max));
      }),
      { numRuns: 500 },
    );
  });

  it("refuses the 5000-level frame of the crash report without building it", () => {
    const text = `{"op":"subscribe","session":"x","types":${"[".repeat(5000)}${"]".repeat(5000)}}`;
    expect(textNestsDeeperThan(text, 64)).toBe(true);
    expect(textNestsDeeperThan(`{"types":"${"[".repeat(5000)}"}`, 64)).toBe(false);
    // A string that ends in an escaped backslash ends at the quote after it; one with an escaped quote does not.
    expect(textNestsDeeperThan(String.raw`["a\\", [[]]]`, 2)).toBe(true);
    expect(textNestsDeeperThan(String.raw`["a\", [[]]"]`, 2)).toBe(false);
  });
});
