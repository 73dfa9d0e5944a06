import type { EventType, SessionEvent } from "../protocol/index.js";
import { toolCallCommand, toolCallPaths } from "../protocol/index.js";
import type { GatewayAccess } from "./gateway.js";
import { reportWhileWaiting } from "./tool.js";
import type { ProgressSink } from "./tool.js";

/** An answer longer than this is returned by its end (where agents conclude), the start left out. */
export const MAX_ANSWER_CHARS = 100_000;
/** Tool calls and permission requests listed per run at most (each status change is one line). */
export const MAX_RUN_NOTES = 50;

/** The events of a run that the follower reads. */
const RUN_EVENT_TYPES: readonly EventType[] = [
  "run.queued",
  "run.started",
  "chat.delta",
  "chat.final",
  "chat.error",
  "chat.aborted",
  "tool",
  "run.notice",
  "permission.request",
  "permission.resolved",
  "elicitation.request",
  "elicitation.resolved",
];

/** How a followed run stands when the follower returns. */
export type RunStatus =
  | "chat.final"
  | "chat.error"
  | "chat.aborted"
  | "permission"
  | "blocked"
  | "timeout"
  | "session_ended"
  | "cancelled"
  /** The connection to the gateway dropped during the wait (it stopped or restarted). */
  | "disconnected";

/**
 * A permission request still open this long after it was read makes the follower return (status
 * `permission`): the run cannot go on until someone answers, and the caller may be the one to.
 * The wait lets a replay deliver a request's answer that is already in the log.
 */
export const PERMISSION_SETTLE_MS = 300;

/**
 * A permission request a run waits on, as the tools answer it (snake_case, as every field of
 * theirs): `answer_permission` takes its `request_id` and one of its options' `option_id`.
 */
export interface PendingPermission {
  request_id: string;
  title: string;
  /** What would be approved: the call's kind, shell command and the files it touches, when the agent said. */
  tool_call?: { kind?: string; command?: string; paths?: string[] };
  options: Array<{ option_id: string; name: string; kind: string }>;
}

export interface RunResult {
  runId: string;
  status: RunStatus;
  /** The answer so far (the whole answer once the run ended with chat.final). */
  answer: string;
  /** Characters left out at the start of a long answer. */
  omitted: number;
  stopReason?: string;
  error?: { code: string; message: string };
  /** `[tool] Read file (completed)`, `[permission] ...`: what happened around the answer. */
  notes: string[];
  /** A permission request still waiting for an answer when the follower returned. */
  pendingPermission?: PendingPermission;
  /** Status `blocked`: the run ahead of this one, and the permission request it waits on. */
  blockedBy?: { run_id: string; permission: PendingPermission };
  /** Whether the run had started (false: still queued behind others). */
  started: boolean;
  /** Whether any event of the run was seen (false after a timeout: the gateway sent none in time). */
  seen: boolean;
}

/**
 * Follows one run of an agent session from seq `since` (the log's head before the run was
 * queued, or just before its run.queued — or earlier, to see the permission requests of the
 * run ahead of it) until it ends, the session ends, `timeoutMs` passes or `signal` aborts; or
 * until it waits on a permission request of its own (`permission`) or, still queued, on one of
 * the run ahead of it (`blocked`), which nobody may answer before the timeout. Uses the shared
 * WebSocket client's subscription: live, no polling.
 */
