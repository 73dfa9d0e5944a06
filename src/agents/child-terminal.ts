/**
 * The contract between the ACP adapter and whoever runs the commands an agent asks for with
 * `terminal/create`. The gateway implements it with real terminal sessions that carry a
 * `parent` link to the agent session, so anyone can watch (and steer) what the agent runs;
 * the tests implement it with plain child processes.
 */

export interface ChildTerminalSpec {
  /** Program to run (ACP `command`). */
  command: string;
  args: string[];
  /** Absolute working directory (the agent's, or the session's cwd when the agent gave none). */
  cwd: string;
  /** Variables the agent asked for; the factory adds them to its own base environment. */
  env: Record<string, string>;
  /**
   * Most bytes `output()` retains. When the output grows past it, the oldest bytes are dropped
   * (at a character boundary) and `truncated` becomes true.
   */
  outputByteLimit: number;
  /** The agent session and run that asked for the terminal: the child session's `parent` link. */
  parent: { sessionId: string; runId: string };
}

export interface ChildTerminalExit {
  exitCode: number | null;
  signal: string | null;
}

export interface ChildTerminalOutput {
  output: string;
  truncated: boolean;
  /** Present once the process has exited. */
  exitStatus: ChildTerminalExit | null;
}

/** One running (or finished) child terminal. */
export interface ChildTerminal {
  /** The gateway session id of the child; also the ACP `terminalId` the agent sees. */
  readonly sessionId: string;
  /** Output so far (bounded by `outputByteLimit`) and the exit status once known. */
  output(): ChildTerminalOutput | Promise<ChildTerminalOutput>;
  /** Resolves when the process has exited and its output has been read to the end. */
  waitForExit(): Promise<ChildTerminalExit>;
  /** Kills the process; the terminal stays readable until released. */
  kill(): void | Promise<void>;
  /** Kills the process if still running and frees the handle. The child session's log stays. */
  release(): void | Promise<void>;
}

export interface ChildTerminalFactory {
  /** Starts the command. Rejects (e.g. with SPAWN_FAILED) when it cannot be started. */
  create(spec: ChildTerminalSpec): Promise<ChildTerminal>;
}
