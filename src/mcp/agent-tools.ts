import { z } from "zod";
import { ConnectionError } from "../client/node.js";
import { isPublicError } from "../protocol/errors.js";
import { LIMITS, PromptContent } from "../protocol/index.js";
import type { AgentState, SessionInfo } from "../protocol/index.js";
import { sessionLine, summarize } from "./format.js";
import type { GatewayAccess } from "./gateway.js";
import { followRun, unfollowedRun } from "./run-follower.js";
import type { PendingPermission, RunResult } from "./run-follower.js";
import { Cwd, SessionId, sessionCwd } from "./session-tools.js";
import {
  AgentChosen,
  AgentList,
  ElicitationAnswered,
  OneSession,
  PermissionAnswered,
  RunAborted,
  RunAnswer,
} from "./results.js";
import { ToolError, defineTool } from "./tool.js";
import type { Tool, ToolOutput } from "./tool.js";

/**
 * How long prompt_agent and wait_for_run wait for the run to end unless told: under the 60 s
 * many MCP clients give a call (Codex's default), so that a call the client did not raise its
 * limit for ends with the run id and what was said so far (at 120 s the client gave up first,
 * and the model never learnt the run id; agent integrator's finding).
 */
export const DEFAULT_RUN_WAIT_MS = 50_000;
/** The longest they may wait (MCP clients time calls out too; see docs/mcp.md). */
export const MAX_RUN_WAIT_MS = 10 * 60_000;

const TimeoutMs = z
  .number()
  .int()
  .min(0)
  .max(MAX_RUN_WAIT_MS)
  .default(DEFAULT_RUN_WAIT_MS)
  .describe(
    `How long to wait for the run to end (default ${DEFAULT_RUN_WAIT_MS}, at most ${MAX_RUN_WAIT_MS}); after that the run goes on and wait_for_run picks it up.`,
  );

const listAgents = defineTool({
  name: "list_agents",
  title: "List agents",
  description:
    "Lists the agents this gateway can start with create_agent_session: their ids, adapters (acp, command, echo, plugin) and where they come from (built-in, the gateway's config, a plugin).",
  input: z.strictObject({}),
  output: AgentList,
  annotations: { readOnlyHint: true, openWorldHint: false },
  run: async (_args, { gateway }) => {
    const agents = await gateway.http.listAgents();
    return {
      text: agents.map((a) => `${a.id} (${a.adapter}, ${a.source}${a.plugin ? ` ${a.plugin}` : ""})`).join("\n"),
      data: { agents },
    };
  },
});

const createAgentSession = defineTool({
  name: "create_agent_session",
  title: "Start an agent",
  description:
    'Starts an agent session: an AI agent configured on the gateway (by id: "echo" is built in and repeats the prompt; others are set up in the gateway\'s config, e.g. "claude", "codex", "gemini"), which then takes prompts with prompt_agent. Unknown ids are refused with AGENT_NOT_FOUND.',
  input: z.strictObject({
    agent: z.string().min(1).max(200).describe('The agent id from the gateway\'s config, e.g. "echo".'),
    name: z.string().min(1).max(LIMITS.NAME_CHARS).optional().describe("A name to recognise the session by."),
    cwd: Cwd,
  }),
  output: OneSession,
  annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
  run: async (args, { gateway }) => {
    const session = await gateway.http.createSession({
      kind: "agent",
      agent: args.agent,
      ...sessionCwd(gateway, args.cwd),
      ...(args.name !== undefined ? { name: args.name } : {}),
    });
    return {
      text: `Started ${sessionLine(session)}. Prompt it with prompt_agent {"id": "${session.id}", "text": "..."}.`,
      data: { session: summarize(session) },
    };
  },
});

