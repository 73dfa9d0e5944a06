import { isUtf8 } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OutputEntry } from "../../src/log/output-entry.js";
import {
  SMALL_TEXT_FRAME_BYTES,
  smallBinaryFrame,
  smallTextFrame,
  terminalFrames,
} from "../../src/server/ws/terminal-frames.js";
import { WireFrame, encodeWireFrame } from "../../src/server/ws/wire-frame.js";

const entry = (bytes: Uint8Array, offset = 0, stream: "stdout" | "stderr" | "pty" = "pty") =>
  new OutputEntry(1, 0, stream, offset, bytes, false);

/** What the general path sends for one entry: its one frame, encoded for the wire. */
function general(e: OutputEntry): Buffer {
  const frames = terminalFrames([e], false, () => {});
  expect(frames).toHaveLength(1);
  const frame = frames[0]!;
  return encodeWireFrame(typeof frame === "string" ? frame : Buffer.from(frame as Uint8Array), false).bytes;
}

describe("smallTextFrame", () => {
  it("frames a keystroke's echo as the general path does", () => {
    const small = smallTextFrame(entry(Buffer.from("x"), 41));
    expect(small).toBeInstanceOf(WireFrame);
    expect(small!.payload.toString()).toBe('{"type":"stdout","offset":41,"data":"x"}');
    expect(small!.bytes.equals(general(entry(Buffer.from("x"), 41)))).toBe(true);
  });

  it("gives the general path's bytes, or leaves the entry to it (property)", () => {
    // Printable ASCII mostly, with what JSON escapes and what is not ASCII mixed in.
    const byte = fc.oneof(
      { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
      { weight: 1, arbitrary: fc.constantFrom(0x22, 0x5c, 0x0a, 0x1b, 0x00, 0x7f) },
      { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
    );
    let framed = 0;
    fc.assert(
      fc.property(
        fc.array(byte, { minLength: 1, maxLength: SMALL_TEXT_FRAME_BYTES + 8 }),
        fc.nat(),
        fc.constantFrom("stdout" as const, "stderr" as const, "pty" as const),
        (bytes, offset, stream) => {
          const data = Buffer.from(bytes);
          // Only whole UTF-8 is text output; the rest travels as base64, never by this path.
          const e = new OutputEntry(1, 0, stream, offset, data, !isUtf8(data));
          const small = smallTextFrame(e);
          if (small === undefined) return;
          framed++;
          expect(small.bytes.equals(general(e))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
    expect(framed).toBeGreaterThan(50);
  });

  it("leaves longer output, and any byte JSON escapes, to the general path", () => {
    expect(smallTextFrame(entry(Buffer.alloc(SMALL_TEXT_FRAME_BYTES + 1, 0x61)))).toBeUndefined();
    for (const text of ['say "hi"', "a\\b", "line\n", "\x1b[1m", "é"])
      expect(smallTextFrame(entry(Buffer.from(text)))).toBeUndefined();
  });
});

describe("smallBinaryFrame", () => {
  /** What the general path sends for one entry with `?output=binary`. */
  function generalBinary(e: OutputEntry): Buffer {
    const frames = terminalFrames([e], true, () => {});
    expect(frames).toHaveLength(1);
    const frame = frames[0]! as { bytes: Uint8Array };
    return encodeWireFrame(Buffer.from(frame.bytes), true).bytes;
  }

  it("gives the general path's bytes for any few bytes, text or not, on either stream, or leaves the entry to it (property)", () => {
    let framed = 0;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: SMALL_TEXT_FRAME_BYTES + 8 }),
        fc.maxSafeNat(),
        fc.constantFrom("stdout" as const, "stderr" as const, "pty" as const),
        (bytes, offset, stream) => {
          const data = Buffer.from(bytes);
          const e = new OutputEntry(1, 0, stream, offset, data, !isUtf8(data));
          const small = smallBinaryFrame(e);
          if (data.length === 0 || data.length > SMALL_TEXT_FRAME_BYTES) {
            expect(small).toBeUndefined();
            return;
          }
          framed++;
          expect(small!.binary).toBe(true);
          expect(small!.bytes.equals(generalBinary(e))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
    expect(framed).toBeGreaterThan(300);
  });
});
