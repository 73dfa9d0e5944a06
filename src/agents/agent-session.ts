import type { AgentChoice } from "./acp-choices.js";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { systemClock } from "../core/clock.js";
import type { Clock, Timer } from "../core/clock.js";
import { DEFAULT_DELTA_THROTTLE_MS } from "../core/delta-pacer.js";
import { LAST_LINE_TAIL_BYTES } from "../core/last-line.js";
import type { AppendableLog } from "../log/types.js";
import { SwitchboardError, TEXT_ONLY, needsCapabilities, unsupportedContent } from "../protocol/index.js";
import { isPublicError, InternalError } from "../protocol/errors.js";
import type {
  Actor,
  ContentBlock,
  ErrorCode,
  MessageSender,
  PermissionPolicy,
  PromptCapabilities,
  PromptInput,
} from "../protocol/index.js";
import { MAX_IDLE_AGENT_EVENTS } from "./adapter.js";
import type { AdapterContext, AgentAdapter, AgentEventInput, LogRoom, RunOutcome } from "./adapter.js";
import { adapterFactoryFor } from "./adapter-factory.js";
import { describeError, silentLogger } from "./logger.js";
import type { AgentLogger } from "./logger.js";
import { DEFAULT_ELICITATION_TIMEOUT_MS, ElicitationBroker, MAX_PENDING_ELICITATIONS } from "./elicitations.js";
import { DEFAULT_PERMISSION_TIMEOUT_MS, MAX_PENDING_PERMISSIONS, PermissionBroker } from "./permissions.js";
import { Run } from "./run.js";
import { ABORT_SETTLE_TIMEOUT_MS, checkQueueRoom, takeRestart } from "./agent-session-limits.js";
import type { AgentFailure } from "./agent-session-limits.js";
import type {
  AbortResult,
  AgentSessionOptions,
  AgentSessionState,
  ContinuedRun,
  QueuedRun,
  RunInfo,
} from "./agent-session-types.js";
import type { RunEnd, RunOptions } from "./run.js";

// Part of the session's API, defined with the limits and shapes they belong to.
export {
  ABORT_SETTLE_TIMEOUT_MS,
  AGENT_RESTART_WINDOW_MS,
  MAX_AGENT_RESTARTS,
  MAX_QUEUED_PROMPT_CHARS,
  MAX_QUEUED_RUNS,
} from "./agent-session-limits.js";
export type { AbortResult, AgentSessionOptions, AgentSessionState, RunInfo } from "./agent-session-types.js";

interface Lane {
  run: Run;
  adapter: AgentAdapter;
  controller: AbortController;
  settleTimer: Timer | undefined;
}

/**
 * One agent session: its run lane (one active run, the rest queued), its adapter and permission
 * requests. Runs belong to the session, never to a connection (docs/architecture.md, guarantee 6).
 * @example
 * const agent = createAgentSession({ sessionId, log, spec: { adapter: "echo" } });
 * agent.prompt("hello", actor); // run.queued, run.started, chat.delta…, chat.final
 * agent.abort({}, actor); // chat.aborted for the active run; the queue goes on
 */
export class AgentSession {
  readonly sessionId: string;
  private readonly log: AppendableLog;
  private readonly clock: Clock;
  private readonly logger: AgentLogger;
  private readonly throttleMs: number;
  private readonly maxRunTextBytes: number | undefined;
  private readonly stallNoticeMs: number | undefined;
  private readonly context: AdapterContext;
  private readonly makeAdapter: (context: AdapterContext) => AgentAdapter;
  private readonly permissions: PermissionBroker;
  private readonly elicitations: ElicitationBroker;
  private readonly listeners = new Set<(state: AgentSessionState) => void>();
  private readonly retiring = new Set<Promise<void>>();
  private readonly restartTimes: number[] = [];
  private queue: Run[] = [];
  private active: Run | undefined;
  /** The run started last, active or ended: its answer is what the sessions list shows. */
  private latest: Run | undefined;
  private lane: Lane | undefined;
  private adapter: AgentAdapter | undefined;
  /** What the spec alone says the agent takes in a prompt (echo, command: text only; ACP: its handshake says). */
  private readonly specCapabilities: PromptCapabilities | undefined;
  private crashed = false;
  /** How the last run on an agent that then turned out dead ended: the restart refusal quotes it. */
  private lastFailure: AgentFailure | undefined;
  private lastState: AgentSessionState = "idle";
  private disposing: Promise<void> | undefined;
  private agentSessionId: string | undefined;
  /** `agent.*` events logged since the last run started (bounded by MAX_IDLE_AGENT_EVENTS). */
  private idleEvents = 0;
  /** The rules that answer permission requests before a person is asked (see permissions.ts). */
  private policy: PermissionPolicy | undefined;

