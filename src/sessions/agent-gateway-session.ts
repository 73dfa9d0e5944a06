import { checkChoice } from "../agents/acp-choices.js";
import type { AgentChoice } from "../agents/acp-choices.js";
import { createAgentSession } from "../agents/index.js";
import type {
  AdapterContext,
  AgentAdapter,
  AgentChild,
  AgentProcesses,
  AgentLogger,
  AgentSession,
  AgentSpec,
  ChildTerminalFactory,
} from "../agents/index.js";
import { lastLine } from "../core/last-line.js";
import { eventOf } from "../log/output-entry.js";
import type { SessionLog } from "../log/session-log.js";
import type {
  Actor,
  AgentState,
  AttentionReason,
  ContentBlock,
  MessageSender,
  PermissionPolicy,
  PromptInput,
  SessionEvent,
  SessionInfo,
} from "../protocol/index.js";
import type { PolicyPreviewRow } from "../protocol/index.js";
import { SwitchboardError, reduceAgentState } from "../protocol/index.js";
import { Session } from "./session.js";
import type { SessionContext, SessionRecord, ShutdownOptions } from "./session.js";
import { heldAgentProcess, launchHeldAgent } from "./held-agent-launch.js";
import type { KeptProcess } from "./held-agent-launch.js";
import { readKeptTurn } from "../agents/held-turn.js";
import type { HeldTurn, KeptTurn } from "../agents/held-turn.js";
import { TurnReplay } from "../agents/turn-replay.js";
import type { AgentSessionOptions } from "../agents/agent-session-types.js";
import type { TurnKeeper } from "../agents/adapter.js";
import { Holders } from "./holders.js";
import { processStartTime, signalProcess, terminateLeftovers } from "./processes.js";
import { TERMINATE_GRACE_MS } from "./session-manager.js";
import { OpenRuns, RUN_BOOKKEEPING } from "./open-runs.js";
import { eventsAfter, runSoFar } from "./continued-run.js";
import { previewPolicy } from "./policy-preview.js";
import { AGENT_STATE_EVENTS, caughtUpAgentState } from "./agent-state-catch-up.js";

export interface AgentStartOptions {
  spec: AgentSpec;
  /** Replaces the adapter the spec names (agents served by plugins). */
  adapter?: ((ctx: AdapterContext) => AgentAdapter) | undefined;
  cwd: string;
  deltaThrottleMs?: number | undefined;
  stallNoticeMs?: number | undefined;
  maxRunTextBytes?: number | undefined;
  /** Told each `session/update` variant the gateway does not know (the metrics count them). */
  onUnknownUpdate?: ((variant: string) => void) | undefined;
  children: ChildTerminalFactory;
  logger?: AgentLogger;
}

/**
 * An agent session as the gateway sees it: the run lane and adapter of src/agents behind the
 * common Session interface, so every transport prompts, aborts and answers permissions the
 * same way. Runs belong to the session, never to the connection that started them.
 */
export class AgentGatewaySession extends Session {
  private agent: AgentSession | undefined;
  /** Runs, permission requests and elicitations not ended, kept in the record (open-runs.ts). */
  private readonly open: OpenRuns;
  private readonly stopTracking: () => void;
  private resuming: Promise<void> | undefined;
  /** Restored running with its agent under a live holder: {@link adopt} takes it over. */
  private awaitingAdoption = false;
  /** The held process {@link adopt} gives the agent, once. */
  private adoptable: AgentChild | undefined;
  /** The permission policy of the agent's config entry (or inline spec), as the session started. */
  private agentPolicy: PermissionPolicy | undefined;