const promptAgent = defineTool({
  name: "prompt_agent",
  title: "Prompt an agent",
  description:
    "Sends a prompt to an agent session (it queues behind the agent's current run, if any). With wait (the default) it waits for the run to end and returns the agent's answer and how the run ended: chat.final (finished), chat.error (failed, with code and message) or chat.aborted; also the tool calls and permission requests it made. If timeout_ms passes first, it returns what the agent has said so far with status timeout: the run goes on, and wait_for_run {id, run_id} continues waiting. A permission request blocks the run until someone answers it (in the web UI, another client, or answer_permission): status permission, or status blocked when the run ahead of this one waits on one — both return at once with the request to answer.",
  input: z.strictObject({
    id: SessionId,
    text: z.string().min(1).max(LIMITS.STRING_BYTES).optional().describe("The prompt (or give content)."),
    content: PromptContent.optional().describe(
      "ACP content blocks sent after text: images ({type: image, mimeType, data: base64}), files ({type: resource, resource: {uri, text or blob}}), links ({type: resource_link, uri, name}). An agent that does not take a kind (its promptCapabilities) refuses the prompt with UNSUPPORTED_CONTENT.",
    ),
    wait: z.boolean().default(true).describe("Wait for the answer (default true); false returns the run id at once."),
    timeout_ms: TimeoutMs,
  }),
  output: RunAnswer,
  annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
  run: async (args, { gateway, signal, progress }) => {
    const session = await gateway.http.getSession(args.id);
    const { runId } = await gateway.http.prompt(args.id, {
      ...(args.text !== undefined ? { text: args.text } : {}),
      ...(args.content !== undefined ? { content: args.content } : {}),
    });
    if (!args.wait) {
      return {
        text: `Queued run ${runId} on ${args.id}. wait_for_run {"id": "${args.id}", "run_id": "${runId}"} returns its answer.`,
        data: { id: args.id, run_id: runId, status: "queued" as const },
      };
    }
    const result = await followFrom(gateway, session, session.head, runId)
      .then((since) =>
        followRun({
          gateway,
          id: args.id,
          runId,
          since,
          timeoutMs: args.timeout_ms,
          signal,
          ...(progress !== undefined ? { progress } : {}),
        }),
      )
      .catch((error: unknown) => {
        // The run is queued: whatever stops the wait from here on, the answer names it, or the
        // model would prompt again. A gateway gone between the prompt's answer and the follower's
        // connect answers as a drop during the wait does (test/mcp/prompt-queued-loss.test.ts).
        if (error instanceof ConnectionError) return unfollowedRun(runId);
        const code = isPublicError(error) ? error.code : "INTERNAL";
        const message = error instanceof Error ? error.message : String(error);
        throw new ToolError(
          code,
          `${message} (the prompt was queued as run ${runId}: wait_for_run {"id": "${args.id}", "run_id": "${runId}"} follows it)`,
        );
      });
    return runOutput(args.id, result, args.timeout_ms);
  },
});

const waitForRun = defineTool({
  name: "wait_for_run",
  title: "Wait for an agent's run",
  description:
    "Waits for a run of an agent session (the run_id from prompt_agent) to end and returns its answer, like prompt_agent with wait; returns at once when it has already ended.",
  input: z.strictObject({
    id: SessionId,
    run_id: z.string().min(1).max(200).describe("The run id prompt_agent returned."),
    timeout_ms: TimeoutMs,
  }),
  output: RunAnswer,
  annotations: { readOnlyHint: true, openWorldHint: false },
  run: async (args, { gateway, signal, progress }) => {
    const { session, queuedAt } = await findRun(gateway, args.id, args.run_id);
    const result = await followRun({
      gateway,
      id: args.id,
      runId: args.run_id,
      since: await followFrom(gateway, session, queuedAt - 1, args.run_id),
      timeoutMs: args.timeout_ms,
      signal,
      ...(progress !== undefined ? { progress } : {}),
    });
    return runOutput(args.id, result, args.timeout_ms);
  },
});

