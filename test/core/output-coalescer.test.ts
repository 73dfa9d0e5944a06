import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import {
  OUTPUT_BUFFER_START_BYTES,
  OUTPUT_COALESCE_MAX_BYTES,
  OUTPUT_COALESCE_MS,
  OUTPUT_LEADING_ASCII_BYTES,
  OutputCoalescer,
} from "../../src/core/output-coalescer.js";
import type { CoalescedOutput } from "../../src/core/output-coalescer.js";
import { decodedPiece } from "../helpers/pieces.js";
import type { DecodedPiece } from "../helpers/pieces.js";
import { decodeOutputData } from "../../src/core/utf8-chunker.js";
import { BufferPool, BufferPools, PIECE_BYTES, PIECE_HEADROOM } from "../../src/core/buffer-pool.js";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function setup(options: { maxBytes?: number; startBytes?: number } = {}) {
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

  function allocationSpy() {
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
    return { clock, buffers, emitted, coalescer };
  }

  it("takes its buffer from `allocate` on first use, keeps it for small pieces and hands full ones over", () => {
    const { clock, buffers, emitted, coalescer } = allocationSpy();
    expect(buffers).toHaveLength(0); // a session that prints nothing holds no buffer
    coalescer.push("pty", utf8("$ "));
    coalescer.push("pty", utf8("ls")); // waits for the interval, in the same buffer
    clock.advance(OUTPUT_COALESCE_MS);
    expect(buffers.map((b) => b.length)).toEqual([OUTPUT_BUFFER_START_BYTES]);
    // Small pieces are copies: the buffer is reused, and what was emitted stays as it was.
    expect(emitted.map((b) => b.buffer === buffers[0]!.buffer)).toEqual([false, false]);
    clock.advance(OUTPUT_COALESCE_MS);
    coalescer.push("pty", new Uint8Array(OUTPUT_COALESCE_MAX_BYTES).fill(0x61));
    // The burst needed a full-size buffer; it left with its piece, and the next one is taken
    // only when more output comes — full-size, as the flood may go on.
    expect(buffers.map((b) => b.length)).toEqual([OUTPUT_BUFFER_START_BYTES, OUTPUT_COALESCE_MAX_BYTES]);
    expect(emitted[2]!.buffer).toBe(buffers[1]!.buffer);
    coalescer.push("pty", utf8("b"));
    expect(buffers.map((b) => b.length)).toEqual([
      OUTPUT_BUFFER_START_BYTES,
      OUTPUT_COALESCE_MAX_BYTES,
      OUTPUT_COALESCE_MAX_BYTES,
    ]);
    expect(Buffer.from(emitted[2]!).equals(Buffer.alloc(OUTPUT_COALESCE_MAX_BYTES, 0x61))).toBe(true);
    clock.advance(OUTPUT_COALESCE_MS);
    expect(Buffer.from(emitted[3]!).toString()).toBe("b");
  });

  it("grows its buffer while a burst lasts (keeping what it holds) and starts small after it", () => {
    const { clock, buffers, emitted, coalescer } = allocationSpy();
    coalescer.push("pty", utf8("$ ")); // leading edge: out at once
    const burst = Buffer.alloc(3 * OUTPUT_BUFFER_START_BYTES);
    for (let i = 0; i < burst.length; i++) burst[i] = 0x61 + (i % 26);
    // Arrives in small reads within one interval: 4 KiB → 8 KiB → 16 KiB, each copying what came before.
    for (let i = 0; i < burst.length; i += 1000) coalescer.push("pty", burst.subarray(i, i + 1000));
    expect(buffers.map((b) => b.length)).toEqual([4096, 8192, 16384]);
    clock.advance(OUTPUT_COALESCE_MS);
    expect(Buffer.concat(emitted.slice(1)).equals(burst)).toBe(true);
    // A piece that is not mostly full is copied, so the grown buffer is still in use...
    coalescer.push("pty", burst.subarray(0, 2 * OUTPUT_BUFFER_START_BYTES));
    clock.advance(OUTPUT_COALESCE_MS);
    expect(buffers).toHaveLength(3);
    // ...until a piece the start size holds says the burst is over: the next output starts small.
    clock.advance(OUTPUT_COALESCE_MS);
    coalescer.push("pty", utf8("$ "));
    expect(buffers).toHaveLength(3);
    coalescer.push("pty", utf8("ls"));
    clock.advance(OUTPUT_COALESCE_MS);
    expect(buffers.map((b) => b.length)).toEqual([4096, 8192, 16384, 4096]);
    expect(emitted.slice(-2).map((b) => Buffer.from(b).toString())).toEqual(["$ ", "ls"]);
  });

  it("emits a leading ASCII echo as its own copy without taking a buffer; other output still takes one", () => {
    const { clock, buffers, emitted, coalescer } = allocationSpy();
    // A Buffer, as a PTY read is: its `slice` would be a view, not a copy.
    const echo = Buffer.from("x");
    coalescer.push("pty", echo);
    expect(buffers).toHaveLength(0);
    expect(Buffer.from(emitted[0]!).toString()).toBe("x");
    echo[0] = 0x79; // the caller's chunk is not kept
    expect(Buffer.from(emitted[0]!).toString()).toBe("x");
    // Within the interval: buffered, as before.
    coalescer.push("pty", utf8("y"));
    expect(buffers.map((b) => b.length)).toEqual([OUTPUT_BUFFER_START_BYTES]);
    clock.advance(OUTPUT_COALESCE_MS);
    // After quiet, not ASCII (or longer than OUTPUT_LEADING_ASCII_BYTES): through the buffer.
    clock.advance(OUTPUT_COALESCE_MS);
    coalescer.push("pty", utf8("é"));
    coalescer.push("pty", Buffer.alloc(OUTPUT_LEADING_ASCII_BYTES + 1, 0x61));
    clock.advance(OUTPUT_COALESCE_MS);
    expect(emitted.map((b) => Buffer.from(b).toString())).toEqual([
      "x",
      "y",
      "é",
      "a".repeat(OUTPUT_LEADING_ASCII_BYTES + 1),
    ]);
    expect(buffers.map((b) => b.length)).toEqual([OUTPUT_BUFFER_START_BYTES]);
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
      bytes: fc.oneof(
        fc.uint8Array({ maxLength: 40 }),
        fc.string({ unit: "binary", maxLength: 20 }).map(utf8),
        // Short ASCII, as echoes are: after quiet, these skip the buffer.
        fc.string({ unit: "grapheme-ascii", maxLength: 12 }).map(utf8),
      ),
      waitMs: fc.integer({ min: 0, max: 6 }),
    });
    // Small sizes, so that pieces fill up, buffers grow from their start size and are handed over.
    const sizesArb = fc
      .integer({ min: 5, max: 64 })
      .chain((maxBytes) =>
        fc.record({ maxBytes: fc.constant(maxBytes), startBytes: fc.integer({ min: 1, max: maxBytes }) }),
      );
    fc.assert(
      fc.property(sizesArb, fc.array(chunkArb, { maxLength: 30 }), ({ maxBytes, startBytes }, chunks) => {
        const clock = new ManualClock();
        // Kept as emitted (views, not copies) and decoded at the end: a buffer written to after
        // it left with a piece would show here.
        const emitted: CoalescedOutput[] = [];
        const coalescer = new OutputCoalescer({ clock, emit: (p) => emitted.push(p), maxBytes, startBytes });
        for (const c of chunks) {
          coalescer.push(c.stream, c.bytes);
          clock.advance(c.waitMs);
        }
        coalescer.flush();
        const pieces = emitted.map(decodedPiece);
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

describe("OutputCoalescer with a piece pool", () => {
  it("hands a full piece over with its pooled buffer, and gives back a full buffer whose piece is a copy", () => {
    const clock = new ManualClock();
    const pool = new BufferPool({ max: 8 });
    const emitted: CoalescedOutput[] = [];
    const coalescer = new OutputCoalescer({
      clock,
      pools: new BufferPools([pool], 4096),
      emit: (p) => emitted.push(p),
    });
    coalescer.push("pty", new Uint8Array(PIECE_BYTES).fill(0x61));
    expect(emitted).toHaveLength(1);
    expect(emitted[0]!.pool).toBe(pool);
    expect(emitted[0]!.bytes.buffer.byteLength).toBe(PIECE_HEADROOM + PIECE_BYTES);
    // Ends in the middle of "é": the piece is the buffer minus that byte, still a view of it.
    const cut = new Uint8Array(PIECE_BYTES).fill(0x62);
    cut[PIECE_BYTES - 1] = 0xc3;
    coalescer.push("pty", cut);
    expect(emitted[1]!.pool).toBe(pool);
    expect(emitted[1]!.bytes.length).toBe(PIECE_BYTES - 1);
    // The held byte goes in front of the next bytes: that piece is a copy, the buffer stays.
    const next = new Uint8Array(PIECE_BYTES - 1).fill(0x63);
    next[0] = 0xa9;
    coalescer.push("pty", next);
    expect(emitted[2]!.pool).toBeUndefined();
    expect(pool.size).toBe(0);
    expect(Buffer.from(emitted[2]!.bytes).subarray(0, 3).toString("latin1")).toBe("\xc3\xa9c");
    // A full buffer that is not UTF-8: its pieces are copies, so the buffer goes back at once.
    coalescer.push("pty", new Uint8Array(PIECE_BYTES).fill(0xff));
    expect(emitted.slice(3).every((p) => p.pool === undefined && p.binary)).toBe(true);
    expect(pool.size).toBe(1);
    // A burst that ends in a full-size buffer kept for small pieces: back when the burst is over, or on dispose.
    clock.advance(OUTPUT_COALESCE_MS);
    coalescer.push("pty", new Uint8Array(PIECE_BYTES - 10).fill(0x64));
    clock.advance(OUTPUT_COALESCE_MS);
    // Kept, partly filled; its piece left in a buffer of its own (a full-size one: it fits no smaller pool).
    expect(pool.size).toBe(0);
    expect(emitted.at(-1)!.pool).toBe(pool);
    expect(emitted.at(-1)!.bytes.buffer).not.toBe(emitted.at(-2)!.bytes.buffer);
    coalescer.push("pty", utf8("$ "));
    clock.advance(OUTPUT_COALESCE_MS);
    expect(pool.size).toBe(1);
    coalescer.push("pty", new Uint8Array(PIECE_BYTES - 10).fill(0x65));
    clock.advance(OUTPUT_COALESCE_MS);
    const before = pool.size;
    coalescer.dispose();
    expect(pool.size).toBe(before + 1);
  });

  it("copies a piece smaller than a full buffer into a pooled buffer of its size, and a small one to its exact size", () => {
    const clock = new ManualClock();
    const small = new BufferPool({ bytes: 16 * 1024, max: 4 });
    const full = new BufferPool({ max: 4 });
    const pools = new BufferPools([full, small], 4096);
    const emitted: CoalescedOutput[] = [];
    const coalescer = new OutputCoalescer({ clock, pools, emit: (p) => emitted.push(p) });
    coalescer.push("pty", utf8("$ ")); // after a quiet interval: out at once
    coalescer.push("pty", new Uint8Array(10_000).fill(0x61)); // waits for the interval
    clock.advance(OUTPUT_COALESCE_MS);
    coalescer.push("pty", new Uint8Array(20_000).fill(0x62));
    clock.advance(OUTPUT_COALESCE_MS);
    expect(emitted.map((p) => [p.bytes.length, p.pool?.bytes])).toEqual([
      [2, undefined],
      [10_000, 16 * 1024],
      [20_000, PIECE_BYTES],
    ]);
    // In the pool's buffer, after its headroom (room for a frame header), and nothing else's.
    const [, ten, twenty] = emitted as [CoalescedOutput, CoalescedOutput, CoalescedOutput];
    expect(ten.bytes.byteOffset).toBe(PIECE_HEADROOM);
    expect(ten.bytes.buffer.byteLength).toBe(small.bufferBytes);
    expect(ten.bytes.buffer).not.toBe(twenty.bytes.buffer);
    expect(Buffer.from(ten.bytes).equals(Buffer.alloc(10_000, 0x61))).toBe(true);
    expect(Buffer.from(twenty.bytes).equals(Buffer.alloc(20_000, 0x62))).toBe(true);
    // Given back, the buffers are reused for the next pieces of their size.
    ten.pool!.give(ten.bytes.buffer);
    coalescer.push("pty", new Uint8Array(5_000).fill(0x63));
    clock.advance(OUTPUT_COALESCE_MS);
    expect(small.reused).toBe(1);
    expect(Buffer.from(emitted[3]!.bytes).equals(Buffer.alloc(5_000, 0x63))).toBe(true);
  });

  it("rebuilds the exact bytes whether a consumer gives buffers back at once or late (property)", () => {
    const text = "abc é€😀\r\n";
    const chunkArb = fc.record({
      stream: fc.constantFrom("stdout" as const, "stderr" as const),
      kind: fc.constantFrom("ascii", "utf8", "noise"),
      size: fc.integer({ min: 1, max: PIECE_BYTES + 5000 }),
      noise: fc.uint8Array({ minLength: 1, maxLength: 64 }),
      waitMs: fc.integer({ min: 0, max: 6 }),
    });
    const bytesOf = (c: { kind: string; size: number; noise: Uint8Array }): Uint8Array => {
      if (c.kind === "noise") return c.noise;
      const unit = Buffer.from(c.kind === "ascii" ? "0123456789" : text);
      const out = Buffer.alloc(c.size);
      for (let i = 0; i < c.size; i += unit.length) unit.copy(out, i);
      return out; // may end inside a character
    };
    fc.assert(
      fc.property(fc.array(chunkArb, { maxLength: 12 }), fc.boolean(), (chunks, late) => {
        const clock = new ManualClock();
        const pools = new BufferPools(
          [8 * 1024, 32 * 1024, PIECE_BYTES].map((bytes) => new BufferPool({ bytes, max: 4 })),
          4096,
        );
        const copies: Array<{ stream: string; bytes: Buffer }> = [];
        const kept: CoalescedOutput[] = [];
        const coalescer = new OutputCoalescer({
          clock,
          pools,
          emit: (p) => {
            if (p.pool) {
              expect(p.bytes.buffer.byteLength).toBe(p.pool.bufferBytes);
              expect(p.bytes.byteOffset).toBe(PIECE_HEADROOM);
              expect(p.bytes.length).toBeGreaterThan(p.pool === pools.pools[0] ? 4095 : p.pool.bytes / 4);
            }
            // Late: the views are kept and read at the end (a buffer written to after it left
            // with a piece would show); at once: copied and the buffer given back right away
            // (a buffer the coalescer still read after giving it away would show).
            if (late) kept.push(p);
            else {
              copies.push({ stream: p.stream, bytes: Buffer.from(p.bytes) });
              p.pool?.give(p.bytes.buffer);
            }
          },
        });
        const pushed = chunks.map((c) => ({ stream: c.stream, bytes: bytesOf(c) }));
        chunks.forEach((c, i) => {
          coalescer.push(c.stream, pushed[i]!.bytes);
          clock.advance(c.waitMs);
        });
        coalescer.flush();
        if (late) {
          for (const p of kept) copies.push({ stream: p.stream, bytes: Buffer.from(p.bytes) });
          for (const p of kept) p.pool?.give(p.bytes.buffer);
        }
        for (const stream of ["stdout", "stderr"] as const) {
          const want = Buffer.concat(pushed.filter((c) => c.stream === stream).map((c) => c.bytes));
          const have = Buffer.concat(copies.filter((c) => c.stream === stream).map((c) => c.bytes));
          expect(have.equals(want)).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });
});
