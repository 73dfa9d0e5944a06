import { describe, expect, it } from "vitest";
import { Subscription } from "../../src/client/subscription.js";
import type { NewEvent, SessionEvent } from "../../src/protocol/index.js";

const actor = { name: "alice", role: "operator" } as const;

/** An agent session's log: a run, lost when its gateway died, resumed, another run, lost again. */
function lostResumedLost(): SessionEvent[] {
  const events: NewEvent[] = [
    { type: "run.queued", runId: "r1", text: "hi", by: actor, position: 0 },
    { type: "run.started", runId: "r1" },
    { type: "chat.aborted", runId: "r1" },
    { type: "lost", reason: "the gateway stopped unexpectedly" },
    { type: "resumed", by: actor, loaded: true },
    { type: "run.queued", runId: "r2", text: "again", by: actor, position: 0 },
    { type: "run.started", runId: "r2" },
    { type: "chat.final", runId: "r2", text: "ok", stopReason: "end_turn" },
    { type: "lost", reason: "the gateway stopped unexpectedly" },
  ];
  return events.map((e, i) => ({ ...e, seq: i + 1, ts: 1000 + i }) as SessionEvent);
}

describe("an SDK subscription of a session that was lost and resumed", () => {
  // Regression: subscribe(since: 0) stopped at the first `lost` (14 of 694 events) while
  // /v1/ws and SSE delivered the whole log.
  it("follows the log past a lost the log goes on after, and ends at the last one", async () => {
    const seen: number[] = [];
    const sub = new Subscription(
      "s",
      { since: 0 },
      (e) => seen.push(e.seq),
      () => undefined,
    );
    sub.awaitConfirmation(1);
    const log = lostResumedLost();
    sub.confirm(1, { from: 1, head: log.length });
    const ended = log.map((e) => sub.deliver(e));
    expect(seen).toEqual(log.map((e) => e.seq));
    expect(ended).toEqual([false, false, false, false, false, false, false, false, true]);
    expect(await sub.done).toMatchObject({ type: "lost", seq: 9 });
  });
});
