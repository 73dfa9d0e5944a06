import { Writable } from "node:stream";
import * as acp from "@agentclientprotocol/sdk";
import type { AnyMessage, AnyResponse, ClientConnection } from "@agentclientprotocol/sdk";
import { SwitchboardError, unsupportedContent } from "../protocol/index.js";
import type { Actor, PromptCapabilities } from "../protocol/index.js";
import type { Clock } from "../core/clock.js";
import { cancelPendingRequests, closeAcpSession } from "./acp-close.js";
import type { AdapterContext, AdapterRun, AgentAdapter, RunOutcome } from "./adapter.js";
import type { AgentChild, ProcessEnd } from "./agent-process.js";
import { ABORT_SETTLE_TIMEOUT_MS } from "./agent-session-limits.js";
import { authRequiredMessage } from "./acp-failures.js";
import { promptOutcome } from "./acp-prompt-outcome.js";
import { AcpStartError, CLIENT_INFO } from "./acp-handshake.js";
import { startAcpAgent } from "./acp-start.js";
import type { HandshakeState } from "./acp-handshake.js";
import { BASELINE_LIFECYCLE } from "./acp-lifecycle.js";
import { AcpOutputHold } from "./acp-output-hold.js";
import { AcpChoices } from "./acp-choices.js";
import { SessionModels } from "./acp-session-models.js";
import type { AgentChoice } from "./acp-choices.js";
import { acpClient } from "./acp-requests.js";
import { AcpTerminals } from "./acp-terminals.js";
import { AcpStdoutNoise } from "./acp-stdout-noise.js";
import { applySessionUpdate, reportUpdate } from "./acp-updates.js";
import { AcpWire, isRecord } from "./acp-wire.js";
import { ReportedChanges } from "./acp-reported-changes.js";
import { ConfinedFs } from "./confined-fs.js";
import { AcpLineReader } from "./acp-line-reader.js";
import { AcpHeldTurn } from "./acp-held-turn.js";
import { webReadable } from "../system/web-readable.js";
import { describeError } from "./logger.js";
import type { AgentLogger } from "./logger.js";

/**
 * Longest ACP message (one JSON line) the gateway reads from an agent: the SDK's default. An agent
 * that sends a longer one is stopped (the SDK refuses to buffer it) and its run ends with
 * AGENT_EXITED saying so.
 */
export const ACP_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
/**
 * Most `session/update`s kept while the gateway has not read the `session/new` answer naming
 * their session (see AcpAdapter.unnamed); the rest are dropped, with a warning. Agents send one
 * or two there (Claude Code its available commands).
 */
export const MAX_UNNAMED_UPDATES = 16;
export interface AcpAdapterOptions {
  /** argv of the agent, e.g. `["gemini", "--acp"]`. */
  command: string[];
  env: Record<string, string> | undefined;
  /** An `authMethods` id the agent offers: the gateway calls ACP `authenticate` with it before `session/new`. */
  authMethod?: string | undefined;
}

interface Turn {
  run: AdapterRun;
  resolve: (outcome: RunOutcome) => void;
  settled: boolean;
  detach: () => void;
}

/**
 * Speaks ACP to one agent process, as the client: `initialize`, `session/new` (or `session/load`),
 * one `session/prompt` per run, `session/cancel` on abort. Its parts: acp-start.ts, acp-wire.ts
 * (wire order), acp-requests.ts, acp-output-hold.ts, acp-held-turn.ts, acp-close.ts. Once the
 * process is gone the adapter is `dead` and the session replaces it.
 */
