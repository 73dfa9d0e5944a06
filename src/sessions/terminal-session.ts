import { childEnv } from "../core/child-env.js";
import { AttentionScanner } from "../core/attention-scan.js";
import type { TerminalCall } from "../core/attention-scan.js";
import type { Clock, Timer } from "../core/clock.js";
import { OutputCoalescer } from "../core/output-coalescer.js";
import type { CoalescedOutput } from "../core/output-coalescer.js";
import { piecePools } from "../core/buffer-pool.js";
import type { SessionLog } from "../log/session-log.js";
import { SwitchboardError } from "../protocol/index.js";
import { Actor } from "../protocol/index.js";
import type { CreateTerminalSession, OutputStream, SessionWorktree, SignalName } from "../protocol/index.js";
import { Session, wrongKind } from "./session.js";
import type { SessionContext, SessionOwner, SessionRecord, ShutdownOptions } from "./session.js";
import type { SessionManager } from "./session-manager.js";
import { TERMINATE_GRACE_MS, shuttingDown } from "./session-manager.js";
import { Holders } from "./holders.js";
import { signalProcess, terminateLeftovers } from "./processes.js";
import { checkCwd } from "./spawn-preflight.js";
import {
  DEFAULT_COLS,
  DEFAULT_ROWS,
  adoptTerminalProcess,
  spawnTerminalProcess,
  startHeldProcess,
} from "./terminal-process.js";
import type { TerminalExit } from "./process-transport.js";
import type { TerminalProcess } from "./terminal-process.js";
import type { LateInputRecorder } from "./holder-transport.js";

/**
 * A process in a pipe or PTY, its output coalesced into `output` events (docs/architecture.md, guarantee 3: `exit`
 * is appended only after the output was read to EOF and flushed).
 */
export class TerminalSession extends Session {
  private proc: TerminalProcess | undefined;
  private coalescer: OutputCoalescer | undefined;
  /** A restored held session's take-over: settles once its holder answered, or it ended or was lost (adoptHeld). */
  private takenOver: Promise<void> | undefined;
  /** The process is held back until the log's store catches up. */
  private waitingForLog = false;
  /** A pipe session's stdin was closed (`eof`). */
  private inputEnded = false;
  /** The gateway stopped and let go of the held process: it runs on for the next gateway. */
  private detached = false;
  /**
   * Input a take-over was given before its holder's HELLO: settles once the last of it was
   * written (or refused), and how many wait (see {@link writeOnHello}).
   */
  private lastOnHello: Promise<void> | undefined;
  private waitingOnHello = 0;
  /** Held: stops acknowledging commits to the holder; `ackNow` acknowledges at once. */
  private stopAcks: (() => void) | undefined;
  private ackNow: (() => void) | undefined;
  /** PTYs: finds bells and notifications in the output (the session's `attention`). */
  private readonly calls: AttentionScanner | undefined = this.record.pty
    ? new AttentionScanner((call) => this.callsFound.push(call))
    : undefined;
  /** What {@link calls} found in the piece being emitted: set once the piece is appended. */
  private callsFound: TerminalCall[] = [];
  /** PTYs with `sessions.quietAfterMs`: when output came last (monotonic ms), and the timer that checks. */
  private lastOutputAt = 0;
  private quietTimer: Timer | undefined;

