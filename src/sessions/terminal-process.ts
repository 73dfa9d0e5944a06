import { SwitchboardError, InternalError } from "../protocol/errors.js";
import type { SignalName } from "../protocol/sessions.js";
import { spawnError } from "../system/spawn-error.js";
import { TimerSet } from "../system/timer-set.js";
import { openPipeTransport } from "./pipe-process.js";
import type { ProcessTransport, TerminalExit, TerminalProcessOptions, TransportSink } from "./process-transport.js";
import {
  STAT_SESSION,
  STAT_TPGID,
  procStat,
  processStartTime,
  sessionMembers,
  signalGroup,
  signalProcess,
} from "./processes.js";
import { HolderTransport } from "./holder-transport.js";
import type { LateInputRecorder } from "./holder-transport.js";
import type { PeerRefusal } from "./holder-peer.js";
import type { Holders, Launched } from "./holders.js";
import { DEFAULT_COLS, DEFAULT_ROWS, PTY_TERM, openPtyTransport } from "./pty-process.js";
import { assertSpawnable } from "./spawn-preflight.js";
import { PROCESS_MOVES } from "./process-state.js";
import type { ProcessState } from "./process-state.js";

export { DEFAULT_COLS, DEFAULT_ROWS, PTY_TERM } from "./pty-process.js";

/**
 * A process run for a terminal session, in a PTY or with plain pipes: raw output in, input,
 * signals and resize out, and exactly one `exit` after the last byte of output
 * (docs/architecture.md, guarantee 3). This is the lifecycle both share; `pty-process.ts` and
 * `pipe-process.ts` are the transports (`process-transport.ts`); `spawn-preflight.ts` checks first.
 */

/**
 * After the child has exited, how long to wait for the end of its output (EOF on the PTY
 * master, or every pipe closed). Output ends at once in the normal case; this bound only
 * matters when a grandchild (`cmd &`) keeps the terminal or the pipes open. Then whatever
 * is already buffered is read, the output is closed, and `exit` is reported.
 */
export const OUTPUT_DRAIN_TIMEOUT_MS = 2_000;
/** Input accepted but not yet taken by the process; beyond this, `write` throws RATE_LIMITED. */
export const MAX_PENDING_INPUT_BYTES = 1024 * 1024;
/** `terminate()` without an argument: time between the first signals and KILL. */
export const DEFAULT_TERMINATE_GRACE_MS = 3_000;
/**
 * PTY `terminate()`: when the hangup is sent again while the child runs, then after twice as
 * long each time until it exits or the KILL. readline (bash 5.2/5.3) misses a hangup that lands
 * while it draws its prompt (we keep the master open, so no real hangup ends its input), and a
 * repeat that lands before a slow handler ran merges with the first: doubling keeps the repeats
 * few (4 in the default grace) and each reaches every process of the session
 * (terminal-process.test.ts, "keeps hanging up").
 */
export const HANGUP_REPEAT_MS = 250;
/**
 * Held processes: after `terminate()`'s KILL, how long the holder has to report the exit. It
 * covers the holder's own wait for the end of the output ({@link OUTPUT_DRAIN_TIMEOUT_MS}) with a
 * second to spare; past it the holder is stopped or stuck (the program can `kill -STOP $PPID`),
 * so its process group gets SIGKILL and the process ends lost: a DELETE or a stop that ends
 * sessions always ends (test/sessions/holder-stops.test.ts).
 */
export const HOLDER_EXIT_WAIT_MS = OUTPUT_DRAIN_TIMEOUT_MS + 1_000;

/** A process started under a holder (see {@link startHeldProcess}). */
export interface HeldProcessOptions extends TerminalProcessOptions {
  /**
   * Run under a holder of `holders` (native/holder.c) named for `sessionId`, so the process
   * outlives the gateway (docs/architecture.md, "Session holders").
   */
  held: { holders: Holders; sessionId: string };
  /** The socket's peer was not the holder started (holder-peer.ts): the process is lost. */
  onRefused?: (refusal: PeerRefusal) => void;
}

