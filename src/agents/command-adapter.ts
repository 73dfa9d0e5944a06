import type { AdapterContext, AdapterRun, AgentAdapter, LogRoom, RunOutcome } from "./adapter.js";
import { AgentProcess } from "./agent-process.js";
import { TEXT_ONLY } from "../protocol/index.js";

/** In a `command` agent's argv, this placeholder is replaced by the prompt; without it the prompt goes to stdin. */
export const PROMPT_PLACEHOLDER = "{prompt}";

export interface CommandAdapterOptions {
  /** argv; `{prompt}` anywhere in an argument puts the prompt there instead of on stdin. */
  command: string[];
  env: Record<string, string> | undefined;
}

/**
 * One process per prompt (e.g. a CLI in print mode): the prompt goes on stdin, or into the
 * arguments where `{prompt}` appears; stdout streams as deltas; exit code 0 → `chat.final`
 * (`end_turn`), another code → `chat.error` AGENT_FAILED, death by signal → AGENT_EXITED; a
 * process that cannot start → SPAWN_FAILED, or RESOURCE_EXHAUSTED when file descriptors ran out.
 * Abort kills the process group. While the session's log has no room (AdapterContext.room) stdout
 * is not read, so the process blocks on its writes.
 */
export class CommandAdapter implements AgentAdapter {
  readonly dead = false;
  /** It is given the prompt as text: images, audio and embedded files are refused before they queue. */
  readonly promptCapabilities = TEXT_ONLY;
  private readonly context: AdapterContext;
  private readonly options: CommandAdapterOptions;
  private current: { proc: AgentProcess; hold: HeldOutput } | undefined;
  private disposed = false;

  constructor(context: AdapterContext, options: CommandAdapterOptions) {
    this.context = context;
    this.options = options;
  }

  async run(run: AdapterRun): Promise<RunOutcome> {
    if (this.disposed) return { kind: "error", code: "AGENT_EXITED", message: "the agent session has ended" };
    const [program, ...rest] = this.options.command;
    if (program === undefined) return { kind: "error", code: "CONFIG_INVALID", message: "command is empty" };
    const viaArgs = rest.some((a) => a.includes(PROMPT_PLACEHOLDER));
    if (viaArgs && run.text.includes("\0")) {
      // The system cannot pass it (an argument ends at its first NUL); Node would throw on spawn.
      return {
        kind: "error",
        code: "SPAWN_FAILED",
        message: `the prompt contains a NUL character, which cannot be passed as a command-line argument ({prompt} in the agent's command): remove it from the prompt, or configure the agent without {prompt} so the prompt goes to its stdin`,
      };
    }
    const args = viaArgs ? rest.map((a) => a.split(PROMPT_PLACEHOLDER).join(run.text)) : rest;
    const proc = new AgentProcess({
      command: program,
      args,
      cwd: this.context.cwd,
      env: this.options.env,
      clock: this.context.clock,
      logger: this.context.logger,
    });
    if (proc.spawnFailure) {
      const error = await proc.spawnFailure;
      return { kind: "error", code: error.code, message: error.message };
    }
    const stdout = proc.child.stdout;
    const hold = new HeldOutput(stdout);
    this.current = { proc, hold };
    // An aborted run takes nothing more into the log: the output is read on (and dropped), so
    // that the killed process's pipe drains and its end is seen.
    const onAbort = (): void => {
      hold.release();
      void proc.kill();
    };
    run.signal.addEventListener("abort", onAbort, { once: true });
    try {
      // A streaming decoder, so a multi-byte character split across reads is never mangled.
      const decoder = new TextDecoder("utf-8");
      stdout.on("data", (chunk: Buffer) => {
        const text = decoder.decode(chunk, { stream: true });
        if (text !== "") run.sink.text(text);
        hold.untilRoom(this.context.room);
      });
      if (viaArgs) proc.child.stdin.end();
      else proc.child.stdin.end(run.text);
      const end = await proc.closed;
      const tail = decoder.decode();
      if (tail !== "") run.sink.text(tail);
      if (run.signal.aborted) return { kind: "final", stopReason: "cancelled" };
      if (end.exitCode === 0) return { kind: "final", stopReason: "end_turn" };
      if (end.signal !== null) return { kind: "error", code: "AGENT_EXITED", message: proc.describeEnd(end) };
      return { kind: "error", code: "AGENT_FAILED", message: proc.describeEnd(end) };
    } finally {
      run.signal.removeEventListener("abort", onAbort);
      if (this.current?.proc === proc) this.current = undefined;
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.current?.hold.release();
    await this.current?.proc.kill();
  }
}

/** A process's stdout, paused while the log has no room. */
class HeldOutput {
  private readonly stream: NodeJS.ReadableStream;
  private held = false;
  private released = false;

  constructor(stream: NodeJS.ReadableStream) {
    this.stream = stream;
  }

  /** Pauses the stream while the log has no room. */
  untilRoom(room: LogRoom): void {
    if (this.held || this.released) return;
    const wait = room();
    if (wait === undefined) return;
    this.held = true;
    this.stream.pause();
    void wait.then(() => this.resume());
  }

  /** Reads on from now on, whatever the log: the process is being killed, its output must drain. */
  release(): void {
    this.released = true;
    this.resume();
  }

  private resume(): void {
    if (!this.held) return;
    this.held = false;
    this.stream.resume();
  }
}