  constructor(options: AgentSessionOptions) {
    this.sessionId = options.sessionId;
    this.log = options.log;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.throttleMs = options.deltaThrottleMs ?? DEFAULT_DELTA_THROTTLE_MS;
    this.maxRunTextBytes = options.maxRunTextBytes;
    this.stallNoticeMs = options.stallNoticeMs;
    this.makeAdapter = options.adapter ?? adapterFactoryFor(options.spec);
    // An echo or command agent takes text only, known before it ever runs.
    this.specCapabilities = options.adapter === undefined && options.spec.adapter !== "acp" ? TEXT_ONLY : undefined;
    this.context = {
      sessionId: options.sessionId,
      cwd: path.resolve(options.cwd ?? options.spec.cwd ?? process.cwd()),
      clock: this.clock,
      logger: this.logger,
      children: options.children,
      room: options.room ?? alwaysRoom,
      processes: options.processes,
      processChanged: () => this.notifyListeners(),
      keptAgentSession: () => this.agentSessionId,
      agentSessionOpened: (id, cannotReload) => {
        this.agentSessionId = id;
        options.onAgentSession?.(id, cannotReload);
      },
      agentEvent: (event) => this.idleAgentEvent(event),
      unknownUpdate: (variant) => options.onUnknownUpdate?.(variant),
      turns: options.turns,
    };
    this.agentSessionId = options.agentSessionId;
    this.policy = options.permissionPolicy;
    this.permissions = new PermissionBroker({
      log: this.log,
      clock: this.clock,
      timeoutMs: options.permissionTimeoutMs ?? DEFAULT_PERMISSION_TIMEOUT_MS,
      policy: () => this.policy,
      cwd: this.context.cwd,
      logger: this.logger,
      // A request read again after an adoption keeps the id it was logged with (turn-replay.ts).
      newId: () => options.replay?.nextPermissionId() ?? randomBytes(16).toString("hex"),
      ...(options.replay ? { loggedAnswer: (requestId: string) => options.replay?.loggedAnswer(requestId) } : {}),
      onChange: () => this.notifyState(),
      onOverLimit: (runId, title) =>
        this.logger.warn(
          { sessionId: this.sessionId, runId, title, open: MAX_PENDING_PERMISSIONS },
          "permission request cancelled at once: the agent has the most open requests a session may have",
        ),
    });
    this.elicitations = new ElicitationBroker({
      log: this.log,
      clock: this.clock,
      timeoutMs: options.elicitationTimeoutMs ?? DEFAULT_ELICITATION_TIMEOUT_MS,
      newId: () => randomBytes(16).toString("hex"),
      onChange: () => this.notifyState(),
      onOverLimit: (runId) =>
        this.logger.warn(
          { sessionId: this.sessionId, runId, open: MAX_PENDING_ELICITATIONS },
          "elicitation cancelled at once: the agent has the most open elicitations a session may have",
        ),
    });
    if (options.adopt !== undefined)
      this.adoptProcess(options.adopt.turnOpen, options.adopt.continued, options.adopt.queued ?? []);
  }