export async function followRun(options: {
  gateway: GatewayAccess;
  id: string;
  runId: string;
  since: number;
  timeoutMs: number;
  signal: AbortSignal;
  /** Told every few seconds how the run goes, when the MCP client asked for progress. */
  progress?: ProgressSink;
}): Promise<RunResult> {
  const client = await options.gateway.client();
  const run = new RunRecorder(options.runId);
  let settle: (status: RunStatus) => void = () => undefined;
  const ended = new Promise<RunStatus>((resolve) => (settle = resolve));
  let permissionTimer: ReturnType<typeof setTimeout> | undefined;
  /** The last seq taken, from the subscription or the catch-up read: each event is taken once, in order. */
  let last = options.since;
  const take = (event: SessionEvent): void => {
    if (event.seq <= last) return;
    last = event.seq;
    const end = run.push(event);
    if (end !== undefined) settle(end);
    else if (event.type === "permission.request" && permissionTimer === undefined) {
      permissionTimer = setTimeout(() => {
        permissionTimer = undefined;
        if (run.waitingForPermission) settle("permission");
        else if (run.blocked) settle("blocked");
      }, PERMISSION_SETTLE_MS);
    }
  };
  const sub = client.subscribe(options.id, { since: options.since, types: RUN_EVENT_TYPES }, take);
  // What the log held already is read before a timeout is said (`timeout_ms: 0` asks how the
  // run stands now): the subscription's catch-up may still be on its way.
  const timer = setTimeout(() => {
    void catchUp(options.gateway, options.id, () => last, take, options.signal).finally(() =>
      settle(run.waitingForPermission ? "permission" : run.blocked ? "blocked" : "timeout"),
    );
  }, options.timeoutMs);
  const stopReporting = reportWhileWaiting(options.progress, options.timeoutMs, () => run.describe());
  const onAbort = () => settle("cancelled");
  options.signal.addEventListener("abort", onAbort, { once: true });
  if (options.signal.aborted) settle("cancelled");
  try {
    // `done` without the session's last event: the subscription was stopped, because the
    // shared client was closed when its connection dropped (GatewayAccess.client).
    const stopped = sub.done.then((last): RunStatus => (last !== undefined ? "session_ended" : "disconnected"));
    const status = await Promise.race([ended, stopped]);
    return run.result(status);
  } finally {
    clearTimeout(timer);
    stopReporting();
    if (permissionTimer !== undefined) clearTimeout(permissionTimer);
    options.signal.removeEventListener("abort", onAbort);
    sub.unsubscribe();
  }
}

/** A run the follower could not start following: the gateway could not be reached after it was queued. */
export function unfollowedRun(runId: string): RunResult {
  return new RunRecorder(runId).result("disconnected");
}

/** How long a timeout waits for the log's events to be read before it is said anyway. */
const CATCH_UP_MS = 3_000;

