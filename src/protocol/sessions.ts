import { z } from "zod";
import { displayTextProblem } from "./display-text.js";
import { LIMITS } from "./limits.js";
import { isPlainObject } from "./plain-object.js";
import { CONTROL_VIA } from "./events.js";
import { AgentState } from "./agent-state.js";
import { PromptContent } from "./prompt-content.js";
import { Attention } from "./attention.js";
import { PermissionPolicy } from "./permission-policy.js";
import { SessionWorktree, WorktreeRequest } from "./worktrees.js";

import { SESSION_KINDS, SESSION_STATES, SIGNALS } from "./session-constants.js";
export { SESSION_KINDS, SESSION_STATES, SIGNALS, signalName } from "./session-constants.js";
export type { SessionKind, SessionState, SignalName } from "./session-constants.js";

/** Accepts `INT`, `SIGINT`, `int` or `sigint`; yields the bare upper-case name. */
export const Signal = z
  // The path says "signal" already: "signal: a name, one of ...", not "signal: signal must be ...".
  .string({ error: () => `a name, one of ${SIGNALS.join(", ")}` })
  .max(16)
  .transform((s) => s.toUpperCase().replace(/^SIG/, ""))
  .pipe(z.enum(SIGNALS, { error: () => `one of ${SIGNALS.join(", ")} (with or without SIG)` }));

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const boundedString = (max: number = LIMITS.STRING_BYTES) => z.string().max(max);
/** Strings that reach execve or the file system: a NUL would silently cut them there. */
const noNul = (s: z.ZodString) => s.refine((v) => !v.includes("\0"), "must not contain NUL bytes");

export const Env = z
  .record(z.string(), noNul(boundedString()))
  // Names are checked here rather than by the record's key schema, whose failure zod reports
  // only as "Invalid key in record".
  .superRefine((env, ctx) => {
    for (const name of Object.keys(env))
      if (!ENV_NAME.test(name) || name.length > 256)
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: "a variable's name is letters, digits and _ (not starting with a digit; at most 256)",
        });
  })
  .refine((env) => Object.keys(env).length <= LIMITS.ENV_ENTRIES, `at most ${LIMITS.ENV_ENTRIES} variables`);

export const Cols = z.number().int().min(1).max(LIMITS.MAX_COLS);
export const Rows = z.number().int().min(1).max(LIMITS.MAX_ROWS);
/**
 * A name people choose and others read in lists and terminals: 1 to `max` characters, none that
 * would make it display as something else — control characters (a name could retitle or clear
 * a screen), bidirectional controls (Trojan Source: `"invoice\u202Efdp.exe"` shows as
 * `invoiceexe.pdf`) or invisible ones (see {@link displayTextProblem}).
 */
export function displayName(max: number) {
  return z
    .string()
    .min(1)
    .max(max)
    .superRefine((name, ctx) => {
      const problem = displayTextProblem(name);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    });
}
/** A session's `name`. */
export const SessionName = displayName(LIMITS.NAME_CHARS);
/** Absolute: a relative one would be taken from wherever the gateway happens to run. */
const Cwd = noNul(z.string().min(1).max(4096)).refine((p) => p.startsWith("/"), "must be an absolute path");

export const CreateTerminalSession = z.strictObject({
  kind: z.literal("terminal"),
  command: z
    .array(noNul(boundedString().min(1)))
    .min(1, "command needs at least the program")
    .max(LIMITS.COMMAND_ARGS),
  cwd: Cwd.optional(),
  /** A new git worktree to run in (its cwd; give one or the other): docs/protocol.md, "Worktrees". */
  worktree: WorktreeRequest.optional(),
  env: Env.optional(),
  pty: z.boolean().optional(),
  cols: Cols.optional(),
  rows: Rows.optional(),
  name: SessionName.optional(),
});