const answerPermission = defineTool({
  name: "answer_permission",
  title: "Answer an agent's permission request",
  description:
    "Answers a permission request an agent run is waiting on (prompt_agent and wait_for_run return status permission with its request_id and options): the first valid answer wins, the run goes on; wait_for_run then follows it. PERMISSION_REQUEST_NOT_FOUND when it was answered already or timed out; INVALID_OPTION for an option the request did not offer.",
  input: z.strictObject({
    id: SessionId,
    request_id: z.string().min(1).max(200).describe("The request_id from pending_permission."),
    option_id: z.string().min(1).max(200).describe('One of the request\'s option ids, e.g. "allow" or "reject".'),
  }),
  output: PermissionAnswered,
  annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
  run: async (args, { gateway }) => {
    await gateway.http.permission(args.id, args.request_id, args.option_id);
    return {
      text: `Answered ${args.request_id} with ${args.option_id}. wait_for_run follows the run on.`,
      data: { id: args.id, request_id: args.request_id, option_id: args.option_id },
    };
  },
});

const setAgentMode = defineTool({
  name: "set_agent_mode",
  title: "Switch an agent's mode",
  description:
    "Switches an ACP agent session to one of the modes its agent offers (agentState.modes of the session, e.g. plan or code: ACP session/set_mode); answers once the agent confirmed. INVALID_OPTION naming the modes when it offers no such mode (nothing is sent); CONTROL_HELD while someone else holds control; AGENT_FAILED when the agent refused.",
  input: z.strictObject({
    id: SessionId,
    mode_id: z.string().min(1).max(200).describe("One of the agent's mode ids (agentState.modes.availableModes)."),
  }),
  output: AgentChosen,
  annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
  run: async (args, { gateway }) => {
    const { agentState } = await gateway.http.setMode(args.id, args.mode_id);
    return chosen(args.id, agentState, `${args.id} is in mode ${args.mode_id}.`);
  },
});

const setAgentOption = defineTool({
  name: "set_agent_option",
  title: "Set an agent's model or another setting",
  description:
    'Sets one of the settings an ACP agent session\'s agent offers (agentState.configOptions of the session; the model is the one with category "model") to one of its values (true/false for a boolean one: ACP session/set_config_option); answers once the agent confirmed. INVALID_OPTION naming the settings or values when it offers no such one (nothing is sent); CONTROL_HELD while someone else holds control; AGENT_FAILED when the agent refused.',
  input: z.strictObject({
    id: SessionId,
    config_id: z.string().min(1).max(200).describe('The setting\'s id, e.g. "model".'),
    value: z
      .union([z.string().min(1).max(200), z.boolean()])
      .describe("One of the setting's values (its options' value), or true/false for a boolean setting."),
  }),
  output: AgentChosen,
  annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
  run: async (args, { gateway }) => {
    const { agentState } = await gateway.http.setConfig(args.id, args.config_id, args.value);
    return chosen(args.id, agentState, `${args.id}: ${args.config_id} is ${String(args.value)}.`);
  },
});

/** What set_agent_mode and set_agent_option answer: the agent's mode and model as it confirmed them. */
function chosen(id: string, state: AgentState | null, text: string): ToolOutput<z.infer<typeof AgentChosen>> {
  const mode = state?.modes?.currentModeId ?? null;
  const model = state?.model ?? null;
  const now = [mode !== null ? `mode ${mode}` : "", model !== null ? `model ${model}` : ""].filter((s) => s !== "");
  return { text: now.length > 0 ? `${text} Now: ${now.join(", ")}.` : text, data: { id, mode, model } };
}

const answerElicitation = defineTool({
  name: "answer_elicitation",
  title: "Answer an agent's elicitation",
  description:
    "Answers a form an agent asked to be filled in, or a page it asked the user to visit (an elicitation.request event: its requestId, message, and requestedSchema or url): action accept with content (an object of the form's fields; a url one is accepted without content, once the user has done it), decline or cancel. The first valid answer wins. ELICITATION_CONTENT_INVALID names the field that does not match the form (nothing is sent; it stays open); ELICITATION_NOT_FOUND when it was answered already, cancelled or timed out.",
  input: z.strictObject({
    id: SessionId,
    request_id: z.string().min(1).max(200).describe("The requestId of the elicitation.request event."),
    action: z.enum(["accept", "decline", "cancel"]),
    content: z
      .record(z.string().max(200), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]))
      .optional()
      .describe("With a form's accept: its fields, each of the type its requestedSchema says (none for a url one)."),
  }),
  output: ElicitationAnswered,
  annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
  run: async (args, { gateway }) => {
    await gateway.http.elicitation(args.id, args.request_id, args.action, args.content);
    return {
      text: `Answered ${args.request_id}: ${args.action}.`,
      data: { id: args.id, request_id: args.request_id, action: args.action },
    };
  },
});

