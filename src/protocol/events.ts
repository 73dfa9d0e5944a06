import { z } from "zod";
import { AgentCommand, AgentConfigOption, AgentMode } from "./agent-state.js";
import { ContentBlock } from "./prompt-content.js";
import { Attention } from "./attention.js";
import { PermissionPolicy } from "./permission-policy.js";

/**
 * The event log's entries. Every event is `{seq, ts, type, ...payload}`: `seq` starts at 1
 * and is contiguous per session forever; `ts` is milliseconds since the epoch.
 */

export const OUTPUT_STREAMS = ["stdout", "stderr", "pty"] as const;
export const OutputStream = z.enum(OUTPUT_STREAMS);
export type OutputStream = z.infer<typeof OutputStream>;

/** Who did something: the token's name (never the token) and the connection, when there is one. */
/**
 * How a control holder is connected, as the gateway sees it: a web UI page (a browser sign-in on
 * `/v1/ws`), a terminal socket (`/ws/session`, as `switchboard attach` uses), another `/v1/ws`
 * client (the SDK, the MCP server), or HTTP calls.
 */
export const CONTROL_VIA = ["page", "attach", "sdk", "http"] as const;
export type ControlVia = (typeof CONTROL_VIA)[number];

export const Actor = z.object({
  name: z.string(),
  role: z.enum(["admin", "operator", "viewer", "plugin", "system"]),
  connId: z.string().optional(),
  /**
   * The caller's principal id (`token:NAME`, `device:ID`, `proxy:USER`; see principal.ts): who it
   * was, where `name` is only what to show. Absent for plugins, the gateway itself and events
   * logged before principal ids.
   */
  id: z.string().optional(),
  /** A control holder's connection (control events' `holder` and `previous`). */
  via: z.enum(CONTROL_VIA).optional(),
});
export type Actor = z.infer<typeof Actor>;

const base = { seq: z.number().int().positive(), ts: z.number() };

export const OutputEvent = z.object({
  ...base,
  type: z.literal("output"),
  stream: OutputStream,
  /** Byte offset of the first byte of `data` in this session's output stream. */
  offset: z.number().int().nonnegative(),
  data: z.string(),
  /** Present when `data` is base64 because the bytes were not valid UTF-8. */
  enc: z.literal("base64").optional(),
});

export const ExitEvent = z.object({
  ...base,
  type: z.literal("exit"),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
});

export const LostEvent = z.object({
  ...base,
  type: z.literal("lost"),
  reason: z.string(),
});

/** A lost agent session runs again (`POST /v1/sessions/:id/resume`); `loaded`: its agent reloaded its conversation (ACP `session/load`). */
export const ResumedEvent = z.object({
  ...base,
  type: z.literal("resumed"),
  by: Actor,
  loaded: z.boolean(),
});

export const InputEvent = z.object({
  ...base,
  type: z.literal("input"),
  by: Actor,
  bytes: z.number().int().nonnegative(),
  /** The input was ended after these bytes (`eof: true`). */
  eof: z.literal(true).optional(),
});

export const SignalEvent = z.object({ ...base, type: z.literal("signal"), by: Actor, signal: z.string() });

export const ResizeEvent = z.object({
  ...base,
  type: z.literal("resize"),
  by: Actor,
  cols: z.number().int(),
  rows: z.number().int(),
});

export const CONTROL_ACTIONS = ["acquired", "released", "expired", "taken-over", "disconnected"] as const;
export const ControlEvent = z.object({
  ...base,
  type: z.literal("control"),
  action: z.enum(CONTROL_ACTIONS),
  /** The holder after this change (null when released). */
  holder: Actor.nullable(),
  /** The holder before this change, when there was one. */
  previous: Actor.nullable(),
});

/**
 * Who wrote a message routed to an agent (`POST /v1/messages`, a channel plugin), as the channel
 * names them: what its bridge says, not an identity the gateway checked (that is `by`).
 */
export const MessageSender = z.object({ channel: z.string(), id: z.string(), name: z.string().optional() });
export type MessageSender = z.infer<typeof MessageSender>;

