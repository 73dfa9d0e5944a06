import type { OutputStream } from "../protocol/events.js";
import type { TerminalExit } from "./terminal-process.js";

/*
 * The contract between a terminal process's lifecycle (terminal-process.ts) and the I/O of its
 * mode: pty-process.ts and pipe-process.ts each open a ProcessTransport and report to the
 * lifecycle's TransportSink.
 */

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
  /** `mark`: see `TerminalProcess.write` (held processes only). */
  write(data: Uint8Array, mark?: number): void;
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
