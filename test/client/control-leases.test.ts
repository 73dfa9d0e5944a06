import { afterEach, describe, expect, it, vi } from "vitest";
import { ControlLeases, RECLAIM_RETRY_MS, RECLAIM_WINDOW_MS } from "../../src/client/control-leases.js";
import type { ControlLost } from "../../src/client/control-leases.js";
import { connect } from "../../src/client/node.js";
import { SwitchboardError } from "../../src/protocol/index.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { FaultProxy, TEST_ENV, startTestGateway } from "./helpers.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

/** A request tracker whose `control` requests are answered by `answer` (an error, or undefined: granted). */
function gateway(answer: () => Error | undefined) {
  const asked: string[] = [];
  return {
    asked,
    requests: {
      sendDetached(frame: { op: string; session?: string }, onError: (error: Error) => void, onAck?: () => void): void {
        asked.push(`${frame.op} ${frame.session ?? ""}`);
        const error = answer();
        queueMicrotask(() => (error ? onError(error) : onAck?.()));
      },
    },
  };
}

/** Held under this client's name by its connection from before the drop (`old`; the new one is `new`). */
const heldByMe = () => new SwitchboardError("CONTROL_HELD", "held by alice", { holder: "alice", holderConnId: "old" });

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe("control leases after a reconnect", () => {
  it("asks again, without reporting it lost, while the lease is held by this client's own earlier connection; lost only after the window", async () => {
    vi.useFakeTimers();
    const g = gateway(heldByMe);
    const lost: ControlLost[] = [];
    const leases = new ControlLeases(g.requests as never, (l) => lost.push(l));
    leases.update("s1", "acquire", "old");
    leases.reacquireAll("new");
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
    leases.update("s1", "acquire", "old");
    leases.reacquireAll("new");
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
    second.update("s2", "acquire", "old");
    second.reacquireAll("new");
    await vi.advanceTimersByTimeAsync(0);
    expect(lostToBob).toEqual([expect.objectContaining({ session: "s2", holder: "alice" })]);
  });

  it("stops asking once cleared (the client closed)", async () => {
    vi.useFakeTimers();
    const g = gateway(heldByMe);
    const leases = new ControlLeases(g.requests as never, () => {});
    leases.update("s1", "acquire", "old");
    leases.reacquireAll("new");
    await vi.advanceTimersByTimeAsync(0);
    leases.clear();
    const asked = g.asked.length;
    await vi.advanceTimersByTimeAsync(RECLAIM_WINDOW_MS);
    expect(g.asked.length).toBe(asked);
  });
});

type ControlEvent = Extract<SessionEvent, { type: "control" }>;

describe("an acquire whose answer does not come", () => {
  const event = (holder: { name: string; connId: string } | null): ControlEvent => ({
    seq: 3,
    ts: 0,
    type: "control",
    action: holder === null ? "released" : "acquired",
    holder: holder && { ...holder, role: "admin" },
    previous: null,
  });

  it("is granted once the log's control event names this connection, and no longer once a later one names another holder", () => {
    const leases = new ControlLeases(gateway(() => undefined).requests as never, () => undefined);
    const pending = leases.asking("s1");
    leases.controlEvent("s1", event({ name: "alice", connId: "old" }), "c1");
    expect(pending.granted).toBeUndefined();
    leases.controlEvent("s1", event({ name: "alice", connId: "c1" }), "c1");
    expect(pending.granted).toEqual({ holder: "alice", connId: "c1" });
    leases.controlEvent("s1", event(null), "c1");
    expect(pending.granted).toBeUndefined();
    leases.controlEvent("s1", event({ name: "alice", connId: "c1" }), "c1");
    expect(pending.granted).toEqual({ holder: "alice", connId: "c1" });
    pending.done();
    // Only what asks learns from the log: no lease is held, nor asked for again after a reconnect.
    expect(leases.any).toBe(false);
  });

  it("learns nothing from an event read once it was answered, nor from another session's", () => {
    const g = gateway(() => undefined);
    const leases = new ControlLeases(g.requests as never, () => undefined);
    const pending = leases.asking("s1");
    leases.controlEvent("s2", event({ name: "alice", connId: "c1" }), "c1");
    expect(pending.granted).toBeUndefined();
    pending.done();
    leases.controlEvent("s1", event({ name: "alice", connId: "c1" }), "c1");
    expect(pending.granted).toBeUndefined();
    expect(leases.any).toBe(false);
    leases.reacquireAll("c2");
    expect(g.asked).toEqual([]);
  });
});

describe("control leases after two drops in a row, on a real gateway", () => {
  // Regression: the client compared the lease's holder with the connection just before the
  // latest reconnect. After a second drop within the window, the gateway still holds the lease
  // for the first connection (the one it was granted to): reported lost at once, and never
  // taken back once the gateway found that connection dead.
  it("keeps asking while the gateway still holds the lease for the connection it was granted to, and gets it back", async () => {
    const gw = await startTestGateway();
    cleanups.push(() => gw.close());
    // The first connection goes through `first` too: cutting it there ends that connection
    // alone, when the test chooses, as the gateway would on finding it dead.
    const first = await FaultProxy.start(gw.url);
    cleanups.push(() => first.close());
    const front = await FaultProxy.start(first.port);
    cleanups.push(() => front.close());
    const client = await connect({
      url: front.url,
      token: gw.token,
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    });
    cleanups.push(() => client.close());
    const lost: ControlLost[] = [];
    client.on("control-lost", (l) => lost.push(l));
    const { id } = await client.createSession({ command: ["cat"], env: TEST_ENV });
    cleanups.push(() => client.deleteSession(id));
    await client.control(id, "acquire");
    const granted = client.hello!.connId;

    // First drop, which the gateway does not hear of; the next connections bypass `first`.
    front.retarget(Number(new URL(gw.url).port));
    front.abandon();
    await waitFor(() => client.state === "open" && client.hello!.connId !== granted, 5_000, "the first reconnect");
    const second = client.hello!.connId;
    // Refused (held by the first connection) and asked again later, not lost.
    await sleep(300);
    expect(lost).toEqual([]);

    // Second drop, within the window: the gateway still holds the lease for the first connection.
    front.cut();
    await waitFor(
      () => client.state === "open" && ![granted, second].includes(client.hello!.connId),
      5_000,
      "the second reconnect",
    );
    await sleep(300);
    expect(lost).toEqual([]);

    const actions = async () =>
      (await client.events(id, { types: ["control"] })).events.map((e) => (e as { action?: string }).action);
    expect(await actions()).toEqual(["acquired"]);

    // The gateway finds the first connection gone: the next ask gets the lease back.
    first.cut();
    await waitFor(async () => {
      expect(await actions()).toEqual(["acquired", "disconnected", "acquired"]);
      return true;
    }, RECLAIM_RETRY_MS + 3_000);
    expect((await client.getSession(id)).controller).toBe("admin");
    expect(lost).toEqual([]);
  });
});
