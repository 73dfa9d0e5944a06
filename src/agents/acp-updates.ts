import type { PlanEntry, RunSink, ToolUpdate } from "./adapter.js";
import { isRecord } from "./acp-wire.js";

/**
 * ACP `session/update` → the run's events (table in docs/agents.md): message and thought chunks
 * → `chat.delta`/`chat.thought` (paced), `tool_call(_update)` → `tool` after a flush, `plan` →
 * `plan`, the rest ignored. Updates are raw JSON from the wire (acp-wire.ts), so every field is
 * checked here; an update that does not fit is skipped, never trusted.
 */
export type UpdateResult = "applied" | "ignored" | "malformed";

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

function textOf(content: unknown): string | undefined {
  return isRecord(content) && content.type === "text" ? str(content.text) : undefined;
}

/**
 * Applies one `session/update` update to `sink`. `knownTerminal` says whether a `terminalId` in
 * tool content names a child terminal this agent created (only those are linked).
 */
export function applySessionUpdate(
  update: unknown,
  sink: RunSink,
  knownTerminal: (terminalId: string) => boolean,
): UpdateResult {
  if (!isRecord(update)) return "malformed";
  switch (update.sessionUpdate) {
    case "agent_message_chunk": {
      const text = textOf(update.content);
      if (text === undefined) return isRecord(update.content) ? "ignored" : "malformed";
      sink.text(text);
      return "applied";
    }
    case "agent_thought_chunk": {
      const text = textOf(update.content);
      if (text === undefined) return isRecord(update.content) ? "ignored" : "malformed";
      sink.thought(text);
      return "applied";
    }
    case "tool_call":
    case "tool_call_update": {
      const tool = toToolUpdate(update, knownTerminal);
      if (!tool) return "malformed";
      sink.tool(tool);
      return "applied";
    }
    case "plan": {
      const entries = toPlanEntries(update.entries);
      if (!entries) return "malformed";
      sink.plan(entries);
      return "applied";
    }
    case "session_info_update": {
      const notice = statusNotice(update._meta);
      if (notice === undefined) return "ignored";
      sink.notice(notice.level, notice.text);
      return "applied";
    }
    default:
      return typeof update.sessionUpdate === "string" ? "ignored" : "malformed";
  }
}

function toToolUpdate(u: Record<string, unknown>, knownTerminal: (id: string) => boolean): ToolUpdate | undefined {
  const toolCallId = str(u.toolCallId);
  if (toolCallId === undefined) return undefined;
  const tool: ToolUpdate = { toolCallId };
  const status = str(u.status);
  if (status !== undefined) tool.status = status;
  else if (u.sessionUpdate === "tool_call") tool.status = "pending";
  const title = str(u.title);
  if (title !== undefined) tool.title = title;
  const kind = str(u.kind);
  if (kind !== undefined) tool.kind = kind;
  if (Array.isArray(u.content)) {
    tool.content = u.content;
    const terminals = u.content
      .map((c) => (isRecord(c) && c.type === "terminal" ? str(c.terminalId) : undefined))
      .filter((id): id is string => id !== undefined && knownTerminal(id));
    if (terminals.length > 0) tool.terminalSessionIds = terminals;
  }
  if (u.rawInput !== undefined) tool.rawInput = u.rawInput;
  if (u.rawOutput !== undefined) tool.rawOutput = u.rawOutput;
  const locations = toLocations(u.locations);
  if (locations !== undefined) tool.locations = locations;
  return tool;
}

/**
 * A status notice in a `session_info_update`'s `_meta`: claude-agent-acp reports retries and rate
 * limits there (`jetbrains.air.sessionFailure {severity, title, details?}`) to a client that
 * declares the capability, as the gateway does in `initialize` (acp-handshake.ts).
 */
export function statusNotice(meta: unknown): { level: "info" | "warning" | "error"; text: string } | undefined {
  const air = isRecord(meta) && isRecord(meta.jetbrains) && isRecord(meta.jetbrains.air) ? meta.jetbrains.air : {};
  const failure = air.sessionFailure;
  if (!isRecord(failure)) return undefined;
  const title = str(failure.title);
  if (title === undefined || title === "") return undefined;
  const details = str(failure.details);
  const level = failure.severity === "warning" || failure.severity === "info" ? failure.severity : "error";
  return { level, text: details !== undefined && details !== "" ? `${title} ${details}` : title };
}

/** ACP tool call `locations` (`[{path, line?}]`); entries that do not fit are dropped. */
export function toLocations(v: unknown): ToolUpdate["locations"] {
  if (!Array.isArray(v)) return undefined;
  return v.flatMap((l) => {
    if (!isRecord(l) || typeof l.path !== "string") return [];
    return [{ path: l.path, ...(typeof l.line === "number" && Number.isInteger(l.line) ? { line: l.line } : {}) }];
  });
}

function toPlanEntries(v: unknown): PlanEntry[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const entries: PlanEntry[] = [];
  for (const e of v) {
    if (!isRecord(e)) return undefined;
    const content = str(e.content);
    if (content === undefined) return undefined;
    entries.push({ content, priority: str(e.priority) ?? "medium", status: str(e.status) ?? "pending" });
  }
  return entries;
}
