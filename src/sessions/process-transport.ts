import type { OutputStream } from "../protocol/events.js";

/*
 * The contract between a terminal process's lifecycle (terminal-process.ts) and the I/O of its
 * mode: pty-process.ts and pipe-process.ts each open a ProcessTransport and report to the
 * lifecycle's TransportSink.
 */

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
  /**
   * The complete environment of the child (not merged with the gateway's). PTY mode sets `PWD`,
   * and `TERM` (`PTY_TERM`, pty-process.ts) when there is none.
   */
  env: Readonly<Record<string, string>>;
  /** true: a PTY (stream `"pty"`); false: pipes, stdout and stderr kept apart. */
  pty: boolean;
  /** PTY size; default `DEFAULT_COLS` x `DEFAULT_ROWS` (pty-process.ts). Ignored for pipes. */
  cols?: number;
  rows?: number;
  /** Default `OUTPUT_DRAIN_TIMEOUT_MS` (terminal-process.ts). */
  drainTimeoutMs?: number;
  /**
   * Every chunk as it is read. The process is read as fast as it writes, whatever viewers do
   * (docs/architecture.md, guarantee 4); only `TerminalProcess.pauseOutput` holds it back. `chunk` is valid only during the call
   * (PTY reads reuse one buffer): copy what you keep.
   */
  onOutput: (stream: OutputStream, chunk: Uint8Array) => void;
  /** Called exactly once, after the last `onOutput`. Not called after `dispose()`. */
  onExit: (exit: TerminalExit) => void;
  /**
   * Held processes: the holder is gone (or refused this gateway) and the exit will never be
   * known; called instead of `onExit`. What is left of the process was killed, unless the
   * reason says it was left running (a holder of another protocol version).
   */
  onLost?: (reason: string) => void;
}

/** What the transports report to the lifecycle. */
export interface TransportSink {
  output(stream: OutputStream, chunk: Uint8Array): void;
  /** The child itself ended (waitpid). Output may still be in flight. */
  childExited(exit: TerminalExit): void;
  /** All output has been read (EOF), or was abandoned after `abandonOutput()`. */
  outputEnded(): void;
  /**
   * Held processes (holder-transport.ts): the holder is gone or refused this gateway, so the exit
   * will never be known. `leaveRunning`: the program may still run and must not be killed.
   */
  lost?(reason: string, leaveRunning: boolean): void;
}

/** The I/O of one mode (`pty-process.ts`, `pipe-process.ts`). */
export interface ProcessTransport {
  readonly pid: number;
  /** Bytes written but not yet taken by the process. */
  readonly pendingInputBytes: number;
  /** `mark`, `by` and the answer: see `TerminalProcess.write` (held processes only). */
  write(data: Uint8Array, mark?: number, by?: Uint8Array): boolean | void;
  /** See `TerminalProcess.endInput` (terminal-process.ts). */
  endInput(mark?: number): void;
  /** PTY only; the lifecycle refuses it for pipes. */
  resize(cols: number, rows: number): void;
  /** Stops waiting for EOF: reads what is already buffered, closes the output, then `outputEnded`. */
  abandonOutput(): void;
  /** Stops reading output until `resumeOutput`: the process blocks once the kernel's buffer is full. */
  pauseOutput(): void;
  resumeOutput(): void;
  /** Releases fds and timers. Idempotent. Afterwards only `childExited` may still be reported. */
  close(): void;
}
