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
});
