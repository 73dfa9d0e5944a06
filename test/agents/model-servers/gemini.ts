import type { ServerResponse } from "node:http";
import { ScriptedModelServer, sse, startSse, streamText } from "./scripted-model.js";
import type { ModelApi, Reply, ToolAsk, Turn } from "./scripted-model.js";

/**
 * The Gemini API as Gemini CLI calls it: `POST …/models/<model>:streamGenerateContent?alt=sse`
 * for its conversation (each event a `GenerateContentResponse`, the last with `finishReason`),
 * and `…:generateContent` for its JSON side questions (model routing, next speaker), answered
 * here with a JSON text that satisfies each.
 */
interface Part {
  text?: string;
  functionCall?: { name: string; args: unknown };
  functionResponse?: { name: string; response: unknown };
}
interface Content {
  role?: string;
  parts?: Part[];
}
interface Body {
  contents?: Content[];
}

/** Gemini CLI's own tool for each scripted tool. */
function functionCall(ask: ToolAsk): { name: string; args: Record<string, unknown> } {
  switch (ask.tool) {
    case "shell":
      return { name: "run_shell_command", args: { command: ask.command, description: "Run the command" } };
    case "read":
      return { name: "read_file", args: { file_path: ask.path } };
    case "write":
      return { name: "write_file", args: { file_path: ask.path, content: ask.content } };
  }
}

const USAGE = { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 };

function chunk(parts: Part[], finishReason?: string): unknown {
  return {
    candidates: [{ content: { role: "model", parts }, index: 0, ...(finishReason ? { finishReason } : {}) }],
    usageMetadata: USAGE,
    modelVersion: "gemini-scripted",
  };
}

function responseText(result: unknown): string {
  if (typeof result === "string") return result;
  return JSON.stringify(result);
}

const geminiApi: ModelApi = {
  route(url, method) {
    if (method !== "POST") return "unknown";
    if (url.pathname.endsWith(":streamGenerateContent")) return "turn";
    if (url.pathname.endsWith(":generateContent") || url.pathname.endsWith(":countTokens")) return "side";
    return "unknown";
  },
  turn(body): Turn {
    const contents = (body as Body).contents ?? [];
    const last = contents.at(-1);
    const results = (last?.parts ?? []).filter((p) => p.functionResponse);
    const promptContent = [...contents]
      .reverse()
      .find(
        (c) =>
          c.role === "user" &&
          (c.parts ?? []).some((p) => p.text !== undefined) &&
          !c.parts?.some((p) => p.functionResponse),
      );
    return {
      prompt: (promptContent?.parts ?? []).map((p) => p.text ?? "").join(""),
      toolResult:
        results.length > 0 ? results.map((p) => responseText(p.functionResponse?.response)).join("\n") : undefined,
      transcript: JSON.stringify(contents),
    };
  },
  side(url, _body, res) {
    if (url.pathname.endsWith(":countTokens")) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ totalTokens: 10 }));
      return;
    }
    // One JSON object answering each of Gemini CLI's JSON questions: routing and next speaker.
    const answer = { reasoning: "scripted", model_choice: "flash", next_speaker: "user" };
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify(chunk([{ text: JSON.stringify(answer) }], "STOP")));
  },
  async stream(reply: Reply, _body, res: ServerResponse) {
    startSse(res);
    const whole = await streamText(reply, res, (text) => sse(res, chunk([{ text }])));
    if (!whole) return;
    const end: Part[] = reply.tool ? [{ functionCall: functionCall(reply.tool) }] : [{ text: "" }];
    sse(res, chunk(end, "STOP"));
    res.end();
  },
  error(error, res) {
    const status =
      error.status === 429 ? "RESOURCE_EXHAUSTED" : error.status >= 500 ? "UNAVAILABLE" : "INVALID_ARGUMENT";
    res
      .writeHead(error.status, { "content-type": "application/json" })
      .end(JSON.stringify({ error: { code: error.status, message: error.message, status } }));
  },
};

/** Starts a scripted Gemini API; point Gemini CLI at it with `GOOGLE_GEMINI_BASE_URL`. */
export function startGeminiServer(): Promise<ScriptedModelServer> {
  return new ScriptedModelServer(geminiApi).listen();
}
