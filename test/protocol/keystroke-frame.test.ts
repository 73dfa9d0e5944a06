import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LIMITS, TerminalClientFrame, keystrokeFrame } from "../../src/protocol/index.js";

/** Values shaped like /ws/session frames, most of them near misses of a keystroke. */
const frameLike = fc.oneof(
  fc.anything(),
  fc.record(
    {
      type: fc.oneof(fc.constantFrom("stdin", "signal", "ping", "STDIN", "stdin "), fc.string()),
      data: fc.oneof(
        fc.string(),
        fc.constantFrom("", "\u0003", "x".repeat(LIMITS.INPUT_BYTES * 2), "x".repeat(LIMITS.INPUT_BYTES * 2 + 1)),
        fc.integer(),
        fc.constant(null),
      ),
      enc: fc.constantFrom("base64", "hex", undefined),
      eof: fc.constantFrom(true, false),
      extra: fc.anything(),
    },
    { requiredKeys: [] },
  ),
  fc.string().map((data) => ({ type: "stdin", data })),
);

describe("keystrokeFrame: the hand check of the commonest /ws/session frame", () => {
  it("accepts only what the schema accepts, and gives the schema's frame", () => {
    fc.assert(
      fc.property(frameLike, (raw) => {
        const quick = keystrokeFrame(raw);
        const parsed = TerminalClientFrame.safeParse(raw);
        if (quick !== undefined) {
          expect(parsed.success).toBe(true);
          expect(quick).toEqual(parsed.data);
        }
        // And it does take every plain keystroke the schema accepts (else it would save nothing).
        // Plain: as JSON.parse makes it — an object with Object.prototype (fc.anything() also
        // makes ones with a null prototype, which the hand check leaves to the schema).
        const plain =
          parsed.success &&
          parsed.data.type === "stdin" &&
          Object.getPrototypeOf(raw) === Object.prototype &&
          Object.keys(raw as object).join() === "type,data";
        if (plain && (raw as { data: string }).data.length > 0) expect(quick).toEqual(parsed.data);
      }),
      { numRuns: 3000 },
    );
  });

  it("leaves objects that only look plain, and empty data, to the schema", () => {
    const proto = Object.create({ inherited: 1 }) as Record<string, unknown>;
    proto["type"] = "stdin";
    proto["data"] = "x";
    expect(keystrokeFrame(proto)).toBeUndefined();
    expect(keystrokeFrame({ type: "stdin", data: "" })).toBeUndefined();
    expect(keystrokeFrame({ type: "stdin", data: "x", eof: true })).toBeUndefined();
    expect(keystrokeFrame(JSON.parse('{"type":"stdin","data":"ls\\r"}'))).toEqual({ type: "stdin", data: "ls\r" });
  });
});
