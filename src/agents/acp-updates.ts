import type { AgentConfigOption, AgentCommand, AgentMode } from "../protocol/index.js";
import type { AdapterContext, AgentEventInput, PlanEntry, RunSink, ToolUpdate } from "./adapter.js";
import { isRecord } from "./acp-wire.js";

/**
 * ACP `session/update` → the session's events (table in docs/agents.md). In a run: message and
 * thought chunks → `chat.delta`/`chat.thought` (paced, with their `messageId`), `tool_call(_update)`
 * → `tool` after a flush, `plan` → `plan`. In or out of a run: what the agent says of itself →
 * `agent.commands`, `agent.mode`, `agent.config`, `agent.usage`, `agent.info`, `agent.notice`,
 * `agent.compaction`; anything else → `agent.update`, kept as sent. Updates are raw JSON from the
 * wire (acp-wire.ts), so every field is checked here; an update that does not fit is skipped.
 */
export type UpdateResult =
  | { kind: "applied" }
  /** Conversation content not logged (see {@link UpdateTarget.discardContent}). */
  | { kind: "discarded" }
  /** Logged as `agent.update`; `unknown`: a variant the gateway has no mapping for. */
  | { kind: "raw"; unknown: boolean }
  /** Larger than {@link MAX_AGENT_UPDATE_BYTES}: logged as `agent.update` with its size only. */
  | { kind: "oversized"; bytes: number }
  | { kind: "malformed" };

/**
 * The largest `session/update` (JSON bytes) other than answer text and tool calls the gateway logs
 * as sent: a larger one is logged as `agent.update` with its variant and size, without its content
 * (commands, config options, a notice or an unknown variant of that size are no agent's honest
 * output; answer text is bounded per run by `limits.runTextBytes`).
 */
export const MAX_AGENT_UPDATE_BYTES = 64 * 1024;

