import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OWNED_HERE, OWNERSHIP_MOVES, Ownerships, shownAsCopy } from "../../src/core/ownership.js";
import type { Ownership, OwnershipAt } from "../../src/core/ownership.js";

const AT: readonly OwnershipAt[] = ["owned", "copy", "adopting", "fenced"];

function stateAt(at: OwnershipAt): Ownership {
  switch (at) {
    case "owned":
      return { at, epoch: 3 };
    case "copy":
      return { at, owner: "b" };
    case "adopting":
      return { at, epoch: 4, from: "b" };
    case "fenced":
      return { at, owner: "c", error: new Error("fenced") };
  }
}

describe("a session's ownership on a node", () => {
  it("takes exactly the moves its table lists, from any reachable state (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...AT), fc.array(fc.constantFrom(...AT), { maxLength: 30 }), (start, moves) => {
        const states = new Ownerships();
        states.begin("s", stateAt(start));
        let now = start;
        for (const next of moves) {
          const allowed = OWNERSHIP_MOVES[now].includes(next);
          if (allowed) {
            states.move("s", stateAt(next));
            now = next;
          } else expect(() => states.move("s", stateAt(next))).toThrow(`cannot move from ${now} to ${next}`);
          expect(states.get("s")?.at).toBe(now);
        }
      }),
    );
  });

  it("shows as a copy only while another node appends it, and names that node while it is known", () => {
    expect(AT.filter((at) => shownAsCopy(stateAt(at)))).toEqual(["copy", "adopting"]);
    expect(shownAsCopy(OWNED_HERE)).toBe(false);
    const states = new Ownerships();
    states.begin("s", stateAt("copy"));
    expect(states.ownerOf("s")).toBe("b");
    states.move("s", stateAt("adopting"));
    expect(states.ownerOf("s")).toBeUndefined();
    expect(() => states.begin("s", stateAt("owned"))).toThrow("adopting on this node already");
    states.forget("s");
    expect(states.get("s")).toBeUndefined();
  });
});
