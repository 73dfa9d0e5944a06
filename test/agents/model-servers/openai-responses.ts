import type { ServerResponse } from "node:http";
import { ScriptedModelServer, sse, startSse, streamText } from "./scripted-model.js";
import type { ModelApi, Reply, ToolAsk, Turn } from "./scripted-model.js";

/**
 * The OpenAI Responses API as Codex calls it (`POST /v1/responses`, streamed): `response.created`,
 * per output item `response.output_item.added` … `response.output_item.done`, text as
 * `response.output_text.delta`, then `response.completed`. Codex acts on each item when its
 * `output_item.done` arrives and ends the turn at `response.completed`.
 */
interface Item {
  type?: string;
  role?: string;
  content?: Array<{ type: string; text?: string }> | string;
  output?: unknown;
  name?: string;
}
interface Tool {
  type: string;
  name?: string;
  parameters?: { properties?: Record<string, unknown> };
}
interface Body {
  model?: string;
  input?: Item[];
  tools?: Tool[];
}

let ids = 0;

function itemText(item: Item): string {
  if (typeof item.content === "string") return item.content;
  return (item.content ?? []).map((c) => c.text ?? "").join("");
}

function outputText(output: unknown): string {
  if (typeof output === "string") return output;
  if (Array.isArray(output)) return output.map((o: { text?: string }) => o.text ?? "").join("");
  return JSON.stringify(output);
}

/** Codex's own tool for each scripted tool, as the request's tool list names it. */
function toolItem(ask: ToolAsk, tools: Tool[]): Record<string, unknown> {
  const callId = `call_scripted_${++ids}`;
  const has = (name: string): Tool | undefined => tools.find((t) => t.name === name);
  /** Codex 0.16 (gpt-5.x model families) offers `exec_command {cmd}`; older ones `shell {command: argv}`. */
  const shell = (command: string): Record<string, unknown> => {
    const exec = has("exec_command");
    if (exec) {
      // Codex answers with what the command printed so far after `yield_time_ms` (a short
      // default): on a loaded machine that is before the command ends, so the model waits longer.
      const wait = exec.parameters?.properties?.yield_time_ms !== undefined ? { yield_time_ms: 30_000 } : {};
      return {
        type: "function_call",
        call_id: callId,
        name: "exec_command",
        arguments: JSON.stringify({ cmd: command, ...wait }),
      };
    }
    const args = { command: ["bash", "-lc", command] };
    return { type: "function_call", call_id: callId, name: "shell", arguments: JSON.stringify(args) };
  };
  switch (ask.tool) {
    case "shell":
      return shell(ask.command);
    // Codex has no tool that reads a file: it runs a command that prints it.
    case "read":
      return shell(`cat '${ask.path}'`);
    case "write": {
      const patch = [
        "*** Begin Patch",
        `*** Add File: ${ask.path}`,
        ...ask.content
          .replace(/\n$/, "")
          .split("\n")
          .map((line) => `+${line}`),
        "*** End Patch",
      ].join("\n");
      const applyPatch = has("apply_patch");
      if (applyPatch?.type === "custom")
        return { type: "custom_tool_call", call_id: callId, name: "apply_patch", input: patch };
      return {
        type: "function_call",
        call_id: callId,
        name: "apply_patch",
        arguments: JSON.stringify({ input: patch }),
      };
    }
  }
}

const openAiResponsesApi: ModelApi = {
  route(url, method) {
    if (method === "POST" && url.pathname === "/v1/responses") return "turn";
    if (method === "GET" && url.pathname === "/v1/models") return "side";
    return "unknown";
  },
  turn(body): Turn {
    const input = (body as Body).input ?? [];
    const last = input.at(-1);
    const isResult = last?.type === "function_call_output" || last?.type === "custom_tool_call_output";
    const promptItem = [...input].reverse().find((i) => i.type === "message" && i.role === "user");
    return {
      prompt: promptItem ? itemText(promptItem) : "",
      toolResult: isResult ? outputText(last.output) : undefined,
      transcript: JSON.stringify(input),
    };
  },
  side(_url, _body, res) {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data: [] }));
  },
  async stream(reply: Reply, body, res: ServerResponse) {
    const { model = "scripted", tools = [] } = body as Body;
    const id = `resp_scripted_${++ids}`;
    let seq = 0;
    const send = (type: string, data: Record<string, unknown>): void =>
      sse(res, { type, sequence_number: seq++, ...data }, type);
    startSse(res);
    const response = {
      id,
      object: "response",
      created_at: Math.floor(Date.now() / 1000),
      model,
      status: "in_progress",
      output: [],
    };
    send("response.created", { response });
    send("response.in_progress", { response });
    const output: unknown[] = [];
    if (reply.text !== undefined) {
      const itemId = `msg_scripted_${++ids}`;
      const item = { id: itemId, type: "message", status: "in_progress", role: "assistant", content: [] };
      send("response.output_item.added", { output_index: 0, item });
      const part = { type: "output_text", text: "", annotations: [] };
      send("response.content_part.added", { item_id: itemId, output_index: 0, content_index: 0, part });
      const whole = await streamText(reply, res, (delta) =>
        send("response.output_text.delta", { item_id: itemId, output_index: 0, content_index: 0, delta }),
      );
      if (!whole) return;
      const text = reply.text;
      send("response.output_text.done", { item_id: itemId, output_index: 0, content_index: 0, text });
      send("response.content_part.done", {
        item_id: itemId,
        output_index: 0,
        content_index: 0,
        part: { ...part, text },
      });
      const done = { ...item, status: "completed", content: [{ type: "output_text", text, annotations: [] }] };
      send("response.output_item.done", { output_index: 0, item: done });
      output.push(done);
    }
    if (reply.tool) {
      const item = { id: `fc_scripted_${++ids}`, status: "completed", ...toolItem(reply.tool, tools) };
      send("response.output_item.added", { output_index: output.length, item: { ...item, status: "in_progress" } });
      send("response.output_item.done", { output_index: output.length, item });
      output.push(item);
    }
    const usage = {
      input_tokens: 10,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 5,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 15,
    };
    send("response.completed", { response: { ...response, status: "completed", output, usage } });
    res.end();
  },
  error(error, res) {
    const type =
      error.status === 429 ? "rate_limit_exceeded" : error.status >= 500 ? "server_error" : "invalid_request_error";
    res
      .writeHead(error.status, { "content-type": "application/json" })
      .end(JSON.stringify({ error: { message: error.message, type, param: null, code: null } }));
  },
};

/** Starts a scripted OpenAI Responses API; point Codex at it with a model provider in `CODEX_HOME/config.toml`. */
export function startOpenAiResponsesServer(): Promise<ScriptedModelServer> {
  return new ScriptedModelServer(openAiResponsesApi).listen();
}
