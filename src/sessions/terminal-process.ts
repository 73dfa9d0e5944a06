import { accessSync, constants as fsConstants, statSync } from "node:fs";
import { delimiter, resolve } from "node:path";
import { SwitchboardError } from "../protocol/errors.js";
import type { OutputStream } from "../protocol/events.js";
import type { SignalName } from "../protocol/sessions.js";
import { openPipeTransport } from "./pipe-process.js";
import { openPtyTransport } from "./pty-process.js";

export { DEFAULT_COLS, DEFAULT_ROWS, PTY_TERM } from "./pty-process.js";

/**
 * A process run for a terminal session, in a PTY or with plain pipes: raw output in,
 * input/signals/resize out, and exactly one `exit` that comes only after the last byte of
 * output (DESIGN §3.3, issue 2 point 5).
 *
 * This module is the lifecycle shared by both modes; `pty-process.ts` and
 * `pipe-process.ts` are the two transports (how bytes are read and written).
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
/** `terminate()` without an argument: time between TERM and KILL. */
export const DEFAULT_TERMINATE_GRACE_MS = 3_000;
/** Search path when the child's environment has none (libuv's default; glibc's has the same two directories). */
export const DEFAULT_EXEC_PATH = "/usr/bin:/bin";

/**
 * How a process ended. `signal` is Node's form, `"SIGTERM"`, when a signal killed it
 * (then `exitCode` is null, as with `child_process`); otherwise `signal` is null.
 */
export interface TerminalExit {
  exitCode: number | null;
  signal: string | null;
}

export interface TerminalProcessOptions {
  /** argv: the program (looked up in `env.PATH` like execvp) and its arguments. */
  command: readonly string[];
  cwd: string;
  /** The complete environment of the child (not merged with the gateway's). PTY mode sets `TERM` and `PWD`. */
  env: Readonly<Record<string, string>>;
  /** true: a PTY (stream `"pty"`); false: pipes, stdout and stderr kept apart. */
  pty: boolean;
  /** PTY size; default {@link DEFAULT_COLS} x {@link DEFAULT_ROWS}. Ignored for pipes. */
  cols?: number;
  rows?: number;
  /** Default {@link OUTPUT_DRAIN_TIMEOUT_MS}. */
  drainTimeoutMs?: number;
  /**
   * Every chunk as it is read, never paused or throttled: the process is read as fast as it
   * writes, whatever the consumer does (DESIGN §3.4). `chunk` is valid only during the call
   * (PTY reads reuse one buffer): copy what you keep.
   */
  onOutput: (stream: OutputStream, chunk: Uint8Array) => void;
  /** Called exactly once, after the last `onOutput`. Not called after `dispose()`. */
  onExit: (exit: TerminalExit) => void;
}

/**
 * A running process and its process group.
 *
 * @example
 * const proc = spawnTerminalProcess({
 *   command: ["bash", "-l"], cwd: "/tmp", env: { PATH: process.env.PATH ?? "" }, pty: true,
 *   onOutput: (stream, chunk) => coalescer.push(stream, chunk),
 *   onExit: (exit) => { coalescer.flush(); log.append({ type: "exit", ...exit }); },
 * });
 * proc.write("echo hi\r");
 * await proc.terminate(2_000); // TERM, then KILL after 2 s
 */
export interface TerminalProcess {
  readonly pid: number;
  readonly pty: boolean;
  /** Resolves with the exit once it is known and all output was delivered (also after `dispose()`). */
  readonly exited: Promise<TerminalExit>;
  /** Sends input (a string is UTF-8). Throws SESSION_NOT_RUNNING after the process exited, RATE_LIMITED when too much input is pending. */
  write(data: Uint8Array | string): void;
  /**
   * Sends a signal to the process group (`kill(-pid)`; the child leads its own group and
   * session in both modes). Throws SESSION_NOT_RUNNING once the group is gone.
   * In a PTY, a shell with job control runs foreground jobs in their own groups: to reach
   * those the way Ctrl-C does, write `"\x03"` instead.
   */
  signal(name: SignalName): void;
  /** PTY only (else WRONG_SESSION_KIND). The kernel sends SIGWINCH to the foreground group. */
  resize(cols: number, rows: number): void;
  /** TERM to the group, KILL after `graceMs` if it has not ended. Resolves with the exit. */
  terminate(graceMs?: number): Promise<TerminalExit>;
  /** Kills the group (KILL) if still running, closes every fd and timer; no callbacks afterwards. Idempotent. */
  dispose(): void;
}

/**
 * Starts a process. Throws `SwitchboardError("SPAWN_FAILED")` with the reason (command not
 * found, cwd missing or not a directory, permission denied) before anything is started.
 */