/** A held process a gateway takes over from an earlier one (see {@link adoptTerminalProcess}). */
export interface AdoptOptions {
  socketPath: string;
  holderPid: number;
  /** The holder's start time on record: the socket's peer must be that process (holder-peer.ts). */
  holderStart: number | null;
  pid: number;
  startTime: number | null;
  pty: boolean;
  /** The holder offset of the output the log has: the holder resends from there. */
  resumeFrom: number;
  /** The newest seq the log has on record (default 0): held input for a later seq was never recorded and is dropped. */
  committedSeq?: number;
  drainTimeoutMs?: number;
  onOutput: TerminalProcessOptions["onOutput"];
  onExit: TerminalProcessOptions["onExit"];
  onLost: (reason: string) => void;
  /** The holder answered: the process is this gateway's now. */
  onAdopted?: () => void;
  /** The socket's peer was not the holder on record (or could not be checked): refused, the process is lost. */
  onRefused?: (refusal: PeerRefusal) => void;
}

/**
 * A running process and its process group.
 * @example
 * const proc = spawnTerminalProcess({ command: ["bash", "-l"], cwd: "/tmp", env, pty: true,
 *   onOutput: (stream, chunk) => coalescer.push(stream, chunk), onExit: (exit) => log.append(exit) });
 * proc.write("echo hi\r");
 * await proc.terminate(2_000); // hangup and TERM, then KILL after 2 s
 */
export interface TerminalProcess {
  readonly pid: number;
  /** When the child started (`processStartTime`), or null where `/proc` does not tell. */
  readonly startTime: number | null;
  readonly pty: boolean;
  /** Resolves with the exit once it is known and all output was delivered (also after `dispose()`). */
  readonly exited: Promise<TerminalExit>;
  /**
   * Sends input (a string is UTF-8). Throws SESSION_NOT_RUNNING after the process exited,
   * INPUT_CLOSED when a pipe process closed its stdin (or `endInput` did), RATE_LIMITED when too
   * much input is pending. Held, `mark` is the seq of the input's event: the holder gives it to
   * the program only once {@link commitInput} reaches it, unless a recorder is set
   * ({@link recordInputLate}) and `by` (the actor's JSON) is given: then a 1.2 holder writes it at
   * once and keeps its record until that commit (true).
   */
  write(data: Uint8Array | string, mark?: number, by?: Uint8Array): boolean;
  /** Held: where input written at once is recorded (see HolderTransport.recordInputLate); ignored otherwise. */
  recordInputLate(recorder: LateInputRecorder): void;
  /**
   * Ends the input, as a terminal's ^D does: a pipe's stdin is closed (later writes answer
   * INPUT_CLOSED); a PTY gets ^D (EOF for a program reading a line, at a line's start).
   */
  endInput(mark?: number): void;
  /**
   * Sends a signal. Pipes: to the process group (`kill(-pid)`; the child leads its own group
   * and session in both modes). PTY: to the terminal's foreground process group, where Ctrl-C
   * goes — the command a shell is running (a shell with job control gives each job its own
   * group), or the shell itself at its prompt. Throws SESSION_NOT_RUNNING once it is gone.
   */
  signal(name: SignalName): void;
  /** PTY only (else WRONG_SESSION_KIND). The kernel sends SIGWINCH to the foreground group. */
  resize(cols: number, rows: number): void;
  /**
   * Holds the process back: output is not read until {@link resumeOutput}, so the process
   * blocks on its next write once the kernel's buffer is full. For a consumer that cannot keep
   * up and must not drop output (the log's store). Ignored once the child has exited: its
   * remaining output is read at once (bounded by the kernel's buffer), so no drain timeout
   * can cut it off.
   */
  pauseOutput(): void;
  resumeOutput(): void;
  /**
   * Pipes: TERM and CONT to every process of its session. PTY: as closing a terminal, HUP and
   * CONT to the foreground and child's groups (a shell passes it on to its jobs), TERM to the
   * child's group, the hangup again after {@link HANGUP_REPEAT_MS} and twice as long each time
   * while it runs, then also to every process of its session. After `graceMs`, KILL to
   * every process of the session still there, also after the child's exit, so no job outlives
   * it; the exit waits for that KILL while they hold the output open. Resolves with the exit.
   */
  terminate(graceMs?: number): Promise<TerminalExit>;
  /**
   * KILL to every process of its session if still running (or if a `terminate()`'s KILL is still
   * due), closes every fd and timer; no callbacks afterwards. Idempotent.
   */
  dispose(): void;
  /** The holder's pid, for a held process; null for one of the gateway's own. */
  readonly holderPid: number | null;
  /** The holder's start time (`processStartTime`), recorded with its pid to check its socket's peer; null without a holder. */
  readonly holderStart: number | null;
  /** Held: the output up to holder offset `offset` is committed, so the holder may forget it. */
  acknowledge(offset: number): void;
  /** Held: the exit is committed, so the holder may end. */
  exitRecorded(): void;
  /** Held: the log is committed up to `seq`, so input marked up to it may reach the program. */
  commitInput(seq: number): void;
  /**
   * Held: undefined once every input byte written has left this process for the holder's socket
   * (the common case), else a promise of that, refused if the connection ends first (see
   * HolderTransport.delivered). Undefined for a process of the gateway's own.
   */
  inputDelivered(): Promise<void> | undefined;
  /**
   * Held and taken over: undefined once the holder said HELLO, else a promise of it, refused if
   * the connection ends first (HolderTransport.greeted). Undefined for a process of the gateway's own.
   */
  greeted(): Promise<void> | undefined;
  /** Held: output bytes the holder keeps that were not acknowledged (0 for a process of the gateway's own). */
  readonly heldBytes: number;
  /**
   * Held: lets go of the process without stopping it (the gateway stops and the next one adopts
   * it); no callbacks afterwards. For a process of the gateway's own this is {@link dispose}.
   */
  detach(): void;
}

