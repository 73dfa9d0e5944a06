import type {
  ContentBlock,
  ElicitationAction,
  ElicitationEndReason,
  ElicitationSchema,
  ElicitationValue,
  EventOf,
  PermissionToolCall,
  SessionEvent,
} from "../../src/protocol/index.js";

/**
 * The conversation of an agent session, rebuilt from its event log (docs/agents.md). Pure:
 * the view feeds it events in seq order (the SDK guarantees once, in order) and re-renders
 * the runs each event touched.
 */

/** `interrupted`: the session ended (`exit`) or was lost (`lost`) with the run still open. */
export type RunStatus = "queued" | "running" | "done" | "error" | "aborted" | "interrupted";

export interface ToolCall {
  toolCallId: string;
  title: string;
  kind: string | null;
  /** The agent's (ACP: `pending`, `in_progress`, `completed`, `failed`), or `cancelled`: the run ended before it finished. */
  status: string;
  terminalSessionIds: string[];
  rawInput: unknown;
  rawOutput: unknown;
  /** ACP tool call content (diffs, text, terminals): the latest update that had any. */
  content: unknown[];
  /** The files it touches (ACP `locations`). */
  locations: string[];
}

export interface PermissionOptionView {
  optionId: string;
  name: string;
  kind: string;
}

export interface PermissionView {
  runId: string;
  requestId: string;
  title: string;
  toolCallId: string | null;
  /** What would be approved (command, diff), as the agent described it. */
  toolCall: PermissionToolCall | null;
  options: PermissionOptionView[];
  expiresAt: number;
  resolved: {
    outcome: "selected" | "cancelled";
    optionId: string | null;
    optionName: string | null;
    by: string | null;
  } | null;
}

/** A form the agent asked to be filled in, or a page to visit (`elicitation.request`), and how it ended. */
export interface ElicitationView {
  runId: string;
  requestId: string;
  message: string;
  ask: { mode: "form"; schema: ElicitationSchema } | { mode: "url"; url: string };
  expiresAt: number;
  resolved: {
    action: ElicitationAction;
    content: Record<string, ElicitationValue> | null;
    by: string | null;
    reason: ElicitationEndReason | null;
  } | null;
}

export interface PlanEntry {
  content: string;
  priority: string;
  status: string;
}

/** What a run shows, in the order it happened. */
export type RunItem =
  | { kind: "text"; text: string }
  | { kind: "thought"; text: string }
  | { kind: "tool"; toolCallId: string }
  | { kind: "permission"; requestId: string }
  | { kind: "elicitation"; requestId: string }
  | { kind: "plan" }
  | { kind: "notice"; level: "info" | "warning" | "error"; text: string }
  | { kind: "child"; sessionId: string; command: string[] };

export interface RunView {
  runId: string;
  /** The prompt; null when the log no longer has its `run.queued` (retention). */
  prompt: string | null;
  /** The prompt's images, audio and files, when it was sent as content (its text and links are in `prompt`). */
  attachments: ContentBlock[];
  by: string | null;
  /** A routed message's sender as its channel names them ("Ada", on "discord"). */
  from: { name: string; channel: string } | null;
  queuedAt: number;
  status: RunStatus;
  items: RunItem[];
  tools: Map<string, ToolCall>;
  permissions: Map<string, PermissionView>;
  elicitations: Map<string, ElicitationView>;
  plan: PlanEntry[] | null;
  startedAt: number | null;
  endedAt: number | null;
  stopReason: string | null;
  error: { code: string; message: string } | null;
  abortedBy: string | null;
  /** How the session of an `interrupted` run ended. */
  sessionEnd: "exit" | "lost" | null;
  /** The files the run changed (`file.change` paths), in the order first changed. */
  changedFiles: Set<string>;
}

export class AgentModel {
  readonly runs: RunView[] = [];
  private readonly byId = new Map<string, RunView>();

  /** Applies one event; returns the runs it changed (none when it touched no run). */
  apply(event: SessionEvent): RunView[] {
    if (event.type === "exit" || event.type === "lost") return this.interrupt(event);
    const run = this.applyToRun(event);
    return run ? [run] : [];
  }

