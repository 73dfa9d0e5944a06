import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { DEFAULT_DELTA_THROTTLE_MS, DeltaPacer } from "../../src/core/delta-pacer.js";
import type { DeltaEmitReason } from "../../src/core/delta-pacer.js";

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

interface Emitted {
  text: string;
  reason: DeltaEmitReason;
  at: number;
}

function setup(throttleMs = DEFAULT_DELTA_THROTTLE_MS): { clock: ManualClock; pacer: DeltaPacer; out: Emitted[] } {
  const clock = new ManualClock(0);
  const out: Emitted[] = [];
  const pacer = new DeltaPacer({
    clock,
    throttleMs,
    emit: (text, reason) => out.push({ text, reason, at: clock.now() }),
  });
  return { clock, pacer, out };
}

describe("DeltaPacer", () => {
  // Exploratory test: an emoji sent in two chunks 120 ms apart became two deltas each holding
  // half of its surrogate pair, JSON that strict parsers (serde_json) refuse.
  it("never ends a paced delta between the halves of a surrogate pair; a flush lets a lone half go", () => {
    const { clock, pacer, out } = setup(50);
    pacer.push("A\ud83c");
    expect(out).toEqual([{ text: "A", reason: "paced", at: 0 }]);
    clock.advance(120);
    pacer.push("\udf89B");
    expect(out[1]).toEqual({ text: "\ud83c\udf89B", reason: "paced", at: 120 });
    clock.advance(100);
    pacer.push("\ud83d");
    expect(out).toHaveLength(2);
    expect(pacer.pending).toBe(true);
    pacer.flush();
    expect(out[2]).toEqual({ text: "\ud83d", reason: "flush", at: 220 });
  });

  it("gives every paced delta whole characters and loses nothing, however emoji are cut (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ text: fc.string({ unit: "grapheme", maxLength: 6 }), gap: fc.nat(80) }), {
          maxLength: 40,
        }),
        fc.nat(),
        (pieces, seed) => {
          const { clock, pacer, out } = setup(50);
          // Cut the whole text at arbitrary code-unit offsets, surrogate pairs included.
          const whole = pieces.map((p) => p.text).join("");
          let at = 0;
          let i = 0;
          for (const piece of pieces) {
            const cut = Math.min(whole.length, at + ((seed + i++ * 7) % 5) + piece.text.length);
            if (cut > at) pacer.push(whole.slice(at, cut));
            at = cut;
            clock.advance(piece.gap);
          }
          if (at < whole.length) pacer.push(whole.slice(at));
          clock.advance(1_000);
          pacer.flush();
          expect(out.map((e) => e.text).join("")).toBe(whole);
          for (const e of out.filter((e) => e.reason === "paced")) expect(e.text).not.toMatch(LONE_SURROGATE);
        },
      ),
    );
  });

  it("lets the first text through at once and coalesces what follows inside the window", () => {
    const { clock, pacer, out } = setup(50);
    pacer.push("a");
    expect(out).toEqual([{ text: "a", reason: "paced", at: 0 }]);
    clock.advance(10);
    pacer.push("b");
    clock.advance(10);
    pacer.push("c");
    expect(out).toHaveLength(1);
    clock.advance(29);
    expect(out).toHaveLength(1);
    clock.advance(1);
    expect(out[1]).toEqual({ text: "bc", reason: "paced", at: 50 });
    expect(clock.pending).toBe(0);
  });

  it("flush emits at once, bypassing the throttle, and cancels the pending timer", () => {
    const { clock, pacer, out } = setup(50);
    pacer.push("a");
    clock.advance(5);
    pacer.push("b");
    pacer.flush();
    expect(out.map((e) => [e.text, e.reason, e.at])).toEqual([
      ["a", "paced", 0],
      ["b", "flush", 5],
    ]);
    expect(clock.pending).toBe(0);
    pacer.flush();
    expect(out).toHaveLength(2);
  });

  it("dispose drops the buffer and leaves no timer behind", () => {
    const { clock, pacer, out } = setup(50);
    pacer.push("a");
    pacer.push("b");
    pacer.dispose();
    pacer.push("c");
    clock.advance(100);
    expect(out.map((e) => e.text)).toEqual(["a"]);
    expect(clock.pending).toBe(0);
  });

  it("property: at most one paced emission per window, nothing lost, nothing pending after flush", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("push" as const), text: fc.string({ minLength: 1, maxLength: 4 }) }),
      fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 120 }) }),
      fc.record({ kind: fc.constant("flush" as const) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.array(op, { maxLength: 60 }), (throttle, ops) => {
        const { clock, pacer, out } = setup(throttle);
        let pushed = "";
        for (const o of ops) {
          if (o.kind === "push") {
            pushed += o.text;
            pacer.push(o.text);
          } else if (o.kind === "advance") clock.advance(o.ms);
          else pacer.flush();
        }
        pacer.flush();
        expect(pacer.pending).toBe(false);
        expect(clock.pending).toBe(0);
        expect(out.map((e) => e.text).join("")).toBe(pushed);
        for (let i = 1; i < out.length; i++) {
          if (out[i]!.reason === "paced") expect(out[i]!.at - out[i - 1]!.at).toBeGreaterThanOrEqual(throttle);
        }
        expect(out.every((e) => e.text !== "")).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
