import { describe, expect, it } from "vitest";
import { check } from "./nemesis/checker.js";
import type { FinalLog } from "./nemesis/checker.js";

/** Output events seq 1..n of a PTY session, as the final logs hold them. */
function ticks(n: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => ({
    seq: i + 1,
    type: "output",
    stream: "pty",
    data: `tick ${i + 1}\r\n`,
  }));
}

function nodeDiffers(logs: FinalLog[]): string[] {
  return check({ ops: [], viewers: [], logs, streams: [] })
    .filter((a) => a.kind === "node-differs")
    .map((a) => a.detail);
}

describe("the nemesis checker: a node's copy against the log of record", () => {
  it("takes a copy of a session still written to that reached the first read and is a prefix of the later one", () => {
    const record: FinalLog = { session: "s", from: "record", events: ticks(12), reached: 8 };
    expect(nodeDiffers([record, { session: "s", from: "gw-a", events: ticks(8) }])).toEqual([]);
    expect(nodeDiffers([record, { session: "s", from: "gw-b", events: ticks(12) }])).toEqual([]);
  });

  it("flags a copy short of the first read, longer than the later one, or holding another entry", () => {
    const record: FinalLog = { session: "s", from: "record", events: ticks(12), reached: 8 };
    expect(nodeDiffers([record, { session: "s", from: "gw-a", events: ticks(7) }])).toHaveLength(1);
    expect(nodeDiffers([record, { session: "s", from: "gw-a", events: ticks(13) }])).toHaveLength(1);
    const changed = ticks(10);
    changed[4] = { ...changed[4], data: "tock\r\n" };
    expect(nodeDiffers([record, { session: "s", from: "gw-a", events: changed }])).toEqual([
      expect.stringContaining("first difference at index 4"),
    ]);
  });

  it("requires a copy equal to the record of a session nobody writes to any more", () => {
    const record: FinalLog = { session: "s", from: "record", events: ticks(5) };
    expect(nodeDiffers([record, { session: "s", from: "gw-a", events: ticks(4) }])).toHaveLength(1);
    expect(nodeDiffers([record, { session: "s", from: "gw-a", events: ticks(5) }])).toEqual([]);
  });
});
