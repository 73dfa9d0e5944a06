import { spawn } from "node:child_process";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { childEnv } from "../core/child-env.js";
import type { Clock } from "../core/clock.js";
import type { SwitchboardError } from "../protocol/index.js";
import { spawnError } from "../system/spawn-error.js";
import type { AgentLogger } from "./logger.js";
import { describeError } from "./logger.js";

/** After SIGTERM an agent process group gets this long to exit before SIGKILL. */
export const KILL_GRACE_MS = 2000;
/** While the agent's process group outlives the agent, how often {@link AgentProcess.kill} looks whether it is gone. */
export const GROUP_POLL_MS = 50;
/** Bytes of an agent's stderr kept for error messages. */
export const STDERR_TAIL_BYTES = 4096;

export interface ProcessEnd {
  exitCode: number | null;
  signal: string | null;
}

export interface AgentProcessOptions {
  command: string;
  args: string[];
  cwd: string;
  /** Added to the gateway's environment. */
  env: Record<string, string> | undefined;
  clock: Clock;
  logger: AgentLogger;
}

/** An agent's process as the ACP adapter speaks to it: the gateway's child, or one under a holder. */
export interface AgentChild {
  readonly pid: number | undefined;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly running: boolean;
  /** See {@link AgentProcess.spawnFailure}. */
  readonly spawnFailure: Promise<SwitchboardError> | null;
  /** Resolves once the process has exited and its output is read. */
  readonly closed: Promise<ProcessEnd>;
  stderrTail(): string;
  kill(): Promise<ProcessEnd>;
  describeEnd(end: ProcessEnd, outputClosed?: boolean): string;
  /** Under a holder: lets go of the process, which runs on for the next gateway to adopt. */
  detach?(): Promise<void>;
  /**
   * Under a holder: lets it forget stdout before `offset` (a line boundary whose events are
   * durable); the owner acknowledges, not the process, once this is called.
   */
  ackTo?(offset: number): void;
  /** Under a holder: the holder offset of the first byte `stdout` gives (known once the holder answered). */
  firstOffset?(): number;
  /**
   * Under a holder: the holder offset of `stdout`'s byte position `position` (bytes `stdout` gave
   * before it). Holder offsets count stderr too, so only this maps a stdout line end to a cursor.
   * Positions asked are non-decreasing.
   */
  holderOffset?(position: number): number;
  /** Under a holder: how answers to the agent's requests are made exactly-once (held-turn.ts). */
  holdAnswers?(hook: AnswerHook): void;
  /**
   * Under a holder: whether an answer (or prompt) written waits to leave this process, not yet
   * recorded: no cursor may pass the request it answers until it is.
   */
  answersHeld?(): boolean;
}

/**
 * Called as an answer to a request of the agent's (JSON-RPC id `id`, as JSON; undefined: the
 * gateway's `session/prompt`, whose id the turn names) is written: `next`
 * gives its mark, the answer goes to the holder held for it, then — once it has left the
 * gateway's process — `recorded` must make the mark durable before it returns; the holder is
 * then told the mark is committed.
 */
export interface AnswerHook {
  next(): number;
  recorded(id: string | undefined, mark: number): void;
}

/** Where an agent's process runs when not as the gateway's child (under a holder: src/sessions). */
export interface AgentProcesses {
  /** Starts the agent's process; throws a SwitchboardError (SPAWN_FAILED) when it cannot. */
  start(options: { command: string; args: string[]; cwd: string; env: Record<string, string> | undefined }): AgentChild;
  /** The process an earlier gateway left running for this session, given once; else undefined. */
  adopted(): AgentChild | undefined;
}

/**
 * An agent process in its own process group (so killing it also kills what it started, e.g.
 * the real agent behind an `npx` wrapper), with a bounded stderr tail for error messages.
 */
export class AgentProcess implements AgentChild {
  readonly child: ChildProcessWithoutNullStreams;
  /**
   * Null when the process started. Else it could not be (Node says why only on the next tick):
   * resolves with the error for the run, RESOURCE_EXHAUSTED when file descriptors ran out or
   * SPAWN_FAILED with the reason (e.g. ENOENT). `child` may then have no stdio at all (Node sets
   * none up after EMFILE or ENFILE), and must not be used.
   */
  readonly spawnFailure: Promise<SwitchboardError> | null;
  /** Resolves once the process has exited and its stdio is closed (all output read). */
  readonly closed: Promise<ProcessEnd>;
  private ended: ProcessEnd | undefined;
  private tail = Buffer.alloc(0);
  private killing: Promise<ProcessEnd> | undefined;
  /** The signals {@link kill} sent (a death by another one was not ours). */
  private readonly signalsSent = new Set<string>();
  private readonly opts: AgentProcessOptions;

