import type { HeldTurn } from "./held-turn.js";
import type { AgentChoice } from "./acp-choices.js";
import type { Clock } from "../core/clock.js";
import type {
  Actor,
  ContentBlock,
  ErrorCode,
  InlineAgent,
  NewEvent,
  PermissionToolCall,
  PromptCapabilities,
} from "../protocol/index.js";
import type { AgentProcesses } from "./agent-process.js";
import type { ChildTerminalFactory } from "./child-terminal.js";
import type { ElicitationAsk, ElicitationOutcome } from "./elicitations.js";
import type { FileChange } from "./file-change.js";
import type { AgentLogger } from "./logger.js";

/**
 * How to run an agent: config `agents: {id: {adapter, command?, cwd?, env?, authMethod?}}` or the inline
 * `agent` of `POST /v1/sessions`. `command` is required for `acp` and `command`.
 */
export type AgentSpec = InlineAgent;

export interface ToolUpdate {
  toolCallId: string;
  /** `pending` | `in_progress` | `completed` | `failed`; omitted = unchanged since the last update. */
  status?: string;
  title?: string;
  kind?: string;
  /** Child terminal sessions this call runs in. */
  terminalSessionIds?: string[];
  content?: unknown;
  rawInput?: unknown;
  rawOutput?: unknown;
  /** Files the call touches (ACP `locations`). */
  locations?: PermissionToolCall["locations"];
}

type WithoutRunId<E> = E extends unknown ? Omit<E, "runId"> : never;
/**
 * What an agent said of itself (an `agent.*` event), as an adapter hands it over: the session
 * adds `runId` when it comes during a run.
 */
export type AgentEventInput = WithoutRunId<Extract<NewEvent, { type: `agent.${string}` }>>;

export interface PlanEntry {
  content: string;
  priority: string;
  status: string;
}

export interface PermissionOption {
  optionId: string;
  name: string;
  /** ACP kinds: `allow_once` | `allow_always` | `reject_once` | `reject_always`. */
  kind: string;
}

export interface PermissionAsk {
  title: string;
  toolCallId?: string;
  /** What would be approved, as the request describes it (the run adds what earlier updates said). */
  toolCall?: PermissionToolCall;
  options: PermissionOption[];
}

export type PermissionOutcome = { outcome: "selected"; optionId: string } | { outcome: "cancelled" };

/**
 * Where an adapter sends what its agent produces during one run. The session turns the calls
 * into log events (pacing text, flushing before tools, ending the run once). After the run has
 * ended (abort), calls are ignored and permission requests resolve as cancelled.
 */
export interface RunSink {
  readonly runId: string;
  /** False once the run has its terminal event. */
  readonly open: boolean;
  /** `messageId`: the agent's message the chunk belongs to (ACP `messageId`), when it names one. */
  text(chunk: string, messageId?: string): void;
  thought(chunk: string, messageId?: string): void;
  tool(update: ToolUpdate): void;
  plan(entries: PlanEntry[]): void;
  /** A status notice of the agent (`run.notice`): a retry, a rate limit. */
  notice(level: "info" | "warning" | "error", text: string): void;
  /** What the agent said of itself during the run (an `agent.*` event, logged with the run's id). */
  agentEvent(event: AgentEventInput): void;
  /** A child terminal session the agent started (ACP `terminal/create`). */
  child(info: { sessionId: string; command: string[] }): void;
  /**
   * A file the agent changed (`file.change`); without a `toolCallId`, the open tool call that
   * names the file in its locations (else the one updated last) is taken as its maker.
   */
  fileChange(change: FileChange): void;
  /**
   * Appends `permission.request` and resolves with the first valid answer, or cancelled (timeout,
   * abort, run end, or `signal` aborting because the agent withdrew the request).
   */
  requestPermission(ask: PermissionAsk, signal?: AbortSignal): Promise<PermissionOutcome>;
  /** No text or thoughts wait in the pacers (what is applied is all in the log): undefined means yes. */
  readonly quiet?: boolean;
  /**
   * Appends `elicitation.request` (ACP `elicitation/create`, form or url mode) and resolves with the
   * first valid answer, or `cancel` (timeout, abort, run end, or `signal`: the agent withdrew it).
   */
  requestElicitation(ask: ElicitationAsk, signal?: AbortSignal): Promise<ElicitationOutcome>;
  /** The agent says its url elicitation `elicitationId` is done (ACP `elicitation/complete`); whether one was open. */
  completeElicitation(elicitationId: string): boolean;
}

/** How an adapter's run ended, when the session did not end it first (abort). */
export type RunOutcome =
  | { kind: "final"; stopReason: string }
  /** `start`: the agent failed to start (spawn or handshake), not during the run. */
  | { kind: "error"; code: ErrorCode; message: string; start?: boolean };

export interface AdapterRun {
  runId: string;
  /** The prompt as text (what a text-only agent is given). */
  text: string;
  /** The prompt's ACP content blocks, when it was sent as content: what an ACP agent is sent. */
  content?: ContentBlock[] | undefined;
  sink: RunSink;
  /** Aborted when someone aborts the run: stop soon (ACP: send `session/cancel`) and resolve. */
  signal: AbortSignal;
}

/**
 * One agent behind one session. The session calls `run` for one run at a time and waits for
 * it to settle before starting the next. `run` never rejects: failures are outcomes.
 */