  /** Applies an event of one run; returns that run, or null when it touched none. */
  private applyToRun(event: SessionEvent): RunView | null {
    switch (event.type) {
      case "run.queued": {
        const run = this.run(event.runId, event.ts);
        run.prompt = event.text;
        run.attachments = (event.content ?? []).filter((b) => b.type !== "text" && b.type !== "resource_link");
        run.by = event.by.name;
        run.from = event.from ? { name: event.from.name ?? event.from.id, channel: event.from.channel } : null;
        run.queuedAt = event.ts;
        return run;
      }
      case "run.started": {
        const run = this.run(event.runId, event.ts);
        run.status = "running";
        run.startedAt = event.ts;
        return run;
      }
      case "chat.delta":
        return this.appendText(event, "text");
      case "chat.thought":
        return this.appendText(event, "thought");
      case "chat.final": {
        const run = this.started(event);
        // `text` is the concatenation of the deltas; if some were trimmed away, trust it.
        if (answerText(run) !== event.text) {
          run.items = run.items.filter((i) => i.kind !== "text");
          if (event.text !== "") run.items.push({ kind: "text", text: event.text });
        }
        return this.end(run, event, "done", () => (run.stopReason = event.stopReason));
      }
      case "chat.error": {
        const run = this.started(event);
        return this.end(run, event, "error", () => (run.error = { code: event.code, message: event.message }));
      }
      case "chat.aborted": {
        const run = this.run(event.runId, event.ts);
        return this.end(run, event, "aborted", () => (run.abortedBy = event.by?.name ?? null));
      }
      case "tool":
        return this.tool(event);
      case "file.change": {
        const run = this.started(event);
        run.changedFiles.add(event.path);
        return run;
      }
      case "run.notice": {
        const run = this.started(event);
        run.items.push({ kind: "notice", level: event.level, text: event.text });
        return run;
      }
      case "agent.notice": {
        // Said during a run: shown in it; between runs: under the latest run (none yet: not shown).
        const run = event.runId !== undefined ? this.started({ runId: event.runId, ts: event.ts }) : this.runs.at(-1);
        if (run === undefined) return null;
        const text = event.description ? `${event.title}: ${event.description}` : event.title;
        run.items.push({ kind: "notice", level: noticeLevel(event.level), text });
        return run;
      }
      case "agent.compaction": {
        const text = compactionLine(event.status, event.error);
        const run = event.runId !== undefined ? this.started({ runId: event.runId, ts: event.ts }) : this.runs.at(-1);
        if (run === undefined || text === undefined) return null;
        run.items.push({ kind: "notice", level: event.status === "failed" ? "warning" : "info", text });
        return run;
      }
      case "plan": {
        const run = this.started(event);
        if (run.plan === null) run.items.push({ kind: "plan" });
        run.plan = event.entries.map((e) => ({ content: e.content, priority: e.priority, status: e.status }));
        return run;
      }
      case "permission.request": {
        const run = this.started(event);
        run.permissions.set(event.requestId, {
          runId: run.runId,
          requestId: event.requestId,
          title: event.title,
          toolCallId: event.toolCallId ?? null,
          toolCall: event.toolCall ?? null,
          options: event.options.map((o) => ({ optionId: o.optionId, name: o.name, kind: o.kind })),
          expiresAt: event.expiresAt,
          resolved: null,
        });
        run.items.push({ kind: "permission", requestId: event.requestId });
        return run;
      }
      case "permission.resolved": {
        const run = this.byId.get(event.runId);
        const request = run?.permissions.get(event.requestId);
        if (!run || !request) return null;
        const option = request.options.find((o) => o.optionId === event.optionId);
        request.resolved = {
          outcome: event.outcome,
          optionId: event.optionId,
          optionName: option?.name ?? null,
          by: event.by?.name ?? null,
        };
        return run;
      }
      case "elicitation.request": {
        const run = this.started(event);
        run.elicitations.set(event.requestId, {
          runId: run.runId,
          requestId: event.requestId,
          message: event.message,
          ask:
            event.mode === "form" ? { mode: "form", schema: event.requestedSchema } : { mode: "url", url: event.url },
          expiresAt: event.expiresAt,
          resolved: null,
        });
        run.items.push({ kind: "elicitation", requestId: event.requestId });
        return run;
      }
      case "elicitation.resolved": {
        const run = this.byId.get(event.runId);
        const request = run?.elicitations.get(event.requestId);
        if (!run || !request) return null;
        request.resolved = {
          action: event.action,
          content: event.content ?? null,
          by: event.by?.name ?? null,
          reason: event.reason ?? null,
        };
        return run;
      }
      case "child": {
        if (event.runId === undefined) return null;
        const run = this.run(event.runId, event.ts);
        run.items.push({ kind: "child", sessionId: event.sessionId, command: event.command });
        return run;
      }
      default:
        return null;
    }
  }

  get(runId: string): RunView | undefined {
    return this.byId.get(runId);
  }

  /** The run the agent is working on, if any. */
  get active(): RunView | undefined {
    return this.runs.find((r) => r.status === "running");
  }

  /** Prompts waiting behind the active run, in order. */
  get queued(): RunView[] {
    return this.runs.filter((r) => r.status === "queued");
  }

  /** Permission requests nobody has answered yet. */
  get openPermissions(): PermissionView[] {
    const open: PermissionView[] = [];
    for (const run of this.runs) for (const p of run.permissions.values()) if (p.resolved === null) open.push(p);
    return open;
  }