const abortRun = defineTool({
  name: "abort_run",
  title: "Abort an agent's run",
  description:
    "Stops the active run of an agent session (it ends with chat.aborted); all: true also drops the prompts queued behind it. RUN_NOT_ACTIVE when nothing runs.",
  input: z.strictObject({
    id: SessionId,
    all: z.boolean().default(false).describe("Also drop the queued prompts (default false)."),
  }),
  output: RunAborted,
  annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: true },
  run: async (args, { gateway }) => {
    const { runId, cleared } = await gateway.http.abort(args.id, { all: args.all });
    // With all, the queue may be all there was (no run active): runId is then null.
    const what = runId !== null ? `Aborted run ${runId} of ${args.id}` : `No run of ${args.id} was active`;
    const queue = cleared > 0 ? `; dropped ${cleared} queued prompt${cleared === 1 ? "" : "s"}` : "";
    return { text: `${what}${queue}.`, data: { id: args.id, run_id: runId, cleared } };
  },
});

/** The session, and the seq of the run's `run.queued` event: where its events start. */
async function findRun(
  gateway: GatewayAccess,
  id: string,
  runId: string,
): Promise<{ session: SessionInfo; queuedAt: number }> {
  // Only agent sessions have runs: say so, as the other agent tools do, not "no run x".
  const session = await gateway.http.getSession(id);
  if (session.kind !== "agent")
    throw new ToolError("WRONG_SESSION_KIND", `${id} is a ${session.kind} session: only agent sessions have runs`);
  const queuedAt = await runQueuedAt(gateway, id, runId);
  if (queuedAt === undefined)
    throw new ToolError("VALIDATION_FAILED", `run_id: session ${id} has no run ${runId} (or retention dropped it)`);
  return { session, queuedAt };
}

async function runQueuedAt(gateway: GatewayAccess, id: string, runId: string): Promise<number | undefined> {
  for await (const event of gateway.http.allEvents(id, { types: ["run.queued"] })) {
    if (event.type === "run.queued" && event.runId === runId) return event.seq;
  }
  return undefined;
}

/**
 * Where to follow run `runId` from: `since`, or from the start of the run ahead when that one
 * waits on a permission request (made before `since`): the follower must see the request to say
 * that this run is blocked, instead of waiting out its timeout.
 */
async function followFrom(gateway: GatewayAccess, session: SessionInfo, since: number, runId: string): Promise<number> {
  const ahead = session.run?.activity === "waiting" ? session.run.active : null;
  if (ahead === null || ahead === runId) return since;
  const queuedAt = await runQueuedAt(gateway, session.id, ahead);
  return queuedAt === undefined ? since : Math.min(since, queuedAt - 1);
}

/** A followed run as a tool answer: how it stands first, then the answer, then the notes. */
function runOutput(id: string, result: RunResult, timeoutMs: number): ToolOutput<z.input<typeof RunAnswer>> {
  const status = describeRun(id, result, timeoutMs);
  const omitted = result.omitted > 0 ? `[… the first ${result.omitted} characters are left out]\n` : "";
  const notes = result.notes.length > 0 ? `\n${result.notes.join("\n")}` : "";
  return {
    // The answer is a block of its own, after the status and notes, and only there (not in data).
    text: `[run ${result.runId} of ${id}: ${status}]${notes}`,
    ...(result.answer !== "" ? { body: `${omitted}${result.answer}` } : {}),
    data: {
      id,
      run_id: result.runId,
      status: result.status,
      answer_chars: result.answer.length,
      ...(result.omitted > 0 ? { omitted_chars: result.omitted } : {}),
      ...(result.stopReason !== undefined ? { stop_reason: result.stopReason } : {}),
      ...(result.error !== undefined ? { error: result.error } : {}),
      ...(result.pendingPermission !== undefined ? { pending_permission: result.pendingPermission } : {}),
      ...(result.blockedBy !== undefined ? { blocked_by: result.blockedBy } : {}),
      notes: result.notes,
    },
  };
}

