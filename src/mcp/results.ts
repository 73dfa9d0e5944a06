import { z } from "zod";
import { SESSION_KINDS, SESSION_STATES, SessionInfo } from "../protocol/index.js";

/**
 * What each tool answers as `structuredContent`, as zod schemas: published as the tools'
 * `outputSchema` (MCP clients check results against it) and typing what the tools return.
 * Output and agents' answers are not here: they travel once, as a text block (tool.ts).
 */

const offset = z.number().int().nonnegative();

/** A session as the tools describe it (format.ts `summarize`). */
export const SessionSummary = z.object({
  id: z.string(),
  name: z.string().nullable(),
  kind: z.enum(SESSION_KINDS),
  state: z.enum(SESSION_STATES),
  pty: z.boolean(),
  command: z.array(z.string()).nullable(),
  cwd: z.string().nullable(),
  pid: z.number().int().nullable(),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  output_bytes: offset,
  agent: z.string().nullable(),
  /** Agent sessions: the active run, how many prompts wait, what the agent is doing. */
  run: SessionInfo.shape.run,
  created_at: z.string(),
  ended_at: z.string().nullable(),
});
export type SessionSummary = z.infer<typeof SessionSummary>;

export const OneSession = z.object({ session: SessionSummary });

export const SessionList = z.object({
  sessions: z.array(SessionSummary),
  total: z.number().int().nonnegative(),
  offset: z.number().int().nonnegative(),
  next_offset: z.number().int().nonnegative().optional(),
});

export const InputSent = z.object({
  id: z.string(),
  bytes: z.number().int().nonnegative(),
  eof: z.boolean(),
  /** The output offset before the input: since for wait_for_output. */
  output_offset: offset,
});

export const SignalSent = z.object({ id: z.string(), signal: z.string() });

export const Removed = z.object({ removed: z.array(z.string()) });

/** What both output tools say about output that is not UTF-8 text. */
const binaryFields = {
  /** Some bytes of the page are not UTF-8: the text shows each as `\xNN`. Absent when all are. */
  binary: z.literal(true).optional(),
  /** How many bytes of the page are not UTF-8. */
  invalid_bytes: z.number().int().positive().optional(),
};

export const OutputPage = z.object({
  id: z.string(),
  state: z.enum(SESSION_STATES),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  from: offset,
  next: offset,
  total: offset,
  more: z.boolean(),
  ...binaryFields,
});

export const OutputWait = z.object({
  id: z.string(),
  reason: z.enum(["matched", "output", "exited", "timeout", "cancelled", "disconnected"]),
  match: z.string().optional(),
  match_line_offset: offset.optional(),
  state: z.enum([...SESSION_STATES, "unknown"]),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  start: offset,
  /** after_input: whether the echo of the input was seen (matching began after it). */
  echo_seen: z.boolean().optional(),
  dropped_bytes: z.number().int().positive().optional(),
  from: offset,
  next: offset,
  ...binaryFields,
});

export const AgentList = z.object({
  agents: z.array(
    z.object({
      id: z.string(),
      adapter: z.string(),
      source: z.enum(["built-in", "config", "plugin"]),
      plugin: z.string().optional(),
    }),
  ),
});

const Permission = z.object({
  request_id: z.string(),
  title: z.string(),
  tool_call: z
    .object({ kind: z.string().optional(), command: z.string().optional(), paths: z.array(z.string()).optional() })
    .optional()
    .describe(
      "What would be approved: the call's kind, its shell command and the files it touches, when the agent said.",
    ),
  options: z.array(z.object({ option_id: z.string(), name: z.string(), kind: z.string() })),
});

export const RunAnswer = z.object({
  id: z.string(),
  run_id: z.string(),
  status: z.enum([
    "queued",
    "chat.final",
    "chat.error",
    "chat.aborted",
    "permission",
    "blocked",
    "session_ended",
    "cancelled",
    "disconnected",
    "timeout",
  ]),
  /** Characters of the answer (which is the text block after the status line). */
  answer_chars: z.number().int().nonnegative().optional(),
  omitted_chars: z.number().int().positive().optional(),
  stop_reason: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  pending_permission: Permission.optional(),
  blocked_by: z.object({ run_id: z.string(), permission: Permission }).optional(),
  notes: z.array(z.string()).optional(),
});

export const PermissionAnswered = z.object({ id: z.string(), request_id: z.string(), option_id: z.string() });
export const ElicitationAnswered = z.object({ id: z.string(), request_id: z.string(), action: z.string() });

/** set_agent_mode and set_agent_option: the agent's mode and model once it confirmed the choice. */
export const AgentChosen = z.object({
  id: z.string(),
  mode: z.string().nullable(),
  model: z.string().nullable(),
});

export const RunAborted = z.object({
  id: z.string(),
  run_id: z.string().nullable(),
  cleared: z.number().int().nonnegative(),
});