  constructor(options: AgentProcessOptions) {
    this.opts = options;
    this.child = spawn(options.command, options.args, {
      cwd: options.cwd,
      // Never the gateway's own secrets (SWITCHBOARD_TOKEN): an agent may print what it sees into the log.
      env: childEnv(options.env),
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    this.closed = new Promise<ProcessEnd>((resolve) => {
      this.child.once("close", (code: number | null, signal: NodeJS.Signals | null) => {
        // After a failed spawn Node passes the negative errno as the code.
        this.ended = { exitCode: this.spawnFailure ? null : code, signal };
        resolve(this.ended);
      });
    });
    if (this.child.pid === undefined) {
      this.spawnFailure = new Promise((resolve) =>
        this.child.once("error", (err) => resolve(spawnError(options.command, err))),
      );
      return;
    }
    this.spawnFailure = null;
    this.child.on("error", (err) => {
      // After a successful spawn Node reports errors here only for child.kill() and IPC.
      options.logger.warn({ command: options.command, err: describeError(err) }, "agent process error");
    });
    // The agent may exit while we write to it: EPIPE is expected then, and its exit is reported by `closed`.
    this.child.stdin.on("error", (err) => {
      options.logger.debug({ command: options.command, err: describeError(err) }, "agent stdin closed");
    });
    this.child.stderr.on("data", (chunk: Buffer) => {
      const joined = Buffer.concat([this.tail, chunk]);
      this.tail = joined.subarray(Math.max(0, joined.length - STDERR_TAIL_BYTES));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stdin(): Writable {
    return this.child.stdin;
  }

  get stdout(): Readable {
    return this.child.stdout;
  }

  get running(): boolean {
    return this.ended === undefined && this.child.pid !== undefined;
  }

  /** The end of stderr, decoded (at most {@link STDERR_TAIL_BYTES}). */
  stderrTail(): string {
    return this.tail.toString("utf8").trim();
  }

  /**
   * SIGTERM to the group, SIGKILL after {@link KILL_GRACE_MS}; resolves when the process and the
   * rest of its group are gone (or, for members that outlast SIGKILL, such as zombies nobody
   * reaps, {@link KILL_GRACE_MS} after it). What the agent started shares its group and may
   * outlive it: Claude Code under claude-agent-acp runs on for seconds after its adapter has
   * exited (test/agents/real-agents.test.ts). Idempotent.
   */
  kill(): Promise<ProcessEnd> {
    if (this.killing) return this.killing;
    if (this.ended && !this.groupAlive()) return Promise.resolve(this.ended);
    this.killing = (async () => {
      const { clock } = this.opts;
      this.signalGroup("SIGTERM");
      const killAt = clock.monotonic() + KILL_GRACE_MS;
      const timer = clock.setTimeout(() => this.signalGroup("SIGKILL"), KILL_GRACE_MS);
      const end = await this.closed;
      while (this.groupAlive() && clock.monotonic() < killAt + KILL_GRACE_MS) {
        await new Promise<void>((resolve) => clock.setTimeout(resolve, GROUP_POLL_MS));
      }
      timer.cancel();
      return end;
    })();
    return this.killing;
  }

  /** Whether a process of the agent's group (the agent or what it started) still exists. */
  private groupAlive(): boolean {
    const pid = this.child.pid;
    if (pid === undefined) return false;
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      // ESRCH: no process is left in the group (EPERM cannot happen: we started them all).
      return false;
    }
  }

  /**
   * A one-line description of how the process ended, with the stderr tail. `outputClosed`: it
   * was stopped because its output ended while it still ran, which then says so rather than
   * "was killed by SIGTERM" as if someone had killed it out of the blue.
   */
  describeEnd(end: ProcessEnd, outputClosed = false): string {
    const stoppedByUs = end.signal !== null && this.signalsSent.has(end.signal);
    const how =
      outputClosed && stoppedByUs
        ? `closed its output (the ACP connection) while still running, so the gateway stopped it (${end.signal})`
        : end.signal
          ? `was killed by ${end.signal}`
          : `exited with code ${end.exitCode}`;
    const stderr = this.stderrTail();
    const lastLines = stderr.split("\n").slice(-3).join(" | ");
    return `${this.opts.command} ${how}${lastLines ? `: ${lastLines}` : ""}`;
  }

  /** Signals the agent's group; also after the agent has ended, for what it started. */
  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined || !this.groupAlive()) return;
    try {
      this.signalsSent.add(signal);
      process.kill(-pid, signal);
    } catch (err) {
      // ESRCH: the group is already gone (exited between our check and the kill).
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") {
        this.opts.logger.warn({ pid, signal, err: describeError(err) }, "cannot signal the agent process group");
      }
    }
  }
}