  /**
   * Starts the process; rejects with SPAWN_FAILED or RESOURCE_EXHAUSTED (nothing is recorded then).
   * A PTY's first size is logged as a `resize` by `creator`, so a replay renders early output
   * at the size it was written for. With holders (`ctx.holders`) it runs under one, and this
   * resolves once the holder runs the program (the event loop goes on meanwhile).
   */
  async start(env: Record<string, string>, creator: Actor): Promise<void> {
    const r = this.record;
    const holders = this.ctx.holders;
    const outputBase = this.log.appendedOutputBytes;
    const coalescer = this.outputCoalescer();
    const options = {
      command: r.command!,
      cwd: r.cwd!,
      env,
      pty: r.pty,
      cols: r.cols ?? DEFAULT_COLS,
      rows: r.rows ?? DEFAULT_ROWS,
      onOutput: (stream: OutputStream, chunk: Uint8Array) => coalescer.push(stream, chunk),
      onExit: (exit: TerminalExit) => this.processExited(exit),
      onLost: (reason: string) => this.processLost(reason),
    };
    try {
      this.proc =
        holders === undefined
          ? spawnTerminalProcess(options)
          : await startHeldProcess({
              ...options,
              held: { holders, sessionId: r.id },
              onRefused: (refusal) => holders.refused(this.record, refusal),
            });
    } catch (error) {
      coalescer.dispose();
      throw error;
    }
    this.coalescer = coalescer;
    r.pid = this.proc.pid;
    r.pidStart = this.proc.startTime;
    const holderPid = this.proc.holderPid;
    if (holderPid !== null) {
      r.holder = { pid: holderPid, start: this.proc.holderStart, outputBase };
      this.acknowledgeCommits();
      if (this.log.showOutputEarly()) this.proc.recordInputLate(this.lateInputRecorder());
    }
    if (r.pty)
      this.log.append({ type: "resize", by: creator, cols: r.cols ?? DEFAULT_COLS, rows: r.rows ?? DEFAULT_ROWS });
  }

  /**
   * Takes the process over from the holder an earlier gateway left it under: the holder resends
   * the output after what the log has, so the log goes on at its next seq and byte offset. A live
   * holder is queued (Holders.adoptions): taken over once the gateway listens, in background
   * slices, or at once when something needs the process ({@link demand}). Whether the holder still
   * runs is asked then, not here: a start reads nothing per held session before it listens.
   */
  override adoptHeld(): boolean {
    const r = this.record;
    const ref = r.holder;
    if (ref === undefined || ref === null || r.pid === null) return false;
    const holders = this.ctx.holders;
    if (holders === undefined) {
      // Nobody here can steer it: the holder is ended, its program with it (markLost).
      if (Holders.alive(ref)) signalProcess(ref.pid, "SIGTERM");
      this.markLost(
        "the gateway stopped while this session was running, and this one runs without holders (sessions.holders false), so its holder was ended",
      );
      return true;
    }
    // What the log held from the earlier gateway: held input of a later seq was never recorded,
    // whatever this gateway appends before the take-over (a lease's end, at once).
    const committedSeq = this.log.head;
    let answered!: () => void;
    this.takenOver = new Promise((resolve) => (answered = resolve));
    holders.adoptions.add(r.id, (settled) =>
      this.takeOver({
        holders,
        ref,
        committedSeq,
        settled: () => {
          answered();
          settled();
        },
      }),
    );
    return true;
  }

  /**
   * Connects to the holder of a restored session (queued by {@link adoptHeld}); `settled` once the
   * holder answered (or the session ended, or was lost), so the queue can begin the next.
   */
  private takeOver(held: {
    holders: Holders;
    ref: NonNullable<SessionRecord["holder"]>;
    committedSeq: number;
    settled: () => void;
  }): void {
    const { holders, ref, committedSeq, settled } = held;
    const r = this.record;
    if (!this.running || this.removed || r.pid === null) return settled();
    if (!Holders.alive(ref)) {
      this.markLost(`its holder (pid ${ref.pid}) was gone when the gateway started: it was killed or crashed`);
      return settled();
    }
    const coalescer = this.outputCoalescer();
    this.coalescer = coalescer;
    this.proc = adoptTerminalProcess({
      socketPath: holders.socketPath(r.id),
      holderPid: ref.pid,
      holderStart: ref.start,
      pid: r.pid,
      startTime: r.pidStart ?? null,
      pty: r.pty,
      resumeFrom: this.log.appendedOutputBytes - ref.outputBase,
      onOutput: (stream, chunk) => coalescer.push(stream, chunk),
      onExit: (exit) => {
        settled();
        this.processExited(exit);
      },
      onLost: (reason) => {
        settled();
        this.processLost(reason);
      },
      committedSeq,
      onAdopted: () => {
        settled();
        holders.adopted(this.record);
      },
      onRefused: (refusal) => {
        settled();
        holders.refused(this.record, refusal);
      },
    });
    this.acknowledgeCommits();
    if (this.log.showOutputEarly()) this.proc.recordInputLate(this.lateInputRecorder());
  }