  constructor(record: SessionRecord, log: SessionLog, ctx: SessionContext) {
    super(record, log, ctx);
    this.open = new OpenRuns(record);
    // Published events only: what the record says is open is then never ahead of the log.
    this.stopTracking = log.subscribe((entry) => {
      if (RUN_BOOKKEEPING.has(entry.type)) {
        const event = eventOf(entry);
        if (this.open.track(event)) {
          // Queued behind the events that changed it.
          this.open.keepIn(this.record);
          this.persist();
        }
        this.noteAttention(event);
      } else if (AGENT_STATE_EVENTS.has(entry.type)) this.keepAgentState(eventOf(entry));
    });
    const caughtUp = caughtUpAgentState(record.agentState, log);
    if (caughtUp !== undefined) {
      record.agentState = caughtUp;
      this.persist();
    }
  }

  start(options: AgentStartOptions, adopt?: AgentSessionOptions["adopt"], replay?: TurnReplay): void {
    this.keepWhatIsNotKept(options.spec);
    this.agentPolicy = options.spec.permissionPolicy;
    const processes = this.heldProcesses();
    this.agent = createAgentSession({
      sessionId: this.id,
      log: replay ?? this.log,
      ...(replay ? { replay } : {}),
      ...(processes ? { turns: this.turnKeeper(options.logger) } : {}),
      // The agent is held back while the log's store is behind, as a terminal's process is.
      room: () => this.log.backlog.room(),
      spec: options.spec,
      cwd: options.cwd,
      clock: this.ctx.clock,
      children: options.children,
      ...(options.deltaThrottleMs !== undefined ? { deltaThrottleMs: options.deltaThrottleMs } : {}),
      ...(options.stallNoticeMs !== undefined ? { stallNoticeMs: options.stallNoticeMs } : {}),
      ...(options.maxRunTextBytes !== undefined ? { maxRunTextBytes: options.maxRunTextBytes } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.adapter ? { adapter: options.adapter } : {}),
      ...(options.onUnknownUpdate ? { onUnknownUpdate: options.onUnknownUpdate } : {}),
      agentSessionId: (this.record as SessionRecord & KeptConversation).agentSessionId,
      onAgentSession: (id, cannotReload) => this.keepConversation(id, cannotReload),
      processes,
      adopt,
      permissionPolicy: this.permissionPolicy().policy,
    });
    this.agent.onStateChange(() => {
      this.keepAgentProcess();
      this.touch();
      this.changed();
    });
  }

  /**
   * With holders (`ctx.holders`): the agent's process runs under one, so it outlives the gateway
   * (docs/agents.md, "Agents across gateway restarts"); the record names the holder.
   */
  private heldProcesses(): AgentProcesses | undefined {
    const holders = this.ctx.holders;
    if (holders === undefined) return undefined;
    return {
      start: (launch) =>
        launchHeldAgent({ holders, launch, sessionId: this.id, record: this.record, persist: () => this.persist() }),
      adopted: () => {
        const adoptable = this.adoptable;
        this.adoptable = undefined;
        return adoptable;
      },
    };
  }

  /**
   * At start, for a session restored running whose agent runs under a live holder: it waits for
   * {@link adopt}, which the gateway calls once it can build the agent's start options.
   */
  override adoptHeld(): boolean {
    const record = this.record as SessionRecord & KeptProcess;
    const ref = record.holder;
    const holders = this.ctx.holders;
    if (ref == null || record.agentHolderName === undefined || typeof record.agentPid !== "number") return false;
    if (!Holders.alive(ref)) {
      this.markLost(`its agent's holder (pid ${ref.pid}) was gone when the gateway started: it was killed or crashed`);
      return true;
    }
    if (holders === undefined) {
      // Nobody here can steer it: the holder is ended, its agent with it (markLost).
      signalProcess(ref.pid, "SIGTERM");
      return false;
    }
    const kept = readKeptTurn((record as SessionRecord & KeptTurnRecord).heldTurn);
    this.keptTurn = kept;
    this.adoptable = heldAgentProcess({
      holders,
      record,
      persist: () => this.persist(),
      name: record.agentHolderName,
      holder: ref,
      childPid: record.agentPid,
      adopted: true,
      kept: kept?.kind === "turn" ? kept.turn : undefined,
    });
    this.awaitingAdoption = true;
    return true;
  }