/** Where {@link applySessionUpdate} sends an update. */
export interface UpdateTarget {
  /** The run the update belongs to, while it is open. */
  run: RunSink | undefined;
  /** Logs an `agent.*` event: with the open run's id, else between runs. */
  event(event: AgentEventInput): void;
  /**
   * No run takes conversation content (chunks, tool calls, plans) now and it is not logged: a
   * loaded conversation is replayed (the log has it already), or the run it belonged to has
   * ended (the tail of an aborted turn, or of the turn an earlier gateway left to an adopted agent).
   */
  discardContent: boolean;
  /** Whether a `terminalId` in tool content names a child terminal this agent created (only those are linked). */
  knownTerminal(terminalId: string): boolean;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const nullableStr = (v: unknown): string | null | undefined => (v === null ? null : str(v));
const nonNegative = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined;

function textOf(content: unknown): string | undefined {
  return isRecord(content) && content.type === "text" ? str(content.text) : undefined;
}

/** The ACP variants the gateway maps (every one of the SDK's stable schema; docs/agents.md has the table). */
export const MAPPED_UPDATES = [
  "user_message_chunk",
  "agent_message_chunk",
  "agent_thought_chunk",
  "tool_call",
  "tool_call_update",
  "plan",
  "available_commands_update",
  "current_mode_update",
  "config_option_update",
  "session_info_update",
  "usage_update",
  "notice",
  "compaction_update",
  "compaction_summary_chunk",
] as const;

/** Applies one `session/update` update to `target`. */
export function applySessionUpdate(update: unknown, target: UpdateTarget): UpdateResult {
  if (!isRecord(update) || typeof update.sessionUpdate !== "string") return { kind: "malformed" };
  const variant = update.sessionUpdate;
  const run = target.run;
  const applied = { kind: "applied" } as const;
  switch (variant) {
    case "agent_message_chunk":
    case "agent_thought_chunk": {
      if (!run) return outside(update, target);
      const text = textOf(update.content);
      if (text === undefined) return isRecord(update.content) ? raw(update, target, false) : { kind: "malformed" };
      const messageId = str(update.messageId);
      if (variant === "agent_message_chunk") run.text(text, messageId);
      else run.thought(text, messageId);
      return applied;
    }
    case "user_message_chunk":
      return run ? raw(update, target, false) : outside(update, target);
    case "tool_call":
    case "tool_call_update": {
      if (!run) return outside(update, target);
      const tool = toToolUpdate(update, target.knownTerminal);
      if (!tool) return { kind: "malformed" };
      run.tool(tool);
      return applied;
    }
    case "plan": {
      if (!run) return outside(update, target);
      const entries = toPlanEntries(update.entries);
      if (!entries) return { kind: "malformed" };
      run.plan(entries);
      return applied;
    }
    case "available_commands_update": {
      const commands = toCommands(update.availableCommands);
      return commands ? typed(update, target, { type: "agent.commands", commands }) : { kind: "malformed" };
    }
    case "current_mode_update": {
      const currentModeId = str(update.currentModeId);
      return currentModeId !== undefined
        ? typed(update, target, { type: "agent.mode", currentModeId })
        : { kind: "malformed" };
    }
    case "config_option_update": {
      const configOptions = toConfigOptions(update.configOptions);
      return configOptions ? typed(update, target, { type: "agent.config", configOptions }) : { kind: "malformed" };
    }
    case "session_info_update":
      return sessionInfo(update, target);
    case "usage_update": {
      const used = nonNegative(update.used);
      const size = nonNegative(update.size);
      if (used === undefined || size === undefined) return { kind: "malformed" };
      const cost = isRecord(update.cost) ? update.cost : undefined;
      const amount = typeof cost?.amount === "number" && Number.isFinite(cost.amount) ? cost.amount : undefined;
      const currency = str(cost?.currency);
      return typed(update, target, {
        type: "agent.usage",
        used,
        size,
        ...(amount !== undefined && currency !== undefined ? { cost: { amount, currency } } : {}),
      });
    }
    case "notice": {
      const level = str(update.severity);
      const title = str(update.title);
      if (level === undefined || title === undefined || title === "") return { kind: "malformed" };
      const description = str(update.description);
      return typed(update, target, {
        type: "agent.notice",
        level,
        title,
        ...(description !== undefined ? { description } : {}),
      });
    }
    case "compaction_update": {
      const compactionId = str(update.compactionId);
      const status = str(update.status);
      if (compactionId === undefined || status === undefined) return { kind: "malformed" };
      const summary =
        update.summary === null ? "" : Array.isArray(update.summary) ? blocksText(update.summary) : undefined;
      const error = nullableStr(update.error);
      return typed(update, target, {
        type: "agent.compaction",
        compactionId,
        status,
        ...(summary !== undefined ? { summary } : {}),
        ...(error !== undefined ? { error } : {}),
      });
    }
    case "compaction_summary_chunk": {
      const compactionId = str(update.compactionId);
      const chunk = textOf(update.content);
      if (compactionId === undefined || !isRecord(update.content)) return { kind: "malformed" };
      if (chunk === undefined) return raw(update, target, false);
      return typed(update, target, { type: "agent.compaction", compactionId, chunk });
    }
    default:
      return raw(update, target, true);
  }
}

/**
 * `session_info_update`: its title and time → `agent.info`; a status notice in its `_meta`
 * (claude-agent-acp's retries and rate limits, see {@link statusNotice}) → `run.notice` in a run,
 * `agent.notice` between runs; one that says neither is kept as sent (its `_meta`).
 */
function sessionInfo(update: Record<string, unknown>, target: UpdateTarget): UpdateResult {
  const notice = statusNotice(update._meta);
  if (notice !== undefined) {
    if (target.run) target.run.notice(notice.level, notice.text);
    else target.event({ type: "agent.notice", level: notice.level, title: notice.text });
  }
  const title = nullableStr(update.title);
  const updatedAt = nullableStr(update.updatedAt);
  if (title === undefined && updatedAt === undefined) {
    return notice !== undefined ? { kind: "applied" } : raw(update, target, false);
  }
  return typed(update, target, {
    type: "agent.info",
    ...(title !== undefined ? { title } : {}),
    ...(updatedAt !== undefined ? { updatedAt } : {}),
  });
}

/** Conversation content no run takes: discarded, or kept as sent. */
function outside(update: Record<string, unknown>, target: UpdateTarget): UpdateResult {
  return target.discardContent ? { kind: "discarded" } : raw(update, target, false);
}

/** Logs `event` for `update`, unless `update` is over {@link MAX_AGENT_UPDATE_BYTES}. */
function typed(update: Record<string, unknown>, target: UpdateTarget, event: AgentEventInput): UpdateResult {
  const bytes = jsonBytes(update);
  if (bytes > MAX_AGENT_UPDATE_BYTES) return oversized(update, target, bytes);
  target.event(event);
  return { kind: "applied" };
}

function raw(update: Record<string, unknown>, target: UpdateTarget, unknown: boolean): UpdateResult {
  const sessionUpdate = update.sessionUpdate as string;
  const bytes = jsonBytes(update);
  if (bytes > MAX_AGENT_UPDATE_BYTES) return oversized(update, target, bytes);
  target.event({ type: "agent.update", sessionUpdate, update });
  return { kind: "raw", unknown };
}

function oversized(update: Record<string, unknown>, target: UpdateTarget, bytes: number): UpdateResult {
  target.event({ type: "agent.update", sessionUpdate: update.sessionUpdate as string, bytes });
  return { kind: "oversized", bytes };
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

/** The text of ACP content blocks (a compaction's summary); blocks that are not text are left out. */
function blocksText(blocks: unknown[]): string {
  return blocks.map((b) => textOf(b) ?? "").join("");
}

/** ACP `availableCommands`; commands that do not fit are dropped (the schema says skip invalid items). */
function toCommands(v: unknown): AgentCommand[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.flatMap((c): AgentCommand[] => {
    if (!isRecord(c)) return [];
    const name = str(c.name);
    if (name === undefined) return [];
    const hint = isRecord(c.input) ? str(c.input.hint) : undefined;
    return [{ name, description: str(c.description) ?? "", ...(hint !== undefined ? { hint } : {}) }];
  });
}

/** ACP `SessionModeState` (`modes` of `session/new` and `session/load`). */
export function toModes(v: unknown): { currentModeId: string; availableModes: AgentMode[] } | undefined {
  if (!isRecord(v)) return undefined;
  const currentModeId = str(v.currentModeId);
  if (currentModeId === undefined) return undefined;
  const modes = Array.isArray(v.availableModes) ? v.availableModes : [];
  const availableModes = modes.flatMap((m): AgentMode[] => {
    if (!isRecord(m) || str(m.id) === undefined || str(m.name) === undefined) return [];
    const description = str(m.description);
    return [{ id: m.id as string, name: m.name as string, ...(description !== undefined ? { description } : {}) }];
  });
  return { currentModeId, availableModes };
}

/** ACP `configOptions`; options that do not fit are dropped, a select's groups are flattened (`group`). */
export function toConfigOptions(v: unknown): AgentConfigOption[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.flatMap((o): AgentConfigOption[] => {
    if (!isRecord(o)) return [];
    const id = str(o.id);
    const name = str(o.name);
    const type = str(o.type);
    if (id === undefined || name === undefined || type === undefined) return [];
    const description = str(o.description);
    const category = str(o.category);
    const current = o.currentValue;
    const option: AgentConfigOption = {
      id,
      name,
      type,
      currentValue: typeof current === "string" || typeof current === "boolean" ? current : null,
      ...(description !== undefined ? { description } : {}),
      ...(category !== undefined ? { category } : {}),
    };
    if (Array.isArray(o.options)) option.options = selectValues(o.options);
    return [option];
  });
}

function selectValues(items: unknown[]): NonNullable<AgentConfigOption["options"]> {
  return items.flatMap((item): NonNullable<AgentConfigOption["options"]> => {
    if (!isRecord(item)) return [];
    if (Array.isArray(item.options)) {
      const group = str(item.name) ?? str(item.group);
      return selectValues(item.options).map((value) => ({ ...value, ...(group !== undefined ? { group } : {}) }));
    }
    const value = str(item.value);
    const name = str(item.name);
    if (value === undefined || name === undefined) return [];
    const description = str(item.description);
    return [{ value, name, ...(description !== undefined ? { description } : {}) }];
  });
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

/** Logs what did not go into the log as sent, and counts the variants the gateway does not know. */
export function reportUpdate(
  result: UpdateResult,
  update: unknown,
  where: { context: Pick<AdapterContext, "logger" | "sessionId" | "unknownUpdate">; runId: string | undefined },
): void {
  const { context, runId } = where;
  const variant = isRecord(update) ? update.sessionUpdate : undefined;
  switch (result.kind) {
    case "raw":
      if (result.unknown) context.unknownUpdate(variant as string);
      return;
    case "oversized":
      context.logger.warn(
        { sessionId: context.sessionId, runId, variant, bytes: result.bytes, max: MAX_AGENT_UPDATE_BYTES },
        "session/update larger than MAX_AGENT_UPDATE_BYTES logged without its content",
      );
      return;
    case "malformed":
      context.logger.warn({ sessionId: context.sessionId, runId, variant }, "malformed session/update skipped");
      return;
    case "applied":
    case "discarded":
      return;
  }
}