export class AcpAdapter implements AgentAdapter {
  private readonly context: AdapterContext;
  private readonly options: AcpAdapterOptions;
  private readonly terminals: AcpTerminals;
  private readonly hold: AcpOutputHold;
  private proc: AgentChild | undefined;
  private conn: ClientConnection | undefined;
  private wire: AcpWire | undefined;
  /** Turns the diffs of completed tool calls into `file.change` events. */
  private reported: ReportedChanges | undefined;
  /** The ACP session and the agent's auth methods, as the handshake learned them. */
  private readonly state: HandshakeState = {
    acpSessionId: undefined,
    authMethods: [],
    promptCapabilities: undefined,
    lifecycle: BASELINE_LIFECYCLE,
    agentName: undefined,
    sessionModels: new SessionModels(),
  };
  /** The conversation {@link resume} asked to load. */
  private resumeId: string | undefined;
  /** The agent's start, shared by the runs that wait for it: undefined once started, else why it failed. */
  private starting: Promise<RunOutcome | undefined> | undefined;
  private turn: Turn | undefined;
  private isDead = false;
  /** Let go of at a gateway stop: the process runs on under its holder, and nothing here acts on it. */
  private detached = false;
  /** Adopted with a turn that may still run: resolved once the agent ended it (a stray `stopReason`). */
  private settled: (() => void) | undefined;
  private disposing: Promise<void> | undefined;
  /** When the agent last sent a `session/update` (monotonic ms): what tells a replay is over. */
  private lastUpdateAt = -Infinity;
  /** Why reading the agent's messages failed, if it did (see {@link watchInput}). */
  private inputError: unknown;
  private readonly choices = new AcpChoices();
  /**
   * Updates applied while no ACP session is named (undefined once one is). The wire applies an
   * update as it is read, while the handshake learns the session from the `session/new` answer
   * a few promise turns later: commands an agent sends right after that answer (as Claude Code
   * does) can come first. Taken in order once it is named ({@link takeUnnamed}), before any
   * later message (test/agents/acp-agent-state.test.ts, "keeps the commands an agent sends…").
   */
  private unnamed: { kept: unknown[]; dropped: number } | undefined = { kept: [], dropped: 0 };
  /** Held agents: the turn in flight as the record keeps it (acp-held-turn.ts). */
  private readonly heldTurn: AcpHeldTurn;

  constructor(context: AdapterContext, options: AcpAdapterOptions) {
    this.context = context;
    this.options = options;
    this.terminals = new AcpTerminals({
      factory: context.children,
      parentSessionId: context.sessionId,
      cwd: context.cwd,
      logger: context.logger,
    });
    this.hold = new AcpOutputHold({ room: context.room, runOpen: () => this.turn?.run.sink.open === true });
    this.heldTurn = new AcpHeldTurn({
      turns: context.turns,
      proc: () => this.proc,
      detached: () => this.detached,
      dead: () => this.isDead,
      quiet: () => this.turn?.run.sink.quiet !== false,
    });
  }

  get dead(): boolean {
    return this.isDead;
  }

  get pid(): number | null {
    return this.proc?.running === true ? (this.proc.pid ?? null) : null;
  }

  /** What the agent said it takes in a prompt (`initialize`); unknown before, and for an adopted process. */
  get promptCapabilities(): PromptCapabilities | undefined {
    return this.state.promptCapabilities;
  }

  startNow(): Promise<RunOutcome | undefined> {
    if (this.disposing || this.isDead) {
      return Promise.resolve({ kind: "error", code: "AGENT_EXITED", message: "the agent process is gone" });
    }
    return this.startOnce();
  }

  /** Sends a choice of mode or setting to the started agent (acp-choices.ts); AGENT_EXITED when it is gone. */
  async choose(choice: AgentChoice, by: Actor): Promise<void> {
    const conn = this.conn;
    const wire = this.wire;
    const sessionId = this.state.acpSessionId;
    if (this.disposing || this.isDead || conn === undefined || wire === undefined || sessionId === undefined) {
      throw new SwitchboardError("AGENT_EXITED", "the agent process is gone");
    }
    await this.choices.send({
      conn,
      sessionId,
      choice,
      sessionModels: this.state.sessionModels,
      by,
      clock: this.context.clock,
      applied: () => new Promise((resolve) => wire.enqueue(resolve)),
      emit: (event) => this.emitAgentEvent(event),
    });
  }

  /** Logs what the agent said of itself: in the open run, else between runs. */
  private emitAgentEvent(event: Parameters<AdapterContext["agentEvent"]>[0]): void {
    const run = this.turn?.run.sink.open === true ? this.turn.run.sink : undefined;
    if (run) run.agentEvent(event);
    else this.context.agentEvent(event);
  }

