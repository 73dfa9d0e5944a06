import path from "node:path";
import { RequestError } from "@agentclientprotocol/sdk";
import { CreateTerminalSession } from "../protocol/index.js";
import type { ChildTerminal, ChildTerminalFactory } from "./child-terminal.js";
import type { AgentLogger } from "./logger.js";
import { describeError } from "./logger.js";

/** Most unreleased child terminals one agent may hold; `terminal/create` past it is refused. */
export const MAX_CHILD_TERMINALS = 16;
/** Output a child terminal retains for `terminal/output` when the agent sets no (or a larger) limit. */
export const MAX_TERMINAL_OUTPUT_BYTES = 1024 * 1024;

export interface CreateTerminalParams {
  command: string;
  args?: string[] | undefined;
  env?: Array<{ name: string; value: string }> | undefined;
  cwd?: string | null | undefined;
  outputByteLimit?: number | null | undefined;
}

/**
 * The child terminals one ACP agent created. The ACP `terminalId` is the child's gateway
 * session id, so a `{type: "terminal", terminalId}` in tool content names a session anyone can
 * watch.
 */
export class AcpTerminals {
  private readonly live = new Map<string, ChildTerminal>();
  private readonly factory: ChildTerminalFactory | undefined;
  private readonly parentSessionId: string;
  private readonly cwd: string;
  private readonly logger: AgentLogger;

  constructor(options: {
    factory: ChildTerminalFactory | undefined;
    parentSessionId: string;
    cwd: string;
    logger: AgentLogger;
  }) {
    this.factory = options.factory;
    this.parentSessionId = options.parentSessionId;
    this.cwd = options.cwd;
    this.logger = options.logger;
  }

  get supported(): boolean {
    return this.factory !== undefined;
  }

  has(terminalId: string): boolean {
    return this.live.has(terminalId);
  }

  /**
   * Starts a child terminal for run `runId`. The agent's cwd is resolved against the session's
   * cwd but not confined to it: the command could `cd` anywhere anyway, so confinement here
   * would be theatre (the fs/* confinement is about the gateway's own file access).
   */
  async create(params: CreateTerminalParams, runId: string): Promise<ChildTerminal> {
    if (!this.factory) throw RequestError.methodNotFound("terminal/create");
    if (this.live.size >= MAX_CHILD_TERMINALS) {
      throw RequestError.invalidRequest(undefined, `at most ${MAX_CHILD_TERMINALS} terminals; release one first`);
    }
    const env: Record<string, string> = {};
    for (const v of params.env ?? []) env[v.name] = v.value;
    const cwd = path.resolve(this.cwd, params.cwd ?? ".");
    // The agent is a client like any other: its terminal gets the checks of POST /v1/sessions
    // (argument and env bounds, env names, no NUL bytes), not a path around them.
    const checked = CreateTerminalSession.safeParse({
      kind: "terminal",
      command: [params.command, ...(params.args ?? [])],
      cwd,
      env,
    });
    if (!checked.success) {
      const issues = checked.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join(".") || "(params)"}: ${i.message}`)
        .join("; ");
      throw RequestError.invalidParams({ code: "VALIDATION_FAILED" }, `VALIDATION_FAILED: ${issues}`);
    }
    const limit = params.outputByteLimit;
    const terminal = await this.factory.create({
      command: params.command,
      args: params.args ?? [],
      cwd,
      env,
      outputByteLimit:
        limit === undefined || limit === null
          ? MAX_TERMINAL_OUTPUT_BYTES
          : Math.min(Math.max(0, limit), MAX_TERMINAL_OUTPUT_BYTES),
      parent: { sessionId: this.parentSessionId, runId },
    });
    this.live.set(terminal.sessionId, terminal);
    return terminal;
  }

  /** @throws RequestError (resource not found) for an unknown or released terminal. */
  get(terminalId: string): ChildTerminal {
    const terminal = this.live.get(terminalId);
    if (!terminal) throw RequestError.resourceNotFound(`terminal:${terminalId}`);
    return terminal;
  }

  async release(terminalId: string): Promise<void> {
    const terminal = this.get(terminalId);
    this.live.delete(terminalId);
    await terminal.release();
  }

  /** Releases (and so kills) every terminal the agent left behind. */
  async dispose(): Promise<void> {
    const all = [...this.live.values()];
    this.live.clear();
    await Promise.all(
      all.map(async (t) => {
        try {
          await t.release();
        } catch (err) {
          // One stuck child must not keep the others alive; it is reported and the rest go on.
          this.logger.warn({ terminal: t.sessionId, err: describeError(err) }, "releasing a child terminal failed");
        }
      }),
    );
  }
}
