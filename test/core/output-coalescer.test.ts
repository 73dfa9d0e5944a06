import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { OUTPUT_COALESCE_MAX_BYTES, OUTPUT_COALESCE_MS, OutputCoalescer } from "../../src/core/output-coalescer.js";
import { decodedPiece } from "../helpers/pieces.js";
import type { DecodedPiece } from "../helpers/pieces.js";
import { decodeOutputData } from "../../src/core/utf8-chunker.js";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function setup(options: { maxBytes?: number } = {}) {
  const clock = new ManualClock();
  const pieces: DecodedPiece[] = [];
  const coalescer = new OutputCoalescer({ clock, emit: (p) => pieces.push(decodedPiece(p)), ...options });
  return { clock, pieces, coalescer };
}

describe("OutputCoalescer", () => {
  it("emits at once after a quiet interval, then at most one piece per interval", () => {
    const { clock, pieces, coalescer } = setup();
    coalescer.push("stdout", utf8("a"));
    expect(pieces).toEqual([{ stream: "stdout", offset: 0, data: "a", byteLength: 1 }]);
    clock.advance(1);
    coalescer.push("stdout", utf8("b"));
    coalescer.push("stdout", utf8("c"));
    clock.advance(OUTPUT_COALESCE_MS - 2);
    expect(pieces).toHaveLength(1);
    clock.advance(1);
    expect(pieces[1]).toEqual({ stream: "stdout", offset: 1, data: "bc", byteLength: 2 });
    expect(clock.pending).toBe(0);
    clock.advance(OUTPUT_COALESCE_MS);
    coalescer.push("stdout", utf8("d"));
    expect(pieces[2]).toEqual({ stream: "stdout", offset: 3, data: "d", byteLength: 1 });
  });

  it("takes its buffer from `allocate` on first use, keeps it for small pieces and hands full ones over", () => {
    const clock = new ManualClock();
    const buffers: Uint8Array[] = [];
    const emitted: Uint8Array[] = [];
    const coalescer = new OutputCoalescer({
      clock,
      emit: (p) => emitted.push(p.bytes),
      allocate: (n) => {
        const b = new Uint8Array(n);
        buffers.push(b);
        return b;
      },
    });
    expect(buffers).toHaveLength(0); // a session that prints nothing holds no buffer
    coalescer.push("pty", utf8("$ "));
    coalescer.push("pty", utf8("ls")); // waits for the interval, in the same buffer
    clock.advance(OUTPUT_COALESCE_MS);
    expect(buffers).toHaveLength(1);
    // Small pieces are copies: the buffer is reused, and what was emitted stays as it was.
    expect(emitted.map((b) => b.buffer === buffers[0]!.buffer)).toEqual([false, false]);
    clock.advance(OUTPUT_COALESCE_MS);
    coalescer.push("pty", new Uint8Array(OUTPUT_COALESCE_MAX_BYTES).fill(0x61));
    // A full buffer leaves with its piece; the next one is taken only when more output comes.
    expect(emitted[2]!.buffer).toBe(buffers[0]!.buffer);
    expect(buffers).toHaveLength(1);
    coalescer.push("pty", utf8("b"));
    expect(buffers).toHaveLength(2);
    expect(Buffer.from(emitted[2]!).equals(Buffer.alloc(OUTPUT_COALESCE_MAX_BYTES, 0x61))).toBe(true);
  });

  it("emits at once when the size bound is reached, and no piece exceeds it", () => {
    const { clock, pieces, coalescer } = setup();
    coalescer.push("pty", new Uint8Array(OUTPUT_COALESCE_MAX_BYTES * 2 + 10).fill(0x61));
    expect(pieces.map((p) => p.byteLength)).toEqual([OUTPUT_COALESCE_MAX_BYTES, OUTPUT_COALESCE_MAX_BYTES]);
    expect(pieces.map((p) => p.offset)).toEqual([0, OUTPUT_COALESCE_MAX_BYTES]);
    clock.advance(OUTPUT_COALESCE_MS);
    expect(pieces[2]).toMatchObject({ offset: OUTPUT_COALESCE_MAX_BYTES * 2, byteLength: 10 });
  });

  it("flushes the previous stream first when the stream changes", () => {
    const { clock, pieces, coalescer } = setup();
    coalescer.push("stdout", utf8("out1 "));
    coalescer.push("stderr", utf8("err "));
    coalescer.push("stdout", utf8("out2"));
    clock.advance(OUTPUT_COALESCE_MS);
    expect(pieces).toEqual([
      { stream: "stdout", offset: 0, data: "out1 ", byteLength: 5 },
      { stream: "stderr", offset: 5, data: "err ", byteLength: 4 },
      { stream: "stdout", offset: 9, data: "out2", byteLength: 4 },
    ]);
  });

  it("holds an unfinished character within a stream until its next chunk", () => {
    const { clock, pieces, coalescer } = setup();
    const euro = utf8("€");
    coalescer.push("pty", Uint8Array.of(0x78, euro[0]!));
    clock.advance(OUTPUT_COALESCE_MS);
    expect(pieces).toEqual([{ stream: "pty", offset: 0, data: "x", byteLength: 1 }]);
    expect(coalescer.pendingBytes).toBe(1);
    coalescer.push("pty", euro.subarray(1));
    clock.advance(OUTPUT_COALESCE_MS);
    expect(pieces[1]).toEqual({ stream: "pty", offset: 1, data: "€", byteLength: 3 });
  });

  it("flush() empties everything synchronously, an unfinished character included", () => {
    const { clock, pieces, coalescer } = setup();
    coalescer.push("stdout", Uint8Array.of(0x6f, 0x6b, 0xe2));
    coalescer.flush();
    expect(pieces).toEqual([
      { stream: "stdout", offset: 0, data: "ok", byteLength: 2 },
      { stream: "stdout", offset: 2, data: "4g==", enc: "base64", byteLength: 1 },
    ]);
    expect(coalescer.pendingBytes).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it("dispose() cancels the timer and drops the buffer", () => {
    const { clock, pieces, coalescer } = setup();
    coalescer.push("stdout", utf8("w")); // emitted at once (quiet before)
    coalescer.push("stdout", utf8("x")); // waits for the interval
    coalescer.dispose();
    coalescer.dispose();
    expect(clock.pending).toBe(0);
    clock.advance(OUTPUT_COALESCE_MS);
    expect(pieces.map((p) => p.data)).toEqual(["w"]);
    expect(() => coalescer.push("stdout", utf8("y"))).toThrow(/after dispose/);
  });

  it("rebuilds every stream's exact bytes, in arrival order, with contiguous offsets (property)", () => {
    const chunkArb = fc.record({
      stream: fc.constantFrom("stdout" as const, "stderr" as const),
      bytes: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 20 }).map(utf8)),
      waitMs: fc.integer({ min: 0, max: 6 }),
    });
    fc.assert(
      fc.property(fc.array(chunkArb, { maxLength: 30 }), fc.integer({ min: 4, max: 64 }), (chunks, maxBytes) => {
        const { clock, pieces, coalescer } = setup({ maxBytes });
        for (const c of chunks) {
          coalescer.push(c.stream, c.bytes);
          clock.advance(c.waitMs);
        }
        coalescer.flush();
        let offset = 0;
        for (const p of pieces) {
          expect(p.offset).toBe(offset);
          expect(p.byteLength).toBeLessThanOrEqual(maxBytes);
          offset += p.byteLength;
        }
        // The combined output, stream by stream, is exactly what was pushed.
        const got = pieces.map((p) => ({ stream: p.stream, bytes: decodeOutputData(p.data, p.enc) }));
        for (const stream of ["stdout", "stderr"] as const) {
          const want = Buffer.concat(chunks.filter((c) => c.stream === stream).map((c) => c.bytes));
          const have = Buffer.concat(got.filter((g) => g.stream === stream).map((g) => g.bytes));
          expect(have).toEqual(want);
        }
        const all = Buffer.concat(chunks.map((c) => c.bytes));
        expect(Buffer.concat(got.map((g) => g.bytes))).toEqual(all);
      }),
      { numRuns: 200 },
    );
  });
});
