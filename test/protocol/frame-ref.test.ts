import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClientFrame, isRef } from "../../src/protocol/index.js";

describe("a /v1/ws frame's ref", () => {
  // isRef decides which refused frames have their ref echoed; the schema decides which frames
  // are taken. They must agree, or an error would echo a ref the gateway refuses (or drop one it takes).
  it("is taken by the frame schema exactly when isRef says so", () => {
    const values = fc.oneof(
      fc.double(),
      fc.integer(),
      fc.constantFrom(
        Number.MAX_SAFE_INTEGER,
        -Number.MAX_SAFE_INTEGER,
        Number.MAX_SAFE_INTEGER + 2,
        Infinity,
        -Infinity,
        NaN,
        1e300,
        -0,
      ),
      fc.string({ maxLength: 140 }),
      // No ref at all is a frame without one, which the schema takes: not a ref to check.
      fc.anything().filter((value) => value !== undefined),
    );
    fc.assert(
      fc.property(values, (ref) => {
        expect(ClientFrame.safeParse({ op: "ping", ref }).success).toBe(isRef(ref));
      }),
      { numRuns: 2000 },
    );
  });

  it("takes strings up to 128 characters and numbers within ±(2^53 − 1), nothing else", () => {
    expect([isRef("x".repeat(128)), isRef(Number.MAX_SAFE_INTEGER), isRef(-2.5), isRef(0)]).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect([isRef("x".repeat(129)), isRef(2 ** 53), isRef(Infinity), isRef(NaN), isRef(null), isRef([1])]).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});