export function spawnTerminalProcess(options: TerminalProcessOptions): TerminalProcess {
  assertSpawnable(options.command, options.cwd, options.env);
  return new ManagedProcess(options);
}

/** What the transports report to the lifecycle. */
export interface TransportSink {
  output(stream: OutputStream, chunk: Uint8Array): void;
  /** The child itself ended (waitpid). Output may still be in flight. */
  childExited(exit: TerminalExit): void;
  /** All output has been read (EOF), or was abandoned after `abandonOutput()`. */
  outputEnded(): void;
}

/** The I/O of one mode (`pty-process.ts`, `pipe-process.ts`). */
export interface ProcessTransport {
  readonly pid: number;
  /** Bytes written but not yet taken by the process. */
  readonly pendingInputBytes: number;
  write(data: Uint8Array): void;
  /** PTY only; the lifecycle refuses it for pipes. */
  resize(cols: number, rows: number): void;
  /** Stops waiting for EOF: reads what is already buffered, closes the output, then `outputEnded`. */
  abandonOutput(): void;
  /** Releases fds and timers. Idempotent. Afterwards only `childExited` may still be reported. */
  close(): void;
}

const ENCODER = new TextEncoder();

class ManagedProcess implements TerminalProcess {
  readonly pty: boolean;
  readonly exited: Promise<TerminalExit>;
  private readonly transport: ProcessTransport;
  private readonly options: TerminalProcessOptions;
  private resolveExited!: (exit: TerminalExit) => void;
  private childExit: TerminalExit | null = null;
  private outputEnded = false;
  private reported = false;
  private disposed = false;
  private drainTimer: NodeJS.Timeout | null = null;
  private killTimer: NodeJS.Timeout | null = null;

  constructor(options: TerminalProcessOptions) {
    this.options = options;
    this.pty = options.pty;
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    const sink: TransportSink = {
      output: (stream, chunk) => {
        if (!this.disposed) this.options.onOutput(stream, chunk);
      },
      childExited: (exit) => this.handleChildExit(exit),
      outputEnded: () => {
        this.outputEnded = true;
        this.maybeReport();
      },
    };
    try {
      this.transport = options.pty ? openPtyTransport(options, sink) : openPipeTransport(options, sink);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new SwitchboardError("SPAWN_FAILED", `cannot start ${options.command[0] ?? ""}: ${reason}`);
    }
  }

  get pid(): number {
    return this.transport.pid;
  }

  write(data: Uint8Array | string): void {
    if (this.childExit !== null || this.disposed) throw notRunning(this.pid);
    const bytes = typeof data === "string" ? ENCODER.encode(data) : data;
    if (bytes.length === 0) return;
    const pending = this.transport.pendingInputBytes;
    if (pending + bytes.length > MAX_PENDING_INPUT_BYTES) {
      throw new SwitchboardError(
        "RATE_LIMITED",
        `the process is not reading its input: ${pending} bytes pending (limit ${MAX_PENDING_INPUT_BYTES})`,
      );
    }
    this.transport.write(bytes);
  }

  signal(name: SignalName): void {
    // After the exit is reported the group id may be reused by an unrelated process.
    if (this.reported || this.disposed) throw notRunning(this.pid);
    if (!this.sendSignal(`SIG${name}`)) throw notRunning(this.pid);
  }