/**
 * Starts a process. Throws `SwitchboardError("SPAWN_FAILED")` with the reason (command not
 * found, cwd missing or not a directory, permission denied) before anything is started, or
 * RESOURCE_EXHAUSTED when the gateway has too few file descriptors left to start it.
 */
export function spawnTerminalProcess(options: TerminalProcessOptions): TerminalProcess {
  assertSpawnable(options.command, options.cwd, options.env);
  return new ManagedProcess(options, (sink) => {
    const transport = options.pty ? openPtyTransport(options, sink) : openPipeTransport(options, sink);
    return { transport, startTime: processStartTime(transport.pid), holderPid: null };
  });
}

/**
 * Starts a process under a holder: resolves once the program runs (the holder forks and execs it
 * while the event loop goes on), with what it is connected to. Rejects as
 * {@link spawnTerminalProcess} throws, and with the holder's reason when it could not start.
 */
export async function startHeldProcess(options: HeldProcessOptions): Promise<TerminalProcess> {
  assertSpawnable(options.command, options.cwd, options.env);
  const { holders, sessionId } = options.held;
  // As pty-process.ts: the shell learns its directory from PWD, and TERM is the caller's or ours.
  const env = options.pty ? { ...options.env, TERM: options.env["TERM"] ?? PTY_TERM, PWD: options.cwd } : options.env;
  let started: Launched;
  try {
    started = await holders.launch(sessionId, {
      command: options.command,
      cwd: options.cwd,
      env,
      pty: options.pty,
      cols: options.cols ?? DEFAULT_COLS,
      rows: options.rows ?? DEFAULT_ROWS,
      drainTimeoutMs: options.drainTimeoutMs ?? OUTPUT_DRAIN_TIMEOUT_MS,
    });
  } catch (error) {
    throw spawnError(options.command[0] ?? "", error);
  }
  return new ManagedProcess(options, (sink) => {
    const transport = new HolderTransport(
      {
        socketPath: holders.socketPath(sessionId),
        holderPid: started.holderPid,
        holderStart: started.holderStart,
        childPid: started.childPid,
        pty: options.pty,
        resumeFrom: 0,
        committedSeq: 0,
        ...(options.onRefused !== undefined ? { onRefused: options.onRefused } : {}),
      },
      sink,
    );
    return {
      transport,
      startTime: processStartTime(started.childPid),
      holderPid: started.holderPid,
      holderStart: started.holderStart,
    };
  });
}

/**
 * Takes over a held process an earlier gateway started: connects to its holder, which resends
 * the output from `resumeFrom` on. A holder that cannot be reached ends in `onLost`.
 */
export function adoptTerminalProcess(options: AdoptOptions): TerminalProcess {
  const processOptions: TerminalProcessOptions = {
    command: [],
    cwd: "/",
    env: {},
    pty: options.pty,
    ...(options.drainTimeoutMs !== undefined ? { drainTimeoutMs: options.drainTimeoutMs } : {}),
    onOutput: options.onOutput,
    onExit: options.onExit,
    onLost: options.onLost,
  };
  return new ManagedProcess(processOptions, (sink) => ({
    transport: new HolderTransport(
      {
        socketPath: options.socketPath,
        holderPid: options.holderPid,
        holderStart: options.holderStart,
        childPid: options.pid,
        pty: options.pty,
        resumeFrom: options.resumeFrom,
        committedSeq: options.committedSeq ?? 0,
        ...(options.onAdopted !== undefined ? { onGreeted: options.onAdopted } : {}),
        ...(options.onRefused !== undefined ? { onRefused: options.onRefused } : {}),
      },
      sink,
    ),
    startTime: options.startTime,
    holderPid: options.holderPid,
    holderStart: options.holderStart,
  }));
}

