import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { HotRing } from "../../src/log/hot-ring.js";
import type { LogEntry } from "../../src/log/types.js";

/** V8's collector, without starting Node with --expose-gc. */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

const entry = (seq: number): LogEntry => ({ seq, type: "custom", json: "x".repeat(1000), size: 1000 });

/** Pushes entries 1..count; returns weak references to them (no local keeps one alive). */
function fill(ring: HotRing, count: number): Array<WeakRef<LogEntry>> {
  return Array.from({ length: count }, (_, i) => {
    const e = entry(i + 1);
    ring.push(e);
    return new WeakRef(e);
  });
}

describe("hot ring", () => {
  it("keeps nothing it evicted alive: a ring that gave its entries back holds no reference to them", async () => {
    const ring = new HotRing(1000, 1000 * 1000);
    // Fewer than the 1024 evicted slots at which the array is compacted.
    const refs = fill(ring, 500);
    ring.evict(500, 1, true);
    expect(ring.size).toBe(0);
    // WeakRefs are kept alive until the current job ends.
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    expect(refs.filter((r) => r.deref() !== undefined).length).toBe(0);
  });

  it("evicts only durable entries and reads what it still holds", () => {
    const ring = new HotRing(2, 1000 * 1000);
    for (let seq = 1; seq <= 5; seq++) ring.push(entry(seq));
    ring.evict(2, 1); // over its 2 entries, but only 1 and 2 are durable
    expect(ring.firstSeq).toBe(3);
    expect(ring.readAfter(0, 10).map((e) => e.seq)).toEqual([3, 4, 5]);
    ring.evict(5, 1);
    expect(ring.readAfter(0, 10).map((e) => e.seq)).toEqual([4, 5]);
    expect(ring.get(3)).toBeUndefined();
    expect(ring.get(4)?.seq).toBe(4);
  });
});