export const RunQueuedEvent = z.object({
  ...base,
  type: z.literal("run.queued"),
  runId: z.string(),
  text: z.string(),
  by: Actor,
  /** A routed message's sender, when its message named one. */
  from: MessageSender.optional(),
  position: z.number().int().nonnegative(),
  /** The prompt's ACP content blocks (images as base64), when it was sent as content; `text` is its text. */
  content: z.array(ContentBlock).optional(),
});
export const RunStartedEvent = z.object({ ...base, type: z.literal("run.started"), runId: z.string() });
/** ACP `messageId`: the agent's message this text belongs to (a new id starts a new message), when it names one. */
const messageId = z.string().optional();
export const ChatDeltaEvent = z.object({
  ...base,
  type: z.literal("chat.delta"),
  runId: z.string(),
  text: z.string(),
  messageId,
});
export const ChatThoughtEvent = z.object({
  ...base,
  type: z.literal("chat.thought"),
  runId: z.string(),
  text: z.string(),
  messageId,
});
/**
 * The agent gave up a message it had begun and started over with a new one (a retry after its
 * model stream was cut): the `chat.delta` events of `messageId` (`chars` characters) are not part
 * of the answer, and `chat.final.text` leaves them out.
 */
export const ChatAbandonedEvent = z.object({
  ...base,
  type: z.literal("chat.abandoned"),
  runId: z.string(),
  messageId: z.string(),
  chars: z.number().int().nonnegative(),
});
export const ChatFinalEvent = z.object({
  ...base,
  type: z.literal("chat.final"),
  runId: z.string(),
  text: z.string(),
  stopReason: z.string(),
});
export const ChatErrorEvent = z.object({
  ...base,
  type: z.literal("chat.error"),
  runId: z.string(),
  code: z.string(),
  message: z.string(),
});
export const ChatAbortedEvent = z.object({
  ...base,
  type: z.literal("chat.aborted"),
  runId: z.string(),
  by: Actor.optional(),
  /** Why, when no person aborted it (the gateway restarted while its agent ran on under a holder). */
  reason: z.string().optional(),
});
export const ToolEvent = z.object({
  ...base,
  type: z.literal("tool"),
  runId: z.string(),
  toolCallId: z.string(),
  status: z.string(),
  title: z.string().optional(),
  kind: z.string().optional(),
  /** Child terminal sessions this tool call runs in (ACP `terminal/create`). */
  terminalSessionIds: z.array(z.string()).optional(),
  content: z.unknown().optional(),
  rawInput: z.unknown().optional(),
  rawOutput: z.unknown().optional(),
  /** Files the call touches (ACP `locations`). */
  locations: z.array(z.object({ path: z.string(), line: z.number().int().nullable().optional() })).optional(),
});
/**
 * Where a file change came from: written through the gateway (ACP `fs/write_text_file`), or
 * reported by the agent in a completed tool call's diff content (an agent that writes files itself).
 */
export const FILE_CHANGE_SOURCES = ["write", "reported"] as const;
/**
 * How a file change is kept: `text` (both sides valid UTF-8 and within `MAX_CHANGE_TEXT_BYTES`:
 * the texts and a unified diff), `binary` (a side that is not UTF-8 text) or `too-large`: sizes
 * and SHA-256 hashes only.
 */
export const FILE_CHANGE_CONTENTS = ["text", "binary", "too-large"] as const;
/**
 * A file an agent changed during a run (docs/agents.md, "Changes"). `path` is relative to the
 * session's cwd with `/` separators. A side that did not exist is null (`oldText: null`: a new
 * file). `region`: a reported diff the gateway could not place in the whole file, so its texts
 * are only the part the agent showed (no patch is made of it).
 */
export const FileChangeEvent = z.object({
  ...base,
  type: z.literal("file.change"),
  runId: z.string(),
  /** The tool call that made it: the one that reported it, or the call open when the write came. */
  toolCallId: z.string().optional(),
  path: z.string(),
  source: z.enum(FILE_CHANGE_SOURCES),
  content: z.enum(FILE_CHANGE_CONTENTS),
  oldText: z.string().nullable().optional(),
  newText: z.string().nullable().optional(),
  /** The unified diff's hunks (`@@ … @@` and their lines), for `text`. */
  diff: z.string().optional(),
  /** Lines added and removed, for `text`. */
  added: z.number().int().nonnegative().optional(),
  removed: z.number().int().nonnegative().optional(),
  oldBytes: z.number().int().nonnegative().nullable(),
  newBytes: z.number().int().nonnegative().nullable(),
  oldSha256: z.string().nullable(),
  newSha256: z.string().nullable(),
  region: z.literal(true).optional(),
});
/**
 * A file was uploaded into the session's working directory (`PUT /v1/sessions/:id/files`):
 * its path relative to the cwd, its size and SHA-256, whether it replaced one, and who sent it.
 */
