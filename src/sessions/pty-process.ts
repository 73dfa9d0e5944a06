import { closeSync, constants as fsConstants, openSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { constants as osConstants } from "node:os";
import { dirname, resolve } from "node:path";
import { TimerSet } from "../system/timer-set.js";
import { noteInput, readMaster, type MasterReader } from "./pty-master.js";
import type { ProcessTransport, TransportSink } from "./process-transport.js";
import type { TerminalExit, TerminalProcessOptions } from "./process-transport.js";
import { InternalError } from "../protocol/errors.js";

/** ^D, what a terminal sends to end its input. */
const EOF_KEY = Uint8Array.of(0x04);
const DOUBLE_EOF_KEY = Uint8Array.of(0x04, 0x04);

/**
 * PTY transport: node-pty's native `fork`, reading the master ourselves so the output tail is
 * never lost (docs/architecture.md, guarantee 3; why not `onData`: bench/README.md, "PTY read
 * path"). We hold the slave open (`O_NOCTTY`) until the child exits, so the master never polls
 * POLLHUP early and a program that closes its fds first (`head`) is not killed by SIGHUP; then
 * we close it and the reader reads to EIO, which Linux reports only after all buffered data. A
 * grandchild holding the slave is cut off by the lifecycle's drain timeout (`abandonOutput`).
 */

/** Columns of a PTY when the caller gives none. */
export const DEFAULT_COLS = 80;
/** Rows of a PTY when the caller gives none. */
export const DEFAULT_ROWS = 24;
/** `TERM` (and the terminfo name) of a PTY session whose creator asks for no other. */
export const PTY_TERM = "xterm-256color";
/** When the terminal's input buffer is full (EAGAIN): when to try writing again. */
export const PTY_WRITE_RETRY_MS = 5;

/** node-pty 1.x's native binding (src/unix/pty.cc), the part we use. */
interface NativePty {
  fork(
    file: string,
    args: string[],
    env: string[],
    cwd: string,
    cols: number,
    rows: number,
    uid: number,
    gid: number,
    utf8: boolean,
    helperPath: string,
    onExit: (exitCode: number, signal: number) => void,
  ): { fd: number; pid: number; pty: string };
  resize(fd: number, cols: number, rows: number): void;
}

let native: { pty: NativePty; helperPath: string } | undefined;

function loadNative(): { pty: NativePty; helperPath: string } {
  if (native !== undefined) return native;
  const require = createRequire(import.meta.url);
  const { version } = require("node-pty/package.json") as { version: string };
  // The native fork() signature is internal to node-pty; it is stable across 1.x so far.
  if (!version.startsWith("1."))
    throw new InternalError(`node-pty ${version} is not supported (pty-process.ts expects 1.x)`);
  const utilsPath = require.resolve("node-pty/lib/utils.js");
  const { loadNativeModule } = require(utilsPath) as {
    loadNativeModule(name: string): { dir: string; module: NativePty };
  };
  const loaded = loadNativeModule("pty");
  if (typeof loaded.module.fork !== "function" || typeof loaded.module.resize !== "function") {
    throw new InternalError(`node-pty ${version}: native module has no fork/resize`);
  }
  // Only macOS execs through the helper; node-pty resolves it the same way.
  native = { pty: loaded.module, helperPath: resolve(dirname(utilsPath), loaded.dir, "spawn-helper") };
  return native;
}

export function openPtyTransport(options: TerminalProcessOptions, sink: TransportSink): ProcessTransport {
  const { pty, helperPath } = loadNative();
  const [file, ...args] = options.command;
  if (file === undefined) throw new InternalError("the command is empty");
  // As node-pty's UnixTerminal does: the shell learns its directory from PWD, and TERM is the
  // caller's or ours (the caller leaves out a TERM it did not choose: see createTerminalSession).
  const env = { ...options.env, TERM: options.env["TERM"] ?? PTY_TERM, PWD: options.cwd };
  const envPairs = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  const term = pty.fork(
    file,
    args,
    envPairs,
    options.cwd,
    options.cols ?? DEFAULT_COLS,
    options.rows ?? DEFAULT_ROWS,
    -1,
    -1,
    true,
    helperPath,
    (exitCode, signal) => transport.handleChildExit(toExit(exitCode, signal)),
  );
  const transport = new PtyTransport(term.pid, term.fd, holdSlave(term.pty), pty, sink);
  return transport;
}

/**
 * Opens the slave side so the terminal stays open until we let go (see the module
 * comment). Node opens with O_CLOEXEC, so later children do not inherit it. Returns null
 * if it cannot be opened; reading then still drains the tail, but a program that closes
 * its terminal before exiting may be hung up.
 */
function holdSlave(path: string): number | null {
  try {
    return openSync(path, fsConstants.O_RDWR | fsConstants.O_NOCTTY);
  } catch {
    // E.g. EACCES under an unusual devpts mode; degrade as described above.
    return null;
  }
}

/** node-pty reports a signal death as (0, signo); we report Node's form (null, "SIGTERM"). */
function toExit(exitCode: number, signal: number): TerminalExit {
  if (signal === 0) return { exitCode, signal: null };
  const name = Object.entries(osConstants.signals).find(([, n]) => n === signal)?.[0];
  return { exitCode: null, signal: name ?? `SIG${signal}` };
}

class PtyTransport implements ProcessTransport {
  readonly pid: number;
  private readonly fd: number;
  private readonly pty: NativePty;
  private readonly sink: TransportSink;
  private readonly master: MasterReader;
  /** Our own slave fd, held until the child exits; null once released. */
  private slaveFd: number | null;
  private closed = false;
  private readonly input: Uint8Array[] = [];
  /** The last input ended a line (or there was none): one ^D is end of input. */
  private lineStart = true;
  private inputBytes = 0;
  /** `writeRetry`: the next try at input the PTY refused (EAGAIN); keeps the process alive, as the input is owed. */
  private readonly timers = new TimerSet<"writeRetry">({
    writeRetry: { after: PTY_WRITE_RETRY_MS, fire: () => this.flushInput(), ref: true },
  });

  constructor(pid: number, fd: number, slaveFd: number | null, pty: NativePty, sink: TransportSink) {
    this.pid = pid;
    this.fd = fd;
    this.slaveFd = slaveFd;
    this.pty = pty;
    this.sink = sink;
    this.master = readMaster(fd, {
      output: (chunk) => this.sink.output("pty", chunk),
      ended: () => {
        if (!this.closed) this.sink.outputEnded();
      },
    });
  }

  get pendingInputBytes(): number {
    return this.inputBytes;
  }

  /** From node-pty's waitpid thread: let go of the terminal so its end can be seen. */
  handleChildExit(exit: TerminalExit): void {
    this.releaseSlave();
    this.sink.childExited(exit);
  }

  write(data: Uint8Array): void {
    if (data.length === 0) return;
    noteInput();
    this.input.push(data);
    this.inputBytes += data.length;
    this.lineStart = data[data.length - 1] === 0x0d || data[data.length - 1] === 0x0a;
    if (!this.timers.isPending("writeRetry")) this.flushInput();
  }

  endInput(): void {
    // The terminal's EOF character (VEOF, ^D by default) ends a read; after an unfinished line
    // the first one only hands that line over, so a second one ends the input, as typing ^D twice does.
    this.write(this.lineStart ? EOF_KEY : DOUBLE_EOF_KEY);
  }

  resize(cols: number, rows: number): void {
    if (!this.master.fdOpen) throw new InternalError("the terminal is closed");
    this.pty.resize(this.fd, cols, rows);
  }

  pauseOutput(): void {
    this.master.pause();
  }

  resumeOutput(): void {
    this.master.resume();
  }

  abandonOutput(): void {
    this.releaseSlave();
    this.master.abandon();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timers.dispose();
    this.input.length = 0;
    this.inputBytes = 0;
    this.releaseSlave();
    this.master.close();
  }

  private flushInput(): void {
    while (this.input.length > 0) {
      if (!this.master.fdOpen) {
        // The terminal is gone; nobody will ever read this input.
        this.input.length = 0;
        this.inputBytes = 0;
        return;
      }
      const head = this.input[0]!;
      let written: number;
      try {
        written = writeSync(this.fd, head);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EWOULDBLOCK") {
          this.timers.start("writeRetry");
          return;
        }
        // EIO and the like: the slave side is closed, so the input has no reader any more.
        this.input.length = 0;
        this.inputBytes = 0;
        return;
      }
      this.inputBytes -= written;
      if (written === head.length) this.input.shift();
      else this.input[0] = head.subarray(written);
    }
  }

  private releaseSlave(): void {
    if (this.slaveFd === null) return;
    const fd = this.slaveFd;
    this.slaveFd = null;
    closeSync(fd);
  }
}