  async run(run: AdapterRun): Promise<RunOutcome> {
    if (this.disposing || this.isDead) {
      return { kind: "error", code: "AGENT_EXITED", message: "the agent process is gone" };
    }
    // An abort while the agent starts ends the wait at once: the run has ended, and holding the
    // session's lane until the start is over — for an agent slow to start (npx fetching it), until
    // ABORT_SETTLE_TIMEOUT_MS killed it and the next run started it all over — served nobody. The
    // start goes on for the next run, which waits for the same one.
    const failure = await untilAborted(this.startOnce(), run.signal);
    if (failure === ABORTED) return { kind: "final", stopReason: "cancelled" };
    if (failure !== undefined) return failure;
    const conn = this.conn!;
    const sessionId = this.state.acpSessionId!;
    if (run.signal.aborted) return { kind: "final", stopReason: "cancelled" };
    // Checked again now that the agent has said what it takes: nothing it cannot take is sent.
    const caps = this.state.promptCapabilities;
    const refused =
      run.content !== undefined && caps !== undefined
        ? unsupportedContent(run.content, caps, `the agent (${this.state.agentName ?? this.options.command[0] ?? "?"})`)
        : undefined;
    if (refused) return { kind: "error", code: refused.code, message: refused.message };
    // Validated at the edge against the same ACP schema (protocol/prompt-content.ts).
    const prompt = (run.content ?? [{ type: "text", text: run.text }]) as acp.ContentBlock[];
    return new Promise<RunOutcome>((resolve) => {
      const onAbort = (): void => {
        // The run has ended: what the agent still sends for it is not logged, so read on.
        this.hold.stop();
        conn.agent.notify("session/cancel", { sessionId }).catch((err: unknown) => {
          this.context.logger.debug({ err: describeError(err) }, "session/cancel not delivered");
        });
      };
      run.signal.addEventListener("abort", onAbort, { once: true });
      const turn: Turn = {
        run,
        resolve,
        settled: false,
        detach: () => run.signal.removeEventListener("abort", onAbort),
      };
      this.turn = turn;
      this.endedRunPrompt = undefined;
      this.heldTurn.runStarted(run.runId);
      conn.agent.request("session/prompt", { sessionId, prompt }).catch((err: unknown) => {
        // The outcome comes from the wire, in order (onResponse, onOutputEnd). This settles the
        // turn only when no answer can come any more (the request was never sent), after
        // everything received so far; when the output has ended, onOutputEnd reports it.
        this.wire?.enqueue(() => {
          if (this.isDead) return;
          this.finishTurn(turn, { kind: "error", code: "AGENT_FAILED", message: describeError(err) });
        });
      });
    });
  }

  adopt(turnOpen: boolean): boolean {
    const proc = this.context.processes?.adopted();
    if (proc === undefined || this.starting !== undefined) return false;
    if (this.context.keptAgentSession() === undefined) {
      // Stopped before its conversation opened (`session/new` unanswered): nothing to go on with.
      void proc.kill();
      return false;
    }
    this.starting = this.adoptProcess(proc, turnOpen).then(
      () => undefined,
      (err: unknown) => this.startFailed(err),
    );
    return true;
  }

