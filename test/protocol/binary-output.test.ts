import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BINARY_OUTPUT_HEADER_BYTES,
  BINARY_OUTPUT_KINDS,
  readBinaryOutput,
  writeBinaryOutputHeader,
} from "../../src/protocol/index.js";
import type { BinaryOutputKind } from "../../src/protocol/index.js";

function frame(kind: BinaryOutputKind, offset: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(BINARY_OUTPUT_HEADER_BYTES + bytes.length);
  writeBinaryOutputHeader(out, kind, offset);
  out.set(bytes, BINARY_OUTPUT_HEADER_BYTES);
  return out;
}

describe("binary output frames (/ws/session?output=binary)", () => {
  it("lays out kind, a big-endian 64-bit offset and the bytes as docs/protocol.md shows", () => {
    const f = frame("stderr", 2 ** 32 + 5, Uint8Array.of(0xff, 0x00));
    expect([...f]).toEqual([2, 0, 0, 0, 1, 0, 0, 0, 5, 0xff, 0x00]);
    expect(BINARY_OUTPUT_KINDS).toEqual({ stdout: 1, stderr: 2, replay: 3 });
  });

  it("reads back what was written, for any kind, offset up to 2^53 and bytes (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<BinaryOutputKind>("stdout", "stderr", "replay"),
        fc.maxSafeNat(),
        fc.uint8Array({ maxLength: 64 }),
        fc.nat({ max: 7 }),
        (kind, offset, bytes, shift) => {
          // The frame may sit anywhere in a larger buffer (as a Node Buffer from the pool does).
          const whole = new Uint8Array(shift + BINARY_OUTPUT_HEADER_BYTES + bytes.length);
          const f = whole.subarray(shift);
          f.set(frame(kind, offset, bytes));
          const read = readBinaryOutput(f)!;
          expect({ kind: read.kind, offset: read.offset, bytes: [...read.bytes] }).toEqual({
            kind,
            offset,
            bytes: [...bytes],
          });
        },
      ),
    );
  });

  it("refuses what is not an output frame, and offsets that are not byte positions", () => {
    expect(readBinaryOutput(Uint8Array.of(1, 0, 0))).toBeNull();
    expect(readBinaryOutput(Uint8Array.of(9, 0, 0, 0, 0, 0, 0, 0, 0))).toBeNull();
    expect(readBinaryOutput(Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))).toBeNull();
    expect(() => writeBinaryOutputHeader(new Uint8Array(9), "stdout", -1)).toThrow(RangeError);
    expect(() => writeBinaryOutputHeader(new Uint8Array(9), "stdout", 2 ** 53)).toThrow(RangeError);
  });
});
