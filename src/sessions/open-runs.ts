import { eventOf } from "../log/output-entry.js";
import type { SessionLog } from "../log/session-log.js";
import type { SessionEvent } from "../protocol/index.js";
import type { QueuedRun } from "../agents/agent-session-types.js";
import type { SessionRecord } from "./session.js";

/**
 * What an agent session's record keeps of its runs, so that a restart ends the runs and
 * permission requests the gateway left open (see AgentGatewaySession.markLost) even when
 * retention has dropped the events that opened them from the log: a run queued behind a long
 * one, or a permission request that waited, is older than `retention.maxEvents` events.
 */
interface RunBookkeeping {
  openRuns?: string[];
  openRequests?: Array<[requestId: string, runId: string]>;
  openElicitations?: Array<[requestId: string, runId: string]>;
}

/** What a queued run is rebuilt from after an adoption. */
const QUEUED: ReadonlySet<string> = new Set(["run.queued"]);

/** The events that open and close runs and permission requests (what AgentGatewaySession.markLost reads). */
export const RUN_BOOKKEEPING: ReadonlySet<string> = new Set([
  "run.queued",
  "run.started",
  "chat.final",
  "chat.error",
  "chat.aborted",
  "permission.request",
  "permission.resolved",
  "elicitation.request",
  "elicitation.resolved",
]);

/**
 * The runs, permission requests and elicitations an agent session has open, as its published
 * events say (`track`), kept in its record (`keepIn`) so that a restart can end them (`close`)
 * or, when its agent is adopted with a turn in flight, queue them again (`queued`).
 */
export class OpenRuns {
  /** Runs queued or started and not ended, in the order they were queued. */
  readonly runs: Set<string>;
  /** Permission requests not resolved: request id → run id. */
  readonly requests: Map<string, string>;
  /** Elicitations not resolved: request id → run id. */
  readonly elicitations: Map<string, string>;
  /** Runs started and not ended (not kept in the record: read from the log at a restart). */
  readonly started = new Set<string>();

  constructor(record: SessionRecord) {
    const saved = record as SessionRecord & RunBookkeeping;
    this.runs = new Set(saved.openRuns ?? []);
    this.requests = new Map(saved.openRequests ?? []);
    this.elicitations = new Map(saved.openElicitations ?? []);
  }

  /** Notes what `event` opens or ends; returns whether that changed anything. */
  track(event: SessionEvent): boolean {
    switch (event.type) {
      case "run.queued":
      case "run.started":
        if (event.type === "run.started") this.started.add(event.runId);
        if (this.runs.has(event.runId)) return false;
        this.runs.add(event.runId);
        return true;
      case "chat.final":
      case "chat.error":
      case "chat.aborted":
        this.started.delete(event.runId);
        return this.runs.delete(event.runId);
      case "permission.request":
        this.requests.set(event.requestId, event.runId);
        return true;
      case "permission.resolved":
        return this.requests.delete(event.requestId);
      case "elicitation.request":
        this.elicitations.set(event.requestId, event.runId);
        return true;
      case "elicitation.resolved":
        return this.elicitations.delete(event.requestId);
      default:
        return false;
    }
  }

  /** Writes the open runs and requests into `record` (the caller persists it). */
  keepIn(record: SessionRecord): void {
    const kept = record as SessionRecord & RunBookkeeping;
    kept.openRuns = [...this.runs];
    kept.openRequests = [...this.requests];
    kept.openElicitations = [...this.elicitations];
  }

  /**
   * The open runs: what the record names (runs whose `run.queued` retention may have dropped from
   * the log), then what the retained log says (the record may miss the last events before the crash).
   */
  readAll(log: SessionLog): void {
    let since = log.first - 1;
    for (;;) {
      const page = log.read(since, { limit: 1000, types: RUN_BOOKKEEPING });
      for (const entry of page.entries) this.track(eventOf(entry));
      // A page may hold no events and still move on: a filtered read examines a bounded stretch.
      if (page.next >= page.head || page.next <= since) break;
      since = page.next;
    }
  }

  /**
   * The open runs never started, other than `inFlight`, in the order they were queued: each as
   * its `run.queued` says (one retention dropped is not among them, and ends as before).
   */
  queued(log: SessionLog, inFlight: string | undefined): QueuedRun[] {
    const waiting = new Set([...this.runs].filter((id) => !this.started.has(id) && id !== inFlight));
    const queued: QueuedRun[] = [];
    let since = log.first - 1;
    while (waiting.size > queued.length) {
      const page = log.read(since, { limit: 1000, types: QUEUED });
      for (const entry of page.entries) {
        const event = eventOf(entry);
        if (event.type !== "run.queued" || !waiting.has(event.runId)) continue;
        queued.push({
          runId: event.runId,
          text: event.text,
          by: event.by,
          ...(event.content !== undefined ? { content: event.content } : {}),
          ...(event.from !== undefined ? { from: event.from } : {}),
        });
      }
      if (page.next >= page.head || page.next <= since) break;
      since = page.next;
    }
    return queued;
  }

  /**
   * Ends the open runs but those in `keep` (see AgentGatewaySession.markLost), appending their
   * ends to `log`; returns how many of them had started.
   */
  close(log: SessionLog, reason?: string, failed = false, keep: ReadonlySet<string> = new Set()): number {
    this.readAll(log);
    for (const [requestId, runId] of [...this.requests]) {
      if (keep.has(runId)) continue;
      log.append({
        type: "permission.resolved",
        runId,
        requestId,
        outcome: "cancelled",
        optionId: null,
        by: null,
      });
    }
    for (const [requestId, runId] of [...this.elicitations]) {
      if (keep.has(runId)) continue;
      log.append({
        type: "elicitation.resolved",
        runId,
        requestId,
        action: "cancel",
        by: null,
        reason: "gateway-restarted",
      });
    }
    const started = [...this.runs].filter((runId) => this.started.has(runId) && !keep.has(runId)).length;
    const by = reason !== undefined ? { by: { name: "gateway", role: "system" as const }, reason } : {};
    for (const runId of [...this.runs]) {
      if (keep.has(runId)) continue;
      // A turn whose kept state this build cannot read: the run ends naming why (held-turn.ts).
      if (failed && reason !== undefined && this.started.has(runId)) {
        log.append({ type: "chat.error", runId, code: "AGENT_FAILED", message: reason });
      } else log.append({ type: "chat.aborted", runId, ...by });
    }
    return started;
  }
}