  /** Restored under a live holder, waiting for {@link adopt}. */
  get adopting(): boolean {
    return this.awaitingAdoption;
  }

  /**
   * Takes over the agent process an earlier gateway left under its holder, in the conversation
   * it has. With a kept turn (held-turn.ts) the run in flight goes on and the runs queued behind
   * it wait again (test/agents/held-turn.test.ts); without one, the runs that gateway left open
   * end `chat.aborted`, the agent is told `session/cancel` and takes the next prompt.
   */
  adopt(options: AgentStartOptions): void {
    if (!this.awaitingAdoption) return;
    this.awaitingAdoption = false;
    const kept = this.keptTurn;
    if (kept?.kind !== "turn") {
      if (kept?.kind === "refused")
        options.logger?.warn({ sessionId: this.id, reason: kept.reason }, "turn not continued");
      const turnOpen = this.open.close(this.log, kept?.reason ?? GATEWAY_RESTARTED, kept !== undefined) > 0;
      this.start(options, { turnOpen });
      return;
    }
    const turn = kept.turn;
    const runId = turn.run?.runId;
    // The run in flight goes on, and the runs queued behind it wait again (their prompts went
    // nowhere yet); a run started that the record does not name ends.
    this.open.readAll(this.log);
    const queued = this.open.queued(this.log, runId);
    const soFar =
      runId !== undefined && this.open.runs.has(runId) ? runSoFar(this.log, runId, turn.cursor.seq) : undefined;
    // A run whose prompt never reached the agent (the record names no prompt id) is sent its
    // prompt now; if retention dropped that prompt from the log, there is nothing to send: the
    // run ends as one the restart cut off (never an empty prompt), and the agent has no turn open.
    const promptLost = soFar?.promptRead === false && turn.run?.promptId === null;
    const continued = promptLost ? undefined : soFar?.run;
    const keep = new Set([...(continued !== undefined ? [continued.runId] : []), ...queued.map((q) => q.runId)]);
    const aborted = this.open.close(this.log, GATEWAY_RESTARTED, false, keep);
    if (continued === undefined && aborted > 0 && !promptLost) {
      // A run the record does not name as in flight (its record was not committed before the
      // gateway died) ended: the agent is told to stop that turn, as without a kept turn.
      this.start(options, { turnOpen: true, queued });
      return;
    }
    const replay = new TurnReplay(this.log, eventsAfter(this.log, turn.cursor.seq), continued?.runId);
    this.replay = replay;
    this.continuedRun = continued?.runId;
    this.start(options, { turnOpen: false, continued, queued }, replay);
  }

  /** The kept turn read at {@link adoptHeld}, and the log wrapper re-read stdout goes through. */
  private keptTurn: KeptTurn | undefined;
  private replay: TurnReplay | undefined;
  private continuedRun: string | undefined;

  /** Where the agent session keeps its turn in flight: the record (held-turn.ts). */
  private turnKeeper(logger: AgentStartOptions["logger"]): TurnKeeper {
    return {
      kept: () => (this.keptTurn?.kind === "turn" ? this.keptTurn.turn : undefined),
      save: (turn) => {
        // The continued run is over: what comes now is new, nothing is expected again.
        if (this.replay !== undefined && turn.run?.runId !== this.continuedRun) this.replay.stop();
        (this.record as SessionRecord & KeptTurnRecord).heldTurn = turn;
        this.persist();
      },
      appended: () => this.log.appendedHead,
      published: () => this.log.head,
      replaying: () => this.replay?.caughtUp === false,
      flush: () => {
        if (this.ctx.flush === undefined) return false;
        try {
          this.ctx.flush();
          return true;
        } catch (error) {
          // The disk refuses commits now (LOG_UNAVAILABLE for writers): the record stays queued and
          // the answer goes out anyway; a crash before the disk is back may see it answered again.
          logger?.warn({ sessionId: this.id, err: String(error) }, "turn record not committed before an answer");
          return false;
        }
      },
      skipped: (method) => this.replay?.skip(LOGGED_BY_REQUEST[method]),
    };
  }

