import { afterEach, describe, expect, it, vi } from "vitest";
import { ADOPTIONS_IN_FLIGHT, ADOPTION_SLOT_MS, AdoptionQueue } from "../../src/sessions/adoption-queue.js";
import type { TakeOver } from "../../src/sessions/adoption-queue.js";

/** A queue of `count` take-overs that note when they begin and keep their `settled` to call later. */
function queued(count: number) {
  const queue = new AdoptionQueue();
  const begun: string[] = [];
  const settle = new Map<string, () => void>();
  for (let i = 0; i < count; i++) {
    const id = `s${i}`;
    const takeOver: TakeOver = (settled) => {
      begun.push(id);
      settle.set(id, settled);
    };
    queue.add(id, takeOver);
  }
  return { queue, begun, settle };
}

/** Runs the queue's slices (each a turn of the event loop of its own) until nothing more begins. */
async function slices(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe("the adoption queue", () => {
  afterEach(() => void vi.useRealTimers());

  it("keeps at most ADOPTIONS_IN_FLIGHT background take-overs waiting for their holders, and begins the next as one answers", async () => {
    const { queue, begun, settle } = queued(ADOPTIONS_IN_FLIGHT * 3);
    queue.start();
    await slices();
    expect(begun).toEqual(Array.from({ length: ADOPTIONS_IN_FLIGHT }, (_, i) => `s${i}`));
    // Answers given twice count once.
    settle.get("s0")!();
    settle.get("s0")!();
    settle.get("s1")!();
    await slices();
    expect(begun.slice(ADOPTIONS_IN_FLIGHT)).toEqual([`s${ADOPTIONS_IN_FLIGHT}`, `s${ADOPTIONS_IN_FLIGHT + 1}`]);
    expect(queue.pending).toBe(ADOPTIONS_IN_FLIGHT * 3 - ADOPTIONS_IN_FLIGHT - 2);
    queue.close();
  });

  it("takes a session something needs over at once, past the background take-overs in flight", async () => {
    const last = `s${ADOPTIONS_IN_FLIGHT * 2 - 1}`;
    const { queue, begun } = queued(ADOPTIONS_IN_FLIGHT * 2);
    queue.start();
    await slices();
    expect(begun).toHaveLength(ADOPTIONS_IN_FLIGHT);
    queue.now(last);
    expect(begun.at(-1)).toBe(last);
    expect(queue.has(last)).toBe(false);
    // Begun once: the background slices skip it.
    queue.now(last);
    expect(begun.filter((id) => id === last)).toHaveLength(1);
    queue.close();
  });

  it("gives a place back after ADOPTION_SLOT_MS when a holder never answers", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "clearImmediate", "performance"] });
    const { queue, begun } = queued(ADOPTIONS_IN_FLIGHT + 5);
    queue.start();
    await vi.advanceTimersByTimeAsync(ADOPTION_SLOT_MS - 1);
    expect(begun).toHaveLength(ADOPTIONS_IN_FLIGHT);
    await vi.advanceTimersByTimeAsync(2);
    expect(begun).toHaveLength(ADOPTIONS_IN_FLIGHT + 5);
    queue.close();
  });
});
