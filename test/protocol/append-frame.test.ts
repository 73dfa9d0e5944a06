import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClientFrame, ExternalEvent, appendFrame, customEvent } from "../../src/protocol/index.js";

/** Values shaped like custom events, most of them near misses. */
const eventLike = fc.oneof(
  fc.anything(),
  fc.record(
    {
      type: fc.oneof(
        fc.constantFrom("m", "tool.call", "a:b-c_d", "output", "exit", "1x", "", "x".repeat(64), "x".repeat(65), "é"),
        fc.string(),
        fc.integer(),
      ),
      data: fc.anything(),
      extra: fc.anything(),
    },
    { requiredKeys: [] },
  ),
);

/** Values shaped like /v1/ws frames, most of them appends and near misses of one. */
const frameLike = fc.oneof(
  fc.anything(),
  fc.record(
    {
      op: fc.oneof(
        { arbitrary: fc.constant("append"), weight: 4 },
        { arbitrary: fc.oneof(fc.constantFrom("subscribe", "APPEND"), fc.string()), weight: 1 },
      ),
      session: fc.oneof(
        fc.constantFrom("", "s", "s".repeat(128), "s".repeat(129), 7),
        fc.string({ minLength: 120, maxLength: 130 }),
        fc.string(),
      ),
      events: fc.oneof(
        { arbitrary: fc.array(eventLike, { minLength: 1, maxLength: 3 }), weight: 4 },
        { arbitrary: fc.oneof(fc.constant([]), eventLike), weight: 1 },
      ),
      ref: fc.oneof(
        fc.string({ maxLength: 130 }),
        fc.double(),
        fc.integer(),
        fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, "r".repeat(128), "r".repeat(129), null),
      ),
      extra: fc.anything(),
    },
    { requiredKeys: ["op", "session", "events"] },
  ),
);

/** As JSON.parse makes values: plain objects and arrays only. */
const plain = (value: unknown): boolean =>
  value === null ||
  typeof value !== "object" ||
  (Array.isArray(value)
    ? Object.getPrototypeOf(value) === Array.prototype
    : Object.getPrototypeOf(value) === Object.prototype);

describe("appendFrame: the hand check of a producer's append frame", () => {
  it("accepts only what the schema accepts, gives the schema's frame, and takes every plain append", () => {
    fc.assert(
      fc.property(frameLike, (raw) => {
        const quick = appendFrame(raw);
        const parsed = ClientFrame.safeParse(raw);
        if (quick !== undefined) {
          expect(parsed.success).toBe(true);
          expect(quick).toEqual(parsed.data);
        }
        // Else it would save nothing: a plain append the schema takes is taken here too.
        const frame = raw as { events?: unknown };
        if (parsed.success && parsed.data.op === "append" && plain(raw) && plain(frame.events)) {
          expect(quick).toEqual(parsed.data);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("leaves the rest to the schema, which explains it", () => {
    expect(appendFrame({ op: "append", session: "s", events: [] })).toBeUndefined();
    expect(appendFrame({ op: "append", session: "s", events: [{}], ref: Infinity })).toBeUndefined();
    expect(appendFrame({ op: "append", session: "s", events: [{}], extra: 1 })).toBeUndefined();
    expect(
      appendFrame(Object.assign(Object.create(null), { op: "append", session: "s", events: [1] })),
    ).toBeUndefined();
    expect(appendFrame(JSON.parse('{"op":"append","session":"s","events":[{"type":"m"}],"ref":7}'))).toEqual({
      op: "append",
      session: "s",
      events: [{ type: "m" }],
      ref: 7,
    });
  });
});

describe("customEvent: the hand check of a producer's custom event", () => {
  it("accepts only what the schema accepts, gives the schema's event, and takes every plain custom event", () => {
    fc.assert(
      fc.property(eventLike, (raw) => {
        const quick = customEvent(raw);
        const parsed = ExternalEvent.safeParse(raw);
        if (quick !== undefined) {
          expect(parsed.success).toBe(true);
          expect(quick).toEqual(parsed.data);
        }
        const type = (raw as { type?: unknown } | null)?.type;
        if (parsed.success && type !== "output" && type !== "exit" && plain(raw)) expect(quick).toEqual(parsed.data);
      }),
      { numRuns: 3000 },
    );
  });

  it("leaves output, exit and misnamed events to the schema", () => {
    expect(customEvent({ type: "output", data: { data: "x" } })).toBeUndefined();
    expect(customEvent({ type: "exit", data: {} })).toBeUndefined();
    expect(customEvent({ type: "1x" })).toBeUndefined();
    expect(customEvent({ type: "m", data: 1, more: 2 })).toBeUndefined();
    expect(customEvent(JSON.parse('{"type":"tool.call","data":{"i":1}}'))).toEqual({
      type: "tool.call",
      data: { i: 1 },
    });
    expect(customEvent({ type: "m" })).toEqual({ type: "m" });
  });
});
