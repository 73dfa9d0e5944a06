import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import type { Socket } from "node:net";
import { SwitchboardError, isErrorCode, nestsDeeperThan } from "../protocol/index.js";
import type { Clock, Timer } from "../core/clock.js";
import { spawnError } from "../system/spawn-error.js";
import { FrameReader } from "./frame-reader.js";
import { StderrTail } from "./stderr-tail.js";
import { ChildFrame, type HostFrame, type PluginCall, type RuntimeMethod, type WireError } from "./ipc.js";
import type { PluginLimits } from "./limits.js";
import { InternalError } from "../protocol/errors.js";

type InitFrame = Extract<HostFrame, { t: "init" }>;
type StreamFrame = Extract<ChildFrame, { t: "agent.delta" | "agent.tool" }>;
type LogFrame = Extract<ChildFrame, { t: "log" }>;

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** Why the host killed it, or the plugin's own fatal report; null for a plain exit. */
  reason: string | null;
  /** True when the exit was asked for (`stop`/`kill` by the owner), not a crash. */
  requested: boolean;
  /**
   * The most telling of the last lines the plugin wrote on stderr ({@link StderrTail}); null
   * when it wrote none. Why a process died that could not say
   * so itself: V8's "FATAL ERROR: ... JavaScript heap out of memory" before its SIGABRT.
   */
  stderrHint: string | null;
  /**
   * Set when the process could not be started at all: RESOURCE_EXHAUSTED when file descriptors
   * ran out, else SPAWN_FAILED. `reason` is its message.
   */
  spawnError: SwitchboardError | null;
}

export interface PluginProcessOptions {
  id: string;
  /** Arguments after `process.execPath` (see `sandboxArgs`). */
  args: string[];
  cwd: string;
  init: InitFrame;
  limits: PluginLimits;
  clock: Clock;
  onRequest(id: number, method: RuntimeMethod, params: unknown): void;
  onLog(frame: LogFrame): void;
  onOutput(stream: "stdout" | "stderr", line: string): void;
  /** Something went wrong on the host's side of the process (its pipe, a signal): the host's own warning, not the plugin's output. */
  onHostWarning(message: string): void;
  onStream(frame: StreamFrame): void;
  /** The write queue towards the plugin emptied (after it had filled). */
  onDrain(): void;
  onExit(info: ExitInfo): void;
}

interface PendingCall {
  resolve(value: unknown): void;
  reject(error: Error): void;
  /** Undefined while the timeout is suspended ({@link PluginProcess.suspendTimeout}). */
  timer: Timer | undefined;
  timeoutMs: number;
  method: PluginCall;
}

/** A call or start that failed because the plugin process exited. */
export class PluginExitedError extends SwitchboardError {
  constructor(pluginId: string, reason: string | null) {
    // The plugin's fault (it crashed, broke the protocol, was stopped), not the gateway's.
    super("PLUGIN_FAILED", `plugin "${pluginId}" exited${reason === null ? "" : `: ${reason}`}`);
  }
}