  /**
   * Where input its holder writes at once is recorded: the `input` events of what a holder wrote
   * and no gateway committed (a crash) are appended when it is taken over (HolderTransport).
   */
  private lateInputRecorder(): LateInputRecorder {
    return {
      nextSeq: () => this.log.appendedHead + 1,
      record: (inputs) => {
        for (const input of inputs) this.log.append({ type: "input", by: recordedActor(input.by), bytes: input.bytes });
      },
    };
  }

  /** A restored held session not taken over yet is taken over now: a viewer, a keystroke or a stop needs it. */
  override demand(): void {
    if (this.proc === undefined) this.ctx.holders?.adoptions.now(this.id);
  }

  /**
   * A viewer resumes past the durable output it was shown early (its commit, or after a crash the
   * holder's resend, is coming). Taken over now; settles once the log holds `offset`, the session
   * ended, {@link EARLY_OUTPUT_WAIT_MS} after the holder answered, or {@link TAKE_OVER_WAIT_MS}.
   * Undefined (the caller refuses `since`) without a holder, once ended, or past what a holder keeps.
   */
  override outputComing(offset: number): Promise<void> | undefined {
    const log = this.log;
    if (offset <= log.outputBytes || !this.running || this.record.holder == null) return undefined;
    if (offset > log.outputBytes + HOLDER_KEEPS_MAX_BYTES) return undefined;
    this.demand();
    const clock = this.ctx.clock;
    return new Promise((resolve) => {
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        bound.cancel();
        early?.cancel();
        unsubscribe();
        resolve();
      };
      const bound = clock.setTimeout(done, TAKE_OVER_WAIT_MS);
      let early: Timer | undefined;
      const unsubscribe = log.subscribe(
        () => {
          if (log.outputBytes >= offset || !this.running) done();
        },
        { background: true },
      );
      // Taken over already (or never restored): only the commit or the resend is left to wait for.
      void (this.takenOver ?? Promise.resolve()).then(() => {
        if (!settled) early = clock.setTimeout(done, EARLY_OUTPUT_WAIT_MS);
      });
    });
  }

  /** Output bytes its holder keeps that this gateway has not acknowledged as committed (0 without a holder). */
  get heldOutputBytes(): number {
    return this.proc?.heldBytes ?? 0;
  }

  /** Output in pieces into the log (docs/architecture.md, "A byte from a PTY to a browser"). */
  private outputCoalescer(): OutputCoalescer {
    return new OutputCoalescer({
      clock: this.ctx.clock,
      pools: piecePools,
      emit: (piece) => {
        // A pooled piece is read before the log may hand its buffer back to its pool; a piece of
        // its own (a key's echo) after the log showed it, off the echo's way.
        if (piece.pool !== undefined) this.readPiece(piece);
        this.log.appendOutputBytes(piece.stream, piece.bytes, piece.binary, piece.pool);
        if (piece.pool === undefined) this.readPiece(piece);
        // A bell's attention follows the output that rang it.
        if (this.callsFound.length > 0) this.setCalls();
        this.touch();
        this.outputCame();
        this.waitForLog();
      },
    });
  }

  /** Keeps a piece's text for the list's last line, and scans it for bells and notifications. */
  private readPiece(piece: CoalescedOutput): void {
    if (!piece.binary) this.outputTail.push(piece.bytes);
    this.calls?.scan(piece.bytes);
  }

  private setCalls(): void {
    const found = this.callsFound;
    this.callsFound = [];
    for (const call of found)
      if (call.kind === "bell") this.setAttention("bell");
      else this.setAttention("notification", call.text);
  }

  /**
   * `sessions.quietAfterMs` (PTYs): the session needs someone once its output stopped that long.
   * One timer per quiet period, not one per chunk: it fires, finds output came since, and waits the rest.
   */
  private outputCame(): void {
    const quietMs = this.ctx.quietAfterMs;
    if (quietMs === undefined || !this.record.pty) return;
    this.lastOutputAt = this.ctx.clock.monotonic();
    if (this.quietTimer === undefined) this.armQuiet(quietMs, quietMs);
  }

  private armQuiet(quietMs: number, wait: number): void {
    this.quietTimer = this.ctx.clock.setTimeout(() => {
      this.quietTimer = undefined;
      if (!this.running) return;
      const since = this.ctx.clock.monotonic() - this.lastOutputAt;
      if (since >= quietMs) this.setAttention("quiet");
      else this.armQuiet(quietMs, quietMs - since);
    }, wait);
  }

  private processExited(exit: TerminalExit): void {
    this.quietTimer?.cancel();
    this.coalescer?.flush();
    this.coalescer?.dispose();
    const proc = this.proc;
    const last = this.finish("exited", exit.exitCode, exit.signal);
    this.stopAcks?.();
    // The holder ends once the exit is on record: until then a crash leaves it to the next gateway.
    // Refused (fenced in cluster mode, or removed), the exit is never recorded here: it ends too.
    if (last !== undefined && proc?.holderPid != null) {
      const ended = () => proc.exitRecorded();
      void this.log.whenPublished(last.seq).then(ended, ended);
    }
  }

  /** The holder went away (or refused this gateway): the exit will never be known. */
  private processLost(reason: string): void {
    this.quietTimer?.cancel();
    this.coalescer?.flush();
    this.coalescer?.dispose();
    this.stopAcks?.();
    this.finish("lost", null, null, reason);
  }

  /** Tells the holder, at most once a turn of the event loop, how far its output is committed. */
  private acknowledgeCommits(): void {
    let queued = false;
    let acked = 0;
    const ack = () => {
      queued = false;
      const base = this.record.holder?.outputBase;
      const offset = base === undefined ? 0 : this.log.outputBytes - base;
      if (offset <= acked || !this.proc) return;
      acked = offset;
      this.proc.acknowledge(offset);
    };
    this.stopAcks?.();
    // Held input goes to the program once its record is durable: told before the publication's
    // listeners run; published from a cluster's shared log (before the local commit), at publication.
    this.log.onDurable((seq) => this.proc?.commitInput(seq));
    const unsubscribe = this.log.subscribe(
      (entry) => {
        if (entry.type === "input") this.proc?.commitInput(entry.seq);
        // Only output moves what is acknowledged (no turn of the loop spent on the rest).
        if (queued || entry.type !== "output") return;
        queued = true;
        setImmediate(ack);
      },
      { background: true },
    );
    this.stopAcks = () => {
      this.log.onDurable(undefined);
      unsubscribe();
      this.stopAcks = undefined;
    };
    this.ackNow = ack;
  }

  /**
   * Gateway shutdown: a held process keeps running under its holder (`sessions.onStop` "keep")
   * once everything read from it is committed; the next gateway adopts it. Otherwise as ever.
   */
  override async shutdown(by: Actor, options: ShutdownOptions = {}): Promise<void> {
    const holders = this.ctx.holders;
    if (holders?.adoptions.has(this.id) === true) {
      // Restored and never taken over: kept, it stays with its holder as it is, for the next gateway.
      if (holders.onStop === "keep" && options.endHeld !== true) {
        holders.adoptions.drop(this.id);
        this.detached = true;
        return;
      }
      this.demand();
    }
    const proc = this.proc;
    if (
      !this.running ||
      proc === undefined ||
      proc.holderPid === null ||
      this.ctx.holders?.onStop !== "keep" ||
      options.endHeld === true
    )
      return super.shutdown(by);
    // From here on nothing may reach the process through this gateway: the next one steers it.
    this.detached = true;
    // Input a take-over was given before its holder's HELLO is written and reaches the holder
    // before the let-go (output is still read meanwhile: the HELLO comes that way).
    const writing = this.waitingOnHello > 0 ? this.lastOnHello : undefined;
    await inputDeliveredWithin(proc, writing, DETACH_INPUT_WAIT_MS, this.ctx.clock);
    proc.pauseOutput();
    this.coalescer?.flush();
    await this.log.whenPublished();
    if (!this.running) return;
    this.ackNow?.();
    this.stopAcks?.();
    proc.detach();
  }

  /**
   * The gateway stopped while this session ran (it is restored as lost): what is left of its
   * process is terminated — it can no longer be watched or steered.
   */
  override markLost(reason: string): void {
    const { pid, pidStart } = this.record;
    const left =
      pid !== null && typeof pidStart === "number" ? terminateLeftovers(pid, pidStart, TERMINATE_GRACE_MS) : 0;
    const what =
      left === 1 ? "its process was still running and was" : `${left} of its processes were still running and were`;
    super.markLost(left > 0 ? `${reason}; ${what} terminated` : reason);
  }

  /**
   * While the log has no room (`StoreBacklog.room`: its store is `LOG_BACKLOG_PAUSE_BYTES`
   * behind), holds the process back: its output is not read until the store caught up. Viewers
   * never hold a process back (docs/architecture.md, guarantee 4); the durable record does, as a slow disk would.
   */
  private waitForLog(): void {
    const room = this.log.backlog.room();
    if (room === undefined || this.waitingForLog || !this.proc) return;
    const proc = this.proc;
    this.waitingForLog = true;
    proc.pauseOutput();
    void room.then(() => {
      this.waitingForLog = false;
      proc.resumeOutput();
    });
  }

  /**
   * SESSION_NOT_RUNNING once ended; SHUTTING_DOWN once the stopping gateway let go of its held
   * process, which runs on: "ended" would make a client drop a session the next gateway adopts.
   */
  override assertRunning(): void {
    super.assertRunning();
    if (this.detached) throw shuttingDown();
  }

  /**
   * Sends input; `eof` ends the input after it (see TerminalProcess.endInput). Refusals known now
   * throw; one that can come only later (the input waits in this process for its holder) rejects
   * the promise returned, which is undefined when nothing waits.
   */
  write(data: Uint8Array, by: Actor, eof = false): Promise<void> | undefined {
    // Taken over first: a holder found gone then makes the session lost, and this refused.
    this.demand();
    this.assertRunning();
    if (this.inputEnded) {
      throw new SwitchboardError("INPUT_CLOSED", `the input of session ${this.id} was ended (eof); it takes no more`);
    }
    const greeted = this.proc!.greeted();
    if (greeted !== undefined || this.waitingOnHello > 0) return this.writeOnHello(greeted, data, by, eof);
    return this.writeNow(data, by, eof);
  }

  /**
   * Input given to a take-over before its holder's HELLO is written, and its event appended, once
   * the HELLO came, in the order given. Kept in this process meanwhile, a kill -9 loses it, so no
   * record of it may be committed before: a log that says a key reached the program when it
   * never did is as wrong as the reverse (holder-chaos found one). The request's answer waits for
   * it; a connection that ends first refuses it, and nothing is recorded
   * (test/sessions/holder-early-input.test.ts).
   */
  private writeOnHello(greeted: Promise<void> | undefined, data: Uint8Array, by: Actor, eof: boolean): Promise<void> {
    // Refused from now on, as when written at once.
    if (eof) this.inputEnded = !this.record.pty;
    const before = this.lastOnHello;
    this.waitingOnHello++;
    const written = (async () => {
      try {
        await before;
        await greeted;
        // Accepted before a stop began: the stop waits for it (shutdown), so `detached` is no refusal.
        super.assertRunning();
        return { delivered: this.writeNow(data, by, eof) };
      } finally {
        this.waitingOnHello--;
      }
    })();
    // The next one is written after this one (not after its commit), whether or not this one was.
    this.lastOnHello = written.then(
      () => undefined,
      () => undefined,
    );
    const answered = written
      .then(({ delivered }) => Promise.all([this.log.whenPublished(), delivered]))
      .then(() => undefined);
    // Whoever answers for the input handles a refusal; nobody may be waiting.
    answered.catch(() => undefined);
    this.log.answerWaitsFor(answered);
    return answered;
  }

  /** {@link write} to a process whose holder (if any) said HELLO; resolves once the input left this process. */
  private writeNow(data: Uint8Array, by: Actor, eof: boolean): Promise<void> | undefined {
    // Held, the holder writes the input at once and keeps its record until this seq is committed,
    // or (1.1 holders, eof, past the holder's room) holds the input until then: either way no
    // input reaches the program without its record (docs/architecture.md, "Session holders").
    const seq = this.log.appendedHead + 1;
    const atOnce = this.proc!.write(data, seq, eof ? undefined : this.actorJson(by));
    if (eof) {
      this.proc!.endInput(seq);
      // A pipe's stdin is closed for good; a PTY's ^D only ends one read, so it may take more.
      this.inputEnded = !this.record.pty;
    }
    const event = { type: "input" as const, by, bytes: data.length, ...(eof ? { eof: true as const } : {}) };
    // Held input waits for this commit, so it does not linger for company (LOG_INPUT_LINGER_MS).
    // Its answer waits until the input left this process too: a take-over keeps what it is given
    // before its holder's HELLO in memory, which a kill -9 would lose (undefined once greeted).
    const delivered = this.proc!.inputDelivered();
    // Written at once and its record kept: the event's append may wait until its echo is shown.
    if (atOnce && !eof && delivered === undefined) this.log.appendSoon(event);
    else
      this.log.append(event, {
        urgent: this.proc!.holderPid !== null && !atOnce,
        ...(delivered ? { until: delivered } : {}),
      });
    this.touch();
    // Whoever types has seen it.
    this.clearAttention(by);
    return delivered;
  }

  /**
   * `by` as the holder keeps it with input written at once. The last one's JSON is reused while
   * the actor is the same (a connection makes a new one per frame, with the same fields).
   */
  private actorJson(by: Actor): Uint8Array {
    const last = this.lastActor;
    if (
      last === undefined ||
      last.name !== by.name ||
      last.role !== by.role ||
      last.connId !== by.connId ||
      last.id !== by.id ||
      last.via !== by.via
    ) {
      this.lastActor = by;
      this.lastActorJson = Buffer.from(JSON.stringify(by));
    }
    return this.lastActorJson;
  }

  private lastActor: Actor | undefined;
  private lastActorJson: Uint8Array = new Uint8Array(0);

  signal(signal: SignalName, by: Actor): void {
    // Taken over first: a holder found gone then makes the session lost, and this refused.
    this.demand();
    this.assertRunning();
    this.proc!.signal(signal);
    this.log.append({ type: "signal", by, signal });
    this.touch();
  }

  resize(cols: number, rows: number, by: Actor): void {
    this.demand();
    this.assertRunning();
    if (!this.record.pty) throw wrongKind(this.record, "resize");
    this.proc!.resize(cols, rows);
    this.record.cols = cols;
    this.record.rows = rows;
    this.log.append({ type: "resize", by, cols, rows });
    this.persist();
    this.changed();
  }

  async terminate(by: Actor): Promise<void> {
    this.demand();
    if (!this.running || !this.proc) return;
    // Who stopped it, in the log as every steering action is: the first signal it sends (a PTY is
    // hung up first). Stopping is not under the control lease (docs/security.md), so this is the
    // only trace of who did it.
    this.log.append({ type: "signal", by, signal: this.record.pty ? "HUP" : "TERM" });
    await this.proc.terminate(TERMINATE_GRACE_MS);
    await this.ended();
  }

  override dispose(): void {
    super.dispose();
    this.ctx.holders?.adoptions.drop(this.id);
    this.quietTimer?.cancel();
    this.quietTimer = undefined;
    this.stopAcks?.();
    this.coalescer?.dispose();
    this.proc?.dispose();
  }
}