/** Reads the run's events after `last()` up to the log's head, over HTTP, giving each to `take`. */
async function catchUp(
  gateway: GatewayAccess,
  id: string,
  last: () => number,
  take: (event: SessionEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  const read = AbortSignal.any([signal, AbortSignal.timeout(CATCH_UP_MS)]);
  try {
    for (;;) {
      const since = last();
      const page = await gateway.http.events(id, { since, types: RUN_EVENT_TYPES, signal: read });
      for (const event of page.events) take(event);
      if (page.events.length === 0 || page.next <= since || page.next >= page.head) return;
    }
  } catch {
    // Unreachable, or too slow: the timeout is said with what the subscription brought.
  }
}

/** Collects what one run says. */
class RunRecorder {
  private answer = "";
  private omitted = 0;
  private readonly notes: string[] = [];
  private readonly toolStatus = new Map<string, string>();
  private readonly pending = new Map<string, PendingPermission>();
  /** Open permission requests of other runs (the one ahead of this run, while it is queued). */
  private readonly ahead = new Map<string, { runId: string; permission: PendingPermission }>();
  private started = false;
  private seen = false;
  private stopReason: string | undefined;
  private error: { code: string; message: string } | undefined;

  constructor(private readonly runId: string) {}

  /** A permission request of this run is open. */
  get waitingForPermission(): boolean {
    return this.pending.size > 0;
  }

  /** Still queued, behind a run that waits for a permission answer. */
  get blocked(): boolean {
    return !this.started && this.ahead.size > 0;
  }

  /** Takes one event; returns how the run ended when this event ended it. */
  push(event: SessionEvent): RunStatus | undefined {
    if (!("runId" in event) || event.runId === undefined) return undefined;
    if (event.runId !== this.runId) {
      this.pushOther(event, event.runId);
      return undefined;
    }
    this.seen = true;
    switch (event.type) {
      case "run.started":
        this.started = true;
        return undefined;
      case "chat.delta":
        this.started = true;
        this.append(event.text);
        return undefined;
      case "tool": {
        if (this.toolStatus.get(event.toolCallId) === event.status) return undefined;
        this.toolStatus.set(event.toolCallId, event.status);
        this.note(`[tool] ${event.title ?? event.kind ?? event.toolCallId} (${event.status})`);
        return undefined;
      }
      case "run.notice":
        this.note(`[${event.level}] ${event.text}`);
        return undefined;
      case "permission.request":
        this.pending.set(event.requestId, pendingOf(event));
        this.note(`[permission] ${event.title}: waiting for an answer`);
        return undefined;
      case "permission.resolved":
        this.pending.delete(event.requestId);
        this.note(`[permission] ${event.outcome === "selected" ? `answered ${event.optionId ?? ""}` : "cancelled"}`);
        return undefined;
      case "elicitation.request":
        // The run waits until then: the line says how to answer (answer_elicitation).
        this.note(
          event.mode === "form"
            ? `[elicitation] ${event.message}: waiting for an answer (answer_elicitation request_id ${event.requestId}; form ${JSON.stringify(event.requestedSchema)})`
            : `[elicitation] ${event.message}: waiting for the user to visit ${JSON.stringify(event.url)} (answer_elicitation request_id ${event.requestId}: accept once done, without content)`,
        );
        return undefined;
      case "elicitation.resolved":
        this.note(`[elicitation] ${event.action}${event.by ? ` by ${event.by.name}` : ""}`);
        return undefined;
      case "chat.final":
        // The final text is the whole answer: it replaces the deltas (which may have missed none, or some).
        this.answer = "";
        this.omitted = 0;
        this.append(event.text);
        this.stopReason = event.stopReason;
        return "chat.final";
      case "chat.error":
        this.error = { code: event.code, message: event.message };
        return "chat.error";
      case "chat.aborted":
        return "chat.aborted";
      default:
        return undefined;
    }
  }

  /** Keeps track of the permission requests other runs wait on. */
  private pushOther(event: SessionEvent, runId: string): void {
    switch (event.type) {
      case "permission.request":
        this.ahead.set(event.requestId, { runId, permission: pendingOf(event) });
        return;
      case "permission.resolved":
        this.ahead.delete(event.requestId);
        return;
      case "chat.final":
      case "chat.error":
      case "chat.aborted":
        for (const [requestId, open] of this.ahead) if (open.runId === runId) this.ahead.delete(requestId);
        return;
    }
  }

  /** How the run stands, in a few words (for progress notifications). */
  describe(): string {
    if (this.blocked) return "queued behind a run that waits for a permission answer";
    if (!this.seen) return "no event of the run seen yet";
    if (!this.started) return "queued behind the agent's current run";
    const parts = [`${this.omitted + this.answer.length} characters of answer so far`];
    if (this.toolStatus.size > 0)
      parts.push(`${this.toolStatus.size} tool call${this.toolStatus.size === 1 ? "" : "s"}`);
    if (this.pending.size > 0) parts.push("waiting for a permission answer");
    return parts.join(", ");
  }

  result(status: RunStatus): RunResult {
    const pending = [...this.pending.values()].at(-1);
    const ahead = status === "blocked" ? [...this.ahead.values()].at(-1) : undefined;
    return {
      runId: this.runId,
      status,
      answer: this.answer,
      omitted: this.omitted,
      notes: this.notes,
      started: this.started,
      seen: this.seen,
      ...(this.stopReason !== undefined ? { stopReason: this.stopReason } : {}),
      ...(this.error !== undefined ? { error: this.error } : {}),
      ...(pending !== undefined && status !== "chat.final" ? { pendingPermission: pending } : {}),
      ...(ahead !== undefined ? { blockedBy: { run_id: ahead.runId, permission: ahead.permission } } : {}),
    };
  }

  private append(text: string): void {
    this.answer += text;
    if (this.answer.length > MAX_ANSWER_CHARS) {
      const cut = this.answer.length - MAX_ANSWER_CHARS;
      this.omitted += cut;
      this.answer = this.answer.slice(cut);
    }
  }

  private note(line: string): void {
    if (this.notes.length < MAX_RUN_NOTES) this.notes.push(line);
  }
}

/** A permission request as the tools answer it. */
function pendingOf(event: Extract<SessionEvent, { type: "permission.request" }>): PendingPermission {
  const command = toolCallCommand(event.toolCall);
  const paths = toolCallPaths(event.toolCall);
  const kind = event.toolCall?.kind;
  const toolCall = {
    ...(kind !== undefined ? { kind } : {}),
    ...(command !== undefined ? { command } : {}),
    ...(paths.length > 0 ? { paths } : {}),
  };
  return {
    request_id: event.requestId,
    title: event.title,
    ...(Object.keys(toolCall).length > 0 ? { tool_call: toolCall } : {}),
    options: event.options.map((o) => ({ option_id: o.optionId, name: o.name, kind: o.kind })),
  };
}