export const AGENT_ADAPTERS = ["acp", "command", "echo"] as const;
export const InlineAgent = z
  .strictObject({
    adapter: z.enum(AGENT_ADAPTERS),
    command: z
      .array(noNul(boundedString().min(1)))
      .min(1)
      .max(LIMITS.COMMAND_ARGS)
      .optional(),
    cwd: Cwd.optional(),
    env: Env.optional(),
    /** ACP only: the agent's login method (an `authMethods` id) the gateway calls `authenticate` with. */
    authMethod: boundedString().min(1).max(200).optional(),
    /** Rules that answer the agent's permission requests, and its timeout (docs/agents.md, "Permission policy"). */
    permissionPolicy: PermissionPolicy.optional(),
  })
  .superRefine((agent, ctx) => {
    // An echo agent's command would be shown with the session and never run; the others cannot start without one.
    if (agent.adapter === "echo" && agent.command !== undefined)
      ctx.addIssue({ code: "custom", path: ["command"], message: "the echo adapter runs no command: leave it out" });
    if (agent.adapter !== "echo" && agent.command === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["command"],
        message: `the ${agent.adapter} adapter needs the agent's command (an argv array)`,
      });
    if (agent.adapter !== "acp" && agent.authMethod !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["authMethod"],
        message: "authMethod is an ACP login method: only the acp adapter takes it",
      });
  });
export type InlineAgent = z.infer<typeof InlineAgent>;

/** What `agent` of a new agent session must be, said in full when it is neither (zod says "Invalid input"). */
function agentProblem(input: unknown): string {
  const what =
    "the id of an agent (GET /v1/agents lists them) or an inline agent {adapter, command?, cwd?, env?, authMethod?}";
  if (input === undefined) return `required: ${what}`;
  if (typeof input === "object" && input !== null && !Array.isArray(input)) {
    const inline = InlineAgent.safeParse(input);
    if (!inline.success)
      return inline.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
  }
  return `${what}, not ${input === null ? "null" : Array.isArray(input) ? "an array" : typeof input}`;
}

export const CreateAgentSession = z.strictObject({
  kind: z.literal("agent"),
  agent: z.union([z.string().min(1).max(200), InlineAgent], {
    error: (issue) => (issue.code === "invalid_union" ? agentProblem(issue.input) : undefined),
  }),
  cwd: Cwd.optional(),
  /** A new git worktree to run in (its cwd; give one or the other): docs/protocol.md, "Worktrees". */
  worktree: WorktreeRequest.optional(),
  name: SessionName.optional(),
});

export const CreateStreamSession = z.strictObject({
  kind: z.literal("stream"),
  name: SessionName.optional(),
});

/** `POST /v1/sessions`. `kind` defaults to `"terminal"`. */
export const CreateSession = z.preprocess(
  (v) => (v !== null && typeof v === "object" && !("kind" in v) ? { ...v, kind: "terminal" } : v),
  z.discriminatedUnion("kind", [CreateTerminalSession, CreateAgentSession, CreateStreamSession]),
);
export type CreateSession = z.infer<typeof CreateSession>;
export type CreateTerminalSession = z.infer<typeof CreateTerminalSession>;
export type CreateAgentSession = z.infer<typeof CreateAgentSession>;

/** Padded standard base64 (RFC 4648 §4): what `data` holds when `enc` is `"base64"`. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Refuses `data` that `enc: "base64"` says is base64 but is not (decoding would drop what does not fit). */
export function base64Data<S extends z.ZodType<{ data: string; enc?: "base64" | undefined }>>(schema: S): S {
  return schema.refine((o) => o.enc !== "base64" || BASE64.test(o.data), {
    message: "is not valid base64",
    path: ["data"],
  });
}

/**
 * Input bytes of a steering call (see {@link inputChecks}). Their size is checked as bytes where
 * they are used (over {@link LIMITS.INPUT_BYTES}: PAYLOAD_TOO_LARGE, whatever the size); the
 * string itself is bounded by the body and frame limits. (A length limit here made input over
 * 128 Ki characters VALIDATION_FAILED instead.)
 */
export const InputData = z.string();
/** After `data`, end the process's input: a pipe's stdin is closed (a filter like `sort` finishes); a PTY gets ^D. */
export const InputEof = z.literal(true).optional();

/**
 * The checks of every input body and frame: base64 that is base64, and something to do — bytes
 * or `eof` (an empty write would only add an audit event).
 */