  /** The permission policy requests are answered by from now on (undefined: a person answers each). */
  get permissionPolicy(): PermissionPolicy | undefined {
    return this.policy;
  }

  set permissionPolicy(policy: PermissionPolicy | undefined) {
    this.policy = policy;
  }

  /**
   * Queues a prompt (`run.queued`); it starts (`run.started`) when the runs before it have ended.
   * @throws SwitchboardError SESSION_NOT_RUNNING after dispose, LIMIT_EXCEEDED when {@link MAX_QUEUED_RUNS}
   * wait or their text would pass {@link MAX_QUEUED_PROMPT_CHARS}, UNSUPPORTED_CONTENT when the
   * agent is known not to take a block of its content (see {@link checkContent}).
   */
  prompt(prompt: string | PromptInput, by: Actor, from?: MessageSender): { runId: string } {
    if (this.disposing) throw new SwitchboardError("SESSION_NOT_RUNNING", "the agent session has ended");
    const input = typeof prompt === "string" ? { text: prompt } : prompt;
    if (input.content !== undefined) this.refuseUnsupported(input.content, this.adapter);
    checkQueueRoom(this.queue, input);
    const run = this.newRun({
      runId: randomBytes(16).toString("base64url"),
      text: input.text,
      content: input.content,
      by,
      from,
    });
    run.queued(this.queue.length);
    this.queue.push(run);
    this.startNext();
    return { runId: run.runId };
  }

  private newRun(options: Pick<RunOptions, "runId" | "text" | "content" | "by" | "from">): Run {
    return new Run({
      ...options,
      log: this.log,
      clock: this.clock,
      throttleMs: this.throttleMs,
      permissions: this.permissions,
      elicitations: this.elicitations,
      ...(this.maxRunTextBytes !== undefined ? { maxTextBytes: this.maxRunTextBytes } : {}),
      ...(this.stallNoticeMs !== undefined ? { stallNoticeMs: this.stallNoticeMs } : {}),
      onTextLimit: (r, max) =>
        this.stop(r, {
          type: "chat.error",
          code: "LIMIT_EXCEEDED",
          message: `the agent streamed more than ${max} bytes of text in one run (limits.runTextBytes); the run was stopped`,
        }),
    });
  }

  /**
   * Makes sure the agent takes `content` before a prompt of it is queued: an ACP agent says what it
   * takes in its `initialize` answer, so an agent not started yet is started now (as for the first
   * run). Content of text and links only needs nothing.
   * @throws SwitchboardError UNSUPPORTED_CONTENT naming what the agent takes, or why it did not start.
   */
  async checkContent(content: readonly ContentBlock[]): Promise<void> {
    if (!needsCapabilities(content)) return;
    if (this.disposing) throw new SwitchboardError("SESSION_NOT_RUNNING", "the agent session has ended");
    if (this.adapter?.promptCapabilities === undefined) {
      const adapter = this.adapterForRun();
      if ("code" in adapter) throw new SwitchboardError(adapter.code, adapter.message);
      const failure = await adapter.startNow?.();
      if (failure?.kind === "error") throw new SwitchboardError(failure.code, failure.message);
    }
    this.refuseUnsupported(content, this.adapter);
  }

  /**
   * Starts the agent when it has not started yet (as for the first run), so that what it offers
   * (its modes and settings) is known. @throws SwitchboardError why it could not start.
   */
  async startAgent(): Promise<void> {
    if (this.disposing) throw new SwitchboardError("SESSION_NOT_RUNNING", "the agent session has ended");
    const adapter = this.adapterForRun();
    if ("code" in adapter) throw new SwitchboardError(adapter.code, adapter.message);
    const failure = await adapter.startNow?.();
    if (failure?.kind === "error") throw new SwitchboardError(failure.code, failure.message);
  }