/**
 * A terminal session restored after a restart: its log, and its process if a holder still runs it
 * (adopted by {@link TerminalSession.adoptHeld}). The holder of one that ended, still waiting to
 * be told its exit is on record (a stop or crash came first), is ended.
 */
export function restoreTerminalSession(record: SessionRecord, log: SessionLog, ctx: SessionContext): TerminalSession {
  const ref = record.holder;
  if (record.state !== "running" && ref != null && Holders.alive(ref)) signalProcess(ref.pid, "SIGTERM");
  return new TerminalSession(record, log, ctx);
}

/** Creates and starts a terminal session for `owner`: resolves once its process runs (under its holder, if any). */
export async function createTerminalSession(
  sessions: SessionManager,
  spec: CreateTerminalSession,
  owner: SessionOwner,
  extra: { parent?: string; creator?: Actor; worktree?: SessionWorktree } = {},
): Promise<TerminalSession> {
  const cwd = extra.worktree?.path ?? spec.cwd ?? process.cwd();
  checkCwd(cwd);
  return sessions.createStarting(
    {
      kind: "terminal",
      owner,
      name: spec.name,
      command: spec.command,
      cwd,
      pty: spec.pty ?? false,
      cols: spec.pty ? (spec.cols ?? DEFAULT_COLS) : null,
      rows: spec.pty ? (spec.rows ?? DEFAULT_ROWS) : null,
      parent: extra.parent ?? null,
      worktree: extra.worktree,
    },
    async (record, log, ctx) => {
      const session = new TerminalSession(record, log, ctx);
      const env = childEnv(spec.env);
      // A PTY's TERM names the terminal its viewers emulate (PTY_TERM), or the one the caller asked
      // for; the gateway's own (the terminal it was started from, if any) describes neither.
      if (spec.pty === true && spec.env?.["TERM"] === undefined) delete env["TERM"];
      await session.start(env, extra.creator ?? { name: owner.name, role: "system" });
      return session;
    },
  );
}

