import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import type {
  ChildTerminal,
  ChildTerminalExit,
  ChildTerminalFactory,
  ChildTerminalOutput,
  ChildTerminalSpec,
} from "../../../src/agents/index.js";

/**
 * A ChildTerminalFactory on plain child processes, for tests (the gateway's own factory starts
 * real terminal sessions with a parent link). Keeps the tail of stdout+stderr within the limit.
 */
export class ProcessTerminals implements ChildTerminalFactory {
  readonly created: ChildTerminalSpec[] = [];
  private readonly live = new Set<ProcessTerminal>();

  async create(spec: ChildTerminalSpec): Promise<ChildTerminal> {
    const terminal = await ProcessTerminal.start(spec);
    this.created.push(spec);
    this.live.add(terminal);
    return terminal;
  }

  /** Kills anything a test left running. */
  async dispose(): Promise<void> {
    await Promise.all([...this.live].map((t) => t.release()));
    this.live.clear();
  }
}

class ProcessTerminal implements ChildTerminal {
  readonly sessionId = `child-${randomUUID()}`;
  private out = Buffer.alloc(0);
  private truncated = false;
  private exit: ChildTerminalExit | null = null;
  private readonly exited: Promise<ChildTerminalExit>;
  private readonly kill_: () => void;

  private constructor(
    child: ReturnType<typeof spawn>,
    private readonly limit: number,
  ) {
    const collect = (chunk: Buffer): void => {
      let joined = Buffer.concat([this.out, chunk]);
      if (joined.length > this.limit) {
        joined = joined.subarray(joined.length - this.limit);
        // Drop UTF-8 continuation bytes so the kept tail starts on a character boundary.
        let i = 0;
        while (i < joined.length && (joined[i]! & 0xc0) === 0x80) i++;
        joined = joined.subarray(i);
        this.truncated = true;
      }
      this.out = joined;
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    this.exited = new Promise((resolve) => {
      child.once("close", (code: number | null, signal: NodeJS.Signals | null) => {
        this.exit = { exitCode: code, signal };
        resolve(this.exit);
      });
    });
    this.kill_ = () => {
      if (this.exit === null) child.kill("SIGKILL");
    };
  }

  static start(spec: ChildTerminalSpec): Promise<ProcessTerminal> {
    return new Promise((resolve, reject) => {
      const child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: { ...process.env, ...spec.env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.once("error", reject);
      child.once("spawn", () => resolve(new ProcessTerminal(child, spec.outputByteLimit)));
    });
  }

  output(): ChildTerminalOutput {
    return { output: this.out.toString("utf8"), truncated: this.truncated, exitStatus: this.exit };
  }

  waitForExit(): Promise<ChildTerminalExit> {
    return this.exited;
  }

  async kill(): Promise<void> {
    this.kill_();
    await this.exited;
  }

  async release(): Promise<void> {
    await this.kill();
  }
}