/** A transport as a process's lifecycle gets it. */
interface Opened {
  transport: ProcessTransport;
  startTime: number | null;
  holderPid: number | null;
  /** The holder's start time (`processStartTime`), for the session's record. */
  holderStart?: number | null;
}

const ENCODER = new TextEncoder();

class ManagedProcess implements TerminalProcess {
  readonly pty: boolean;
  readonly exited: Promise<TerminalExit>;
  private readonly transport: ProcessTransport;
  private readonly options: TerminalProcessOptions;
  private resolveExited!: (exit: TerminalExit) => void;
  private state: ProcessState = { at: "running", paused: false };
  /** The grace of the `terminate()` whose KILL is armed. */
  private killGraceMs = DEFAULT_TERMINATE_GRACE_MS;
  /** Until the next repeat of terminate()'s hangup: {@link HANGUP_REPEAT_MS}, doubled at each. */
  private hangupRepeatMs = HANGUP_REPEAT_MS;
  private readonly timers: TimerSet<"drain" | "hangup" | "kill" | "holder">;
  readonly startTime: number | null;
  readonly holderPid: number | null;
  readonly holderStart: number | null;

  constructor(options: TerminalProcessOptions, open: (sink: TransportSink) => Opened) {
    this.options = options;
    this.pty = options.pty;
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    // Referenced: a KILL or an end of output that is due must happen even when nothing else is left.
    this.timers = new TimerSet({
      // Normally EOF follows the child's exit at once; this bounds the wait when a grandchild holds the output open.
      drain: {
        after: options.drainTimeoutMs ?? OUTPUT_DRAIN_TIMEOUT_MS,
        fire: () => this.transport.abandonOutput(),
        ref: true,
      },
      hangup: { after: () => this.hangupRepeatMs, fire: () => this.hangUpAgain(), ref: true },
      kill: { after: () => this.killGraceMs, fire: () => this.killAfterGrace(), ref: true },
      holder: { after: HOLDER_EXIT_WAIT_MS, fire: () => this.killStuckHolder(), ref: true },
    });
    const sink: TransportSink = {
      output: (stream, chunk) => {
        if (!this.disposed) this.options.onOutput(stream, chunk);
      },
      childExited: (exit) => this.handleChildExit(exit),
      outputEnded: () => this.handleOutputEnded(),
      lost: (reason, leaveRunning) => this.handleLost(reason, leaveRunning),
    };
    let opened: Opened;
    try {
      opened = open(sink);
    } catch (error) {
      // The command was checked (assertSpawnable); what fails now is mostly the system's limits.
      throw spawnError(options.command[0] ?? "", error);
    }
    this.transport = opened.transport;
    this.startTime = opened.startTime;
    this.holderPid = opened.holderPid;
    this.holderStart = opened.holderStart ?? null;
  }

  /** The child's exit, once known: until then its pid still names its processes. */
  private get childExit(): TerminalExit | null {
    const state = this.state;
    return state.at === "running" || state.at === "output-ended" ? null : state.childExit;
  }

  /** `dispose()` or `detach()` was called: no callbacks. */
  private get disposed(): boolean {
    return this.state.at === "disposed" || this.state.at === "closed";
  }

  /** The exit (or the loss) was told, or resolved `exited` after `dispose()`. */
  private get reported(): boolean {
    return this.state.at === "reported" || this.state.at === "closed";
  }

  private moveTo(next: ProcessState): void {
    if (!PROCESS_MOVES[this.state.at].includes(next.at))
      throw new InternalError(`terminal process ${this.pid}: no move from ${this.state.at} to ${next.at}`);
    this.state = next;
  }

  acknowledge(offset: number): void {
    if (this.transport instanceof HolderTransport && !this.disposed) this.transport.acknowledge(offset);
  }

  exitRecorded(): void {
    if (this.transport instanceof HolderTransport) this.transport.done();
  }