export const FileUploadEvent = z.object({
  ...base,
  type: z.literal("file.upload"),
  path: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string(),
  replaced: z.boolean(),
  by: Actor,
});
export const PlanEvent = z.object({
  ...base,
  type: z.literal("plan"),
  runId: z.string(),
  entries: z.array(z.object({ content: z.string(), priority: z.string(), status: z.string() })),
});
export const PermissionOption = z.object({ optionId: z.string(), name: z.string(), kind: z.string() });
/**
 * What a permission request would approve: the tool call as the agent described it (ACP
 * `toolCall` of `session/request_permission`, over what earlier `tool` events said of it).
 */
export const PermissionToolCall = z.object({
  /** ACP tool kind: `execute`, `edit`, `delete`, `move`, `read`, `fetch`, … */
  kind: z.string().optional(),
  /** The tool's input as the agent sent it (a shell command's `command`, an edit's path and text). */
  rawInput: z.unknown().optional(),
  /** ACP tool call content: `{type: "diff", path, oldText, newText}`, `{type: "content", content}`, terminals. */
  content: z.unknown().optional(),
  /** Files the call touches. */
  locations: z.array(z.object({ path: z.string(), line: z.number().int().nullable().optional() })).optional(),
});
export const PermissionRequestEvent = z.object({
  ...base,
  type: z.literal("permission.request"),
  runId: z.string(),
  requestId: z.string(),
  title: z.string(),
  toolCallId: z.string().optional(),
  /** What would be approved; absent when the agent said nothing of the call but its title. */
  toolCall: PermissionToolCall.optional(),
  options: z.array(PermissionOption),
  /** Epoch ms at which the request gets the permission policy's `onTimeout` answer (default `reject_once`). */
  expiresAt: z.number(),
  /**
   * The permission policy's rule that answers it at once: a `permission.resolved` by `rule:NAME`
   * follows, and nobody is asked (no push, no attention).
   */
  rule: z.string().optional(),
});
export const PermissionResolvedEvent = z.object({
  ...base,
  type: z.literal("permission.resolved"),
  runId: z.string(),
  requestId: z.string(),
  outcome: z.enum(["selected", "cancelled"]),
  optionId: z.string().nullable(),
  by: Actor.nullable(),
});
/**
 * One field of an elicitation form (ACP `ElicitationPropertySchema`): a string (single-select
 * enum when `enum` or `oneOf` is set), number, integer, boolean, or a multi-select `array` of strings.
 */
export const ElicitationProperty = z.object({
  type: z.enum(["string", "number", "integer", "boolean", "array"]),
  title: z.string().optional(),
  description: z.string().optional(),
  minLength: z.number().int().optional(),
  maxLength: z.number().int().optional(),
  /** Passed on to the agent, not checked by the gateway (docs/agents.md, "Elicitation"). */
  pattern: z.string().optional(),
  format: z.enum(["email", "uri", "date", "date-time"]).optional(),
  minimum: z.number().optional(),
  maximum: z.number().optional(),
  enum: z.array(z.string()).optional(),
  oneOf: z.array(z.object({ const: z.string(), title: z.string() })).optional(),
  minItems: z.number().int().optional(),
  maxItems: z.number().int().optional(),
  /** A multi-select's choices: plain (`enum`) or titled (`anyOf`). */
  items: z
    .object({
      enum: z.array(z.string()).optional(),
      anyOf: z.array(z.object({ const: z.string(), title: z.string() })).optional(),
    })
    .optional(),
  default: z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]).optional(),
});
/** The form an agent asks to be filled in (ACP `ElicitationSchema`: a flat object). */
export const ElicitationSchema = z.object({
  type: z.literal("object"),
  title: z.string().optional(),
  description: z.string().optional(),
  properties: z.record(z.string(), ElicitationProperty),
  required: z.array(z.string()).optional(),
});
/** An answer's value for one field. */
export const ElicitationValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]);
export const ELICITATION_ACTIONS = ["accept", "decline", "cancel"] as const;
export const ElicitationAction = z.enum(ELICITATION_ACTIONS);
const elicitationRequestBase = {
  ...base,
  type: z.literal("elicitation.request"),
  runId: z.string(),
  requestId: z.string(),
  message: z.string(),
  toolCallId: z.string().optional(),
  /** Epoch ms after which the request is cancelled (the agent gets `cancel`). */
  expiresAt: z.number(),
};
/**
 * An agent asks its user something (ACP `elicitation/create`): a form to fill in (`form`), or a
 * page to visit out of band (`url`: a login, a payment), answered `accept` once done, with no content.
 * `url` is the agent's, unchecked: the UI makes a link of http(s) only (docs/agents.md, "Elicitation").
 */