  /**
   * Speaks to the held process in the conversation it has; a turn an earlier gateway left is
   * cancelled first. An agent that does not end that turn within ABORT_SETTLE_TIMEOUT_MS is
   * replaced, as after an abort (agent-session.ts): its late output would land in the next run,
   * since an update names no turn. The new process loads the conversation where the agent can.
   */
  private async adoptProcess(proc: AgentChild, turnOpen: boolean): Promise<void> {
    const sessionId = this.context.keptAgentSession();
    this.state.acpSessionId = sessionId;
    this.connect(proc, true);
    if (!turnOpen || sessionId === undefined) return;
    const ended = await new Promise<boolean>((resolve) => {
      const timer = this.context.clock.setTimeout(() => {
        this.settled = undefined;
        resolve(false);
      }, ABORT_SETTLE_TIMEOUT_MS);
      this.settled = () => {
        timer.cancel();
        this.settled = undefined;
        resolve(true);
      };
      this.conn!.agent.notify("session/cancel", { sessionId }).catch((err: unknown) => {
        this.context.logger.debug({ err: describeError(err) }, "session/cancel not delivered");
      });
    });
    if (ended || this.isDead) return;
    this.context.logger.warn(
      { sessionId: this.context.sessionId, timeoutMs: ABORT_SETTLE_TIMEOUT_MS },
      "adopted agent did not end the turn an earlier gateway left in time; restarting it",
    );
    // The old process's end and end of output are not this adapter's any more (onProcessEnd, onOutputEnd).
    this.proc = undefined;
    this.conn?.close();
    await proc.kill();
    if (this.disposing !== undefined) return;
    this.resumeId = sessionId;
    this.state.acpSessionId = undefined;
    await this.start();
  }

  /**
   * Goes on with the run an earlier gateway left in flight (held-turn.ts): its `session/prompt`'s
   * answer (an id of the earlier connection's block) ends it, what the agent says meanwhile is
   * applied to it, and an abort tells the agent `session/cancel` as for any run.
   */
  continueTurn(run: AdapterRun): Promise<RunOutcome> {
    // The run the record names goes on: what the agent says is its own (applied to it).
    this.endedRunPrompt = undefined;
    const kept = this.context.turns?.kept();
    const conn = this.conn;
    const sessionId = this.state.acpSessionId;
    if (kept?.run == null || conn === undefined || sessionId === undefined || this.isDead) {
      return Promise.resolve({ kind: "error", code: "AGENT_EXITED", message: "the agent process is gone" });
    }
    const promptId = kept.run.promptId;
    if (promptId === null) {
      // The record names no prompt id: its prompt never reached the agent (it goes out held until
      // the record naming it is committed), so it is sent now, as for a new run.
      return this.run(run);
    }
    return new Promise<RunOutcome>((resolve) => {
      const onAbort = (): void => {
        this.hold.stop();
        conn.agent.notify("session/cancel", { sessionId }).catch((err: unknown) => {
          this.context.logger.debug({ err: describeError(err) }, "session/cancel not delivered");
        });
      };
      run.signal.addEventListener("abort", onAbort, { once: true });
      this.turn = {
        run,
        resolve,
        settled: false,
        detach: () => run.signal.removeEventListener("abort", onAbort),
      };
      this.continuedPrompt = (message) => message.id === promptId;
      this.heldTurn.keep({ runId: run.runId, promptId });
    });
  }

  /** Tells the answer to the `session/prompt` of a continued turn (see {@link continueTurn}). */
  private continuedPrompt: ((message: AnyResponse) => boolean) | undefined;

  /**
   * The `session/prompt` id of the run an adopted record names when that run does not go on: it
   * ended in the log, and the gateway died before the record without it was committed. What
   * stdout says up to that prompt's answer belongs to the ended run, so it is not logged again
   * (test/agents/held-turn.test.ts, "…before the record without the run"). Cleared by the
   * answer, or by the next run's start should the answer never come again.
   */
  private endedRunPrompt: number | undefined;

  /** What a failed start or adoption makes of the adapter: dead, its process ended, the outcome saying why. */
  private startFailed(err: unknown): RunOutcome {
    this.isDead = true;
    void this.proc?.kill();
    if (err instanceof AcpStartError) return { kind: "error", code: err.code, message: err.message, start: true };
    return { kind: "error", code: "AGENT_FAILED", message: describeError(err), start: true };
  }

  async detach(): Promise<void> {
    if (this.detached || this.proc?.detach === undefined) return;
    this.detached = true;
    this.isDead = true;
    this.disposing ??= Promise.resolve();
    this.settled?.();
    this.hold.release();
    await this.proc.detach();
  }

  resume(agentSessionId: string): Promise<RunOutcome | undefined> {
    this.resumeId = agentSessionId;
    return this.startOnce();
  }

