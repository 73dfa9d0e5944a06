import { describe, expect, it } from "vitest";
import { FILTERED_SCAN_EVENTS } from "../../src/log/log-reader.js";
import { TurnIndex, turnIndexOf } from "../../src/log/turn-index.js";
import type { TurnLog } from "../../src/log/turn-index.js";
import type { SessionLog } from "../../src/log/session-log.js";
import { tempDir } from "../helpers/tmp.js";
import { openLog } from "./helpers.js";

const by = { name: "ada", role: "operator" as const };

/** Appends a run: queued, started, `deltas` deltas, final; returns its start's seq. */
function turn(log: SessionLog, runId: string, deltas: number): number {
  log.append({ type: "run.queued", runId, text: `prompt of ${runId}`, by, position: 0 });
  const start = log.append({ type: "run.started", runId }).seq;
  for (let i = 0; i < deltas; i++) log.append({ type: "chat.delta", runId, text: `${i} ` });
  log.append({ type: "chat.final", runId, text: "done", stopReason: "end_turn" });
  return start;
}

/** `log`, counting its reads. */
function counted(log: SessionLog): { log: TurnLog; reads: () => number } {
  let reads = 0;
  return {
    log: {
      get head() {
        return log.head;
      },
      get first() {
        return log.first;
      },
      get storedState() {
        return log.storedState;
      },
      read: (since, options) => {
        reads++;
        return log.read(since, options);
      },
      subscribe: (listener, options) => log.subscribe(listener, options),
    },
    reads: () => reads,
  };
}

describe("turn index", () => {
  it("places each run at its start, across a scan longer than one filtered read, and keeps up with appends without reading the log", async () => {
    const log = openLog(tempDir()).create("s");
    const starts: number[] = [];
    // Long turns, so that the first scan takes several bounded reads.
    for (let r = 0; r < 6; r++) starts.push(turn(log, `r${r}`, Math.ceil(FILTERED_SCAN_EVENTS / 3)));
    // A prompt queued while r6 runs belongs to the run it starts, not to r6.
    log.append({ type: "run.queued", runId: "r6", text: "six", by, position: 0 });
    starts.push(log.append({ type: "run.started", runId: "r6" }).seq);
    const queuedSeven = log.append({ type: "run.queued", runId: "r7", text: "seven", by, position: 1 }).seq;
    log.append({ type: "chat.final", runId: "r6", text: "", stopReason: "end_turn" });
    await log.whenPublished();

    const { log: reading, reads } = counted(log);
    const index = new TurnIndex(reading);
    expect(reads()).toBeGreaterThan(1);
    const scanned = reads();
    expect(index.before(Number.MAX_SAFE_INTEGER, 3).turns.map((t) => t.runId)).toEqual(["r4", "r5", "r6"]);
    expect(index.before(starts[2]!, 10)).toEqual({
      turns: [
        { runId: "r0", queued: starts[0]! - 1, start: starts[0] },
        { runId: "r1", queued: starts[1]! - 1, start: starts[1] },
      ],
      next: starts[2],
    });
    expect(index.from(starts[5]!, 1)).toEqual({
      turns: [{ runId: "r5", queued: starts[5]! - 1, start: starts[5] }],
      next: starts[6],
    });
    expect(index.queued).toEqual([{ runId: "r7", queued: queuedSeven, start: null }]);

    // Live: r7 starts, r8 is removed from the queue before it ever started.
    const sevenStart = log.append({ type: "run.started", runId: "r7" }).seq;
    log.append({ type: "chat.error", runId: "r7", code: "AGENT_ERROR", message: "no" });
    const eight = log.append({ type: "run.queued", runId: "r8", text: "eight", by, position: 0 }).seq;
    const eightEnd = log.append({ type: "chat.aborted", runId: "r8", by }).seq;
    await log.whenPublished();
    expect(index.before(Number.MAX_SAFE_INTEGER, 2)).toEqual({
      turns: [
        { runId: "r7", queued: queuedSeven, start: sevenStart },
        { runId: "r8", queued: eight, start: eightEnd },
      ],
      next: null,
    });
    expect(index.queued).toEqual([]);
    // A prompt left in the queue when the session was lost never starts.
    log.append({ type: "run.queued", runId: "r9", text: "nine", by, position: 0 });
    log.append({ type: "run.queued", runId: "r10", text: "ten", by, position: 1 });
    await log.whenPublished();
    expect(index.queued.map((t) => t.runId)).toEqual(["r9", "r10"]);
    log.append({ type: "lost", reason: "gateway-restart" });
    await log.whenPublished();
    expect(index.queued).toEqual([]);
    expect(reads()).toBe(scanned);
    // Built again from the log alone, it says the same.
    expect(new TurnIndex(log).before(Number.MAX_SAFE_INTEGER, 100)).toEqual(index.before(Number.MAX_SAFE_INTEGER, 100));
    expect(turnIndexOf(log)).toBe(turnIndexOf(log));
  });
});