export function inputChecks<S extends z.ZodType<{ data: string; enc?: "base64" | undefined; eof?: true | undefined }>>(
  schema: S,
): S {
  return base64Data(schema).refine((o) => o.data.length > 0 || o.eof === true, {
    message: "is empty: send bytes, or eof: true to end the input",
    path: ["data"],
  });
}

export const InputBody = inputChecks(
  z.strictObject({
    data: InputData.default(""),
    /** `base64` when `data` carries raw bytes. */
    enc: z.literal("base64").optional(),
    eof: InputEof,
  }),
);
export const SignalBody = z.strictObject({ signal: Signal });
export const ResizeBody = z.strictObject({ cols: Cols, rows: Rows });
export const ControlBody = z.strictObject({ action: z.enum(["acquire", "release"]), force: z.boolean().optional() });
/** `text`, or ACP `content` blocks (prompt-content.ts), or both (`text` goes first): `promptInput` reads it. */
export const PromptBody = z.strictObject({
  text: z.string().max(LIMITS.STRING_BYTES).optional(),
  content: PromptContent.optional(),
});
export const AbortBody = z.strictObject({ all: z.boolean().optional() });
/** `POST /v1/sessions/:id/resume` takes no options (an empty or no body). */
export const ResumeBody = z.strictObject({});
export const PermissionBody = z.strictObject({
  requestId: z.string().min(1).max(200),
  optionId: z.string().min(1).max(200),
});
/** `POST /v1/sessions/:id/mode`: one of `agentState.modes.availableModes`. */
export const ModeBody = z.strictObject({ modeId: z.string().min(1).max(200) });
/** `POST /v1/sessions/:id/config`: a value of one of `agentState.configOptions` (`true`/`false` for a boolean one). */
export const ConfigBody = z.strictObject({
  configId: z.string().min(1).max(200),
  value: z.union([z.string().min(1).max(200), z.boolean()]),
});

/** `POST /v1/sessions/:id/elicitation`: `content` only with `accept` (checked against the form there). */
export const ElicitationBody = z.strictObject({
  requestId: z.string().min(1).max(200),
  action: z.enum(["accept", "decline", "cancel"]),
  content: z.record(z.string().max(200), z.unknown()).optional(),
});
/** Event names an external producer may use: a `custom` event is stored with this as its `name`. */
const EXTERNAL_NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;
const ExternalName = z
  .string()
  .regex(EXTERNAL_NAME, "type is a letter then letters, digits, _ . : -")
  .refine((t) => t !== "output" && t !== "exit", "output and exit events need their documented data fields");

/**
 * One event appended by an external producer (`POST /v1/sessions/:id/events`).
 * `output` and `exit` are only accepted on stream sessions; any other type is stored as
 * `custom {name: type, data}`.
 */
const ExternalOutput = z.strictObject({
  type: z.literal("output"),
  data: base64Data(
    z.strictObject({
      stream: z.enum(["stdout", "stderr"]).default("stdout"),
      data: boundedString(),
      enc: z.literal("base64").optional(),
    }),
  ),
});
const ExternalExit = z.strictObject({
  type: z.literal("exit"),
  data: z.strictObject({
    /** What a process's exit status can be: `attach` exits with it. */
    exitCode: z.number().int().min(0, "is 0 to 255").max(255, "is 0 to 255").nullable().default(0),
    signal: z.string().max(16).nullable().default(null),
  }),
});
const ExternalCustom = z.strictObject({ type: ExternalName, data: z.unknown().optional() });
export const ExternalEvent = z.union([ExternalOutput, ExternalExit, ExternalCustom]);
export type ExternalEvent = z.infer<typeof ExternalEvent>;
export const AppendEventsBody = z.union([ExternalEvent, z.array(ExternalEvent).min(1)]);

/**
 * The commonest event a producer appends — `{"type":"<name>","data":…}`, a custom event —
 * checked by hand (see `appendFrame`): its schema gives the same event. Undefined for anything
 * else, which the schema then checks and explains.
 */