  /**
   * Sends the started agent a choice of mode or setting (acp-choices.ts), resolved once it confirmed.
   * @throws SwitchboardError INVALID_OPTION when the agent takes no choices, AGENT_FAILED, AGENT_EXITED
   */
  async choose(choice: AgentChoice, by: Actor): Promise<void> {
    if (this.disposing) throw new SwitchboardError("SESSION_NOT_RUNNING", "the agent session has ended");
    const adapter = this.adapter;
    if (adapter?.choose === undefined) {
      throw new SwitchboardError("INVALID_OPTION", "this agent offers no modes or settings to choose from");
    }
    await adapter.choose(choice, by);
  }

  /** Throws UNSUPPORTED_CONTENT when `adapter` knows what its agent takes and `content` has more. */
  private refuseUnsupported(content: readonly ContentBlock[], adapter: AgentAdapter | undefined): void {
    const refused = adapter !== undefined ? unsupportedBy(content, adapter) : undefined;
    if (refused) throw refused;
  }

  /**
   * Aborts the active run: it ends with exactly one `chat.aborted` and the agent is told to stop
   * (ACP `session/cancel`). The queue goes on, unless `all`, which also ends every queued run
   * with `chat.aborted`.
   * @throws SwitchboardError RUN_NOT_ACTIVE when no run is active (and, with `all`, none is queued).
   */
  abort(options: { all?: boolean }, by: Actor): AbortResult {
    if (this.disposing) throw new SwitchboardError("SESSION_NOT_RUNNING", "the agent session has ended");
    const run = this.active;
    const all = options.all === true;
    if (!run && !(all && this.queue.length > 0)) {
      // Queued runs wait while the agent winds down an aborted turn (up to ABORT_SETTLE_TIMEOUT_MS):
      // say so, and how to drop them, rather than only that nothing runs.
      const waiting = this.queue.length;
      throw new SwitchboardError(
        "RUN_NOT_ACTIVE",
        waiting > 0
          ? `no run is active: ${waiting} queued run(s) wait for the agent to finish the aborted turn; abort with all: true to drop them`
          : "no run is active",
      );
    }
    if (run) this.stop(run, { type: "chat.aborted", by });
    let cleared = 0;
    if (all) {
      const queued = this.queue;
      this.queue = [];
      for (const q of queued) q.end({ type: "chat.aborted", by });
      cleared = queued.length;
    }
    this.notifyState();
    return { runId: run?.runId ?? null, cleared };
  }

  /**
   * Ends the active `run` with `end` and tells the agent to stop (ACP `session/cancel`, a
   * command agent's process is killed); the lane is free once the agent has finished the turn,
   * or after {@link ABORT_SETTLE_TIMEOUT_MS}, when the agent is restarted.
   */
  private stop(run: Run, end: RunEnd): void {
    if (this.active !== run) return;
    this.active = undefined;
    run.end(end);
    const lane = this.lane;
    if (lane?.run === run) {
      lane.controller.abort();
      lane.settleTimer = this.clock.setTimeout(() => this.forceSettle(lane), ABORT_SETTLE_TIMEOUT_MS);
    }
    this.notifyState();
  }

  /**
   * Answers a permission request; the first valid answer wins and everyone sees `permission.resolved`.
   * @throws SwitchboardError PERMISSION_REQUEST_NOT_FOUND, INVALID_OPTION
   */
  answerPermission(requestId: string, optionId: string, by: Actor): void {
    this.permissions.answer(requestId, optionId, by);
  }

  /**
   * Answers an elicitation; the first valid answer wins and everyone sees `elicitation.resolved`.
   * @throws SwitchboardError ELICITATION_NOT_FOUND, ELICITATION_CONTENT_INVALID, VALIDATION_FAILED
   */
  answerElicitation(
    requestId: string,
    answer: { action: "accept" | "decline" | "cancel"; content?: Readonly<Record<string, unknown>> | undefined },
    by: Actor,
  ): void {
    this.elicitations.answer(requestId, answer, by);
  }

