import { resolve } from "node:path";
import { describeError, intOption, runCommand } from "./context.js";
import { EXIT, UsageError } from "./exit-codes.js";
import { isLocal } from "./commands.js";
import { PROGRESS_INTERVAL_MS } from "../mcp/tool.js";

/** Progress more often than this would only load the client. */
export const MIN_PROGRESS_MS = 100;

export const MCP_USAGE = `Usage: switchboard mcp [--cwd D] [--progress-ms MS]

Serves the Model Context Protocol on stdin and stdout, for coding agents (Claude Code, Codex,
Gemini CLI) to start and watch processes and prompt agents through this gateway: tools
list_sessions, start_session, read_output, wait_for_output, read_screen, send_input, send_signal,
stop_session, remove_session, list_agents, create_agent_session, prompt_agent, wait_for_run,
answer_permission, answer_elicitation, set_agent_mode, set_agent_option, abort_run (docs/mcp.md). MCP clients start it themselves; it ends when its stdin closes.
--cwd is where sessions started without a cwd run (default: the current directory when the
gateway is on this machine). --progress-ms is how often a waiting call sends progress to a
client that asked for it (default ${PROGRESS_INTERVAL_MS}, at least ${MIN_PROGRESS_MS}). Warnings go to stderr; stdout
carries only MCP messages.`;

/** `switchboard mcp`: the MCP server of src/mcp, with the CLI's gateway and token. */
export function mcp(argv: string[]): Promise<number> {
  const options = { cwd: { type: "string" }, "progress-ms": { type: "string" } } as const;
  return runCommand(argv, { usage: MCP_USAGE, options }, async (ctx, parsed) => {
    const progressIntervalMs = intOption(parsed.values["progress-ms"], "--progress-ms");
    if (progressIntervalMs !== undefined && progressIntervalMs < MIN_PROGRESS_MS)
      throw new UsageError(`--progress-ms must be at least ${MIN_PROGRESS_MS}`);
    const local = isLocal(ctx.target.url);
    const cwd = parsed.values.cwd;
    const defaultCwd = cwd !== undefined ? (local ? resolve(cwd) : cwd) : local ? process.cwd() : undefined;
    // The server starts even when the gateway does not answer (it may come up later): say so
    // where the MCP client's log shows it, and each tool call reports it too.
    ctx.http.whoami().catch((error: unknown) => {
      ctx.err.write(`switchboard mcp: warning: ${describeError({ ...ctx, json: false }, error)}\n`);
    });
    // Loaded here: other commands should not pay for loading the MCP SDK.
    const { serveStdio } = await import("../mcp/index.js");
    await serveStdio({ target: ctx.target, defaultCwd, tokenSource: ctx.tokenSource, progressIntervalMs });
    return EXIT.OK;
  });
}