  /** Starts the agent process on the first call; never rejects (a failure is the outcome, and the adapter is dead). */
  private startOnce(): Promise<RunOutcome | undefined> {
    this.starting ??= this.start().then(
      () => undefined,
      (err: unknown) => this.startFailed(err),
    );
    return this.starting;
  }

  dispose(options: { close?: boolean } = {}): Promise<void> {
    this.disposing ??= this.shutdown(options.close === true);
    return this.disposing;
  }

  private async shutdown(close: boolean): Promise<void> {
    this.isDead = true;
    // Its output must drain, or the killed process's end is never seen (nor an answer read).
    this.hold.release();
    if (close) await this.closeSession();
    await this.cancelPending();
    this.conn?.close();
    const [end] = await Promise.all([this.proc?.kill(), this.terminals.dispose()]);
    const turn = this.turn;
    if (turn) {
      const message = end && this.proc ? this.proc.describeEnd(end) : "the agent was stopped";
      this.finishTurn(turn, { kind: "error", code: "AGENT_EXITED", message });
    }
  }

  private finishTurn(turn: Turn, outcome: RunOutcome): void {
    if (turn.settled) return;
    turn.settled = true;
    turn.detach();
    if (this.turn === turn) this.turn = undefined;
    this.continuedPrompt = undefined;
    turn.resolve(outcome);
    this.heldTurn.turnEnded(turn.run.runId);
  }

  private async start(): Promise<void> {
    await startAcpAgent({
      context: this.context,
      command: this.options.command,
      env: this.options.env,
      authMethod: this.options.authMethod,
      terminal: this.terminals.supported,
      state: this.state,
      resumeId: () => this.resumeId,
      lastUpdateAt: () => this.lastUpdateAt,
      sessionNamed: () => this.takeUnnamed(),
      connect: (proc) => this.connect(proc),
      cancelPending: () => this.cancelPending(),
    });
  }

  /** Wires the ACP connection to `proc`'s stdio (wire order, output hold, noise filter). */
  private connect(proc: AgentChild, adopted = false): { noise: AcpStdoutNoise; conn: ClientConnection } {
    this.proc = proc;
    this.context.processChanged();
    void proc.closed.then((end) => this.onProcessEnd(proc, end));
    const noise = new AcpStdoutNoise({ logger: this.context.logger, sessionId: this.context.sessionId });
    const output = webReadable(proc.stdout).pipeThrough(this.hold.stream()).pipeThrough(noise.stream());
    // An agent under a holder: its messages are read with their stdout offsets (held-turn.ts),
    // and this connection's request ids start past every earlier one's.
    const held = proc.ackTo !== undefined && proc.firstOffset !== undefined && this.context.turns !== undefined;
    const reader = held ? new AcpLineReader({ maxMessageBytes: ACP_MAX_MESSAGE_BYTES, base: () => 0 }) : undefined;
    const parsed = acp.ndJsonStream(
      Writable.toWeb(proc.stdin) as WritableStream<Uint8Array>,
      reader ? new ReadableStream<Uint8Array>() : output,
      { maxMessageBytes: ACP_MAX_MESSAGE_BYTES },
    );
    const readable = reader ? output.pipeThrough(reader.stream()) : parsed.readable;
    const raw = { readable: this.watchInput(readable), writable: parsed.writable };
    if (held) {
      const kept = adopted ? this.context.turns?.kept() : undefined;
      this.heldTurn.begin(proc, kept, this.context.clock.now());
      // Until continueTurn says the run goes on (it is called right after adopt, if it does).
      this.endedRunPrompt = kept?.run?.promptId ?? undefined;
    }
    const wire = new AcpWire(
      raw,
      {
        update: (params) => this.onUpdate(params),
        response: (message) => this.onResponse(message),
        end: () => this.onOutputEnd(proc),
        failed: (err) => this.context.logger.error({ err: describeError(err) }, "applying an ACP message failed"),
        // The answer (a stopReason, or an error when the cancel failed the turn) to the
        // `session/prompt` an earlier gateway left (adoptProcess), the only request it can have
        // left unanswered: that turn is over, and the lane may go on.
        stray: (message) => {
          if (message.id === this.endedRunPrompt) this.endedRunPrompt = undefined;
          if (this.continuedPrompt?.(message) === true) return this.onResponse(message);
          this.settled?.();
        },
        // The reader counts stdout's bytes; the holder's offsets count stderr's too.
        applied: (position, answering) => this.heldTurn.applied(proc.holderOffset?.(position) ?? position, answering),
        skipped: (method) => this.context.turns?.skipped(method),
        sent: (method, wireId) => this.heldTurn.sent(method, wireId),
      },
      {
        watchResponsesTo: ["session/prompt"],
        idBase: this.heldTurn.idBase,
        answeredBefore: this.heldTurn.answeredIds(),
        ...(reader ? { endOf: (message: AnyMessage) => reader.endOf(message) } : {}),
      },
    );
    this.wire = wire;
    this.reported = new ReportedChanges({
      cwd: this.context.cwd,
      fs: new ConfinedFs(this.context.cwd),
      pause: () => wire.pause(),
      logger: this.context.logger,
      sessionId: this.context.sessionId,
    });
    const conn = acpClient({
      name: CLIENT_INFO.name,
      cwd: this.context.cwd,
      wire,
      terminals: this.terminals,
      sessionId: () => this.state.acpSessionId,
      sink: () => this.turn?.run.sink,
      logger: this.context.logger,
    }).connect(wire.stream);
    this.conn = conn;
    void conn.closed.then(() => wire.close());
    return { noise, conn };
  }

