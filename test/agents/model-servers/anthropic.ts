import type { ServerResponse } from "node:http";
import { ScriptedModelServer, sse, startSse, streamText } from "./scripted-model.js";
import type { ModelApi, Reply, ToolAsk, Turn } from "./scripted-model.js";

/**
 * The Anthropic Messages API as Claude Code calls it (`POST /v1/messages?beta=true`, streamed):
 * `message_start`, per content block `content_block_start` / `_delta` / `_stop`, then
 * `message_delta` with the stop reason and `message_stop`. A request without tools (Claude
 * Code's title and suggestion requests) is a side request, answered with a short text.
 */
interface Block {
  type: string;
  text?: string;
  content?: unknown;
}
interface Message {
  role: string;
  content: string | Block[];
}
interface Body {
  model?: string;
  messages?: Message[];
  tools?: Array<{ name: string }>;
  thinking?: unknown;
  stream?: boolean;
}

let ids = 0;

function blocks(message: Message): Block[] {
  return typeof message.content === "string" ? [{ type: "text", text: message.content }] : message.content;
}

function blockText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((b: Block) => b.text ?? "").join("");
  return "";
}

/** Claude Code's own tool for each scripted tool. */
function toolUse(ask: ToolAsk): { name: string; input: Record<string, unknown> } {
  switch (ask.tool) {
    case "shell":
      return { name: "Bash", input: { command: ask.command, description: "Run the command" } };
    case "read":
      return { name: "Read", input: { file_path: ask.path } };
    case "write":
      return { name: "Write", input: { file_path: ask.path, content: ask.content } };
  }
}

const anthropicApi: ModelApi = {
  route(url, method, body) {
    if (method !== "POST" || url.pathname !== "/v1/messages") return "unknown";
    // Claude Code's turns carry its tools and thinking settings; its title and next-prompt
    // suggestion requests lack one or the other.
    const b = body as Body | undefined;
    return (b?.tools?.length ?? 0) > 0 && b?.thinking !== undefined ? "turn" : "side";
  },
  turn(body): Turn {
    const messages = (body as Body).messages ?? [];
    const last = messages.at(-1);
    const results = last ? blocks(last).filter((b) => b.type === "tool_result") : [];
    const promptMessage = [...messages]
      .reverse()
      .find((m) => m.role === "user" && !blocks(m).some((b) => b.type === "tool_result"));
    return {
      prompt: promptMessage ? blockText(blocks(promptMessage)) : "",
      toolResult: results.length > 0 ? results.map((b) => blockText(b.content)).join("\n") : undefined,
      transcript: JSON.stringify(messages),
    };
  },
  side(_url, body, res) {
    void streamMessage({ text: "Scripted title" }, body as Body, res);
  },
  stream(reply, body, res) {
    return streamMessage(reply, body as Body, res);
  },
  error(error, res) {
    const type = error.status === 529 ? "overloaded_error" : error.status === 429 ? "rate_limit_error" : "api_error";
    res
      .writeHead(error.status, { "content-type": "application/json" })
      .end(JSON.stringify({ type: "error", error: { type, message: error.message } }));
  },
};

async function streamMessage(reply: Reply, body: Body, res: ServerResponse): Promise<void> {
  const id = `msg_scripted_${++ids}`;
  const usage = { input_tokens: 10, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  if (body.stream === false) {
    const content: unknown[] = [{ type: "text", text: reply.text ?? "" }];
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({
        id,
        type: "message",
        role: "assistant",
        model: body.model ?? "scripted",
        content,
        stop_reason: "end_turn",
        stop_sequence: null,
        usage,
      }),
    );
    return;
  }
  startSse(res);
  const message = {
    id,
    type: "message",
    role: "assistant",
    model: body.model ?? "scripted",
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage,
  };
  sse(res, { type: "message_start", message }, "message_start");
  let index = 0;
  if (reply.text !== undefined) {
    sse(res, { type: "content_block_start", index, content_block: { type: "text", text: "" } }, "content_block_start");
    sse(res, { type: "ping" }, "ping");
    const whole = await streamText(reply, res, (text) =>
      sse(res, { type: "content_block_delta", index, delta: { type: "text_delta", text } }, "content_block_delta"),
    );
    if (!whole) return;
    sse(res, { type: "content_block_stop", index }, "content_block_stop");
    index++;
  }
  if (reply.tool) {
    const use = toolUse(reply.tool);
    const toolUseId = `toolu_scripted_${++ids}`;
    sse(
      res,
      {
        type: "content_block_start",
        index,
        content_block: { type: "tool_use", id: toolUseId, name: use.name, input: {} },
      },
      "content_block_start",
    );
    sse(
      res,
      {
        type: "content_block_delta",
        index,
        delta: { type: "input_json_delta", partial_json: JSON.stringify(use.input) },
      },
      "content_block_delta",
    );
    sse(res, { type: "content_block_stop", index }, "content_block_stop");
  }
  const stopReason = reply.tool ? "tool_use" : "end_turn";
  sse(
    res,
    { type: "message_delta", delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 5 } },
    "message_delta",
  );
  sse(res, { type: "message_stop" }, "message_stop");
  res.end();
}

/** Starts a scripted Anthropic Messages API; point Claude Code at it with `ANTHROPIC_BASE_URL`. */
export function startAnthropicServer(): Promise<ScriptedModelServer> {
  return new ScriptedModelServer(anthropicApi).listen();
}
