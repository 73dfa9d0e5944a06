import { describe, expect, it } from "vitest";
import { PROCESS_MOVES } from "../../src/sessions/process-state.js";
import type { ProcessAt } from "../../src/sessions/process-state.js";

/** The states reachable from `from` by PROCESS_MOVES. */
function reachable(from: ProcessAt): Set<ProcessAt> {
  const seen = new Set<ProcessAt>();
  const queue: ProcessAt[] = [from];
  for (let at = queue.shift(); at !== undefined; at = queue.shift())
    for (const next of PROCESS_MOVES[at]) {
      if (seen.has(next)) continue;
      seen.add(next);
      queue.push(next);
    }
  return seen;
}

describe("a terminal process's state", () => {
  it("moves only forward: once the child exited or the output ended it never runs again", () => {
    for (const at of ["output-ended", "draining", "reported", "disposed", "closed"] as const)
      expect(reachable(at).has("running")).toBe(false);
    expect(reachable("reported").has("disposed")).toBe(false);
    expect(PROCESS_MOVES.closed).toEqual(["closed"]);
  });

  it("ends closed from every state: dispose() is always possible", () => {
    for (const at of Object.keys(PROCESS_MOVES) as ProcessAt[]) expect(reachable(at).has("closed")).toBe(true);
  });
});