  /** The agent cannot be adopted (`reason`): the session is lost, its held process ended. */
  abandonAdoption(reason: string): void {
    if (!this.awaitingAdoption) return;
    this.awaitingAdoption = false;
    this.adoptable = undefined;
    const ref = this.record.holder;
    if (ref != null) signalProcess(ref.pid, "SIGTERM");
    this.markLost(reason);
  }

  /**
   * An inline agent's `env` and `authMethod` are not kept in the record (they may hold keys), so
   * it cannot start again as it was after a restart: the record names what is missing, and a
   * resume says so instead of failing later as the agent's own error (a missing key reads as
   * AGENT_AUTH_REQUIRED).
   */
  private keepWhatIsNotKept(spec: AgentSpec): void {
    if (!this.record.agent?.startsWith("inline:")) return;
    const missing = [
      ...(spec.env !== undefined && Object.keys(spec.env).length > 0 ? ["env"] : []),
      ...(spec.authMethod !== undefined ? ["authMethod"] : []),
    ];
    const record = this.record as SessionRecord & KeptConversation;
    if (missing.length === 0 || record.notKept !== undefined) return;
    record.notKept = missing;
    this.persist();
  }

  /** Why this session cannot be resumed whatever its agent offers, or undefined. */
  private cannotResumeHere(): string | undefined {
    const notKept = (this.record as SessionRecord & KeptConversation).notKept;
    if (notKept === undefined) return undefined;
    return `session ${this.id} was given its agent inline with ${notKept.join(" and ")}, which the gateway does not keep (it may hold keys): it cannot start the agent as it was; configure the agent in the config file (agents) to resume such sessions, and start a new session`;
  }

  /**
   * Keeps the agent process's pid and start time in the record, so that the next start after a
   * crash ends what is left of it (an agent that ignores the end of its stdin, as codex-acp
   * does, outlives the gateway), and never signals a process that merely got the same pid.
   */
  private keepAgentProcess(): void {
    const pid = this.agent?.pid() ?? null;
    const record = this.record as SessionRecord & KeptProcess;
    if (pid === null || record.agentPid === pid) return;
    const start = processStartTime(pid);
    if (start === null) return;
    record.agentPid = pid;
    record.agentPidStart = start;
    this.persist();
  }

  /**
   * Runs a lost session again, in the same log (docs/agents.md, "Resuming a lost session"): the
   * agent starts at once and reloads the conversation it had (ACP `session/load`), then a
   * `resumed` event follows the `lost` one and prompts are taken as before.
   * @throws SwitchboardError AGENT_CANNOT_RESUME (not lost; the agent cannot load its
   * conversation), or why the agent did not start; the session then stays lost.
   */
  resume(options: AgentStartOptions, by: Actor): Promise<void> {
    if (this.record.state !== "lost") {
      return Promise.reject(
        new SwitchboardError(
          "AGENT_CANNOT_RESUME",
          this.running
            ? `session ${this.id} is running: there is nothing to resume`
            : `session ${this.id} was stopped, not lost: only a lost session can be resumed; start a new one`,
        ),
      );
    }
    const notHere = this.cannotResumeHere();
    if (notHere !== undefined) return Promise.reject(new SwitchboardError("AGENT_CANNOT_RESUME", notHere));
    this.resuming ??= this.startAgain(options, by).finally(() => (this.resuming = undefined));
    return this.resuming;
  }