  /**
   * For a session resumed after it was lost: starts the agent now and has it reload the
   * conversation an earlier run opened (ACP `session/load`). Resolves with whether it did (false:
   * the agent never started, or its adapter keeps no conversation; the first prompt starts it).
   * @throws SwitchboardError AGENT_CANNOT_RESUME when the agent cannot load it, or why it did not start.
   */
  async resume(): Promise<boolean> {
    const kept = this.agentSessionId;
    if (this.disposing) throw new SwitchboardError("SESSION_NOT_RUNNING", "the agent session has ended");
    if (kept === undefined || this.adapter !== undefined) return false;
    const adapter = this.makeAdapter(this.context);
    const failure = adapter.resume ? await adapter.resume(kept) : undefined;
    if (this.disposing || failure?.kind === "error") {
      this.retire(adapter);
      if (failure?.kind === "error") throw new SwitchboardError(failure.code, failure.message);
      throw new SwitchboardError("SESSION_NOT_RUNNING", "the agent session has ended");
    }
    this.adapter = adapter;
    this.notifyListeners();
    return adapter.resume !== undefined;
  }

  /** The process an earlier gateway left under a holder becomes this session's agent. */
  private adoptProcess(turnOpen: boolean, continued: ContinuedRun | undefined, queued: readonly QueuedRun[]): void {
    // Queued before the restart (their `run.queued` is logged): they wait again, in order.
    for (const q of queued) this.queue.push(this.newRun(q));
    const adapter = this.makeAdapter(this.context);
    if (adapter.adopt?.(turnOpen) !== true) {
      this.retire(adapter);
      return this.startNext();
    }
    this.adapter = adapter;
    if (continued === undefined || adapter.continueTurn === undefined) return this.startNext();
    // The run an earlier gateway left in flight goes on, in the same lane (held-turn.ts).
    const run = this.newRun({
      runId: continued.runId,
      text: continued.text,
      content: continued.content,
      by: continued.by,
    });
    run.restore(continued.events);
    this.active = run;
    this.latest = run;
    const lane: Lane = { run, adapter, controller: new AbortController(), settleTimer: undefined };
    this.lane = lane;
    void adapter
      .continueTurn({
        runId: run.runId,
        text: run.prompt,
        content: run.content,
        sink: run,
        signal: lane.controller.signal,
      })
      .catch((err: unknown): RunOutcome => ({ kind: "error", code: "INTERNAL", message: describeError(err) }))
      .then((outcome) => this.settle(lane, outcome));
  }

  /**
   * The gateway stops while the agent runs on under its holder: lets go of it and of every
   * timer, appending nothing. The runs stay open in the log; the gateway that adopts the
   * process ends them (`chat.aborted`). Afterwards the session is as disposed.
   */
  detach(): Promise<void> {
    this.disposing ??= (async () => {
      this.lane?.settleTimer?.cancel();
      this.active?.detach();
      this.permissions.forget();
      this.elicitations.forget();
      this.listeners.clear();
      await this.adapter?.detach?.();
    })();
    return this.disposing;
  }

  /** Whether the agent's process runs under a holder (it outlives the gateway). */
  get held(): boolean {
    return this.adapter?.detach !== undefined && this.context.processes !== undefined && this.pid() !== null;
  }

  info(): RunInfo {
    return { active: this.active?.runId ?? null, queued: this.queue.length };
  }

  /** What the agent takes in a prompt beyond text and links, once its adapter knows (see SessionInfo.promptCapabilities). */
  promptCapabilities(): PromptCapabilities | undefined {
    return this.adapter?.promptCapabilities ?? this.specCapabilities;
  }

  /** The agent process's id while one runs (ACP agents keep one between runs), else null. */
  pid(): number | null {
    return this.adapter?.pid ?? null;
  }

  state(): AgentSessionState {
    if (this.permissions.open > 0 || this.elicitations.open > 0) return "waiting";
    if (this.active || this.queue.length > 0) return "working";
    return "idle";
  }