  commitInput(seq: number): void {
    if (this.transport instanceof HolderTransport && !this.disposed) this.transport.commitInput(seq);
  }

  inputDelivered(): Promise<void> | undefined {
    return this.transport instanceof HolderTransport && !this.disposed ? this.transport.delivered() : undefined;
  }

  greeted(): Promise<void> | undefined {
    return this.transport instanceof HolderTransport && !this.disposed ? this.transport.greeted() : undefined;
  }

  get heldBytes(): number {
    return this.transport instanceof HolderTransport && !this.disposed ? this.transport.heldBytes : 0;
  }

  detach(): void {
    if (!(this.transport instanceof HolderTransport) || this.reported) {
      this.dispose();
      return;
    }
    if (this.disposed) return;
    this.moveTo({ at: "disposed", childExit: this.childExit, outputEnded: this.state.at === "output-ended" });
    this.timers.stopAll();
    this.transport.detach();
  }

  /** The holder is gone: the exit will never be known. What is left of the process is killed (it cannot be steered). */
  private handleLost(reason: string, leaveRunning: boolean): void {
    if (this.reported || this.disposed) return;
    this.moveTo({ at: "reported", childExit: this.childExit });
    this.timers.stopAll();
    if (!leaveRunning) this.kill();
    this.transport.close();
    const what = leaveRunning ? "" : "; what was left of its processes was killed";
    this.resolveExited({ exitCode: null, signal: null });
    this.options.onLost?.(`${reason}${what}`);
  }

  get pid(): number {
    return this.transport.pid;
  }

  recordInputLate(recorder: LateInputRecorder): void {
    if (this.transport instanceof HolderTransport && !this.disposed) this.transport.recordInputLate(recorder);
  }

  write(data: Uint8Array | string, mark?: number, by?: Uint8Array): boolean {
    if (this.childExit !== null || this.disposed) throw notRunning(this.pid);
    const bytes = typeof data === "string" ? ENCODER.encode(data) : data;
    if (bytes.length === 0) return false;
    const pending = this.transport.pendingInputBytes;
    if (pending + bytes.length > MAX_PENDING_INPUT_BYTES) {
      throw new SwitchboardError(
        "RATE_LIMITED",
        `the process is not reading its input: ${pending} bytes pending (limit ${MAX_PENDING_INPUT_BYTES})`,
      );
    }
    return this.transport.write(bytes, mark, by) === true;
  }

  endInput(mark?: number): void {
    if (this.childExit !== null || this.disposed) throw notRunning(this.pid);
    this.transport.endInput(mark);
  }

  signal(name: SignalName): void {
    // After the exit is reported the group id may be reused by an unrelated process.
    if (this.reported || this.disposed) throw notRunning(this.pid);
    const signal: NodeJS.Signals = `SIG${name}`;
    const foreground = this.foregroundGroup();
    if (foreground !== null && signalGroup(foreground, signal)) return;
    if (!this.sendSignal(signal)) throw notRunning(this.pid);
  }

