import type { ClientConnection } from "@agentclientprotocol/sdk";
import { isPublicError } from "../protocol/errors.js";
import type { Timer } from "../core/clock.js";
import type { AdapterContext } from "./adapter.js";
import { AgentProcess } from "./agent-process.js";
import type { AgentChild, ProcessEnd } from "./agent-process.js";
import { ACP_AUTH_REQUIRED, authRequiredMessage, describeRpcError, stderrNote } from "./acp-failures.js";
import { AcpStartError, HandshakeStepError, handshake } from "./acp-handshake.js";
import type { HandshakeState } from "./acp-handshake.js";
import type { AcpStdoutNoise } from "./acp-stdout-noise.js";
import { describeError } from "./logger.js";

/*
 * Starting an ACP agent: its process spawned (or started under a holder), the handshake
 * (acp-handshake.ts) run within ACP_START_TIMEOUT_MS, and a failure told as an AcpStartError that
 * says how the agent ended or what it answered (test/agents/acp-handshake.test.ts).
 */

/** `initialize` + `session/new` must answer within this long (agents started through npx can be slow). */
export const ACP_START_TIMEOUT_MS = 30_000;
/** When the handshake fails, how long to wait for the process to exit so the error can say how it ended. */
const EXIT_CLASSIFY_MS = 1000;
/**
 * When the agent answers a handshake request with an error, how long to wait for the rest of its
 * stderr: it comes through its own pipe, so what the agent wrote there before answering can be
 * read after the answer.
 */
const STDERR_SETTLE_MS = 200;
/** How long an agent must send no update after loading a conversation before its first turn. */
const REPLAY_QUIET_MS = 200;
/** The most a first turn waits for a loaded conversation's replay to end. */
const REPLAY_SETTLE_MAX_MS = 3_000;

export interface AcpStartOptions {
  context: AdapterContext;
  /** argv of the agent, e.g. `["gemini", "--acp"]`. */
  command: string[];
  env: Record<string, string> | undefined;
  authMethod: string | undefined;
  /** Whether the client offers ACP terminals. */
  terminal: boolean;
  /** What the handshake learns, kept by the adapter. */
  state: HandshakeState;
  /** The conversation a resume asked to load (read at each step). */
  resumeId: () => string | undefined;
  /** When the agent last sent a `session/update` (monotonic ms). */
  lastUpdateAt: () => number;
  /** Wires the ACP connection to the started process. */
  connect: (proc: AgentChild) => { noise: AcpStdoutNoise; conn: ClientConnection };
  /** Tells the agent which requests nobody waits for any more (acp-close.ts). */
  cancelPending: () => Promise<void>;
  /** See HandshakeOptions.sessionNamed. */
  sessionNamed: () => void;
}

/** Starts the agent and runs the handshake; throws an {@link AcpStartError} saying why it failed. */
export async function startAcpAgent(options: AcpStartOptions): Promise<void> {
  const { context } = options;
  const [program, ...args] = options.command;
  if (program === undefined) throw new AcpStartError("CONFIG_INVALID", "the acp agent has an empty command");
  const launch = { command: program, args, cwd: context.cwd, env: options.env };
  let proc: AgentChild;
  try {
    proc =
      context.processes?.start(launch) ?? new AgentProcess({ ...launch, clock: context.clock, logger: context.logger });
  } catch (error) {
    if (isPublicError(error)) throw new AcpStartError(error.code, error.message);
    throw error;
  }
  if (proc.spawnFailure) {
    const error = await proc.spawnFailure;
    throw new AcpStartError(error.code, error.message);
  }
  const { noise, conn } = options.connect(proc);
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = context.clock.setTimeout(() => {
      const printed = noise.describe();
      reject(
        new AcpStartError(
          "AGENT_FAILED",
          `the agent did not answer initialize/session/new within ${ACP_START_TIMEOUT_MS} ms` +
            `${printed === undefined ? "" : `; ${printed}`}${stderrNote(proc.stderrTail())}`,
        ),
      );
    }, ACP_START_TIMEOUT_MS);
  });
  try {
    await Promise.race([
      handshake(conn, {
        context,
        command: options.command,
        authMethod: options.authMethod,
        terminal: options.terminal,
        resumeId: options.resumeId,
        replayed: () => replayOver(options),
        state: options.state,
        sessionNamed: options.sessionNamed,
      }),
      timeout,
    ]);
  } catch (err) {
    if (err instanceof AcpStartError) {
      // Given up on (the start timeout): the agent is told which requests nobody waits for.
      await options.cancelPending();
      throw err;
    }
    if (!(err instanceof HandshakeStepError)) {
      const end = await endedWithin(options, proc, EXIT_CLASSIFY_MS);
      if (end) throw new AcpStartError("AGENT_EXITED", proc.describeEnd(end));
      throw new AcpStartError("AGENT_FAILED", `ACP handshake failed: ${describeError(err)}`);
    }
    await endedWithin(options, proc, STDERR_SETTLE_MS);
    if (err.error.code === ACP_AUTH_REQUIRED) {
      throw new AcpStartError(
        "AGENT_AUTH_REQUIRED",
        authRequiredMessage(err.error, options.state.authMethods, options.command),
      );
    }
    // The agent's answer, with what it said on stderr: the reason is often only there.
    throw new AcpStartError(
      "AGENT_FAILED",
      `ACP handshake failed: the agent answered ${err.step} with ` +
        `${describeRpcError(err.error)}${stderrNote(proc.stderrTail())}`,
    );
  } finally {
    timer?.cancel();
  }
}

/**
 * Resolves once the agent has sent no update for REPLAY_QUIET_MS after its `session/load`
 * answer (at most REPLAY_SETTLE_MAX_MS). ACP has the replay come before the answer, but an
 * agent that sends it after (Gemini CLI was seen to) would otherwise replay the whole
 * conversation into the first run: no turn takes updates until then.
 */
async function replayOver(options: AcpStartOptions): Promise<void> {
  const clock = options.context.clock;
  const answeredAt = clock.monotonic();
  for (;;) {
    const now = clock.monotonic();
    const quiet = now - Math.max(answeredAt, options.lastUpdateAt());
    if (quiet >= REPLAY_QUIET_MS || now - answeredAt >= REPLAY_SETTLE_MAX_MS) return;
    await new Promise<void>((resolve) => clock.setTimeout(resolve, REPLAY_QUIET_MS - quiet));
  }
}

/** How `proc` ended, if it did within `ms`. */
function endedWithin(options: AcpStartOptions, proc: AgentChild, ms: number): Promise<ProcessEnd | undefined> {
  return new Promise((resolve) => {
    const timer = options.context.clock.setTimeout(() => resolve(undefined), ms);
    void proc.closed.then((end) => {
      timer.cancel();
      resolve(end);
    });
  });
}
