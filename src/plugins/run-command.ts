import { spawn } from "node:child_process";
import { SwitchboardError } from "../protocol/index.js";
import type { Clock } from "../core/clock.js";
import { spawnError } from "../system/spawn-error.js";

export interface CommandResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** True when the command was killed because `timeoutMs` passed. */
  timedOut: boolean;
  /** True when stdout or stderr was longer than the kept `outputBytes`. */
  truncated: boolean;
}

export interface RunCommandOptions {
  argv: readonly string[];
  timeoutMs: number;
  cwd: string;
  /** Bytes kept of stdout and of stderr each. */
  outputBytes: number;
  clock: Clock;
  /** Aborting kills the command (its owner went away). */
  signal: AbortSignal;
}

/** Environment of commands run for plugins: enough to find programs, nothing of the gateway's. */
function commandEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  if (process.env["PATH"] !== undefined) env["PATH"] = process.env["PATH"];
  return env;
}

/**
 * How long after the command itself exits its output may stay open: a background process it
 * started (`(sleep 30 &)`) holds the pipes, and the call waited for the timeout. After this, the
 * process group is killed and the call returns with the command's own exit. (What is left of the
 * group when the call returns is killed either way: see {@link runCommandWithTimeout}.)
 */
export const RUN_COMMAND_DRAIN_MS = 200;

/**
 * Runs `argv` (no shell) in its own process group, SIGKILLed on `timeoutMs`, abort,
 * {@link RUN_COMMAND_DRAIN_MS} after exit if a leftover holds the output, and on return: nothing
 * it started outlives the call (even `sleep 600 >/dev/null &`; `setsid` still escapes). Rejects
 * only when it cannot start: RESOURCE_EXHAUSTED when out of file descriptors, else SPAWN_FAILED.
 */
export function runCommandWithTimeout(options: RunCommandOptions): Promise<CommandResult> {
  const [program, ...args] = options.argv;
  if (program === undefined) return Promise.reject(new SwitchboardError("VALIDATION_FAILED", "argv is empty"));
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: commandEnv(),
      stdio: ["ignore", "pipe", "pipe"],
      // Own process group, so the timeout kills grandchildren too.
      detached: true,
    });
    if (child.pid === undefined) {
      // Node says why only on the next tick, and after EMFILE or ENFILE it set up no stdio at all.
      child.once("error", (error) => reject(spawnError(program, error)));
      return;
    }
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[], kept: { stdout: 0, stderr: 0 }, truncated: false };
    let timedOut = false;
    const killGroup = (): void => {
      // The group, not just the child: a background grandchild can outlive it and hold the pipes.
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch (error) {
        // ESRCH: the group is already gone (exited between the check and the kill).
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
    };
    const timer = options.clock.setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    const onAbort = (): void => killGroup();
    options.signal.addEventListener("abort", onAbort, { once: true });
    const collect = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
      const room = options.outputBytes - out.kept[stream];
      if (chunk.length > room) out.truncated = true;
      if (room <= 0) return;
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      out[stream].push(kept);
      out.kept[stream] += kept.length;
    };
    child.stdout.on("data", collect("stdout"));
    child.stderr.on("data", collect("stderr"));
    let drain: ReturnType<Clock["setTimeout"]> | undefined;
    const cleanup = (): void => {
      timer.cancel();
      drain?.cancel();
      options.signal.removeEventListener("abort", onAbort);
    };
    // The command is done; what it left in the background must not hold the call until the timeout.
    child.once("exit", () => {
      drain = options.clock.setTimeout(killGroup, RUN_COMMAND_DRAIN_MS);
    });
    child.on("error", () => {
      // After a successful spawn Node reports errors here only for child.kill() and IPC, neither
      // of which is used (the group is killed through process.kill); "close" ends the command.
    });
    // "close" (not "exit"): fires after stdout and stderr reached EOF, so no output is lost.
    child.once("close", (exitCode, signal) => {
      cleanup();
      killGroup();
      resolve({
        exitCode,
        signal,
        stdout: Buffer.concat(out.stdout).toString("utf8"),
        stderr: Buffer.concat(out.stderr).toString("utf8"),
        timedOut,
        truncated: out.truncated,
      });
    });
    if (options.signal.aborted) killGroup();
  });
}