  /**
   * The session is deleted: asks the agent to free its conversation (ACP `session/close`, where it
   * offers it; acp-close.ts).
   */
  private async closeSession(): Promise<void> {
    const conn = this.conn;
    const acpSessionId = this.state.acpSessionId;
    if (
      conn === undefined ||
      acpSessionId === undefined ||
      !this.state.lifecycle.close ||
      this.proc?.running !== true
    ) {
      return;
    }
    await closeAcpSession({ conn, acpSessionId, ...this.agentAt() });
  }

  /** Tells the agent the gateway gives up on the requests it has not answered (acp-close.ts). */
  private async cancelPending(): Promise<void> {
    const conn = this.conn;
    const wire = this.wire;
    if (conn === undefined || wire === undefined || this.detached) return;
    await cancelPendingRequests({ conn, wire, ...this.agentAt() });
  }

  private agentAt(): { clock: Clock; logger: AgentLogger; sessionId: string } {
    return { clock: this.context.clock, logger: this.context.logger, sessionId: this.context.sessionId };
  }

  private onProcessEnd(proc: AgentChild, end: ProcessEnd): void {
    if (this.detached || proc !== this.proc) return;
    this.isDead = true;
    this.context.logger.info({ sessionId: this.context.sessionId, ...end }, "ACP agent ended");
    this.context.processChanged();
  }

  /** The agent's output ended: it can no longer answer, so make sure it is gone and fail the turn. */
  private onOutputEnd(proc: AgentChild): void {
    if (this.detached || proc !== this.proc) return;
    this.isDead = true;
    // An adopted process may have died while no gateway ran: its exit is known, nothing stopped it.
    const stoppedHere = proc.running;
    void proc.kill().then((end) => {
      const turn = this.turn;
      if (!turn) return;
      // Killed by us because of what it sent: say that, not only how it ended.
      const message =
        this.inputError instanceof acp.MessageTooLargeError
          ? `the agent sent an ACP message (one JSON line) larger than ${ACP_MAX_MESSAGE_BYTES} bytes, which the gateway does not read, so it stopped the agent (${proc.describeEnd(end)}); the next prompt starts it again — have it send large content in smaller pieces`
          : proc.describeEnd(end, stoppedHere);
      this.finishTurn(turn, { kind: "error", code: "AGENT_EXITED", message });
    });
  }

