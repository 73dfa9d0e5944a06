// The shapes of AgentSession's API: its options, its state and what its calls answer. Apart from
// agent-session.ts, which holds the run lane, so that the lane reads on its own.
import type { Clock } from "../core/clock.js";
import type { AppendableLog } from "../log/types.js";
import type { Actor, ContentBlock, MessageSender, PermissionPolicy, SessionEvent } from "../protocol/index.js";
import type { TurnReplay } from "./turn-replay.js";
import type { AdapterContext, TurnKeeper, AgentAdapter, AgentSpec, LogRoom } from "./adapter.js";
import type { AgentProcesses } from "./agent-process.js";
import type { ChildTerminalFactory } from "./child-terminal.js";
import type { AgentLogger } from "./logger.js";

/** What the session list shows: a run streams, a permission request waits for an answer, or nothing. */
export type AgentSessionState = "idle" | "working" | "waiting";

/** `SessionInfo.run`: the active run and how many prompts wait behind it. */
export interface RunInfo {
  active: string | null;
  queued: number;
}

export interface AbortResult {
  /** The run that was aborted, or null when only the queue was cleared. */
  runId: string | null;
  /** Queued runs removed by `{all: true}` (each ended with `chat.aborted`). */
  cleared: number;
}

export interface AgentSessionOptions {
  /** The agent session's id (the parent of its child terminal sessions). */
  sessionId: string;
  /** Where every event of the session is appended. */
  log: AppendableLog;
  /**
   * Whether `log` has room for more of the agent's output; the adapter holds its agent back while
   * it has not. The gateway passes its SessionLog's `room()`; default: always room (a log in memory).
   */
  room?: LogRoom;
  spec: AgentSpec;
  /** Working directory of the agent and root of its file access; default `spec.cwd`, else the gateway's cwd. */
  cwd?: string;
  clock?: Clock;
  /** Default {@link DEFAULT_DELTA_THROTTLE_MS}. */
  deltaThrottleMs?: number;
  /** A run whose agent says nothing this long gets a `run.notice`; default {@link DEFAULT_RUN_STALL_NOTICE_MS}, 0: never. */
  stallNoticeMs?: number;
  /** Default {@link DEFAULT_PERMISSION_TIMEOUT_MS}; a policy's `timeoutMs` takes precedence. */
  permissionTimeoutMs?: number;
  /** Rules that answer permission requests before a person is asked, and the timeout's answer. */
  permissionPolicy?: PermissionPolicy | undefined;
  /** Default {@link DEFAULT_ELICITATION_TIMEOUT_MS}. */
  elicitationTimeoutMs?: number;
  /** Text one run may stream before it is stopped with `chat.error` LIMIT_EXCEEDED; default {@link DEFAULT_RUN_TEXT_BYTES}. */
  maxRunTextBytes?: number;
  /** Serves ACP `terminal/*` with child sessions; without it agents are told there is no terminal. */
  children?: ChildTerminalFactory;
  logger?: AgentLogger;
  /** Replaces the adapter `spec` chooses (tests, benchmarks, embedding). Called again after a crash. */
  adapter?: (context: AdapterContext) => AgentAdapter;
  /** The agent's conversation (ACP session id) an earlier run of this session opened: restarts load it. */
  agentSessionId?: string | undefined;
  /** Told the agent's conversation id whenever the agent opens one, so that it can be kept (see AdapterContext). */
  onAgentSession?: (agentSessionId: string, cannotReload: string | undefined) => void;
  /** Told each `session/update` variant the gateway does not know, as it arrives (the gateway counts them). */
  onUnknownUpdate?: (variant: string) => void;
  /** Runs the agent's process under a holder (see AdapterContext). */
  processes?: AgentProcesses | undefined;
  /**
   * Takes over the process `processes` kept from an earlier gateway at once (`AgentAdapter.adopt`);
   * `turnOpen`: that gateway left a turn running; `queued`: the runs it queued behind that turn,
   * which wait in the lane again, in order.
   */
  adopt?:
    { turnOpen: boolean; continued?: ContinuedRun | undefined; queued?: readonly QueuedRun[] | undefined } | undefined;
  /** Keeps the turn in flight of an agent under a holder (see AdapterContext). */
  turns?: TurnKeeper | undefined;
  /** The log wrapper dropping what re-read stdout produces again (turn-replay.ts); `log` is it. */
  replay?: TurnReplay | undefined;
}

/**
 * A run an earlier gateway queued (its `run.queued` is in the log) and never started: after an
 * adoption it waits in the lane again (held-turn.ts), started after the run in flight ends.
 */
export interface QueuedRun {
  runId: string;
  text: string;
  content?: ContentBlock[] | undefined;
  by: Actor;
  from?: MessageSender | undefined;
}

/** The run an earlier gateway left in flight, to go on with (held-turn.ts). */
export interface ContinuedRun {
  runId: string;
  text: string;
  content?: ContentBlock[] | undefined;
  by: Actor;
  /** Its events up to the kept cursor's seq, oldest first (what {@link Run.restore} goes through). */
  events: SessionEvent[];
}
