import { spawn } from "node:child_process";
import type { ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { SwitchboardError, InternalError } from "../protocol/errors.js";
import type { OutputStream } from "../protocol/events.js";
import type { ProcessTransport, TerminalProcessOptions, TransportSink } from "./process-transport.js";

/**
 * Pipe transport: `child_process.spawn` in its own process group (`detached: true` =
 * setsid), stdout and stderr read separately, paused only by `pauseOutput`.
 *
 * The output ends when both pipes have closed, which is what the child's `close` event
 * waits for too. Unlike a PTY, a libuv pipe does not lose its tail: a partial pipe read
 * means the pipe is empty, so libuv's POLLHUP shortcut is right here (see pty-process.ts).
 */
export function openPipeTransport(options: TerminalProcessOptions, sink: TransportSink): ProcessTransport {
  const [file, ...args] = options.command;
  if (file === undefined) throw new InternalError("the command is empty");
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  if (child.pid === undefined) {
    // Node emits the spawn error on the next tick; the caller learns it from our throw instead.
    child.on("error", () => undefined);
    throw new InternalError("the system refused to start it (out of processes or file descriptors?)");
  }
  return new PipeTransport(child.pid, child, sink);
}

class PipeTransport implements ProcessTransport {
  readonly pid: number;
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly sink: TransportSink;
  private openOutputs = 2;
  private closed = false;

  constructor(pid: number, child: ChildProcessByStdio<Writable, Readable, Readable>, sink: TransportSink) {
    this.pid = pid;
    this.child = child;
    this.sink = sink;
    this.readFrom("stdout", child.stdout);
    this.readFrom("stderr", child.stderr);
    child.stdin.on("error", () => {
      // EPIPE: the process closed its input. Input still queued behind a full pipe is lost with
      // it (as it would be in the pipe); write() refuses the rest (INPUT_CLOSED).
    });
    child.on("error", () => {
      // After a successful spawn Node reports errors here only for child.kill() and IPC,
      // neither of which is used (signals go to the group through process.kill).
    });
    child.on("exit", (exitCode, signal) => sink.childExited({ exitCode, signal }));
  }

  get pendingInputBytes(): number {
    return this.child.stdin.writableLength;
  }

  write(data: Uint8Array): void {
    const stdin = this.child.stdin;
    if (stdin.destroyed || !stdin.writable) throw this.inputClosed();
    stdin.write(data);
    // A pipe shows that its reader has gone only when written to. With nothing queued before it,
    // the write is tried at once and its EPIPE marks the stream errored before write() returns:
    // the caller hears that these bytes were not taken instead of an ok for bytes that are lost.
    if (stdin.errored) throw this.inputClosed();
  }

  /** The process still runs (the lifecycle refuses input once it has exited): it closed its stdin. */
  private inputClosed(): SwitchboardError {
    return new SwitchboardError(
      "INPUT_CLOSED",
      `process ${this.pid} closed its input (stdin) and reads no more; it still runs and takes signals`,
    );
  }

  endInput(): void {
    // Written data goes first; then the child reads EOF.
    if (!this.child.stdin.destroyed) this.child.stdin.end();
  }

  resize(): void {
    throw new SwitchboardError("WRONG_SESSION_KIND", "only PTY sessions can be resized");
  }

  pauseOutput(): void {
    // A paused Readable stops reading from the pipe once its own small buffer is full.
    this.child.stdout.pause();
    this.child.stderr.pause();
  }

  resumeOutput(): void {
    this.child.stdout.resume();
    this.child.stderr.resume();
  }

  abandonOutput(): void {
    // A grandchild still holds the pipes. Whatever Node has read was delivered already.
    this.child.stdout.destroy();
    this.child.stderr.destroy();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.child.stdin.destroy();
    this.child.stdout.destroy();
    this.child.stderr.destroy();
  }

  private readFrom(stream: OutputStream, readable: Readable): void {
    readable.on("data", (chunk: Buffer) => {
      if (!this.closed) this.sink.output(stream, chunk);
    });
    readable.on("error", () => {
      // A read error on a pipe (rare: EIO) ends that stream; 'close' follows and is counted.
    });
    readable.once("close", () => {
      this.openOutputs--;
      if (this.openOutputs === 0 && !this.closed) this.sink.outputEnded();
    });
  }
}