  private async startAgain(options: AgentStartOptions, by: Actor): Promise<void> {
    this.start(options);
    const agent = this.agent!;
    let loaded: boolean;
    try {
      loaded = await agent.resume();
    } catch (error) {
      this.agent = undefined;
      await agent.dispose();
      throw error;
    }
    const record = this.record;
    record.state = "running";
    record.exitCode = null;
    record.signal = null;
    record.endedAt = null;
    this.log.markResumed();
    this.log.append({ type: "resumed", by, loaded });
    this.touch();
    this.persist();
    this.changed();
  }

  /** Keeps the agent's conversation id in the record, for a resume after the gateway died, and why it cannot. */
  private keepConversation(agentSessionId: string, cannotReload: string | undefined): void {
    const record = this.record as SessionRecord & KeptConversation;
    if (record.agentSessionId === agentSessionId && record.cannotReload === cannotReload) return;
    record.agentSessionId = agentSessionId;
    if (cannotReload === undefined) delete record.cannotReload;
    else record.cannotReload = cannotReload;
    this.persist();
  }

  /**
   * The agent process's pid and what it takes in a prompt while it runs (the record keeps null: the
   * process changes across restarts); once lost, why it cannot be resumed, if its agent said so when it last ran.
   */
  override info(): SessionInfo {
    const info = super.info();
    if (info.state === "running") {
      const caps = this.agent?.promptCapabilities();
      return {
        ...info,
        pid: this.agent?.pid() ?? null,
        ...(caps !== undefined ? { promptCapabilities: { ...caps } } : {}),
      };
    }
    const cannotReload = this.cannotResumeHere() ?? (this.record as SessionRecord & KeptConversation).cannotReload;
    return info.state === "lost" && cannotReload !== undefined ? { ...info, cannotResume: cannotReload } : info;
  }

  protected override lastLine(): string | null {
    return this.agent ? lastLine(this.agent.latestAnswer()) : null;
  }

  /**
   * Its info reads the live agent (pid, prompt capabilities, run, latest answer), which changes
   * without telling the session: its list entry is serialised at each list.
   */
  protected override get summaryKept(): boolean {
    return false;
  }

  protected override runInfo(): SessionInfo["run"] {
    if (!this.agent) return null;
    return { ...this.agent.info(), activity: this.agent.state() };
  }

  /** Queues a prompt; `from` names who sent a routed message. */
  prompt(input: string | PromptInput, by: Actor, from?: MessageSender): { runId: string } {
    this.assertRunning();
    this.log.assertWritable();
    const result = this.agent!.prompt(input, by, from);
    this.touch();
    // Who prompts has seen how the last run ended.
    this.clearAttention(by, RUN_ENDS);
    return result;
  }

  /**
   * The policy that answers this session's permission requests: the session's own (`PUT
   * .../permission-policy`, kept in the record), else its agent's config entry's, else none.
   */
  permissionPolicy(): { policy: PermissionPolicy | undefined; source: "session" | "agent" | "none" } {
    const own = (this.record as SessionRecord & KeptPolicy).permissionPolicy;
    if (own !== undefined && own !== null) return { policy: own, source: "session" };
    if (this.agentPolicy !== undefined) return { policy: this.agentPolicy, source: "agent" };
    return { policy: undefined, source: "none" };
  }

  /**
   * Sets the session's own policy (null: back to its agent's), for the requests from now on;
   * logged as `permission.policy` and kept in the record (a resumed session keeps it).
   */
  setPermissionPolicy(policy: PermissionPolicy | null, by: Actor): void {
    this.assertRunning();
    this.log.assertWritable();
    const record = this.record as SessionRecord & KeptPolicy;
    if (policy === null) delete record.permissionPolicy;
    else record.permissionPolicy = policy;
    this.log.append({ type: "permission.policy", policy, by });
    this.persist();
    if (this.agent) this.agent.permissionPolicy = this.permissionPolicy().policy;
  }

