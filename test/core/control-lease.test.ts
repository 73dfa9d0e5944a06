import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { ControlLease } from "../../src/core/control-lease.js";
import { SwitchboardError } from "../../src/protocol/index.js";

const alice = { name: "alice", role: "operator" as const };
const bob = { name: "bob", role: "operator" as const };

function refusal(fn: () => void): SwitchboardError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SwitchboardError) return error;
    throw error;
  }
  throw new Error("not refused");
}

describe("control lease", () => {
  it("names the holding connection to a caller with the holder's own name (holderConnId), to nobody else", () => {
    const lease = new ControlLease(new ManualClock(), 60_000, () => {});
    lease.acquire({ key: "conn-1", actor: alice });
    const own = refusal(() => lease.acquire({ key: "conn-2", actor: alice }));
    expect(own.code).toBe("CONTROL_HELD");
    expect(own.details).toEqual({ holder: "alice", holderConnId: "conn-1" });
    expect(own.message).toBe(
      "control of this session is held by another connection of alice; use force to take it over",
    );
    const other = refusal(() => lease.acquire({ key: "conn-3", actor: bob }));
    expect(other.details).toEqual({ holder: "alice" });
    expect(other.message).toBe("control of this session is held by alice; use force to take it over");
  });

  it("says the same when it refuses input, not only when it refuses an acquire (exploratory test: 'held by alice' to alice)", () => {
    const lease = new ControlLease(new ManualClock(), 60_000, () => {});
    lease.acquire({ key: "conn-1", actor: alice });
    const own = refusal(() => lease.checkWriter("conn-2", "alice"));
    expect(own.details).toEqual({ holder: "alice", holderConnId: "conn-1" });
    const then =
      ": it is free once released, or after 60 s without their activity; acquire control with force to steer now";
    expect(own.message).toBe(`control of this session is held by another connection of alice${then}`);
    const other = refusal(() => lease.checkWriter("conn-3", "bob"));
    expect(other.details).toEqual({ holder: "alice" });
    expect(other.message).toBe(`control of this session is held by alice${then}`);
    expect(() => lease.checkWriter("conn-1", "alice")).not.toThrow();
  });

  describe("across a reconnect (reconnectGraceMs)", () => {
    const tab = { key: "conn-1", actor: alice, reclaimKey: "tab-1" };

    it("keeps the lease for the holder's next connection with its reclaimKey, which takes it without force", () => {
      const clock = new ManualClock();
      const changes: string[] = [];
      const lease = new ControlLease(clock, 60_000, (c) => changes.push(c.action), 10_000);
      lease.acquire(tab);
      lease.disconnect("conn-1");
      clock.advance(9_999);
      expect(lease.holder?.key).toBe("conn-1");
      expect(lease.awaitingReconnect).toBe(true);
      // Held all along: nobody else steers meanwhile.
      expect(refusal(() => lease.checkWriter("conn-3", "bob")).code).toBe("CONTROL_HELD");
      expect(refusal(() => lease.acquire({ key: "conn-3", actor: bob })).code).toBe("CONTROL_HELD");
      lease.acquire({ key: "conn-2", actor: alice, reclaimKey: "tab-1" });
      expect(lease.holder?.key).toBe("conn-2");
      expect(lease.awaitingReconnect).toBe(false);
      clock.advance(60_000 - 1);
      expect(lease.holder?.key).toBe("conn-2");
      expect(changes).toEqual(["acquired", "acquired"]);
    });

    it("refuses another reclaimKey, and a reclaim while the holder is still connected", () => {
      const lease = new ControlLease(new ManualClock(), 60_000, () => {}, 10_000);
      lease.acquire(tab);
      expect(refusal(() => lease.acquire({ key: "conn-2", actor: alice, reclaimKey: "tab-1" })).code).toBe(
        "CONTROL_HELD",
      );
      lease.disconnect("conn-1");
      expect(refusal(() => lease.acquire({ key: "conn-2", actor: alice, reclaimKey: "tab-2" })).code).toBe(
        "CONTROL_HELD",
      );
      expect(refusal(() => lease.acquire({ key: "conn-2", actor: alice })).code).toBe("CONTROL_HELD");
    });

    it("ends the lease (disconnected) once the grace period passes without the holder", () => {
      const clock = new ManualClock();
      const changes: string[] = [];
      const lease = new ControlLease(clock, 60_000, (c) => changes.push(c.action), 10_000);
      lease.acquire(tab);
      lease.disconnect("conn-1");
      clock.advance(10_000);
      expect(lease.holder).toBeNull();
      expect(changes).toEqual(["acquired", "disconnected"]);
      // Too late for the old key: it is an ordinary acquire now.
      lease.acquire({ key: "conn-2", actor: alice, reclaimKey: "tab-1" });
      expect(changes).toEqual(["acquired", "disconnected", "acquired"]);
    });

    it("ends at once a lease without a reclaimKey, or with a grace period of 0", () => {
      const changes: string[] = [];
      const lease = new ControlLease(new ManualClock(), 60_000, (c) => changes.push(c.action), 10_000);
      lease.acquire({ key: "conn-1", actor: alice });
      lease.disconnect("conn-1");
      expect(lease.holder).toBeNull();
      const none = new ControlLease(new ManualClock(), 60_000, (c) => changes.push(c.action), 0);
      none.acquire(tab);
      none.disconnect("conn-1");
      expect(none.holder).toBeNull();
      expect(changes).toEqual(["acquired", "disconnected", "acquired", "disconnected"]);
    });

    it("matches a reference model on random acquires, disconnects and waits: only the holder's key takes it back, only in time", () => {
      const GRACE = 1_000;
      type Op =
        | { op: "acquire"; conn: number; key: number | null; force: boolean }
        | { op: "disconnect"; conn: number }
        | { op: "advance"; ms: number };
      const op: fc.Arbitrary<Op> = fc.oneof(
        fc.record({
          op: fc.constant("acquire" as const),
          conn: fc.integer({ min: 0, max: 5 }),
          key: fc.option(fc.integer({ min: 0, max: 2 })),
          force: fc.boolean(),
        }),
        fc.record({ op: fc.constant("disconnect" as const), conn: fc.integer({ min: 0, max: 5 }) }),
        fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 1_500 }) }),
      );
      fc.assert(
        fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
          const clock = new ManualClock();
          // An auto-release far beyond the run: the model is the grace period alone.
          const lease = new ControlLease(clock, 1e12, () => {}, GRACE);
          let holder = null as { conn: number; key: number | null } | null;
          let graceEnds: number | undefined;
          let now = 0;
          for (const o of ops) {
            if (o.op === "acquire") {
              const attempt = () =>
                lease.acquire(
                  { key: `c${o.conn}`, actor: alice, ...(o.key !== null ? { reclaimKey: `k${o.key}` } : {}) },
                  o.force,
                );
              if (holder?.conn === o.conn) attempt();
              else {
                const reclaims = holder !== null && graceEnds !== undefined && o.key !== null && o.key === holder.key;
                if (holder !== null && !reclaims && !o.force) {
                  expect(refusal(attempt).code).toBe("CONTROL_HELD");
                } else {
                  attempt();
                  holder = { conn: o.conn, key: o.key };
                  graceEnds = undefined;
                }
              }
            } else if (o.op === "disconnect") {
              lease.disconnect(`c${o.conn}`);
              if (holder?.conn === o.conn) {
                if (holder.key === null) holder = null;
                else graceEnds = now + GRACE;
              }
            } else {
              clock.advance(o.ms);
              now += o.ms;
              if (graceEnds !== undefined && now >= graceEnds) {
                holder = null;
                graceEnds = undefined;
              }
            }
            expect(lease.holder?.key ?? null).toBe(holder === null ? null : `c${holder.conn}`);
            expect(lease.awaitingReconnect).toBe(graceEnds !== undefined);
          }
        }),
        { numRuns: 300 },
      );
    });

    it("lets someone else take over with force meanwhile; the old holder's grace then ends nothing", () => {
      const clock = new ManualClock();
      const changes: string[] = [];
      const lease = new ControlLease(clock, 60_000, (c) => changes.push(c.action), 10_000);
      lease.acquire(tab);
      lease.disconnect("conn-1");
      lease.acquire({ key: "conn-3", actor: bob }, true);
      clock.advance(10_000);
      expect(lease.holder?.key).toBe("conn-3");
      expect(refusal(() => lease.acquire({ key: "conn-2", actor: alice, reclaimKey: "tab-1" })).code).toBe(
        "CONTROL_HELD",
      );
      expect(changes).toEqual(["acquired", "taken-over"]);
    });
  });
});