export const ElicitationRequestEvent = z.discriminatedUnion("mode", [
  z.object({ ...elicitationRequestBase, mode: z.literal("form"), requestedSchema: ElicitationSchema }),
  z.object({ ...elicitationRequestBase, mode: z.literal("url"), url: z.string() }),
]);
/** Why an elicitation ended: someone answered, or the gateway or the agent ended it (`by` null then). */
export const ELICITATION_END_REASONS = [
  "answered",
  "timeout",
  "run-ended",
  "session-ended",
  "gateway-restarted",
  "agent-cancelled",
  "agent-completed",
] as const;
export const ElicitationEndReason = z.enum(ELICITATION_END_REASONS);
export const ElicitationResolvedEvent = z.object({
  ...base,
  type: z.literal("elicitation.resolved"),
  runId: z.string(),
  requestId: z.string(),
  action: ElicitationAction,
  /** What was sent to the agent with `accept`. */
  content: z.record(z.string(), ElicitationValue).optional(),
  /** Who answered; null when the gateway or the agent ended it (timeout, abort, `$/cancel_request`). */
  by: Actor.nullable(),
  /**
   * Why it ended (absent in events logged before reasons): `agent-cancelled` is the agent's
   * `$/cancel_request`, `agent-completed` its `elicitation/complete` for a url elicitation.
   */
  reason: ElicitationEndReason.optional(),
});
export const ChildEvent = z.object({
  ...base,
  type: z.literal("child"),
  sessionId: z.string(),
  runId: z.string().optional(),
  command: z.array(z.string()),
});
/**
 * Something about a run that is neither answer nor tool: the agent's own status notices (a retry
 * after an API error, a rate limit) and the gateway's note that the agent has said nothing for a
 * while, so a run that waits is never just silence.
 */
export const RunNoticeEvent = z.object({
  ...base,
  type: z.literal("run.notice"),
  runId: z.string(),
  level: z.enum(["info", "warning", "error"]),
  text: z.string(),
});
/** What the agent said of itself, in a run (`runId`) or between runs: see `SessionInfo.agentState`. */
const agentBase = { ...base, runId: z.string().optional() };
/** ACP `available_commands_update`: the slash commands the agent offers now. */
export const AgentCommandsEvent = z.object({
  ...agentBase,
  type: z.literal("agent.commands"),
  commands: z.array(AgentCommand),
});
/** ACP `current_mode_update`, and the `modes` a `session/new` or `session/load` answer names (`availableModes`). */
export const AgentModeEvent = z.object({
  ...agentBase,
  type: z.literal("agent.mode"),
  currentModeId: z.string(),
  availableModes: z.array(AgentMode).optional(),
  /** Who asked for the change the agent confirmed; absent when the agent changed by itself. */
  by: Actor.optional(),
});
/** ACP `config_option_update`, and the `configOptions` of a `session/new` or `session/load` answer. */
export const AgentConfigEvent = z.object({
  ...agentBase,
  type: z.literal("agent.config"),
  configOptions: z.array(AgentConfigOption),
  /** Who asked for the change the agent confirmed; absent when the agent changed by itself. */
  by: Actor.optional(),
});
/** ACP `usage_update`: context tokens `used` of `size`, and the session's cost so far. */
export const AgentUsageEvent = z.object({
  ...agentBase,
  type: z.literal("agent.usage"),
  used: z.number(),
  size: z.number(),
  cost: z.object({ amount: z.number(), currency: z.string() }).optional(),
});
/** ACP `session_info_update`: the conversation's title and last activity (null: cleared; absent: unchanged). */
export const AgentInfoEvent = z.object({
  ...agentBase,
  type: z.literal("agent.info"),
  title: z.string().nullable().optional(),
  updatedAt: z.string().nullable().optional(),
});
/** ACP `notice`: something the agent wants the user to know (`level`: `info`, `warning`, `error` or the agent's own). */
export const AgentNoticeEvent = z.object({
  ...agentBase,
  type: z.literal("agent.notice"),
  level: z.string(),
  title: z.string(),
  description: z.string().optional(),
});
/**
 * ACP `compaction_update` and `compaction_summary_chunk`: the agent compacts its context.
 * `status` (`in_progress`, `completed`, `failed`, `cancelled`), `summary` (its text, replacing
 * the one before; "" clears it), `error`, or `chunk`: text appended to the summary.
 */