  /**
   * What `policy` would have answered to each of the session's past permission requests, beside
   * what they got (policy-preview.ts).
   */
  previewPolicy(policy: PermissionPolicy): PolicyPreviewRow[] {
    return previewPolicy(this.log, policy, this.record.cwd ?? "/");
  }

  /**
   * An agent needs someone while a permission request or elicitation waits (until answered), and
   * once its last run finished or failed (until someone looks or prompts). From published events.
   */
  private noteAttention(event: SessionEvent): void {
    switch (event.type) {
      case "permission.request":
        // A rule answers it at once: nobody is needed.
        if (event.rule === undefined) this.setAttention("permission", event.title);
        break;
      case "elicitation.request":
        this.setAttention("elicitation", event.message);
        break;
      case "permission.resolved":
      case "elicitation.resolved":
        if (this.open.requests.size === 0 && this.open.elicitations.size === 0)
          this.clearAttention(event.by ?? undefined, ASKS);
        break;
      case "chat.final":
        if (this.open.runs.size === 0) this.setAttention("run-finished", lastLine(event.text) ?? undefined);
        break;
      case "chat.error":
        this.setAttention("run-failed", event.message);
        break;
      default:
        break;
    }
  }

  /** A viewer with control looked: how a run ended is seen (an open request still waits for its answer). */
  override seen(by: Actor): void {
    this.clearAttention(by, RUN_ENDS);
  }

  /** Aborts the active run; `all` also clears the queue. */
  abort(all: boolean, by: Actor): { runId: string } {
    this.assertRunning();
    const result = this.agent!.abort({ all }, by);
    return result as { runId: string };
  }

  /** Answers a pending permission request. */
  answerPermission(requestId: string, optionId: string, by: Actor): void {
    this.assertRunning();
    this.agent!.answerPermission(requestId, optionId, by);
  }

  /** Answers an open elicitation (its content checked against the form first). */
  answerElicitation(
    requestId: string,
    answer: { action: "accept" | "decline" | "cancel"; content?: Readonly<Record<string, unknown>> | undefined },
    by: Actor,
  ): void {
    this.assertRunning();
    this.agent!.answerElicitation(requestId, answer, by);
  }

  /**
   * Makes sure the agent takes `content` (images, audio, files) before a prompt of it is queued,
   * starting the agent when it has not said yet what it takes (AgentSession.checkContent).
   */
  async checkContent(content: readonly ContentBlock[]): Promise<void> {
    this.assertRunning();
    await this.agent!.checkContent(content);
  }

  /**
   * Sends the agent a choice of mode or setting (docs/agents.md, "Choosing"): starts the agent if
   * it has not started (its modes and settings come with its session), checks the choice against
   * what it offers (INVALID_OPTION naming them, nothing sent), then waits for its answer; the state
   * shown changes once it confirmed. `recheck`: the caller's checks again after the start (the
   * control lease may have changed meanwhile); `by`: who asked, in the event the agent's
   * confirmation logs. Tested in test/agents/acp-choices.test.ts.
   */
  async choose(choice: AgentChoice, recheck: () => void, by: Actor): Promise<AgentState | undefined> {
    this.assertRunning();
    await this.agent!.startAgent();
    // What the agent said at its start is in the record once published.
    await this.log.whenPublished();
    recheck();
    checkChoice(this.record.agentState, choice);
    await this.agent!.choose(choice, by);
    await this.log.whenPublished();
    return this.record.agentState;
  }

  async terminate(_by: Actor): Promise<void> {
    if (!this.running) return;
    // Ended for good: the agent may free its conversation (ACP session/close).
    await this.agent?.dispose({ close: true });
    this.finish("exited", null, null);
    await this.ended();
  }

