// The ACP handshake that starts an agent: `initialize`, `authenticate` when configured, then
// `session/resume` (or `session/load`) of a kept conversation or `session/new`; and the errors a
// failed start is told by. Apart from acp-adapter.ts, which runs the prompts once the handshake is done.
import * as acp from "@agentclientprotocol/sdk";
import type { ClientConnection } from "@agentclientprotocol/sdk";
import { SwitchboardError } from "../protocol/index.js";
import type { ErrorCode, PromptCapabilities } from "../protocol/index.js";
import type { AdapterContext } from "./adapter.js";
import { ACP_AUTH_REQUIRED, asRpcError, describeRpcError, readAuthMethods } from "./acp-failures.js";
import type { RpcError } from "./acp-failures.js";
import { toConfigOptions, toModes } from "./acp-updates.js";
import { canReopen, readLifecycle, readPromptCapabilities } from "./acp-lifecycle.js";
import type { AcpLifecycle } from "./acp-lifecycle.js";
import type { SessionModels } from "./acp-session-models.js";

export const CLIENT_INFO = { name: "switchboard", version: "0.1.0" } as const;

/** Why the agent did not start: its code and message end the run that waited (`chat.error`). */
export class AcpStartError extends SwitchboardError {
  override readonly name: string = "AcpStartError";
  constructor(code: ErrorCode, message: string) {
    super(code, message);
  }
}

/** What the handshake learns, kept by the adapter: updates and an auth error read it while it runs. */
export interface HandshakeState {
  acpSessionId: string | undefined;
  /** What the agent answered to `initialize` in `authMethods`: AGENT_AUTH_REQUIRED quotes them. */
  authMethods: ReturnType<typeof readAuthMethods>;
  /** `session/load` or `session/resume` reopens the conversation now: what comes is in the log already (see UpdateTarget). */
  replaying?: boolean;
  /** What the agent takes in a prompt (its `initialize` answer); undefined until it answered. */
  promptCapabilities: PromptCapabilities | undefined;
  /** Which of `session/load`, `session/resume`, `session/close` it offers. */
  lifecycle: AcpLifecycle;
  /** The agent's name (`agentInfo.name`), for messages. */
  agentName: string | undefined;
  /** The models its opening answer named as ACP's `models` (Gemini CLI), chosen through `session/set_model`. */
  sessionModels: SessionModels;
}

export interface HandshakeOptions {
  context: AdapterContext;
  /** Resolves once the replay of a loaded conversation is over (see replayOver in acp-start.ts). */
  replayed?: () => Promise<void>;
  /** argv of the agent (its name, in messages). */
  command: string[];
  authMethod: string | undefined;
  /** Whether the client offers ACP terminals. */
  terminal: boolean;
  /** The conversation a resume asked to load, read at each step (a resume may come during the start). */
  resumeId: () => string | undefined;
  state: HandshakeState;
  /**
   * Called in the tick `state.acpSessionId` comes to name a new session (`session/new`), after its
   * opening state is logged: the updates for it applied before are taken then (acp-adapter.ts).
   */
  sessionNamed?: () => void;
}

export async function handshake(conn: ClientConnection, options: HandshakeOptions): Promise<void> {
  const { context, command, state } = options;
  const request: acp.InitializeRequest = {
    protocolVersion: acp.PROTOCOL_VERSION,
    clientCapabilities: {
      fs: { readTextFile: true, writeTextFile: true },
      terminal: options.terminal,
      // Terminal login methods are passed on as commands to run (AGENT_AUTH_REQUIRED's message):
      // without this an agent may advertise none and the user is not told how to log in.
      auth: { terminal: true },
      // ACP `notice` and `compaction_*` updates reach the log as `agent.notice` and
      // `agent.compaction`; without these an agent folds them into its answer text.
      session: { notices: {}, compaction: {} },
      // Both modes, and url mode's `elicitation/complete` (docs/agents.md, "Elicitation").
      elicitation: { form: {}, url: {} },
      // claude-agent-acp sends its retry and rate-limit notices (a dead model API is otherwise
      // minutes of silence) only to a client that declares this extension: they become `run.notice`.
      _meta: { jetbrains: { air: { version: 1, capabilities: ["sessionFailure"] } } },
    },
    clientInfo: { ...CLIENT_INFO },
  };
  const init = await step("initialize", conn.agent.request("initialize", request));
  state.authMethods = readAuthMethods(init.authMethods);
  state.promptCapabilities = readPromptCapabilities(init.agentCapabilities);
  state.lifecycle = readLifecycle(init.agentCapabilities);
  state.agentName = init.agentInfo?.name;
  if (init.protocolVersion !== acp.PROTOCOL_VERSION) {
    throw new AcpStartError(
      "AGENT_FAILED",
      `the agent speaks ACP version ${init.protocolVersion}; the gateway speaks ${acp.PROTOCOL_VERSION}`,
    );
  }
  const methodId = options.authMethod;
  if (methodId !== undefined) {
    if (!state.authMethods.some((m) => m.id === methodId)) {
      const offered = state.authMethods.map((m) => `"${m.id}"`).join(", ") || "none";
      throw new AcpStartError(
        "CONFIG_INVALID",
        `the agent's authMethod "${methodId}" is not one the agent offers (it offers ${offered}): fix the agent's authMethod in the gateway config`,
      );
    }
    await step("authenticate", conn.agent.request("authenticate", { methodId }));
  }
  const cannotReload = canReopen(state.lifecycle)
    ? undefined
    : `${init.agentInfo?.name ?? `the agent (${command[0] ?? "?"})`} cannot reload its conversation: its ACP initialize answer does not offer agentCapabilities.loadSession (nor sessionCapabilities.resume), so the session cannot be resumed; start a new session (the conversation so far stays readable here)`;
  if (options.resumeId() !== undefined && cannotReload !== undefined) {
    throw new AcpStartError("AGENT_CANNOT_RESUME", cannotReload);
  }
  // A resume's conversation, else the one an agent that crashed had, when the agent can load it.
  const load = cannotReload === undefined ? (options.resumeId() ?? context.keptAgentSession()) : undefined;
  if (load === undefined || !(await reopenSession(conn, options, load))) {
    const session = await step("session/new", conn.agent.request("session/new", { cwd: context.cwd, mcpServers: [] }));
    state.acpSessionId = session.sessionId;
    logOpeningState(context, state, session);
    options.sessionNamed?.();
  }
  context.agentSessionOpened(state.acpSessionId!, cannotReload);
  context.logger.debug(
    { sessionId: context.sessionId, acpSessionId: state.acpSessionId, agent: init.agentInfo?.name, load },
    "ACP session ready",
  );
}

