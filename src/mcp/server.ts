import { packageVersion } from "../system/package-version.js";
import type { Readable, Writable } from "node:stream";
// The low-level Server, not McpServer: McpServer answers arguments that fail the schema with its
// own message, and the tools here answer them like the gateway does (VALIDATION_FAILED, naming
// the field), so that an agent sees one set of error codes.
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { AGENT_TOOLS } from "./agent-tools.js";
import { GatewayAccess } from "./gateway.js";
import type { GatewayAccessOptions } from "./gateway.js";
import { OUTPUT_TOOLS } from "./output-tools.js";
import { SCREEN_TOOLS } from "./screen-tool.js";
import { SESSION_TOOLS } from "./session-tools.js";
import { PROGRESS_INTERVAL_MS } from "./tool.js";
import type { ProgressSink, Tool } from "./tool.js";

/** Every tool, in the order they are listed: processes first, then agents. */
export const TOOLS: readonly Tool[] = [...SESSION_TOOLS, ...OUTPUT_TOOLS, ...SCREEN_TOOLS, ...AGENT_TOOLS];

const INSTRUCTIONS = `Switchboard runs processes and AI agents as sessions that outlive this conversation's tool calls, and records everything they print.
- Long-running commands (dev servers, builds, test watchers, REPLs): start_session, then wait_for_output with a pattern (e.g. "listening|error") instead of sleeping, and read_output to page through what they printed (pass next as since). send_input types into them, send_signal INT interrupts, stop_session ends them.
- Agents: create_agent_session, then prompt_agent returns the agent's answer.
- Errors come back as CODE: message (SESSION_NOT_FOUND, VALIDATION_FAILED, CONTROL_HELD, ...).`;

export interface McpServerOptions extends GatewayAccessOptions {
  /** How often waiting calls send progress to a client that asked for it (default {@link PROGRESS_INTERVAL_MS}). */
  progressIntervalMs?: number | undefined;
}

/**
 * The Switchboard MCP server: the tools of docs/mcp.md over any MCP transport, reaching the
 * gateway through the SDK.
 *
 * @example
 * const mcp = new SwitchboardMcpServer({ target: { url: "http://127.0.0.1:7317", token } });
 * await mcp.connect(new StdioServerTransport());
 */
export class SwitchboardMcpServer {
  readonly server: Server;
  private readonly gateway: GatewayAccess;
  /** Ends the calls still waiting (wait_for_output, prompt_agent) when the server closes. */
  private readonly shutdown = new AbortController();
  /** Tool calls not answered yet. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  constructor(options: McpServerOptions) {
    this.gateway = new GatewayAccess(options);
    const intervalMs = options.progressIntervalMs ?? PROGRESS_INTERVAL_MS;
    this.server = new Server(
      { name: "switchboard", title: "Switchboard", version: packageVersion() },
      { capabilities: { tools: {} }, instructions: INSTRUCTIONS },
    );
    const byName = new Map(TOOLS.map((tool) => [tool.listing.name, tool]));
    this.server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS.map((tool) => tool.listing) }));
    this.server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
      const tool = byName.get(request.params.name);
      // An unknown tool is a protocol error (the MCP spec), not a tool's refusal.
      if (!tool) {
        throw protocolError(
          ErrorCode.InvalidParams,
          `unknown tool ${request.params.name.slice(0, 100)}; tools/list lists the ${TOOLS.length} tools`,
        );
      }
      const token = request.params._meta?.progressToken;
      const progress: ProgressSink | undefined =
        token === undefined
          ? undefined
          : Object.assign(
              (update: Parameters<ProgressSink>[0]) => {
                // A client that went away cannot be told; the call ends by its own signal.
                extra
                  .sendNotification({ method: "notifications/progress", params: { progressToken: token, ...update } })
                  .catch(() => undefined);
              },
              { intervalMs },
            );
      const call = tool.call(request.params.arguments, {
        gateway: this.gateway,
        signal: AbortSignal.any([extra.signal, this.shutdown.signal]),
        ...(progress !== undefined ? { progress } : {}),
      });
      this.inFlight.add(call);
      void call.finally(() => this.inFlight.delete(call)).catch(() => undefined);
      return call;
    });
  }

  /**
   * Answers the calls already received, then {@link close}s: waiting calls (wait_for_output,
   * prompt_agent) return at once with what they have; the others get at most `graceMs`.
   */
  async finish(graceMs: number): Promise<void> {
    // Requests read with the input's last bytes reach their handlers a few microtasks later.
    await new Promise((resolve) => setImmediate(resolve));
    this.shutdown.abort();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
    await this.close();
  }