  resize(cols: number, rows: number): void {
    if (!this.pty) throw new SwitchboardError("WRONG_SESSION_KIND", "only PTY sessions can be resized");
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) {
      throw new SwitchboardError("BAD_REQUEST", `cols and rows must be positive integers (got ${cols}x${rows})`);
    }
    if (this.reported || this.disposed) throw notRunning(this.pid);
    this.transport.resize(cols, rows);
  }

  pauseOutput(): void {
    if (this.state.at !== "running" || this.state.paused) return;
    this.moveTo({ at: "running", paused: true });
    this.transport.pauseOutput();
  }

  resumeOutput(): void {
    if (this.state.at !== "running" || !this.state.paused) return;
    this.moveTo({ at: "running", paused: false });
    this.transport.resumeOutput();
  }

  terminate(graceMs = DEFAULT_TERMINATE_GRACE_MS): Promise<TerminalExit> {
    if (this.reported || this.disposed) return this.exited;
    // false (ESRCH) below: the whole group is gone already; the exit is on its way.
    if (this.pty) {
      this.hangUp();
      if (!this.timers.isPending("hangup")) {
        this.hangupRepeatMs = HANGUP_REPEAT_MS;
        this.timers.start("hangup");
      }
    }
    this.sendSignal("SIGTERM");
    // A stopped process acts on TERM only once it runs again: without CONT it would wait for KILL.
    // (In a PTY the hangup above has sent CONT already.)
    if (!this.pty) this.sendSignal("SIGCONT");
    // Pipes: jobs in process groups of their own (`set -m`) get the TERM too, so they can clean
    // up before the KILL; no shell passes it on, as one passes a PTY's hangup to its jobs.
    if (!this.pty && this.idsAreOurs()) {
      for (const pid of sessionMembers(this.pid)) {
        signalProcess(pid, "SIGTERM");
        signalProcess(pid, "SIGCONT");
      }
    }
    // The exit waits for the KILL now, not for the drain timeout: a job that ignores TERM and
    // holds the output after the child died would otherwise outlive the session (its exit
    // cancels the KILL), and nothing could reach it any more.
    this.timers.stop("drain");
    // After the exit too: a job that ignores TERM and holds nothing of ours is still one of its processes.
    if (!this.timers.isPending("kill")) {
      this.killGraceMs = graceMs;
      this.timers.start("kill");
    }
    return this.exited;
  }

  dispose(): void {
    if (this.disposed) return;
    const reported = this.reported;
    const childExit = this.childExit;
    // A terminate() whose KILL is still due: what is left of the session is killed now, not never.
    const killDue = this.timers.isPending("kill");
    this.moveTo(reported ? { at: "closed", childExit } : { at: "disposed", childExit, outputEnded: true });
    this.timers.stopAll();
    if (!reported) {
      this.kill();
      // Its holder would wait for a gateway to take an exit nobody records; CONT: a stopped one acts on it.
      if (this.holderPid !== null) {
        signalProcess(this.holderPid, "SIGTERM");
        signalProcess(this.holderPid, "SIGCONT");
      }
    } else if (killDue) this.killLeftovers();
    this.transport.close();
    if (!reported && childExit !== null) this.report(childExit);
  }

  /**
   * A hangup, as when a terminal window closes: HUP and CONT to the foreground group and the
   * child's group. An interactive shell ignores TERM but exits on HUP and passes it on to its
   * jobs, which live in groups of their own.
   */
  private hangUp(): void {
    const foreground = this.foregroundGroup();
    for (const signal of ["SIGHUP", "SIGCONT"] as const) {
      if (foreground !== null && foreground !== this.pid) signalGroup(foreground, signal);
      this.sendSignal(signal);
    }
  }

  /**
   * {@link HANGUP_REPEAT_MS} after terminate()'s hangup, then twice as long each time: again, and
   * to every process of the session, while the child runs and the KILL is still due.
   */
  private hangUpAgain(): void {
    const running = this.childExit === null;
    if (running) this.hangUp();
    // A shell that died of the first hangup before passing it on leaves its jobs holding the
    // terminal until the KILL (terminal-process.test.ts, "died of the hangup").
    if (this.idsAreOurs())
      for (const pid of sessionMembers(this.pid)) {
        signalProcess(pid, "SIGHUP");
        signalProcess(pid, "SIGCONT");
      }
    // Once the child has exited its jobs had their hangup above; the KILL ends those that ignore it.
    if (running && this.timers.isPending("kill")) {
      this.hangupRepeatMs *= 2;
      this.timers.start("hangup");
    }
  }

  /** terminate()'s grace is over. */
  private killAfterGrace(): void {
    this.timers.stop("hangup");
    this.killLeftovers();
    if (this.holderPid !== null && !this.reported) this.timers.startIfIdle("holder");
    // The processes of its session are gone; only one that left it (a daemon) can still hold the output.
    if (this.state.at === "draining") this.timers.startIfIdle("drain");
  }

  /**
   * The holder did not report the exit within {@link HOLDER_EXIT_WAIT_MS} of the KILL: it is
   * stopped or stuck, and would hold the exit (and a DELETE, a stop) for good. It leads a process
   * group of its own (native/holder.c, `setsid`), which gets SIGKILL; it still held its connection
   * open, so its pid is still its own.
   */
  private killStuckHolder(): void {
    const holderPid = this.holderPid;
    if (holderPid === null || this.reported || this.disposed) return;
    signalGroup(holderPid, "SIGKILL");
    this.handleLost(
      `its holder (pid ${holderPid}) did not report the program's exit within ${HOLDER_EXIT_WAIT_MS} ms of its KILL (stopped or stuck), so the holder was killed`,
      false,
    );
  }

  /**
   * {@link kill}, also once the exit was reported (what is left of the session after the child),
   * where the child's start time tells a stranger that took its pid from it (Linux).
   */
  private killLeftovers(): void {
    if (this.reported && this.startTime === null) return;
    this.kill();
  }

  /** KILL to every process of the child's session (it leads one in both modes), and to its group. */
  private kill(): void {
    if (!this.idsAreOurs()) return;
    for (const pid of sessionMembers(this.pid)) signalProcess(pid, "SIGKILL");
    // false (ESRCH) is fine: nothing left to kill.
    this.sendSignal("SIGKILL");
  }

  /**
   * PTY: the terminal's foreground process group, read from the child's `/proc/PID/stat`
   * (Linux). Null for pipes, once the child has exited, or where `/proc` does not tell.
   */
  private foregroundGroup(): number | null {
    if (!this.pty || this.childExit !== null) return null;
    const stat = procStat(this.pid);
    // Just after the fork the child is still in the gateway's session, and its terminal is
    // the gateway's (if any): only once it leads a session of its own is the terminal ours.
    if (stat === null || Number(stat[STAT_SESSION]) !== this.pid) return null;
    const tpgid = Number(stat[STAT_TPGID]);
    return Number.isInteger(tpgid) && tpgid > 0 ? tpgid : null;
  }

  /**
   * Whether the child's pid, as a group and session id, still names its processes. Once the
   * child is reaped and the last process of its session is gone the number is free, and with
   * 32768 pids it comes round again within seconds on a busy machine: a group signal could then
   * hit a stranger that leads a group under the same number. Such a stranger is alive under
   * that pid with another start time; while any of ours is left, the number cannot be reused.
   */
  private idsAreOurs(): boolean {
    if (this.childExit === null || this.startTime === null) return true;
    const start = processStartTime(this.pid);
    return start === null || start === this.startTime;
  }

  /** To the group; false when nothing of it is left. */
  private sendSignal(signal: NodeJS.Signals): boolean {
    if (!this.idsAreOurs()) return false;
    if (signalGroup(this.pid, signal)) return true;
    // Just after a PTY fork the child may not have called setsid() yet, so its group does
    // not exist. Until its exit is reported it is our unreaped child: its pid is still its own.
    if (this.childExit === null) return signalProcess(this.pid, signal);
    return false;
  }

  private handleChildExit(exit: TerminalExit): void {
    const state = this.state;
    switch (state.at) {
      case "running":
        this.moveTo({ at: "draining", childExit: exit });
        // What is left is bounded by the kernel's buffer: read it now, before any drain timeout.
        if (state.paused) this.transport.resumeOutput();
        // While terminating, the KILL after the grace ends what still holds the output (terminate()).
        if (!this.timers.isPending("kill")) this.timers.startIfIdle("drain");
        return;
      case "output-ended":
        this.report(exit);
        return;
      case "disposed":
        this.moveTo({ ...state, childExit: exit });
        if (state.outputEnded) this.report(exit);
        return;
      case "reported":
      case "closed":
        // Told already (the holder was lost): kept so that signals know the pid may be a stranger's.
        this.moveTo({ ...state, childExit: exit });
        return;
      case "draining":
        // The transport tells the exit once.
        return;
    }
  }

  private handleOutputEnded(): void {
    const state = this.state;
    switch (state.at) {
      case "running":
        this.moveTo({ at: "output-ended" });
        return;
      case "draining":
        this.report(state.childExit);
        return;
      case "disposed":
        this.moveTo({ ...state, outputEnded: true });
        if (state.childExit !== null) this.report(state.childExit);
        return;
      case "output-ended":
      case "reported":
      case "closed":
        return;
    }
  }

  /** The exit is known and every byte of output was delivered: `exited` resolves, `onExit` unless disposed. */
  private report(exit: TerminalExit): void {
    const disposed = this.disposed;
    this.moveTo(disposed ? { at: "closed", childExit: exit } : { at: "reported", childExit: exit });
    // A KILL that terminate() has due stays due: it is for every process of the session, not only the child.
    this.timers.stop("drain");
    this.timers.stop("hangup");
    this.timers.stop("holder");
    this.transport.close();
    this.resolveExited(exit);
    if (!disposed) this.options.onExit(exit);
  }
}

function notRunning(pid: number): SwitchboardError {
  return new SwitchboardError("SESSION_NOT_RUNNING", `process ${pid} has exited`);
}