  private run(runId: string, ts: number): RunView {
    let run = this.byId.get(runId);
    if (!run) {
      run = {
        runId,
        prompt: null,
        attachments: [],
        by: null,
        from: null,
        queuedAt: ts,
        status: "queued",
        items: [],
        tools: new Map(),
        permissions: new Map(),
        elicitations: new Map(),
        plan: null,
        startedAt: null,
        endedAt: null,
        stopReason: null,
        error: null,
        abortedBy: null,
        sessionEnd: null,
        changedFiles: new Set(),
      };
      this.byId.set(runId, run);
      this.runs.push(run);
    }
    return run;
  }

  /** The run of an event that only happens while it runs (its `run.started` may be trimmed). */
  private started(event: { runId: string; ts: number }): RunView {
    const run = this.run(event.runId, event.ts);
    if (run.status === "queued") {
      run.status = "running";
      run.startedAt ??= event.ts;
    }
    return run;
  }

  private appendText(event: EventOf<"chat.delta"> | EventOf<"chat.thought">, kind: "text" | "thought"): RunView {
    const run = this.started(event);
    const last = run.items[run.items.length - 1];
    if (last && last.kind === kind) last.text += event.text;
    else run.items.push({ kind, text: event.text });
    return run;
  }

  private tool(event: EventOf<"tool">): RunView {
    const run = this.started(event);
    const existing = run.tools.get(event.toolCallId);
    if (!existing) {
      run.tools.set(event.toolCallId, {
        toolCallId: event.toolCallId,
        title: event.title ?? event.toolCallId,
        kind: event.kind ?? null,
        status: event.status,
        terminalSessionIds: [...(event.terminalSessionIds ?? [])],
        rawInput: event.rawInput,
        rawOutput: event.rawOutput,
        content: Array.isArray(event.content) ? event.content : [],
        locations: (event.locations ?? []).map((l) => l.path),
      });
      run.items.push({ kind: "tool", toolCallId: event.toolCallId });
      return run;
    }
    if (Array.isArray(event.content) && event.content.length > 0) existing.content = event.content;
    if (event.locations !== undefined && event.locations.length > 0)
      existing.locations = event.locations.map((l) => l.path);
    existing.status = event.status;
    if (event.title !== undefined) existing.title = event.title;
    if (event.kind !== undefined) existing.kind = event.kind;
    for (const id of event.terminalSessionIds ?? [])
      if (!existing.terminalSessionIds.includes(id)) existing.terminalSessionIds.push(id);
    if (event.rawInput !== undefined) existing.rawInput = event.rawInput;
    if (event.rawOutput !== undefined) existing.rawOutput = event.rawOutput;
    return run;
  }

  /**
   * The session ended while runs were open: nothing can finish them any more. The gateway ends
   * them itself just before the session's end — `chat.aborted` without `by` (and the open
   * permission requests `cancelled`), when it stops the session or, for a session it lost, when
   * it starts again — and those runs show as interrupted by that end, not as aborted by
   * someone. Runs still open (a log written before the gateway did so for lost sessions) end
   * here too, and so do permission requests nobody answered.
   */
  private interrupt(event: EventOf<"exit"> | EventOf<"lost">): RunView[] {
    const changed = new Set<RunView>();
    for (const run of this.runs) {
      const endedBySession = run.status === "aborted" && run.abortedBy === null;
      if (run.status === "queued" || run.status === "running" || endedBySession) {
        this.end(run, event, "interrupted", () => (run.sessionEnd = event.type));
        changed.add(run);
      }
      for (const request of run.permissions.values()) {
        if (request.resolved !== null) continue;
        request.resolved = { outcome: "cancelled", optionId: null, optionName: null, by: null };
        changed.add(run);
      }
      for (const request of run.elicitations.values()) {
        if (request.resolved !== null) continue;
        request.resolved = { action: "cancel", content: null, by: null, reason: "session-ended" };
        changed.add(run);
      }
    }
    return [...changed];
  }

  private end(run: RunView, event: SessionEvent, status: RunStatus, set: () => void): RunView {
    run.status = status;
    run.endedAt = event.ts;
    // Nothing reports on a run after its end: a tool call it left unfinished never will finish.
    for (const tool of run.tools.values())
      if (tool.status === "pending" || tool.status === "in_progress") tool.status = "cancelled";
    set();
    return run;
  }
}

/** The answer text of a run so far: its text items joined. */
export function answerText(run: RunView): string {
  let text = "";
  for (const item of run.items) if (item.kind === "text") text += item.text;
  return text;
}

/** An agent's notice level as the page shows it: its own levels beyond these read as info. */
function noticeLevel(level: string): "info" | "warning" | "error" {
  return level === "warning" || level === "error" ? level : "info";
}

/** The line a compaction's status change shows (chunks of its summary show none). */
function compactionLine(status: string | undefined, error: string | null | undefined): string | undefined {
  switch (status) {
    case "in_progress":
      return "The agent is compacting its context…";
    case "completed":
      return "The agent compacted its context.";
    case "failed":
      return `The agent could not compact its context${error ? `: ${error}` : "."}`;
    case "cancelled":
      return "The agent stopped compacting its context.";
    default:
      return undefined;
  }
}