  resize(cols: number, rows: number): void {
    if (!this.pty) throw new SwitchboardError("WRONG_SESSION_KIND", "only PTY sessions can be resized");
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) {
      throw new SwitchboardError("BAD_REQUEST", `cols and rows must be positive integers (got ${cols}x${rows})`);
    }
    if (this.reported || this.disposed) throw notRunning(this.pid);
    this.transport.resize(cols, rows);
  }

  terminate(graceMs = DEFAULT_TERMINATE_GRACE_MS): Promise<TerminalExit> {
    if (this.reported || this.disposed) return this.exited;
    // false (ESRCH): the whole group is gone already; the exit is on its way.
    this.sendSignal("SIGTERM");
    this.killTimer ??= setTimeout(() => {
      this.killTimer = null;
      if (!this.reported) this.sendSignal("SIGKILL");
    }, graceMs);
    return this.exited;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.clearTimers();
    // false (ESRCH) is fine: nothing left to kill.
    if (!this.reported) this.sendSignal("SIGKILL");
    this.transport.close();
    this.outputEnded = true;
    this.maybeReport();
  }

  /** To the group; false when nothing of it is left. */
  private sendSignal(signal: NodeJS.Signals): boolean {
    if (signalGroup(this.pid, signal)) return true;
    // Just after a PTY fork the child may not have called setsid() yet, so its group does
    // not exist. Until its exit is reported it is our unreaped child: its pid is still its own.
    if (this.childExit === null) return signalProcess(this.pid, signal);
    return false;
  }

  private handleChildExit(exit: TerminalExit): void {
    this.childExit = exit;
    if (!this.outputEnded && !this.disposed) {
      // Normally EOF follows at once; this bounds the wait when a grandchild holds the output open.
      this.drainTimer = setTimeout(() => {
        this.drainTimer = null;
        this.transport.abandonOutput();
      }, this.options.drainTimeoutMs ?? OUTPUT_DRAIN_TIMEOUT_MS);
    }
    this.maybeReport();
  }

  private maybeReport(): void {
    if (this.reported || this.childExit === null || !this.outputEnded) return;
    this.reported = true;
    const exit = this.childExit;
    this.clearTimers();
    this.transport.close();
    this.resolveExited(exit);
    if (!this.disposed) this.options.onExit(exit);
  }

  private clearTimers(): void {
    if (this.drainTimer !== null) clearTimeout(this.drainTimer);
    if (this.killTimer !== null) clearTimeout(this.killTimer);
    this.drainTimer = null;
    this.killTimer = null;
  }
}

function notRunning(pid: number): SwitchboardError {
  return new SwitchboardError("SESSION_NOT_RUNNING", `process ${pid} has exited`);
}

/** `kill(-pid, signal)`. Returns false when no process of the group is left (ESRCH). */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  return signalProcess(-pid, signal);
}

/** `kill(pid, signal)`. Returns false when there is no such process (ESRCH). */
function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/**
 * Checks, before anything is started, what would make the exec fail, so the caller gets
 * SPAWN_FAILED with a reason instead of a process that dies at once (node-pty forks first
 * and reports an exec failure only as output and exit code 1). Mirrors execvp: a program
 * with a `/` is taken relative to `cwd`, otherwise searched in the child's `PATH`.
 */
export function assertSpawnable(command: readonly string[], cwd: string, env: Readonly<Record<string, string>>): void {
  const program = command[0];
  if (program === undefined || program === "") throw spawnFailed("the command is empty");
  checkCwd(cwd);
  if (program.includes("/")) {
    const problem = executableProblem(resolve(cwd, program));
    if (problem === "missing") throw spawnFailed(`command not found: ${program}`);
    if (problem !== null) throw spawnFailed(`permission denied: ${program} ${problem}`);
    return;
  }
  let denied: { path: string; problem: string } | null = null;
  for (const dir of (env["PATH"] ?? DEFAULT_EXEC_PATH).split(delimiter)) {
    // An empty PATH entry means the current directory, as in execvp.
    const candidate = resolve(cwd, dir, program);
    const problem = executableProblem(candidate);
    if (problem === null) return;
    // execvp skips entries it cannot run and reports EACCES only if nothing else works.
    if (problem !== "missing" && problem !== "is a directory") denied ??= { path: candidate, problem };
  }
  if (denied !== null) throw spawnFailed(`permission denied: ${denied.path} ${denied.problem}`);
  throw spawnFailed(`command not found: ${program} (not in PATH)`);
}

function checkCwd(cwd: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(cwd).isDirectory();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw spawnFailed(`cwd does not exist: ${cwd}`);
    if (code === "EACCES") throw spawnFailed(`permission denied: cannot reach cwd ${cwd}`);
    throw spawnFailed(`cwd is not usable: ${cwd} (${code ?? String(error)})`);
  }
  if (!isDirectory) throw spawnFailed(`cwd is not a directory: ${cwd}`);
  try {
    accessSync(cwd, fsConstants.X_OK);
  } catch {
    throw spawnFailed(`permission denied: cannot enter cwd ${cwd}`);
  }
}

/** null when `path` can be executed, else why not ("missing" when there is nothing there). */
function executableProblem(path: string): "missing" | "is a directory" | "is not executable" | null {
  let isFile: boolean;
  try {
    const stats = statSync(path);
    if (stats.isDirectory()) return "is a directory";
    isFile = stats.isFile();
  } catch {
    // ENOENT, ENOTDIR, EACCES on a parent, ELOOP: execvp would not find it either.
    return "missing";
  }
  if (!isFile) return "is not executable";
  try {
    accessSync(path, fsConstants.X_OK);
    return null;
  } catch {
    return "is not executable";
  }
}

function spawnFailed(reason: string): SwitchboardError {
  return new SwitchboardError("SPAWN_FAILED", reason);
}