function describeRun(id: string, result: RunResult, timeoutMs: number): string {
  switch (result.status) {
    case "chat.final":
      return `chat.final (finished${result.stopReason !== undefined ? `, ${result.stopReason}` : ""})`;
    case "chat.error":
      return `chat.error ${result.error?.code ?? ""}: ${result.error?.message ?? "the run failed"}`;
    case "chat.aborted":
      return "chat.aborted (the run was stopped)";
    case "session_ended":
      return "the agent session ended before the run did";
    case "cancelled":
      return "cancelled";
    case "permission": {
      const p = result.pendingPermission;
      const options = p !== undefined ? optionsText(p) : "?";
      return `waiting for a permission answer to "${p?.title ?? "?"}" (options: ${options}): ${answerHint(id, p)} answers it, then wait_for_run goes on`;
    }
    case "blocked": {
      const b = result.blockedBy;
      const p = b?.permission;
      return `blocked: queued behind run ${b?.run_id ?? "?"}, which waits for a permission answer to "${p?.title ?? "?"}" (options: ${p !== undefined ? optionsText(p) : "?"}): ${answerHint(id, p)} answers it (or abort_run stops that run), then wait_for_run {"id": "${id}", "run_id": "${result.runId}"} follows this one`;
    }
    case "disconnected":
      return `the connection to the gateway was lost during the wait (it stopped or restarted), so how the run stands is unknown: once the gateway is up again, wait_for_run {"id": "${id}", "run_id": "${result.runId}"} tells (an agent session the gateway lost ends its runs)`;
    case "timeout": {
      const where = result.started
        ? "still running"
        : result.seen
          ? "still queued"
          : "no event of the run arrived in time (the gateway was slow to answer), so how it stands is unknown";
      const p = result.pendingPermission;
      const permission = p !== undefined ? `, waiting for a permission answer to "${p.title}" (${optionsText(p)})` : "";
      return `timeout after ${timeoutMs} ms: ${where}${permission}; wait_for_run continues waiting`;
    }
  }
}

/**
 * The answer_permission call for a request, as JSON to send (with the first option filled in)
 * and the option ids to choose from: `answer_permission {"id": "…", "request_id": "…",
 * "option_id": "allow"} (option_id: "allow" or "reject")`.
 */
function answerHint(id: string, p: PendingPermission | undefined): string {
  if (p === undefined) return "answer_permission";
  const ids = p.options.map((o) => JSON.stringify(o.option_id));
  // Spaced like the other calls the texts suggest ({"id": "…", "run_id": "…"}).
  const fields = [`"id": ${JSON.stringify(id)}`, `"request_id": ${JSON.stringify(p.request_id)}`];
  if (ids.length > 0) fields.push(`"option_id": ${ids[0]}`);
  const choose = ids.length > 1 ? ` (option_id: ${ids.slice(0, -1).join(", ")} or ${ids[ids.length - 1]})` : "";
  return `answer_permission {${fields.join(", ")}}${choose}`;
}

/** A permission request's options as the text says them: "allow (Allow) / reject (Reject)". */
function optionsText(p: PendingPermission): string {
  return p.options.map((o) => `${o.option_id} (${o.name})`).join(" / ");
}

export const AGENT_TOOLS: readonly Tool[] = [
  listAgents,
  createAgentSession,
  promptAgent,
  waitForRun,
  answerPermission,
  setAgentMode,
  setAgentOption,
  answerElicitation,
  abortRun,
];