  /**
   * The gateway stops: the agent is stopped (its runs end with `chat.aborted`, its process group
   * gets SIGTERM, then SIGKILL) but its conversation is not over, as it is not after a crash:
   * the session ends `lost`, its record says SIGTERM, and it can be resumed after the next start.
   */
  override async shutdown(_by: Actor, options: ShutdownOptions = {}): Promise<void> {
    if (!this.running) return;
    if (this.ctx.holders?.onStop === "keep" && options.endHeld !== true && this.agent?.held === true) {
      // It runs on under its holder; the next gateway adopts it (docs/agents.md).
      await this.agent.detach();
      return;
    }
    await this.agent?.dispose();
    this.finish("lost", null, "SIGTERM", GATEWAY_STOPPED);
    await this.ended();
  }

  override dispose(): void {
    super.dispose();
    this.stopTracking();
    void this.agent?.dispose();
  }

  /**
   * Keeps what the agent said of itself in the record (`agentState`), from published events: what
   * GET /v1/sessions/:id shows is never ahead of the log, survives a restart with the record and
   * reaches a cluster copy with it (test/agents/acp-agent-state.test.ts).
   */
  private keepAgentState(event: SessionEvent): void {
    const next = reduceAgentState(this.record.agentState, event);
    if (next === this.record.agentState || next === undefined) return;
    this.record.agentState = next;
    this.persist();
    this.changed();
  }

  /**
   * The gateway died while this session ran (restore): the agent process is gone with it, so the
   * runs it left open — active or queued — and their open permission requests can never end by
   * themselves. They are ended now as a deleted session's are (`permission.resolved` cancelled,
   * then one `chat.aborted` per run), before the `lost` event, so every run that got `run.queued`
   * still has exactly one terminal event and the session's end stays its last event.
   */
  override markLost(reason: string): void {
    if (!this.running) return;
    this.open.close(this.log);
    const { agentPid, agentPidStart } = this.record as SessionRecord & KeptProcess;
    const left =
      typeof agentPid === "number" && typeof agentPidStart === "number"
        ? terminateLeftovers(agentPid, agentPidStart, TERMINATE_GRACE_MS)
        : 0;
    super.markLost(
      left > 0 ? `${reason}; ${left} process(es) of its agent were still running and were terminated` : reason,
    );
  }
}

/**
 * What an agent session's record keeps of its agent: the ACP session id its conversation has,
 * and, for an agent without ACP `session/load`, why it cannot reload it (`cannotResume`).
 */
interface KeptConversation {
  agentSessionId?: string;
  cannotReload?: string;
  /** What an inline agent was given that the record does not keep (`env`, `authMethod`). */
  notKept?: string[];
}

/** What the record keeps of an agent's turn under a holder (held-turn.ts). */
interface KeptTurnRecord {
  heldTurn?: HeldTurn;
}

/** What handling each request of the agent's logs (one event), not logged again when it is skipped after a restart. */
const LOGGED_BY_REQUEST: Readonly<Record<string, string>> = {
  "session/request_permission": "permission.request",
  "elicitation/create": "elicitation.request",
  "terminal/create": "child",
};

/** The `reason` of the runs a gateway left open when it stopped or died while its agent ran on under its holder. */
export const GATEWAY_RESTARTED =
  "the gateway restarted during this run: the agent process runs on and was told to stop this turn (session/cancel); prompt again to go on with the conversation";

/** The `lost` reason of an agent session the gateway stopped (SIGTERM, SIGINT, `close()`). */
export const GATEWAY_STOPPED =
  "the gateway was stopped while the agent session ran; resume it to go on with its conversation";

/** The attentions a look or a prompt ends. */
const RUN_ENDS: readonly AttentionReason[] = ["run-finished", "run-failed"];
/** The attentions an answer ends. */
const ASKS: readonly AttentionReason[] = ["permission", "elicitation"];

/** The session's own permission policy, kept in its record (absent: its agent's). */
interface KeptPolicy {
  permissionPolicy?: PermissionPolicy | null;
}

export function restoreAgentSession(record: SessionRecord, log: SessionLog, ctx: SessionContext): AgentGatewaySession {
  return new AgentGatewaySession(record, log, ctx);
}