export function customEvent(event: unknown): ExternalEvent | undefined {
  if (!isPlainObject(event)) return undefined;
  const type = event["type"];
  if (typeof type !== "string" || type === "output" || type === "exit" || !EXTERNAL_NAME.test(type)) return undefined;
  const keys = Object.keys(event).length;
  if (!Object.hasOwn(event, "data")) return keys === 1 ? { type } : undefined;
  return keys === 2 ? { type, data: event["data"] } : undefined;
}

/**
 * The alternative of {@link ExternalEvent} that `value`'s `type` names: checked against it, a
 * mistake is reported at its field (the union as a whole can only say that none fits, or
 * quote the last alternative's complaint about the type).
 */
export function externalEventSchema(value: unknown): z.ZodType<ExternalEvent, unknown> {
  const type = typeof value === "object" && value !== null ? (value as { type?: unknown }).type : undefined;
  return type === "output" ? ExternalOutput : type === "exit" ? ExternalExit : ExternalCustom;
}

export const SessionInfo = z.object({
  id: z.string(),
  kind: z.enum(SESSION_KINDS),
  name: z.string().nullable(),
  state: z.enum(SESSION_STATES),
  /** The owner's name, to show. */
  owner: z.string(),
  /**
   * The owner's principal id (`token:NAME`, `device:ID`, `proxy:USER`): what ownership compares.
   * Absent for a session created before principal ids (docs/security.md, "Sessions from before principal ids").
   */
  ownerId: z.string().optional(),
  command: z.array(z.string()).nullable(),
  cwd: z.string().nullable(),
  pty: z.boolean(),
  cols: z.number().int().nullable(),
  rows: z.number().int().nullable(),
  pid: z.number().int().nullable(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  createdAt: z.number(),
  endedAt: z.number().nullable(),
  /** Seq of the newest event (0 when empty). */
  head: z.number().int().nonnegative(),
  /** Seq of the oldest retained event (head + 1 when none is retained). */
  first: z.number().int().nonnegative(),
  outputBytes: z.number().int().nonnegative(),
  viewers: z.number().int().nonnegative(),
  /** The token names of who watches, sorted, at most 20 (`viewers` counts every connection). */
  watchers: z.array(z.string()),
  /**
   * The last line with visible text a terminal wrote (escapes removed, at most 200 characters)
   * or an agent's latest answer; null before any, and for a session ended before the gateway
   * started.
   */
  lastLine: z.string().nullable(),
  controller: z.string().nullable(),
  /** How the controller is connected (see CONTROL_VIA); absent when nobody is, or not known. */
  controllerVia: z.enum(CONTROL_VIA).nullable().optional(),
  parent: z.string().nullable(),
  agent: z.string().nullable(),
  /**
   * Agent sessions: the active run, how many prompts wait behind it, and what the agent is
   * doing: `working` on a run, `waiting` for a permission answer, or `idle`.
   */
  run: z
    .object({
      active: z.string().nullable(),
      queued: z.number().int(),
      activity: z.enum(["idle", "working", "waiting"]),
    })
    .nullable(),
  lastActivityAt: z.number(),
  /** A lost agent session whose agent cannot reload its conversation (no ACP `session/load`): why it cannot be resumed. */
  cannotResume: z.string().optional(),
  /**
   * Agent sessions whose agent said anything of itself: its modes, model and other config
   * options, slash commands, context usage and cost, title — as its last update left each
   * (`GET /v1/sessions` lists it without commands and config options: see listedAgentState).
   */
  agentState: AgentState.optional(),
  /**
   * A running agent session whose agent said what it takes in a prompt beyond text and links
   * (ACP `promptCapabilities`; `echo` and `command` agents: none): what a client may attach.
   * Absent until the agent started (a prompt with such content starts it, and is checked then).
   */
  promptCapabilities: z.object({ image: z.boolean(), audio: z.boolean(), embeddedContext: z.boolean() }).optional(),
  /** Why the session needs someone, since when; absent when it does not (see attention.ts). */
  attention: Attention.optional(),
  /** The git worktree the session was created in (`worktree` of its create); absent for others. */
  worktree: SessionWorktree.optional(),
});
export type SessionInfo = z.infer<typeof SessionInfo>;