  /**
   * Passes the parsed messages on and remembers why reading them failed (a message over
   * {@link ACP_MAX_MESSAGE_BYTES}): the SDK only closes the connection, and the run's error
   * should say what happened rather than how the process ended when it was stopped.
   */
  private watchInput(readable: ReadableStream<AnyMessage>): ReadableStream<AnyMessage> {
    const reader = readable.getReader();
    // Set when the SDK cancels this stream (the connection closes, e.g. at dispose): the read in
    // flight then ends as done, and the stream is closed already — closing it again threw
    // "Controller is already closed", logged at every agent's end.
    let cancelled = false;
    return new ReadableStream<AnyMessage>({
      pull: async (controller) => {
        let next: ReadableStreamReadResult<AnyMessage>;
        try {
          next = await reader.read();
        } catch (err) {
          if (cancelled) return;
          this.inputError ??= err;
          this.context.logger.warn({ sessionId: this.context.sessionId, err: describeError(err) }, "ACP input failed");
          controller.error(err);
          return;
        }
        if (cancelled) return;
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      cancel: (reason) => {
        cancelled = true;
        return reader.cancel(reason);
      },
    });
  }

  /** The session is named: the updates kept meanwhile are applied, in the order they came. */
  private takeUnnamed(): void {
    const { kept, dropped } = this.unnamed ?? { kept: [], dropped: 0 };
    this.unnamed = undefined;
    if (dropped > 0) {
      this.context.logger.warn(
        { sessionId: this.context.sessionId, dropped, max: MAX_UNNAMED_UPDATES },
        "session/updates sent before the ACP session was named dropped",
      );
    }
    for (const params of kept) this.applyUpdate(params);
  }

  private onUpdate(params: unknown): void {
    this.lastUpdateAt = this.context.clock.monotonic();
    if (this.state.acpSessionId === undefined && this.unnamed !== undefined) {
      if (this.unnamed.kept.length < MAX_UNNAMED_UPDATES) this.unnamed.kept.push(params);
      else this.unnamed.dropped++;
      return;
    }
    this.applyUpdate(params);
  }

  private applyUpdate(params: unknown): void {
    if (!isRecord(params) || params.sessionId !== this.state.acpSessionId) {
      this.context.logger.debug(
        { sessionId: this.context.sessionId },
        "session/update for another ACP session ignored",
      );
      return;
    }
    // Outside a turn (available commands after session/new) or after its run ended, what the
    // agent says of itself is logged between runs; conversation content only in its run.
    const turn = this.turn;
    const run = turn?.run.sink.open === true ? turn.run.sink : undefined;
    // A mode change the gateway asked for, said by the agent while it answers: logged with who asked.
    const askedBy = this.choices.noted(params.update);
    const result = applySessionUpdate(params.update, {
      run,
      event: (agentEvent) => {
        const event =
          askedBy !== undefined && agentEvent.type === "agent.mode" ? { ...agentEvent, by: askedBy } : agentEvent;
        if (run) run.agentEvent(event);
        else this.context.agentEvent(event);
      },
      // A turn an earlier gateway left (adoptProcess) ended in the log already, as did an aborted one.
      discardContent:
        turn !== undefined ||
        this.settled !== undefined ||
        this.state.replaying === true ||
        this.endedRunPrompt !== undefined,
      knownTerminal: (id) => this.terminals.has(id),
    });
    reportUpdate(result, params.update, { context: this.context, runId: turn?.run.runId });
    if (run !== undefined && result.kind === "applied") this.reported?.noted(params.update, run);
  }

  private onResponse(message: AnyResponse): void {
    const turn = this.turn;
    if (!turn) return;
    this.finishTurn(
      turn,
      promptOutcome(message, (error) => authRequiredMessage(error, this.state.authMethods, this.options.command)),
    );
  }
}

const ABORTED = Symbol("aborted");

/** `promise`'s value, or {@link ABORTED} as soon as `signal` aborts (`promise` goes on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof ABORTED> {
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve) => {
    const onAbort = (): void => resolve(ABORTED);
    signal.addEventListener("abort", onAbort, { once: true });
    void promise.then((value) => {
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    });
  });
}