  async connect(transport: Transport): Promise<void> {
    await this.server.connect(transport);
    // The SDK checks a call's `arguments` against its own schema before any handler of ours runs,
    // and answers one that is not an object with -32603 (an internal error) and a zod dump; it is
    // the caller's mistake, so it gets -32602 and a sentence here.
    const deliver = transport.onmessage;
    transport.onmessage = (message, extra) => {
      const mistake = argumentsMistake(message);
      if (mistake === undefined) return deliver?.(message, extra);
      transport
        .send({ jsonrpc: "2.0", id: mistake.id, error: { code: ErrorCode.InvalidParams, message: mistake.message } })
        .catch(() => undefined);
    };
  }

  /** Ends waiting calls, closes the gateway connection and the transport. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.shutdown.abort();
      this.gateway.close();
      await this.server.close();
    })();
    return this.closing;
  }
}

/** A `tools/call` request whose `arguments` are there but not an object: its id and what to say. */
function argumentsMistake(message: JSONRPCMessage): { id: string | number; message: string } | undefined {
  if (!("method" in message) || message.method !== "tools/call" || !("id" in message)) return undefined;
  const params: unknown = message.params;
  if (typeof params !== "object" || params === null || !("arguments" in params)) return undefined;
  const args = params.arguments;
  if (args === undefined || (typeof args === "object" && args !== null && !Array.isArray(args))) return undefined;
  const kind = args === null ? "null" : Array.isArray(args) ? "an array" : typeof args;
  return {
    id: message.id,
    message: `arguments must be an object of the tool's parameters by name (tools/list gives each tool's inputSchema), not ${kind}`,
  };
}

/**
 * A JSON-RPC error for the SDK to send: its `message` goes on the wire as it is. Not `McpError`,
 * whose message already reads "MCP error -32602: ...", so that clients (which prefix it again)
 * showed "MCP error -32602: MCP error -32602: unknown tool x".
 */
function protocolError(code: ErrorCode, message: string): Error & { code: number } {
  return Object.assign(new Error(message), { code });
}

/** After stdin ends, how long calls still running may take to be answered. */
const STDIN_END_GRACE_MS = 1_500;

/**
 * Serves MCP on stdin/stdout (what `switchboard mcp` runs) until stdin ends: MCP clients
 * start the server as a child process and close its stdin to stop it.
 */
export async function serveStdio(
  options: McpServerOptions,
  io: { stdin: Readable; stdout: Writable } = {
    stdin: process.stdin,
    stdout: process.stdout,
  },
): Promise<void> {
  const mcp = new SwitchboardMcpServer(options);
  const ended = new Promise<void>((resolve) => {
    mcp.server.onclose = () => resolve();
    io.stdin.once("end", () => resolve());
    io.stdin.once("close", () => resolve());
  });
  await mcp.connect(new StdioServerTransport(io.stdin, io.stdout));
  await ended;
  // `printf '…requests…' | switchboard mcp` closes stdin right after its last request: those
  // are answered before the server goes (they were dropped). MCP clients close stdin to stop
  // the server, and wait a moment before they end it (the SDK's: 2 s, then SIGTERM).
  await mcp.finish(STDIN_END_GRACE_MS);
}
