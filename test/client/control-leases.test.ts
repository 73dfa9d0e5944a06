import { afterEach, describe, expect, it, vi } from "vitest";
import { ControlLeases, RECLAIM_RETRY_MS, RECLAIM_WINDOW_MS } from "../../src/client/control-leases.js";
import type { ControlLost } from "../../src/client/control-leases.js";
import { SwitchboardError } from "../../src/protocol/index.js";

/** A request tracker whose `control` requests are answered by `answer` (an error, or undefined: granted). */
function gateway(answer: () => Error | undefined) {
  const asked: string[] = [];
  return {
    asked,
    requests: {
      sendDetached(frame: { op: string; session?: string }, onError: (error: Error) => void): void {
        asked.push(`${frame.op} ${frame.session ?? ""}`);
        const error = answer();
        if (error) queueMicrotask(() => onError(error));
      },
    },
  };
}

/** Held under this client's name by its connection from before the drop (`old`). */
const heldByMe = () => new SwitchboardError("CONTROL_HELD", "held by alice", { holder: "alice", holderConnId: "old" });

afterEach(() => {
  vi.useRealTimers();
});

describe("control leases after a reconnect", () => {
  it("asks again, without reporting it lost, while the lease is held by this client's own earlier connection; lost only after the window", async () => {
    vi.useFakeTimers();
    const g = gateway(heldByMe);
    const lost: ControlLost[] = [];
    const leases = new ControlLeases(g.requests as never, (l) => lost.push(l));
    leases.update("s1", "acquire");
    leases.reacquireAll("old");
    await vi.advanceTimersByTimeAsync(RECLAIM_WINDOW_MS - RECLAIM_RETRY_MS);
    expect(lost).toEqual([]);
    expect(g.asked.length).toBeGreaterThanOrEqual(RECLAIM_WINDOW_MS / RECLAIM_RETRY_MS - 1);
    await vi.advanceTimersByTimeAsync(2 * RECLAIM_RETRY_MS);
    expect(lost).toEqual([expect.objectContaining({ session: "s1", code: "CONTROL_HELD", holder: "alice" })]);
    const asked = g.asked.length;
    await vi.advanceTimersByTimeAsync(10 * RECLAIM_RETRY_MS);
    expect(g.asked.length).toBe(asked);
  });

  it("gets it back once the old connection is found dead, and reports at once a lease another connection holds", async () => {
    vi.useFakeTimers();
    let mineGone = false;
    const g = gateway(() => (mineGone ? undefined : heldByMe()));
    const lost: ControlLost[] = [];
    const leases = new ControlLeases(g.requests as never, (l) => lost.push(l));
    leases.update("s1", "acquire");
    leases.reacquireAll("old");
    await vi.advanceTimersByTimeAsync(RECLAIM_RETRY_MS * 3);
    mineGone = true;
    await vi.advanceTimersByTimeAsync(RECLAIM_WINDOW_MS * 2);
    expect(lost).toEqual([]);
    expect(leases.any).toBe(true);

    // Another connection with the same name (another tab, a colleague on the same token): at once.
    const other = gateway(
      () => new SwitchboardError("CONTROL_HELD", "held by alice", { holder: "alice", holderConnId: "another" }),
    );
    const lostToBob: ControlLost[] = [];
    const second = new ControlLeases(other.requests as never, (l) => lostToBob.push(l));
    second.update("s2", "acquire");
    second.reacquireAll("old");
    await vi.advanceTimersByTimeAsync(0);
    expect(lostToBob).toEqual([expect.objectContaining({ session: "s2", holder: "alice" })]);
  });

  it("stops asking once cleared (the client closed)", async () => {
    vi.useFakeTimers();
    const g = gateway(heldByMe);
    const leases = new ControlLeases(g.requests as never, () => {});
    leases.update("s1", "acquire");
    leases.reacquireAll("old");
    await vi.advanceTimersByTimeAsync(0);
    leases.clear();
    const asked = g.asked.length;
    await vi.advanceTimersByTimeAsync(RECLAIM_WINDOW_MS);
    expect(g.asked.length).toBe(asked);
  });
});