/**
 * Reopens a kept conversation: ACP `session/resume` where the agent offers it (nothing is
 * replayed), else `session/load`, where the agent replays the conversation as updates, which no
 * turn takes (the log has it already). True once reopened; a kept conversation the agent refuses
 * after a crash is given up for a new one (false), while a resume fails with the agent's answer.
 */
async function reopenSession(conn: ClientConnection, options: HandshakeOptions, sessionId: string): Promise<boolean> {
  const { context, state } = options;
  state.acpSessionId = sessionId;
  try {
    // What the agent sends while it reopens is the conversation the log has already.
    state.replaying = true;
    if (state.lifecycle.resume) {
      const request: acp.ResumeSessionRequest = { sessionId, cwd: context.cwd, mcpServers: [] };
      logOpeningState(context, state, await step("session/resume", conn.agent.request("session/resume", request)));
      return true;
    }
    const request: acp.LoadSessionRequest = { sessionId, cwd: context.cwd, mcpServers: [] };
    logOpeningState(context, state, await step("session/load", conn.agent.request("session/load", request)));
    await options.replayed?.();
    return true;
  } catch (err) {
    if (options.resumeId() !== undefined || !(err instanceof HandshakeStepError)) throw err;
    context.logger.warn(
      { sessionId: context.sessionId, acpSessionId: sessionId, err: describeRpcError(err.error) },
      "the agent did not reopen its earlier conversation; starting a new one",
    );
    state.acpSessionId = undefined;
    return false;
  } finally {
    state.replaying = false;
  }
}

/**
 * The `modes` and `configOptions` a `session/new`, `session/load` or `session/resume` answer
 * names: `agent.mode`, `agent.config`; without `configOptions`, its `models` as the one config
 * option (acp-session-models.ts).
 */
function logOpeningState(context: AdapterContext, state: HandshakeState, answer: unknown): void {
  if (typeof answer !== "object" || answer === null) return;
  const opened = answer as { modes?: unknown; configOptions?: unknown; models?: unknown };
  const opening = toModes(opened.modes);
  if (opening !== undefined) context.agentEvent({ type: "agent.mode", ...opening });
  const models = state.sessionModels.opened(opened);
  const options = models !== undefined ? [models] : toConfigOptions(opened.configOptions);
  if (options !== undefined) context.agentEvent({ type: "agent.config", configOptions: options });
}

/**
 * A handshake request the agent answered with an error: which one, and the error (AGENT_FAILED,
 * or AGENT_AUTH_REQUIRED for ACP's auth-required). acp-start.ts words it with the agent's stderr.
 */
export class HandshakeStepError extends SwitchboardError {
  override readonly name: string = "HandshakeStepError";
  readonly step: string;
  readonly error: RpcError;
  constructor(step: string, error: RpcError) {
    super(error.code === ACP_AUTH_REQUIRED ? "AGENT_AUTH_REQUIRED" : "AGENT_FAILED", `${step}: ${error.message}`);
    this.step = step;
    this.error = error;
  }
}

/** `request`'s result; an error the agent answered becomes a {@link HandshakeStepError} naming `name`. */
async function step<T>(name: string, request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (err) {
    const answered = asRpcError(err);
    throw answered === undefined ? err : new HandshakeStepError(name, answered);
  }
}
