import { eventOf } from "../log/output-entry.js";
import type { SessionLog } from "../log/session-log.js";
import type { SessionEvent } from "../protocol/index.js";
import type { ContinuedRun } from "../agents/agent-session-types.js";

/*
 * Reading back, from an agent session's log, the run an earlier gateway left in flight under a
 * holder (held-turn.ts): what it had said so far, and the events re-read stdout may produce again.
 */

/** The events a continued run's state is rebuilt from (Run.restore), with its `run.queued`. */
const RUN_STATE: ReadonlySet<string> = new Set(["run.queued", "chat.delta", "chat.thought", "tool", "plan"]);

/** Every event after `seq` (what re-read stdout may produce again). */
export function eventsAfter(log: SessionLog, seq: number): SessionEvent[] {
  const events: SessionEvent[] = [];
  let since = Math.max(seq, log.first - 1);
  for (;;) {
    const page = log.read(since, { limit: 1000 });
    for (const entry of page.entries) events.push(eventOf(entry));
    if (page.next >= page.head || page.next <= since) break;
    since = page.next;
  }
  return events;
}

/**
 * Run `runId` as the log has it up to `seq`: its prompt and the events Run.restore goes through,
 * and whether its `run.queued` (the prompt) was there to read: retention may have dropped it.
 * It is read wherever it is: the cursor's seq may predate the run (it moves with applied stdout,
 * and none may be applied between a cursor save and the run's start).
 */
export function runSoFar(log: SessionLog, runId: string, seq: number): { run: ContinuedRun; promptRead: boolean } {
  const run: ContinuedRun = { runId, text: "", by: { name: "gateway", role: "system" }, events: [] };
  let promptRead = false;
  let since = log.first - 1;
  for (;;) {
    const page = log.read(since, { limit: 1000, types: RUN_STATE });
    for (const entry of page.entries) {
      const event = eventOf(entry);
      if (!("runId" in event) || event.runId !== runId) continue;
      if (event.type === "run.queued") {
        run.text = event.text;
        run.by = event.by;
        if (event.content !== undefined) run.content = event.content;
        promptRead = true;
        continue;
      }
      // Past the cursor: what the run said from here on is read again from stdout.
      if (entry.seq > seq) return { run, promptRead };
      run.events.push(event);
    }
    if (page.next >= page.head || page.next <= since) return { run, promptRead };
    since = page.next;
  }
}
