import type { CallToolResult, Tool as ToolListing, ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { ConnectionError } from "../client/node.js";
import { SwitchboardError, isPublicError } from "../protocol/errors.js";
import type { ErrorCode } from "../protocol/errors.js";
import { controlHeldText } from "../protocol/index.js";
import type { GatewayAccess } from "./gateway.js";

/**
 * What a tool answers: compact text for the model, and its facts as structured content. A
 * session's output or an agent's answer is `body`: a text block of its own after `text`, and
 * not repeated in `data` (it would reach the model twice; docs/mcp.md "Tools").
 */
export interface ToolOutput<D extends Record<string, unknown> = Record<string, unknown>> {
  text: string;
  body?: string;
  data: D;
}

/** What a tool call gets besides its arguments. */
export interface ToolCall {
  gateway: GatewayAccess;
  /** Aborted when the MCP client cancels the call or the server shuts down. */
  signal: AbortSignal;
  /** Sends an MCP progress notification; undefined when the client did not ask for them (no progressToken). */
  progress?: ProgressSink;
}

/** Sends one MCP progress notification (`progress` must grow from one to the next). */
export interface ProgressSink {
  (update: { progress: number; total?: number; message: string }): void;
  /** How often a waiting call sends one: the server's `progressIntervalMs`. */
  readonly intervalMs: number;
}

/** A long wait tells the client how it goes this often (MCP clients may reset their call timeout on each). */
export const PROGRESS_INTERVAL_MS = 5000;

/**
 * While a call waits (up to `totalMs`), tells the client every `progress.intervalMs` how long
 * it has waited and what `describe` says, when the client asked for progress. Returns the
 * function that stops it.
 */
export function reportWhileWaiting(
  progress: ProgressSink | undefined,
  totalMs: number,
  describe: () => string,
): () => void {
  if (progress === undefined) return () => undefined;
  const started = performance.now();
  let last = 0;
  const timer = setInterval(() => {
    // Strictly growing, as the spec asks, even if the clock stalls.
    last = Math.max(last + 1, Math.round(performance.now() - started));
    progress({ progress: last, total: totalMs, message: describe() });
  }, progress.intervalMs);
  return () => clearInterval(timer);
}

/**
 * A refusal found by the MCP server itself (bad arguments, the wrong kind of session), with a
 * code from the gateway's list so that it reads like the gateway's own refusals.
 */
export class ToolError extends SwitchboardError {
  override readonly name: string = "ToolError";
  constructor(code: ErrorCode, message: string) {
    super(code, message);
  }
}

/** One tool: its listing, and a call that validates the arguments and never throws. */
export interface Tool {
  listing: ToolListing;
  call(args: unknown, call: ToolCall): Promise<CallToolResult>;
}

/**
 * Defines a tool from zod schemas: the input schema is published as the tool's JSON Schema and
 * checked on every call, a mistake answered as a VALIDATION_FAILED tool error naming the field;
 * the output schema is published as its `outputSchema`, which MCP clients check every
 * `structuredContent` against (the SDK's client does), and types what `run` returns.
 */
export function defineTool<
  S extends z.ZodType<Record<string, unknown>>,
  O extends z.ZodType<Record<string, unknown>, Record<string, unknown>>,
>(spec: {
  name: string;
  title: string;
  description: string;
  input: S;
  output: O;
  annotations: ToolAnnotations;
  run: (args: z.output<S>, call: ToolCall) => Promise<ToolOutput<z.input<O>>>;
}): Tool {
  return {
    listing: {
      name: spec.name,
      title: spec.title,
      description: spec.description,
      inputSchema: jsonSchema(spec.input, "input") as ToolListing["inputSchema"],
      outputSchema: jsonSchema(spec.output, "output") as ToolListing["outputSchema"],
      annotations: { title: spec.title, ...spec.annotations },
    },
    async call(args, call) {
      try {
        const parsed = spec.input.safeParse(args ?? {});
        if (!parsed.success) throw new ToolError("VALIDATION_FAILED", describeIssues(parsed.error));
        const { text, body, data } = await spec.run(parsed.data, call);
        const content: CallToolResult["content"] = [{ type: "text", text }];
        if (body !== undefined) content.push({ type: "text", text: body });
        return { content, structuredContent: data };
      } catch (error) {
        return failure(error, call.gateway);
      }
    },
  };
}

/** A zod schema as the JSON Schema a tool listing carries (without `$schema`: the listing's dialect is MCP's). */
function jsonSchema(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io }) as Record<string, unknown>;
  return rest;
}

/** A zod error as one sentence: `since: must be ...; timeout_ms: ...`. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ");
}

/**
 * Any error as an MCP tool error: `CODE: message`, with a hint where one helps. It has no
 * structured content: clients check that against the tool's `outputSchema`, which describes
 * results (the SDK's own McpServer answers errors so too).
 */
export function failure(error: unknown, gateway: Pick<GatewayAccess, "url" | "tokenSource">): CallToolResult {
  const code = isPublicError(error) || error instanceof ConnectionError ? error.code : "INTERNAL";
  // CONTROL_HELD said from who holds control: the gateway's own advice ("acquire control with
  // force") names something no tool here does.
  const held = isPublicError(error) ? controlHeldText(error) : undefined;
  const message = toolWords(held ?? (error instanceof Error ? error.message : String(error)));
  const text = `${code}: ${message}${hint(code, gateway)}`;
  return { content: [{ type: "text", text }], isError: true };
}

/**
 * The gateway's advice names its HTTP routes and CLI commands; an agent here has tools for the
 * same things (tools.test.ts "names tools, not HTTP routes, in errors").
 */
const ROUTE_ADVICE: ReadonlyArray<readonly [RegExp, string]> = [
  [/\(POST \.\.\.\/prompt, switchboard prompt\)/, "(prompt_agent)"],
  [/\(DELETE \/v1\/sessions\/:id, switchboard kill\)/, "(stop_session)"],
];

function toolWords(message: string): string {
  return ROUTE_ADVICE.reduce((text, [route, tool]) => text.replace(route, tool), message);
}

function hint(code: string, gateway: Pick<GatewayAccess, "url" | "tokenSource">): string {
  switch (code) {
    case "SESSION_NOT_FOUND":
      return " (list_sessions lists the sessions you may see)";
    case "UNREACHABLE":
      return ` (is the gateway running? "switchboard serve" starts one; this MCP server looks for it at ${gateway.url}, set SWITCHBOARD_URL in its environment to change that)`;
    case "UNAUTHORIZED":
      return ` (the gateway at ${gateway.url} refused the token from ${gateway.tokenSource}; set SWITCHBOARD_TOKEN in the MCP server's environment)`;
    case "CONTROL_HELD":
      return " (someone else steers this session, e.g. an attached terminal; wait, or ask them to detach)";
    case "SESSION_NOT_RUNNING":
      return " (the session has ended; read_output reads what a terminal session printed, wait_for_run an agent's last answer)";
    case "INPUT_CLOSED":
      return " (its input was ended with eof; start a new session to type into)";
    default:
      return "";
  }
}