/** The environment of a plugin process: nothing of the gateway's (no token, no SWITCHBOARD_*, no paths). */
const PLUGIN_ENV: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Where it can (Linux, with util-linux's `setpriv`), a plugin starts with the kernel's
 * parent-death signal set to KILL: a gateway that dies however it dies (SIGKILL, the OOM killer,
 * a crash) takes its plugins with it, which nothing in the gateway can do then. A plugin exits
 * by itself when its pipe closes, but one that stops reading the pipe or replaces `process.exit`
 * outlived a killed gateway. (`setpriv` execs node: the plugin keeps the pid the host knows.)
 */
function deathSignalWrapper(): readonly string[] {
  if (deathSignalWrapperFound === undefined) {
    const setpriv =
      process.platform === "linux" ? ["/usr/bin/setpriv", "/bin/setpriv"].find((path) => existsSync(path)) : undefined;
    // `--pdeathsig` came with util-linux 2.33 (2018): an older setpriv (RHEL 8 has 2.32) would
    // refuse it, and no plugin would start. Asked once.
    if (setpriv === undefined) deathSignalWrapperFound = [];
    else {
      const help = spawnSync(setpriv, ["--help"], { encoding: "utf8", timeout: 5_000 });
      // Could not ask (out of file descriptors): without it this time, asked again next time.
      if (help.error !== undefined) return [];
      deathSignalWrapperFound = help.stdout.includes("--pdeathsig") ? [setpriv, "--pdeathsig", "KILL", "--"] : [];
    }
  }
  return deathSignalWrapperFound;
}
let deathSignalWrapperFound: readonly string[] | undefined;

/**
 * One running plugin process and its pipe. Owns the child, its heartbeat and the host →
 * plugin calls in flight; reports requests, logs and exits to its owner (`PluginHost`).
 */
export class PluginProcess {
  private readonly child: ChildProcess;
  /** The frame pipe; null when the process could not be started. */
  private readonly channel: Socket | null;
  private spawnError: SwitchboardError | null = null;
  private readonly pendingCalls = new Map<number, PendingCall>();
  private nextCallId = 1;
  private heartbeat: Timer | undefined;
  /**
   * Pings not yet answered, oldest first (answers come in order). A plugin is hung when one has
   * waited `heartbeatTimeoutMs`: counted from its sending, a stall of the gateway's own loop (no
   * pings sent) is not taken for the plugin's.
   */
  private readonly unanswered: Array<{ n: number; at: number }> = [];
  private pingCount = 0;
  private exitReason: string | null = null;
  /** Reading from the plugin is stopped while more than `limits.readPauseBytes` to it are unread. */
  private readPaused = false;
  private exitRequested = false;
  /** The host killed it (`kill`): its pipe breaking under it is then expected, not news. */
  private killed = false;
  private exited = false;
  private readonly stderrTail = new StderrTail();
  private readyWaiter: { resolve(): void; reject(error: Error): void; timer: Timer } | undefined;
  private stopTimer: Timer | undefined;
  private readonly exitPromise: Promise<void>;

  constructor(private readonly options: PluginProcessOptions) {
    const [program, ...args] = [...deathSignalWrapper(), process.execPath, ...options.args];
    this.child = spawn(program!, args, {
      cwd: options.cwd,
      env: PLUGIN_ENV,
      // fd 3 is the private frame pipe; stdout and stderr go to the gateway log.
      stdio: ["ignore", "pipe", "pipe", "pipe"],
      // Its own process group: a signal to "its group" (pid 0) cannot reach the gateway.
      detached: true,
    });
    if (this.child.pid === undefined) {
      // Node says why only on the next tick, and after EMFILE or ENFILE it set up no stdio at all.
      this.channel = null;
      this.exitPromise = new Promise((resolve) => {
        this.child.once("error", (error) => {
          this.spawnError = spawnError(`plugin "${options.id}"`, error);
          this.onClose(null, null, this.spawnError.message, resolve);
        });
      });
      return;
    }
    const channel = this.child.stdio[3];
    if (channel === null || channel === undefined || !("write" in channel))
      throw new InternalError("plugin process has no frame pipe on fd 3");
    this.channel = channel as Socket;

    const reader = new FrameReader(
      options.limits.frameBytes,
      (line) => this.onLine(line),
      () => this.kill(`protocol violation: a frame is larger than ${options.limits.frameBytes} bytes`),
    );
    this.channel.on("data", (chunk: Buffer) => reader.push(chunk));
    this.channel.on("drain", () => {
      if (this.readPaused) {
        this.readPaused = false;
        this.channel?.resume();
      }
      options.onDrain();
    });
    this.channel.on("error", (error) => {
      // EPIPE/ECONNRESET after the child died, once it was asked to exit, or once the host killed
      // it (it leaves what is in flight to it unread): its exit is reported through "close" below.
      // Any other is the host's trouble, not something the plugin wrote.
      if (!this.exited && !this.exitRequested && !this.killed)
        this.options.onHostWarning(`plugin channel error: ${error.message}`);
    });
    for (const stream of ["stdout", "stderr"] as const) {
      const emit = (line: string): void => {
        if (stream === "stderr") this.stderrTail.push(line);
        options.onOutput(stream, line);
      };
      const cut = `… (line cut at ${options.limits.logLineChars} characters)`;
      const output = new FrameReader(options.limits.logLineChars, emit, (head) =>
        // Within logLineChars with its note, so that the log's own cut leaves the note in place.
        emit(`${head.slice(0, Math.max(0, options.limits.logLineChars - cut.length))}${cut}`),
      );
      const source = this.child[stream];
      source?.on("data", (chunk: Buffer) => output.push(chunk));
      source?.on("end", () => {
        const rest = output.flush();
        if (rest !== "") emit(rest);
      });
    }
    this.child.on("error", (error) => {
      // After a successful spawn Node reports errors here only for child.kill() (a signal it could
      // not send) and IPC, which is not used; the exit comes through "close".
      this.options.onHostWarning(`plugin process error: ${error.message}`);
    });
    this.exitPromise = new Promise((resolve) => {
      this.child.once("close", (code, signal) => this.onClose(code, signal, null, resolve));
    });
    this.write(options.init);
  }

  get pid(): number | null {
    return this.child.pid ?? null;
  }

  /** Bytes written to the plugin and not yet taken by it. */
  get queuedBytes(): number {
    return this.channel?.writableLength ?? 0;
  }

  /** Resolves when the plugin's `activate` finished; rejects when it failed, hung or the process died. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(this.exitError());
      const timer = this.options.clock.setTimeout(() => {
        this.readyWaiter = undefined;
        const error = new SwitchboardError(
          "PLUGIN_TIMEOUT",
          `plugin "${this.options.id}" did not become ready within ${this.options.limits.startTimeoutMs} ms`,
        );
        this.kill(error.message);
        reject(error);
      }, this.options.limits.startTimeoutMs);
      this.readyWaiter = { resolve, reject, timer };
    });
  }

  /**
   * Sends a frame. Once the plugin was asked to exit, only answers to its own calls go (its
   * `deactivate` may wait for one): events, pings and calls would reach a process on its way out.
   */
  send(frame: HostFrame): void {
    if (this.exitRequested && frame.t !== "res") return;
    this.write(frame);
  }

  private write(frame: HostFrame): void {
    if (this.exited || this.channel === null || this.channel.destroyed || !this.channel.writable) return;
    this.channel.write(JSON.stringify(frame) + "\n");
    // A plugin that leaves what it is sent unread is not read from until it catches up ("drain"):
    // each of its requests queues an answer here, in the gateway's memory (limits.readPauseBytes).
    if (!this.readPaused && this.channel.writableLength > this.options.limits.readPauseBytes) {
      this.readPaused = true;
      this.channel.pause();
    }
  }

  respond(id: number, result: { ok: true; value: unknown } | { ok: false; error: WireError }): void {
    this.send(
      result.ok ? { t: "res", id, ok: true, value: result.value } : { t: "res", id, ok: false, error: result.error },
    );
  }

  /**
   * Calls into the plugin. Rejects with `PLUGIN_TIMEOUT` when no answer came within
   * `timeoutMs` of the call or of the last `touch` (agent runs count stream frames as life),
   * time while it is suspended not counted.
   */
  call(method: PluginCall, params: unknown, timeoutMs: number): { id: number; result: Promise<unknown> } {
    const id = this.nextCallId++;
    const result = new Promise<unknown>((resolve, reject) => {
      if (this.exited) return reject(this.exitError());
      if (this.exitRequested)
        return reject(new SwitchboardError("PLUGIN_FAILED", `plugin "${this.options.id}" is stopping`));
      const timer = this.options.clock.setTimeout(() => this.expire(id), timeoutMs);
      this.pendingCalls.set(id, { resolve, reject, timer, timeoutMs, method });
      this.send({ t: "call", id, method, params });
    });
    return { id, result };
  }

  /** Re-arms the timeout of call `id` (the plugin showed life), unless it is suspended. */
  touch(id: number): void {
    const call = this.pendingCalls.get(id);
    if (call?.timer === undefined) return;
    call.timer.cancel();
    call.timer = this.options.clock.setTimeout(() => this.expire(id), call.timeoutMs);
  }

  /**
   * Stops the timeout of call `id` until {@link resumeTimeout}: the gateway itself keeps the
   * plugin from answering (an agent run held back while its log has no room), so the plugin's
   * silence meanwhile is not the plugin's fault.
   */
  suspendTimeout(id: number): void {
    const call = this.pendingCalls.get(id);
    if (call?.timer === undefined) return;
    call.timer.cancel();
    call.timer = undefined;
  }

  /** Re-arms a suspended timeout in full. */
  resumeTimeout(id: number): void {
    const call = this.pendingCalls.get(id);
    if (call === undefined || call.timer !== undefined) return;
    call.timer = this.options.clock.setTimeout(() => this.expire(id), call.timeoutMs);
  }

  /** Abandons call `id`: its answer, if one comes, is ignored. */
  forget(id: number): void {
    const call = this.pendingCalls.get(id);
    if (call === undefined) return;
    call.timer?.cancel();
    this.pendingCalls.delete(id);
  }

  /** Asks the plugin to deactivate and exit; SIGKILL after `stopGraceMs`. Resolves once it is gone. */
  stop(): Promise<void> {
    if (!this.exited && !this.exitRequested) {
      this.exitRequested = true;
      // Its liveness is bounded by the grace period now, not by the heartbeat.
      this.heartbeat?.cancel();
      this.write({ t: "stop" });
      this.stopTimer = this.options.clock.setTimeout(() => this.signal("SIGKILL"), this.options.limits.stopGraceMs);
    }
    return this.exitPromise;
  }

  /** Kills the process now. `reason` becomes its exit reason (a crash unless the owner asked via `stop`). */
  kill(reason: string, requested = false): Promise<void> {
    if (!this.exited) {
      this.exitReason ??= reason;
      this.killed = true;
      if (requested) this.exitRequested = true;
      this.signal("SIGKILL");
    }
    return this.exitPromise;
  }

  private signal(signal: NodeJS.Signals): void {
    if (this.exited || this.child.pid === undefined) return;
    try {
      this.child.kill(signal);
    } catch (error) {
      // ESRCH: it exited on its own between the check and the kill; "close" reports it.
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }

  private startHeartbeat(): void {
    const { heartbeatIntervalMs, heartbeatTimeoutMs } = this.options.limits;
    const late = () => {
      const oldest = this.unanswered[0];
      return oldest !== undefined && this.options.clock.monotonic() - oldest.at > heartbeatTimeoutMs;
    };
    this.heartbeat = this.options.clock.setTimeout(() => {
      if (this.exited || this.exitRequested) return;
      if (late()) {
        // Judged once what has arrived was read: timers run before reads, so after a stall of the
        // gateway's own loop a pong would still wait unread (test/plugins/lifecycle.test.ts).
        setImmediate(() => {
          if (this.exited || this.exitRequested) return;
          if (late()) this.hung(heartbeatTimeoutMs);
          else this.ping();
        });
        return;
      }
      this.ping();
    }, heartbeatIntervalMs);
  }

  private ping(): void {
    this.unanswered.push({ n: ++this.pingCount, at: this.options.clock.monotonic() });
    this.send({ t: "ping", n: this.pingCount });
    this.startHeartbeat();
  }

  private hung(heartbeatTimeoutMs: number): void {
    this.kill(
      this.readPaused
        ? `hung: it left ${this.queuedBytes} bytes sent to it unread for ${heartbeatTimeoutMs} ms`
        : `hung: no heartbeat answer for ${heartbeatTimeoutMs} ms (a blocked event loop?)`,
    );
  }

  private expire(id: number): void {
    const call = this.pendingCalls.get(id);
    if (call === undefined) return;
    // Judged once what has arrived was read, as the heartbeat is: an answer or a stream frame that
    // came while the gateway's own loop stalled answers the call or re-arms its timer first.
    const timer = call.timer;
    setImmediate(() => {
      if (this.pendingCalls.get(id) !== call || call.timer !== timer) return;
      this.pendingCalls.delete(id);
      call.reject(
        new SwitchboardError(
          "PLUGIN_TIMEOUT",
          `plugin "${this.options.id}" did not answer ${call.method} within ${call.timeoutMs} ms`,
        ),
      );
    });
  }

  private onLine(line: string): void {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (error) {
      this.kill(`protocol violation: a frame is not JSON (${(error as Error).message})`);
      return;
    }
    if (nestsDeeperThan(json, this.options.limits.frameDepth)) {
      this.kill(`protocol violation: a frame nests deeper than ${this.options.limits.frameDepth} levels`);
      return;
    }
    const parsed = ChildFrame.safeParse(json);
    if (!parsed.success) {
      this.kill(`protocol violation: ${parsed.error.issues[0]?.message ?? "bad frame"}`);
      return;
    }
    try {
      this.dispatch(parsed.data);
    } catch (error) {
      // This runs in the pipe's "data" handler: a throw here would be uncaught and end the
      // gateway. Whatever a plugin's frame makes the host trip over ends the plugin instead.
      this.kill(`the host failed on a frame of this plugin: ${(error as Error).message}`);
    }
  }

  private dispatch(frame: ChildFrame): void {
    switch (frame.t) {
      case "ready": {
        const waiter = this.readyWaiter;
        if (waiter === undefined) return;
        this.readyWaiter = undefined;
        waiter.timer.cancel();
        this.startHeartbeat();
        waiter.resolve();
        return;
      }
      case "fatal":
        this.exitReason ??= frame.message.slice(0, this.options.limits.logLineChars);
        return;
      case "req":
        this.options.onRequest(frame.id, frame.method, frame.params);
        return;
      case "res": {
        const call = this.pendingCalls.get(frame.id);
        if (call === undefined) return;
        this.pendingCalls.delete(frame.id);
        call.timer?.cancel();
        if (frame.ok) call.resolve(frame.value);
        else
          call.reject(
            new SwitchboardError(
              isErrorCode(frame.error.code) ? frame.error.code : "PLUGIN_FAILED",
              frame.error.message,
            ),
          );
        return;
      }
      case "log":
        this.options.onLog(frame);
        return;
      case "agent.delta":
      case "agent.tool":
        this.options.onStream(frame);
        return;
      case "pong":
        while (this.unanswered.length > 0 && this.unanswered[0]!.n <= frame.n) this.unanswered.shift();
        return;
      default: {
        const unreachable: never = frame;
        return unreachable;
      }
    }
  }

  /** What `ready` and calls reject with once the process is gone: why it could not start, or that it exited. */
  private exitError(): SwitchboardError {
    return this.spawnError ?? new PluginExitedError(this.options.id, this.exitReason);
  }

  private onClose(code: number | null, signal: string | null, reason: string | null, done: () => void): void {
    if (this.exited) return;
    this.exited = true;
    if (reason !== null) this.exitReason ??= reason;
    this.heartbeat?.cancel();
    this.stopTimer?.cancel();
    this.channel?.destroy();
    const error = this.exitError();
    if (this.readyWaiter) {
      this.readyWaiter.timer.cancel();
      this.readyWaiter.reject(error);
      this.readyWaiter = undefined;
    }
    for (const call of this.pendingCalls.values()) {
      call.timer?.cancel();
      call.reject(error);
    }
    this.pendingCalls.clear();
    this.options.onExit({
      code,
      signal,
      reason: this.exitReason,
      requested: this.exitRequested,
      stderrHint: this.stderrTail.hint(),
      spawnError: this.spawnError,
    });
    done();
  }
}