  /** Calls `listener` whenever {@link state} or {@link pid} changes. Returns the unsubscribe function. */
  onStateChange(listener: (state: AgentSessionState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Ends the active and queued runs with `chat.aborted`, cancels open permission requests and
   * kills the agent process. Idempotent; resolves when the agent process is gone. `close`: the
   * session ends for good (it was deleted), so the agent is asked to close its conversation (ACP
   * `session/close`, where it offers it) before it is stopped.
   */
  dispose(options: { close?: boolean } = {}): Promise<void> {
    this.disposing ??= this.shutdown(options.close === true);
    return this.disposing;
  }

  private async shutdown(close: boolean): Promise<void> {
    const run = this.active;
    this.active = undefined;
    run?.end({ type: "chat.aborted", by: undefined });
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) q.end({ type: "chat.aborted", by: undefined });
    const lane = this.lane;
    this.lane = undefined;
    lane?.settleTimer?.cancel();
    lane?.controller.abort();
    this.permissions.dispose();
    this.elicitations.dispose();
    if (lane && lane.adapter !== this.adapter) this.retire(lane.adapter);
    if (this.adapter) this.retire(this.adapter, close);
    this.adapter = undefined;
    this.notifyState();
    this.listeners.clear();
    await Promise.all([...this.retiring]);
  }

  /** What the agent said of itself between runs: logged, within {@link MAX_IDLE_AGENT_EVENTS} per pause. */
  private idleAgentEvent(event: AgentEventInput): void {
    if (this.disposing) return;
    this.idleEvents++;
    if (this.idleEvents > MAX_IDLE_AGENT_EVENTS) {
      if (this.idleEvents === MAX_IDLE_AGENT_EVENTS + 1) {
        this.logger.warn(
          { sessionId: this.sessionId, max: MAX_IDLE_AGENT_EVENTS },
          "the agent sent more updates between runs than are logged; the rest are dropped until the next run",
        );
      }
      return;
    }
    this.log.append(event);
  }

  /** The tail of the latest run's answer (bounded: the list shows one line of it). */
  latestAnswer(): string {
    return this.latest?.answerText.slice(-LAST_LINE_TAIL_BYTES) ?? "";
  }

  private startNext(): void {
    while (!this.disposing && !this.active && !this.lane && this.queue.length > 0) {
      const run = this.queue.shift()!;
      this.idleEvents = 0;
      run.start();
      const adapter = this.adapterForRun();
      if ("code" in adapter) {
        run.end({ type: "chat.error", code: adapter.code, message: adapter.message });
        continue;
      }
      this.active = run;
      this.latest = run;
      const lane: Lane = { run, adapter, controller: new AbortController(), settleTimer: undefined };
      this.lane = lane;
      this.logger.debug({ sessionId: this.sessionId, runId: run.runId }, "run started");
      let running: Promise<RunOutcome>;
      try {
        // Queued before the agent said what it takes (a /v1/ws prompt, or an agent restarted since):
        // the ACP adapter checks again once its agent has answered `initialize`.
        const refused = run.content !== undefined ? unsupportedBy(run.content, adapter) : undefined;
        running = refused
          ? Promise.resolve({ kind: "error", code: refused.code, message: refused.message })
          : adapter.run({
              runId: run.runId,
              text: run.prompt,
              content: run.content,
              sink: run,
              signal: lane.controller.signal,
            });
      } catch (err) {
        // The adapter contract says `run` never throws; if one does, the run still gets its one ending.
        running = Promise.reject(err instanceof Error ? err : new InternalError(String(err)));
      }
      void running
        .catch((err: unknown): RunOutcome => ({ kind: "error", code: "INTERNAL", message: describeError(err) }))
        .then((outcome) => this.settle(lane, outcome));
    }
    this.notifyState();
  }

  private settle(lane: Lane, outcome: RunOutcome): void {
    lane.settleTimer?.cancel();
    // The lane was released already (abort settle timeout, dispose): this outcome is stale.
    if (this.lane !== lane) return;
    this.lane = undefined;
    if (lane.run.end(toRunEnd(outcome))) {
      this.logger.debug({ sessionId: this.sessionId, runId: lane.run.runId, outcome }, "run ended");
    }
    if (this.active === lane.run) this.active = undefined;
    if (lane.adapter.dead && this.adapter === lane.adapter) {
      // Free what the dead agent left (child terminals) now; the next prompt restarts it.
      this.logger.warn({ sessionId: this.sessionId, runId: lane.run.runId }, "agent process is gone");
      this.lastFailure =
        outcome.kind === "error"
          ? { code: outcome.code, message: outcome.message, start: outcome.start === true }
          : undefined;
      this.retire(lane.adapter);
      this.adapter = undefined;
      this.crashed = true;
    }
    this.startNext();
  }

  /** The aborted turn did not finish in time: kill the agent so the lane can go on. */
  private forceSettle(lane: Lane): void {
    if (this.lane !== lane) return;
    this.logger.warn(
      { sessionId: this.sessionId, runId: lane.run.runId, timeoutMs: ABORT_SETTLE_TIMEOUT_MS },
      "agent did not finish the aborted turn in time; restarting it",
    );
    this.lane = undefined;
    if (this.adapter === lane.adapter) this.adapter = undefined;
    this.retire(lane.adapter);
    this.startNext();
  }

  /** The live adapter, a replacement for a dead one (bounded), or why there is none. */
  private adapterForRun(): AgentAdapter | { code: ErrorCode; message: string } {
    if (this.adapter?.dead) {
      this.logger.warn({ sessionId: this.sessionId }, "agent process is gone; restarting it for the next run");
      // It died between runs: no run saw how.
      this.lastFailure = undefined;
      this.retire(this.adapter);
      this.adapter = undefined;
      this.crashed = true;
    }
    if (this.adapter) return this.adapter;
    if (this.crashed) {
      const refused = takeRestart(this.restartTimes, this.clock.monotonic(), this.lastFailure);
      if (refused) return refused;
      this.crashed = false;
    }
    try {
      this.adapter = this.makeAdapter(this.context);
    } catch (err) {
      return { code: isPublicError(err) ? err.code : "SPAWN_FAILED", message: describeError(err) };
    }
    return this.adapter;
  }

  private retire(adapter: AgentAdapter, close = false): void {
    const done = adapter.dispose({ close }).catch((err: unknown) => {
      this.logger.error({ sessionId: this.sessionId, err: describeError(err) }, "disposing the agent adapter failed");
    });
    this.retiring.add(done);
    void done.finally(() => this.retiring.delete(done));
  }

  private notifyState(): void {
    const state = this.state();
    if (state === this.lastState) return;
    this.lastState = state;
    this.notifyListeners();
  }

  private notifyListeners(): void {
    const state = this.lastState;
    for (const listener of [...this.listeners]) {
      try {
        listener(state);
      } catch (err) {
        // A broken listener must not break the run lane; it is the listener owner's bug.
        this.logger.error({ sessionId: this.sessionId, err: describeError(err) }, "state listener threw");
      }
    }
  }
}

const alwaysRoom: LogRoom = () => undefined;

/** UNSUPPORTED_CONTENT when `adapter` knows what its agent takes and `content` has more. */
function unsupportedBy(content: readonly ContentBlock[], adapter: AgentAdapter): SwitchboardError | undefined {
  const caps = adapter.promptCapabilities;
  return caps === undefined ? undefined : unsupportedContent(content, caps, "the agent");
}

function toRunEnd(outcome: RunOutcome): RunEnd {
  switch (outcome.kind) {
    case "final":
      return { type: "chat.final", stopReason: outcome.stopReason };
    case "error":
      return { type: "chat.error", code: outcome.code, message: outcome.message };
  }
}

/**
 * Creates an agent session. Validates `spec` at once (CONFIG_INVALID when `acp`/`command` has
 * no command); the agent process starts with the first prompt.
 */
export function createAgentSession(options: AgentSessionOptions): AgentSession {
  return new AgentSession(options);
}
