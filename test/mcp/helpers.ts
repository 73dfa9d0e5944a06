import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll } from "vitest";
import { HttpClient } from "../../src/client/node.js";
import { CLI, REPO } from "../cli/helpers.js";
import { startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";

/**
 * What a tool call answered: its text (the blocks joined by line breaks), the output or answer
 * block (the second), its structured content, and whether it is an error (with its code).
 */
export interface ToolAnswer {
  text: string;
  output: string | undefined;
  data: any;
  isError: boolean;
  code: string | undefined;
}

/** `switchboard mcp` run from the sources, driven by the MCP SDK's own client over stdio. */
export class McpProcess {
  readonly client = new Client({ name: "switchboard-test", version: "1.0.0" });
  readonly transport: StdioClientTransport;
  private stderrText = "";

  constructor(env: Record<string, string>, args: string[] = []) {
    this.transport = new StdioClientTransport({
      command: CLI[0]!,
      args: [...CLI.slice(1), "mcp", ...args],
      cwd: REPO,
      env: { ...(process.env as Record<string, string>), ...env, SWITCHBOARD_LOG_LEVEL: "silent" },
      stderr: "pipe",
    });
    this.transport.stderr?.on("data", (chunk: Buffer) => (this.stderrText += chunk.toString("utf8")));
  }

  static async start(env: Record<string, string>, args: string[] = []): Promise<McpProcess> {
    const mcp = new McpProcess(env, args);
    await mcp.client.connect(mcp.transport);
    // Listing the tools makes the SDK's client check every result against its tool's outputSchema.
    await mcp.client.listTools();
    return mcp;
  }

  /** What the server wrote to stderr so far. */
  get stderr(): string {
    return this.stderrText;
  }

  async call(name: string, args: Record<string, unknown> = {}): Promise<ToolAnswer> {
    const result = (await this.client.callTool({ name, arguments: args }, undefined, {
      timeout: 120_000,
    })) as CallToolResult;
    const blocks = result.content.map((c) => (c.type === "text" ? c.text : `[${c.type}]`));
    const text = blocks.join("\n");
    const isError = result.isError === true;
    const code = isError ? /^([A-Z_]+):/.exec(text)?.[1] : undefined;
    return { text, output: blocks[1], data: result.structuredContent, isError, code };
  }

  /** Like {@link call}, failing the test with the tool's message when the tool refused. */
  async ok(name: string, args: Record<string, unknown> = {}): Promise<ToolAnswer> {
    const answer = await this.call(name, args);
    if (answer.isError) throw new Error(`${name} failed: ${answer.text}`);
    return answer;
  }

  /** Closes stdin (the server ends by itself), then kills the process if it did not. */
  close(): Promise<void> {
    return this.client.close();
  }
}

/** A gateway, its HTTP client and `switchboard mcp` on it: set up before a file's tests. */
export interface McpStack {
  gw: TestGateway;
  http: HttpClient;
  mcp: McpProcess;
}

/**
 * Starts a gateway of the test file's own and an MCP server process on it (`switchboard mcp`
 * with `args`) before the file's tests, and closes both after them (closing the gateway ends
 * the sessions the tests left).
 */
export function mcpStack(args: string[] = []): McpStack {
  const stack = {} as McpStack;
  beforeAll(async () => {
    stack.gw = await startTestGateway();
    stack.http = new HttpClient({ url: stack.gw.url, token: stack.gw.token });
    stack.mcp = await McpProcess.start({ SWITCHBOARD_URL: stack.gw.url, SWITCHBOARD_TOKEN: stack.gw.token }, args);
  });
  afterAll(async () => {
    await stack.mcp?.close();
    await stack.gw?.close();
  });
  return stack;
}

/** `start(command, extra)`: starts a session through start_session on the stack's MCP server and returns its id. */
export function sessionStarter(
  stack: McpStack,
): (command: string[], extra?: Record<string, unknown>) => Promise<string> {
  return async (command, extra = {}) => {
    const { data } = await stack.mcp.ok("start_session", { command, ...extra });
    return data.session.id as string;
  };
}
