import { checkChoice } from "../agents/acp-choices.js";
import type { AgentChoice } from "../agents/acp-choices.js";
import { randomBytes } from "node:crypto";
import { createAgentSession } from "../agents/index.js";
import type {
  AdapterContext,
  AgentAdapter,
  AgentChild,
  AgentProcesses,
  AgentLogger,
  AgentSession,
  AgentSpec,
  ChildTerminal,
  ChildTerminalFactory,
  ChildTerminalSpec,
} from "../agents/index.js";
import { childEnv } from "../core/child-env.js";
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
import {
  AGENT_STATE_EVENT_TYPES,
  LIMITS,
  SwitchboardError,
  decide,
  reduceAgentState,
  replaceHiddenChars,
} from "../protocol/index.js";
import { isPublicError } from "../protocol/errors.js";
import { Session } from "./session.js";
import type { SessionContext, SessionOwner, SessionRecord, ShutdownOptions } from "./session.js";
import type { SessionManager } from "./session-manager.js";
import { HeldAgentProcess } from "./held-agent-process.js";
import { readKeptTurn } from "../agents/held-turn.js";
import type { HeldTurn, KeptTurn } from "../agents/held-turn.js";
import { TurnReplay } from "../agents/turn-replay.js";
import type { AgentSessionOptions, ContinuedRun, QueuedRun } from "../agents/agent-session-types.js";
import type { TurnKeeper } from "../agents/adapter.js";
import { Holders } from "./holders.js";
import type { HolderRef, Launched } from "./holders.js";
import { processStartTime, signalProcess, terminateLeftovers } from "./processes.js";
import { OUTPUT_DRAIN_TIMEOUT_MS } from "./terminal-process.js";
import { TERMINATE_GRACE_MS } from "./session-manager.js";
import { createTerminalSession } from "./terminal-session.js";
import type { TerminalSession } from "./terminal-session.js";

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
  /** Runs queued or started and not ended, in the order they were queued (see {@link RunBookkeeping}). */
  private readonly openRuns: Set<string>;
  /** Permission requests not resolved: request id → run id. */
  private readonly openRequests: Map<string, string>;
  /** Elicitations not resolved: request id → run id. */
  private readonly openElicitations: Map<string, string>;
  private readonly stopTracking: () => void;
  private resuming: Promise<void> | undefined;
  /** Restored running with its agent under a live holder: {@link adopt} takes it over. */
  private awaitingAdoption = false;
  /** The held process {@link adopt} gives the agent, once. */
  private adoptable: AgentChild | undefined;
  /** Runs started and not ended (not kept in the record: read from the log at a restart). */
  private readonly startedRuns = new Set<string>();
  /** The permission policy of the agent's config entry (or inline spec), as the session started. */
  private agentPolicy: PermissionPolicy | undefined;

  constructor(record: SessionRecord, log: SessionLog, ctx: SessionContext) {
    super(record, log, ctx);
    const saved = record as SessionRecord & RunBookkeeping;
    this.openRuns = new Set(saved.openRuns ?? []);
    this.openRequests = new Map(saved.openRequests ?? []);
    this.openElicitations = new Map(saved.openElicitations ?? []);
    // Published events only: what the record says is open is then never ahead of the log.
    this.stopTracking = log.subscribe((entry) => {
      if (RUN_BOOKKEEPING.has(entry.type)) {
        const event = eventOf(entry);
        if (this.track(event)) this.saveBookkeeping();
        this.noteAttention(event);
      } else if (AGENT_STATE_EVENTS.has(entry.type)) this.keepAgentState(eventOf(entry));
    });
    this.catchUpAgentState();
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
      start: (launch) => {
        // A name of its own per process: the holder of an agent that ended may not be gone yet.
        const name = `${this.id}.agent-${randomBytes(4).toString("hex")}`;
        const command = [launch.command, ...launch.args];
        let started: Launched;
        try {
          started = holders.launchSync(name, {
            command,
            cwd: launch.cwd,
            env: childEnv(launch.env),
            pty: false,
            cols: 80,
            rows: 24,
            drainTimeoutMs: OUTPUT_DRAIN_TIMEOUT_MS,
          });
        } catch (error) {
          throw new SwitchboardError("SPAWN_FAILED", `cannot start ${launch.command}: ${(error as Error).message}`);
        }
        const record = this.record as SessionRecord & KeptProcess;
        record.holder = { pid: started.holderPid, start: started.holderStart, outputBase: 0 };
        record.agentHolderName = name;
        record.agentPid = started.childPid;
        record.agentPidStart = processStartTime(started.childPid) ?? undefined;
        this.persist();
        return this.heldProcess(
          holders,
          name,
          { pid: started.holderPid, start: started.holderStart },
          started.childPid,
          false,
          undefined,
        );
      },
      adopted: () => {
        const adoptable = this.adoptable;
        this.adoptable = undefined;
        return adoptable;
      },
    };
  }

  private heldProcess(
    holders: Holders,
    name: string,
    holder: Pick<HolderRef, "pid" | "start">,
    childPid: number,
    adopted: boolean,
    kept: HeldTurn | undefined,
  ) {
    const process: HeldAgentProcess = new HeldAgentProcess({
      // A new process: the adapter acknowledges (from 0); an adopted one goes on from its kept turn.
      ...(!adopted ? { skipTo: 0 } : {}),
      ...(kept !== undefined
        ? { skipTo: kept.cursor.offset, committedMark: kept.mark, answered: new Set(kept.answered.map(([id]) => id)) }
        : {}),
      socketPath: holders.socketPath(name),
      holderPid: holder.pid,
      holderStart: holder.start,
      childPid,
      onRefused: (refusal) => holders.refused(this.record, refusal),
      command: this.record.command?.[0] ?? "agent",
      ...(adopted ? { onGreeted: () => holders.adopted(this.record) } : {}),
      onEnded: () => {
        const record = this.record as SessionRecord & KeptProcess;
        if (record.agentHolderName !== name) return;
        record.holder = null;
        delete record.agentHolderName;
        this.persist();
      },
    });
    return process;
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
    this.adoptable = this.heldProcess(
      holders,
      record.agentHolderName,
      ref,
      record.agentPid,
      true,
      kept?.kind === "turn" ? kept.turn : undefined,
    );
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
      const turnOpen = this.closeOpenRuns(kept?.reason ?? GATEWAY_RESTARTED, kept !== undefined) > 0;
      this.start(options, { turnOpen });
      return;
    }
    const turn = kept.turn;
    const runId = turn.run?.runId;
    // The run in flight goes on, and the runs queued behind it wait again (their prompts went
    // nowhere yet); a run started that the record does not name ends.
    this.trackOpenRuns();
    const queued = this.queuedRuns(runId);
    const keep = new Set([...(runId !== undefined ? [runId] : []), ...queued.map((q) => q.runId)]);
    const aborted = this.closeOpenRuns(GATEWAY_RESTARTED, false, keep);
    const continued =
      runId !== undefined && this.openRuns.has(runId) ? this.runSoFar(runId, turn.cursor.seq) : undefined;
    if (continued === undefined && aborted > 0) {
      // A run the record does not name as in flight (its record was not committed before the
      // gateway died) ended: the agent is told to stop that turn, as without a kept turn.
      this.start(options, { turnOpen: true, queued });
      return;
    }
    const replay = new TurnReplay(this.log, this.eventsAfter(turn.cursor.seq), continued?.runId);
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
        try {
          this.ctx.flush?.();
        } catch (error) {
          // The disk refuses commits now (LOG_UNAVAILABLE for writers): the record stays queued and
          // the answer goes out anyway; a crash before the disk is back may see it answered again.
          logger?.warn({ sessionId: this.id, err: String(error) }, "turn record not committed before an answer");
        }
      },
      skipped: (method) => this.replay?.skip(LOGGED_BY_REQUEST[method]),
    };
  }

  /** Every event after `seq` (what re-read stdout may produce again). */
  private eventsAfter(seq: number): SessionEvent[] {
    const events: SessionEvent[] = [];
    let since = Math.max(seq, this.log.first - 1);
    for (;;) {
      const page = this.log.read(since, { limit: 1000 });
      for (const entry of page.entries) events.push(eventOf(entry));
      if (page.next >= page.head || page.next <= since) break;
      since = page.next;
    }
    return events;
  }

  /** Run `runId` as the log has it up to `seq`: its prompt and the events {@link Run.restore} goes through. */
  private runSoFar(runId: string, seq: number): ContinuedRun {
    const run: ContinuedRun = { runId, text: "", by: { name: "gateway", role: "system" }, events: [] };
    let since = this.log.first - 1;
    for (;;) {
      const page = this.log.read(since, { limit: 1000, types: RUN_STATE });
      for (const entry of page.entries) {
        if (entry.seq > seq) return run;
        const event = eventOf(entry);
        if (!("runId" in event) || event.runId !== runId) continue;
        if (event.type === "run.queued") {
          run.text = event.text;
          run.by = event.by;
          if (event.content !== undefined) run.content = event.content;
        } else run.events.push(event);
      }
      if (page.next >= page.head || page.next <= since) return run;
      since = page.next;
    }
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
   * What `policy` would have answered to each of the session's past permission requests (the
   * newest {@link MAX_PREVIEW_REQUESTS} its log keeps), beside what they got.
   */
  previewPolicy(policy: PermissionPolicy): PolicyPreviewRow[] {
    const kept: PolicyPreviewRow[] = [];
    const byId = new Map<string, PolicyPreviewRow>();
    const cwd = this.record.cwd ?? "/";
    let since = this.log.first - 1;
    for (let page = 0; page < MAX_PREVIEW_PAGES && since < this.log.head; page++) {
      const read = this.log.read(since, { limit: PREVIEW_PAGE_EVENTS, types: PREVIEW_EVENTS });
      for (const entry of read.entries) {
        const event = eventOf(entry);
        if (event.type === "permission.request") {
          const verdict = decide(policy, event, cwd);
          const row: PolicyPreviewRow = {
            seq: event.seq,
            requestId: event.requestId,
            runId: event.runId,
            title: event.title,
            ...(event.toolCall !== undefined ? { toolCall: event.toolCall } : {}),
            rule: verdict.rule,
            answer: verdict.answer,
            ...(verdict.answer !== "ask" ? { optionId: verdict.optionId } : {}),
            ...("reason" in verdict && verdict.reason !== undefined ? { reason: verdict.reason } : {}),
            got: null,
          };
          kept.push(row);
          byId.set(event.requestId, row);
          if (kept.length > MAX_PREVIEW_REQUESTS) byId.delete(kept.shift()!.requestId);
        } else if (event.type === "permission.resolved") {
          const row = byId.get(event.requestId);
          if (row !== undefined)
            row.got = {
              outcome: event.outcome,
              optionId: event.optionId,
              by: event.by?.id ?? event.by?.name ?? null,
            };
        }
      }
      if (read.next <= since) break;
      since = read.next;
    }
    return kept;
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
        if (this.openRequests.size === 0 && this.openElicitations.size === 0)
          this.clearAttention(event.by ?? undefined, ASKS);
        break;
      case "chat.final":
        if (this.openRuns.size === 0) this.setAttention("run-finished", lastLine(event.text) ?? undefined);
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

  /** Notes what `event` opens or ends; returns whether that changed anything. */
  private track(event: SessionEvent): boolean {
    switch (event.type) {
      case "run.queued":
      case "run.started":
        if (event.type === "run.started") this.startedRuns.add(event.runId);
        if (this.openRuns.has(event.runId)) return false;
        this.openRuns.add(event.runId);
        return true;
      case "chat.final":
      case "chat.error":
      case "chat.aborted":
        this.startedRuns.delete(event.runId);
        return this.openRuns.delete(event.runId);
      case "permission.request":
        this.openRequests.set(event.requestId, event.runId);
        return true;
      case "permission.resolved":
        return this.openRequests.delete(event.requestId);
      case "elicitation.request":
        this.openElicitations.set(event.requestId, event.runId);
        return true;
      case "elicitation.resolved":
        return this.openElicitations.delete(event.requestId);
      default:
        return false;
    }
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
   * The record is written in the commit after the events its `agentState` was reduced from: a
   * gateway killed between the two left it behind its log. At start the state events after it, in
   * the last {@link AGENT_STATE_CATCH_UP_EVENTS} of the log, are reduced again
   * (test/agents/acp-agent-state.test.ts).
   */
  private catchUpAgentState(): void {
    const record = this.record;
    const since = Math.max(
      record.agentState?.seq ?? 0,
      this.log.first - 1,
      this.log.head - AGENT_STATE_CATCH_UP_EVENTS,
    );
    if (since >= this.log.head) return;
    let state = record.agentState;
    for (const entry of this.log.read(since, { limit: AGENT_STATE_CATCH_UP_EVENTS, types: AGENT_STATE_EVENTS })
      .entries) {
      state = reduceAgentState(state, eventOf(entry));
    }
    if (state === record.agentState || state === undefined) return;
    record.agentState = state;
    this.persist();
  }

  /** Writes the open runs and requests into the record (queued behind the events that changed them). */
  private saveBookkeeping(): void {
    const record = this.record as SessionRecord & RunBookkeeping;
    record.openRuns = [...this.openRuns];
    record.openRequests = [...this.openRequests];
    record.openElicitations = [...this.openElicitations];
    this.persist();
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
    this.closeOpenRuns();
    const { agentPid, agentPidStart } = this.record as SessionRecord & KeptProcess;
    const left =
      typeof agentPid === "number" && typeof agentPidStart === "number"
        ? terminateLeftovers(agentPid, agentPidStart, TERMINATE_GRACE_MS)
        : 0;
    super.markLost(
      left > 0 ? `${reason}; ${left} process(es) of its agent were still running and were terminated` : reason,
    );
  }

  /**
   * The open runs: what the record names (runs whose `run.queued` retention may have dropped from
   * the log), then what the retained log says (the record may miss the last events before the crash).
   */
  private trackOpenRuns(): void {
    let since = this.log.first - 1;
    for (;;) {
      const page = this.log.read(since, { limit: 1000, types: RUN_BOOKKEEPING });
      for (const entry of page.entries) this.track(eventOf(entry));
      // A page may hold no events and still move on: a filtered read examines a bounded stretch.
      if (page.next >= page.head || page.next <= since) break;
      since = page.next;
    }
  }

  /**
   * The open runs never started, other than `inFlight`, in the order they were queued: each as
   * its `run.queued` says (one retention dropped is not among them, and ends as before).
   */
  private queuedRuns(inFlight: string | undefined): QueuedRun[] {
    const waiting = new Set([...this.openRuns].filter((id) => !this.startedRuns.has(id) && id !== inFlight));
    const queued: QueuedRun[] = [];
    let since = this.log.first - 1;
    while (waiting.size > queued.length) {
      const page = this.log.read(since, { limit: 1000, types: QUEUED });
      for (const entry of page.entries) {
        const event = eventOf(entry);
        if (event.type !== "run.queued" || !waiting.has(event.runId)) continue;
        queued.push({
          runId: event.runId,
          text: event.text,
          by: event.by,
          ...(event.content !== undefined ? { content: event.content } : {}),
          ...(event.from !== undefined ? { from: event.from } : {}),
        });
      }
      if (page.next >= page.head || page.next <= since) break;
      since = page.next;
    }
    return queued;
  }

  /** Ends the open runs but those in `keep` (see {@link markLost}); returns how many of them had started. */
  private closeOpenRuns(reason?: string, failed = false, keep: ReadonlySet<string> = new Set()): number {
    this.trackOpenRuns();
    for (const [requestId, runId] of [...this.openRequests]) {
      if (keep.has(runId)) continue;
      this.log.append({
        type: "permission.resolved",
        runId,
        requestId,
        outcome: "cancelled",
        optionId: null,
        by: null,
      });
    }
    for (const [requestId, runId] of [...this.openElicitations]) {
      if (keep.has(runId)) continue;
      this.log.append({
        type: "elicitation.resolved",
        runId,
        requestId,
        action: "cancel",
        by: null,
        reason: "gateway-restarted",
      });
    }
    const started = [...this.openRuns].filter((runId) => this.startedRuns.has(runId) && !keep.has(runId)).length;
    const by = reason !== undefined ? { by: { name: "gateway", role: "system" as const }, reason } : {};
    for (const runId of [...this.openRuns]) {
      if (keep.has(runId)) continue;
      // A turn whose kept state this build cannot read: the run ends naming why (held-turn.ts).
      if (failed && reason !== undefined && this.startedRuns.has(runId)) {
        this.log.append({ type: "chat.error", runId, code: "AGENT_FAILED", message: reason });
      } else this.log.append({ type: "chat.aborted", runId, ...by });
    }
    return started;
  }
}

/**
 * What an agent session's record keeps of its runs, so that a restart ends the runs and
 * permission requests the gateway left open (see {@link AgentGatewaySession.markLost}) even when
 * retention has dropped the events that opened them from the log: a run queued behind a long
 * one, or a permission request that waited, is older than `retention.maxEvents` events.
 */
interface RunBookkeeping {
  openRuns?: string[];
  openRequests?: Array<[requestId: string, runId: string]>;
  openElicitations?: Array<[requestId: string, runId: string]>;
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

/** The agent process last started, as {@link AgentGatewaySession.markLost} needs it after a crash. */
interface KeptProcess {
  agentPid?: number;
  /** Its start time (`processStartTime`): with the pid, it names that process for good. */
  agentPidStart?: number | undefined;
  /** The socket name of the holder the agent runs under (`record.holder` names the holder's process). */
  agentHolderName?: string;
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

/** What a queued run is rebuilt from after an adoption. */
const QUEUED: ReadonlySet<string> = new Set(["run.queued"]);

/** The events a continued run's state is rebuilt from (Run.restore), with its `run.queued`. */
const RUN_STATE: ReadonlySet<string> = new Set(["run.queued", "chat.delta", "chat.thought", "tool", "plan"]);

/** The `reason` of the runs a gateway left open when it stopped or died while its agent ran on under its holder. */
export const GATEWAY_RESTARTED =
  "the gateway restarted during this run: the agent process runs on and was told to stop this turn (session/cancel); prompt again to go on with the conversation";

/** The `lost` reason of an agent session the gateway stopped (SIGTERM, SIGINT, `close()`). */
export const GATEWAY_STOPPED =
  "the gateway was stopped while the agent session ran; resume it to go on with its conversation";

/** The events the record's `agentState` is reduced from. */
const AGENT_STATE_EVENTS: ReadonlySet<string> = new Set(AGENT_STATE_EVENT_TYPES);

/**
 * How far back from its head a restored session's log is read for state events its record missed
 * (see catchUpAgentState): the record is at most one commit behind; state events of a commit
 * longer than this (a flood of answer text) may stay missed until the agent's next update.
 */
export const AGENT_STATE_CATCH_UP_EVENTS = 1000;

/** The attentions a look or a prompt ends. */
const RUN_ENDS: readonly AttentionReason[] = ["run-finished", "run-failed"];
/** The attentions an answer ends. */
const ASKS: readonly AttentionReason[] = ["permission", "elicitation"];

/** The most past permission requests a policy preview answers (the newest). */
export const MAX_PREVIEW_REQUESTS = 200;
/** Events read per page, and pages at most, looking for them (bounds a preview's work on a long log). */
const PREVIEW_PAGE_EVENTS = 1000;
const MAX_PREVIEW_PAGES = 100;
const PREVIEW_EVENTS: ReadonlySet<string> = new Set(["permission.request", "permission.resolved"]);

/** The session's own permission policy, kept in its record (absent: its agent's). */
interface KeptPolicy {
  permissionPolicy?: PermissionPolicy | null;
}

/** The events that open and close runs and permission requests (what {@link AgentGatewaySession.markLost} reads). */
const RUN_BOOKKEEPING: ReadonlySet<string> = new Set([
  "run.queued",
  "run.started",
  "chat.final",
  "chat.error",
  "chat.aborted",
  "permission.request",
  "permission.resolved",
  "elicitation.request",
  "elicitation.resolved",
]);

export function restoreAgentSession(record: SessionRecord, log: SessionLog, ctx: SessionContext): AgentGatewaySession {
  return new AgentGatewaySession(record, log, ctx);
}

/**
 * Serves ACP `terminal/create` with real gateway terminal sessions whose `parent` is the agent
 * session: anyone who may see the agent session can watch what its agent runs.
 */
export function childTerminalFactory(sessions: SessionManager, owner: SessionOwner): ChildTerminalFactory {
  return {
    async create(spec: ChildTerminalSpec): Promise<ChildTerminal> {
      const session = await createTerminalSession(
        sessions,
        {
          kind: "terminal",
          command: [spec.command, ...spec.args],
          cwd: spec.cwd,
          env: spec.env,
          name: childName(spec.command),
        },
        owner,
        { parent: spec.parent.sessionId, creator: { name: `agent:${spec.parent.sessionId}`, role: "system" } },
      );
      const exitOf = () => ({ exitCode: session.record.exitCode, signal: session.record.signal });
      return {
        sessionId: session.id,
        output: () => ({
          ...tailOutput(session, spec.outputByteLimit),
          exitStatus: session.running ? null : exitOf(),
        }),
        waitForExit: async () => {
          await session.ended();
          return exitOf();
        },
        kill: () => session.terminate({ name: "agent", role: "system" }),
        release: () => session.terminate({ name: "agent", role: "system" }),
      };
    },
  };
}

const CHILD_SUFFIX = " (agent)";

/**
 * The name of an agent's child terminal: its command, which the agent chose, made a valid
 * session name — characters a name may not have (control characters: an escape sequence would
 * retitle or clear a terminal that lists it; bidirectional and invisible ones) become `?`, and
 * it is cut to fit `LIMITS.NAME_CHARS`.
 */
export function childName(command: string): string {
  const room = LIMITS.NAME_CHARS - CHILD_SUFFIX.length;
  const cut = command.length > room ? `${command.slice(0, room - 1)}…` : command;
  // Replaced after the cut, which can split a surrogate pair or a flag's tags; "?" is never longer.
  return `${replaceHiddenChars(cut)}${CHILD_SUFFIX}`;
}

/** The newest `limit` bytes of a terminal's output, starting on a character boundary. */
function tailOutput(session: TerminalSession, limit: number): { output: string; truncated: boolean } {
  const total = session.log.outputBytes;
  let from = Math.max(0, total - limit);
  let slices;
  try {
    slices = session.log.readOutput(from);
  } catch (error) {
    // Retention dropped the start of that tail: what is kept of it.
    const first = isPublicError(error) && error.code === "HISTORY_TRIMMED" ? error.details?.["first"] : undefined;
    if (typeof first !== "number") throw error;
    from = first;
    slices = session.log.readOutput(from);
  }
  const bytes = Buffer.concat(slices.map((s) => s.bytes));
  let start = 0;
  // Skip UTF-8 continuation bytes so the text does not begin in the middle of a character.
  while (start < bytes.length && start < 4 && (bytes[start]! & 0xc0) === 0x80) start++;
  return { output: bytes.subarray(start).toString("utf8"), truncated: from > 0 };
}
