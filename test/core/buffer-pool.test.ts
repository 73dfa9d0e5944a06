import { describe, expect, it } from "vitest";
import { PIECE_BYTES, BufferPool, BufferPools } from "../../src/core/buffer-pool.js";

describe("piece pool", () => {
  it("hands out full-size buffers and reuses the memory of those given back", () => {
    const pool = new BufferPool({ max: 4 });
    const a = pool.take();
    expect(a.length).toBe(PIECE_BYTES);
    expect(pool.reused).toBe(0);
    a.fill(7);
    pool.give(a.buffer);
    expect(pool.size).toBe(1);
    const b = pool.take();
    expect(pool.reused).toBe(1);
    expect(pool.size).toBe(0);
    // The same memory (its old contents), under a new buffer.
    expect(b[0]).toBe(7);
    expect(b.buffer).not.toBe(a.buffer);
  });

  it("empties every view of a buffer given back, so a holder it did not know of reads nothing", () => {
    const pool = new BufferPool({ max: 4 });
    const a = pool.take();
    const view = a.subarray(100, 200);
    pool.give(a.buffer);
    expect(a.length).toBe(0);
    expect(view.length).toBe(0);
    expect(a.buffer.byteLength).toBe(0);
  });

  it("keeps at most its bound and ignores buffers that are not its size", () => {
    const pool = new BufferPool({ max: 2 });
    for (let i = 0; i < 3; i++) pool.give(pool.take().buffer);
    expect(pool.size).toBe(1);
    const three = [pool.take(), pool.take(), pool.take()];
    for (const t of three) pool.give(t.buffer);
    expect(pool.size).toBe(2);
    const odd = new Uint8Array(1000);
    pool.give(odd.buffer);
    expect(pool.size).toBe(2);
    expect(odd.length).toBe(1000); // not taken, not detached
    // Those kept are detached; beyond the bound a buffer is left to the GC as it is.
    expect(three.map((t) => t.length)).toEqual([0, 0, PIECE_BYTES]);
  });
});

describe("pools of a few sizes", () => {
  it("serves a size from the smallest pool that holds it, nothing under the minimum or over the largest", () => {
    const [big, small, middle] = [PIECE_BYTES, 8 * 1024, 16 * 1024].map((bytes) => new BufferPool({ bytes }));
    const pools = new BufferPools([big!, small!, middle!], 4096);
    expect(pools.pools.map((p) => p.bytes)).toEqual([8 * 1024, 16 * 1024, PIECE_BYTES]);
    expect(pools.largest).toBe(big);
    expect(pools.fitting(4095)).toBeUndefined();
    expect(pools.fitting(4096)).toBe(small);
    expect(pools.fitting(8 * 1024)).toBe(small);
    expect(pools.fitting(8 * 1024 + 1)).toBe(middle);
    expect(pools.fitting(PIECE_BYTES)).toBe(big);
    expect(pools.fitting(PIECE_BYTES + 1)).toBeUndefined();
    expect(() => new BufferPools([])).toThrow(RangeError);
  });
});