export const AgentCompactionEvent = z.object({
  ...agentBase,
  type: z.literal("agent.compaction"),
  compactionId: z.string(),
  status: z.string().optional(),
  summary: z.string().optional(),
  error: z.string().nullable().optional(),
  chunk: z.string().optional(),
});
/**
 * A `session/update` the gateway has no event for (a variant newer than it, content it does not
 * map such as an image chunk, or what the agent says outside a run), kept as sent, `_meta`
 * included. `update` is absent when it was larger than `MAX_AGENT_UPDATE_BYTES`: `bytes` says how large.
 */
export const AgentUpdateEvent = z.object({
  ...agentBase,
  type: z.literal("agent.update"),
  sessionUpdate: z.string(),
  update: z.unknown().optional(),
  bytes: z.number().int().nonnegative().optional(),
});
/** A session's attention was set (`attention`) or cleared (`null`, `by` who looked or typed; absent: it resolved itself). */
export const AttentionEvent = z.object({
  ...base,
  type: z.literal("attention"),
  attention: Attention.nullable(),
  by: Actor.optional(),
});
/** The session's permission policy was set (`PUT .../permission-policy`); `null`: back to the agent's. */
export const PermissionPolicyEvent = z.object({
  ...base,
  type: z.literal("permission.policy"),
  policy: PermissionPolicy.nullable(),
  by: Actor,
});
export const CustomEvent = z.object({ ...base, type: z.literal("custom"), name: z.string(), data: z.unknown() });

export const SessionEvent = z.discriminatedUnion("type", [
  OutputEvent,
  ExitEvent,
  LostEvent,
  ResumedEvent,
  InputEvent,
  SignalEvent,
  ResizeEvent,
  ControlEvent,
  RunQueuedEvent,
  RunStartedEvent,
  ChatDeltaEvent,
  ChatThoughtEvent,
  ChatAbandonedEvent,
  ChatFinalEvent,
  ChatErrorEvent,
  ChatAbortedEvent,
  ToolEvent,
  FileChangeEvent,
  FileUploadEvent,
  PlanEvent,
  PermissionRequestEvent,
  PermissionResolvedEvent,
  ElicitationRequestEvent,
  ElicitationResolvedEvent,
  ChildEvent,
  RunNoticeEvent,
  AgentCommandsEvent,
  AgentModeEvent,
  AgentConfigEvent,
  AgentUsageEvent,
  AgentInfoEvent,
  AgentNoticeEvent,
  AgentCompactionEvent,
  AgentUpdateEvent,
  AttentionEvent,
  PermissionPolicyEvent,
  CustomEvent,
]);
export type SessionEvent = z.infer<typeof SessionEvent>;
export type PermissionToolCall = z.infer<typeof PermissionToolCall>;
export type ElicitationSchema = z.infer<typeof ElicitationSchema>;
export type ElicitationProperty = z.infer<typeof ElicitationProperty>;
export type ElicitationValue = z.infer<typeof ElicitationValue>;
export type ElicitationAction = z.infer<typeof ElicitationAction>;
export type ElicitationEndReason = z.infer<typeof ElicitationEndReason>;
export type EventType = SessionEvent["type"];
export const EVENT_TYPES = SessionEvent.options.map((o) =>
  "shape" in o ? o.shape.type.value : o.options[0].shape.type.value,
) as readonly EventType[];

/** An event of one type. */
export type EventOf<T extends EventType> = Extract<SessionEvent, { type: T }>;

type Distribute<U> = U extends unknown ? Omit<U, "seq" | "ts"> : never;
/** What a producer hands to the log: an event without `seq` and `ts` (the log assigns them). */
export type NewEvent = Distribute<SessionEvent>;

/** The terminal events of a run: exactly one of these ends every run. */
export const RUN_TERMINAL_TYPES = ["chat.final", "chat.error", "chat.aborted"] as const satisfies readonly EventType[];

/** Events that end a session's log (nothing follows them, unless a lost agent session is `resumed`). */
export const SESSION_END_TYPES = ["exit", "lost"] as const satisfies readonly EventType[];
export function isSessionEnd(event: { type: string }): boolean {
  return event.type === "exit" || event.type === "lost";
}