/**
 * How long a stopping gateway waits, per held session, for input a take-over was given before its
 * holder's HELLO to reach the holder; a live holder answers in milliseconds (one stopped or stuck
 * past it gets the input refused: SHUTTING_DOWN to its sender, who sends it again).
 */
export const DETACH_INPUT_WAIT_MS = 2_000;

/**
 * How long a viewer that resumes past the durable output waits for it once the holder answered
 * (TerminalSession.outputComing): a commit takes milliseconds, a take-over's resend a few more;
 * past it the `since` is refused.
 */
export const EARLY_OUTPUT_WAIT_MS = 2_000;
/**
 * How long such a viewer waits in all, the holder's answer to the take-over included: a holder
 * that is stopped or wedged does not hold the viewer's upgrade for good.
 */
export const TAKE_OVER_WAIT_MS = 30_000;

/**
 * The most output a holder keeps unacknowledged (native/holder.c: HOLD_MAX_BYTES, HOLD_TAIL_BYTES
 * and one read): no viewer can have seen more past the durable output.
 */
export const HOLDER_KEEPS_MAX_BYTES = 8 * 1024 * 1024 + 1024 * 1024 + 64 * 1024;

/** Resolves once `writing` settled and `proc`'s input left this process (or it cannot), or after `ms`. */
function inputDeliveredWithin(
  proc: TerminalProcess,
  writing: Promise<void> | undefined,
  ms: number,
  clock: Clock,
): Promise<void> | void {
  if (writing === undefined && proc.inputDelivered() === undefined) return;
  return new Promise((resolve) => {
    const timer = clock.setTimeout(resolve, ms);
    const done = () => {
      timer.cancel();
      resolve();
    };
    // Refused: the connection ended, and the let-go that follows has nothing left to send.
    void (writing ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => proc.inputDelivered())
      .then(done, done);
  });
}

/** The actor a holder kept with input it wrote at once; one that does not parse is named as unknown. */
function recordedActor(json: Uint8Array): Actor {
  try {
    const parsed = Actor.safeParse(JSON.parse(Buffer.from(json).toString("utf8")));
    if (parsed.success) return parsed.data;
  } catch {
    // Not JSON: named as unknown below.
  }
  return { name: "unknown", role: "system" };
}