export interface AgentAdapter {
  run(run: AdapterRun): Promise<RunOutcome>;
  /**
   * True once the agent process this adapter spoke to is gone (crash, exit, closed output).
   * The session replaces a dead adapter before the next run, within its restart bound.
   */
  readonly dead: boolean;
  /**
   * What the agent takes in a prompt beyond text and links (ACP `promptCapabilities`), once known:
   * an ACP agent says so in its `initialize` answer; an agent without ACP takes text only.
   */
  readonly promptCapabilities?: PromptCapabilities | undefined;
  /**
   * Starts the agent now (an ACP agent's handshake), so {@link promptCapabilities} is known before a
   * prompt is queued; resolves with why it could not, else undefined. Adapters that know their
   * capabilities without a process have none.
   */
  startNow?(): Promise<RunOutcome | undefined>;
  /**
   * Sends the agent a choice of mode or setting (acp-choices.ts) once it started, resolving once
   * it confirmed it (then its `agent.mode` / `agent.config` is logged). Adapters without ACP have none.
   */
  choose?(choice: AgentChoice, by: Actor): Promise<void>;
  /** The agent process's id while it runs, else null (also for adapters without a lasting process). */
  readonly pid?: number | null;
  /**
   * Starts the agent at once and reloads the conversation `agentSessionId` names (ACP
   * `session/load`), for a lost session resumed; resolves with why it cannot (AGENT_CANNOT_RESUME
   * when the agent does not offer `session/load`), else undefined. Adapters that keep no
   * conversation between prompts (echo, command) have none: they resume as they are.
   */
  resume?(agentSessionId: string): Promise<RunOutcome | undefined>;
  /**
   * Takes over the agent process an earlier gateway left under a holder (`context.processes`),
   * its conversation open: no handshake. `turnOpen`: a turn may still run there (its run ended
   * `chat.aborted`), so the agent is told `session/cancel` and the next run waits for its end.
   * False: there is no such process.
   */
  adopt?(turnOpen: boolean): boolean;
  /**
   * After {@link adopt} (with `turnOpen` false): goes on with the run an earlier gateway left in
   * flight, in the same JSON-RPC conversation (held-turn.ts); resolves as {@link run} does.
   */
  continueTurn?(run: AdapterRun): Promise<RunOutcome>;
  /** The gateway stops: lets go of a held agent process without ending it. */
  detach?(): Promise<void>;
  /**
   * Kills the agent process and anything it started. Idempotent. `close`: the session is ended for
   * good, so an ACP agent that offers `session/close` is asked to free its conversation first.
   */
  dispose(options?: { close?: boolean }): Promise<void>;
}

/**
 * Whether the session's log has room for more agent output (`LOG_BACKLOG_PAUSE_BYTES`: a slow or
 * full disk): undefined when it has (nothing allocated), else a promise resolved once it has.
 * Until then an adapter stops reading its agent, so the agent blocks on its writes instead of
 * piling events up in memory; it may stop waiting once nothing it reads can reach the log.
 */
export type LogRoom = () => Promise<void> | undefined;

/** What every adapter gets from its session. */
export interface AdapterContext {
  /** The agent session's id: the `parent` of child terminals. */
  sessionId: string;
  /** Absolute working directory: the agent's cwd and the root its file access is confined to. */
  cwd: string;
  clock: Clock;
  logger: AgentLogger;
  /** Serves ACP `terminal/*`; without it the ACP adapter does not advertise the terminal capability. */
  children: ChildTerminalFactory | undefined;
  /** Whether the session's log has room for more output (see {@link LogRoom}). */
  room: LogRoom;
  /** Runs the agent's process under a holder, so it outlives the gateway; absent: as the gateway's child. */
  processes?: AgentProcesses | undefined;
  /** Called when the adapter started an agent process (its `pid` changed). */
  processChanged: () => void;
  /** The agent's conversation (its ACP session id) the session keeps, to load after a restart. */
  keptAgentSession: () => string | undefined;
  /**
   * Called once the agent opened or loaded its conversation (ACP `session/new` or `session/load`),
   * with why it could not load it again when it does not offer `session/load`.
   */
  agentSessionOpened: (agentSessionId: string, cannotReload: string | undefined) => void;
  /**
   * What the agent said of itself between runs (ACP updates outside a prompt, the `modes` and
   * `configOptions` of `session/new`): logged as is, within {@link MAX_IDLE_AGENT_EVENTS} per pause.
   */
  agentEvent: (event: AgentEventInput) => void;
  /** A `session/update` variant the gateway does not know arrived (counted in the metrics). */
  unknownUpdate: (variant: string) => void;
  /** Keeps the turn in flight of an agent under a holder (held-turn.ts); absent: nothing is kept. */
  turns?: TurnKeeper | undefined;
}

/** Where an agent session under a holder keeps its turn (the session's record) and how far its log is. */
export interface TurnKeeper {
  /** What the record kept when the session was restored (undefined: nothing, or a new process). */
  kept(): HeldTurn | undefined;
  /** Writes `turn` into the record (queued behind the events appended so far). */
  save(turn: HeldTurn): void;
  /**
   * Whether re-read stdout still produces events the log has (turn-replay.ts): no cursor is taken
   * then, as the log holds events of the lines after it at seqs before its own.
   */
  replaying(): boolean;
  /** Commits what is queued (the record saved last among it) before it returns; false when it could not. */
  flush(): boolean;
  /** A request of the agent's answered before the restart was read again and not handled: what it logged is not expected again. */
  skipped(method: string): void;
  /** The log's newest appended seq. */
  appended(): number;
  /** The log's newest published (committed) seq. */
  published(): number;
}

/**
 * Events an agent may have logged between two runs (updates outside a prompt): past it, the rest
 * are dropped until the next run starts, with one warning, so an agent that talks on its own
 * cannot fill the log while nobody prompts it.
 */
export const MAX_IDLE_AGENT_EVENTS = 1000;

export type AgentAdapterFactory = () => AgentAdapter;
