import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** A tool the scripted model asks the agent to run; each API server names it as its agent expects. */
export type ToolAsk =
  | { tool: "shell"; command: string }
  | { tool: "read"; path: string }
  | { tool: "write"; path: string; content: string };

/** What the model answers to one turn. */
export interface Reply {
  /** Answer text, streamed in pieces of `pieceChars` characters. */
  text?: string;
  /** Characters per streamed piece (default 8). */
  pieceChars?: number;
  /** Pause before each piece: a slow answer (default 0). */
  pieceDelayMs?: number;
  /** A tool call after the text. */
  tool?: ToolAsk;
  /** An HTTP error answer (`status`, the API's error body with `message`) instead of a stream. */
  error?: { status: number; message: string };
  /** Ends the connection after this many characters of text, without the stream's end. */
  dropAfterChars?: number;
  /** Called after each text piece is written, with the characters written so far. */
  progress?: (chars: number) => void;
  /** Called once the whole reply is written (a test acting at the moment the agent has the tool call). */
  sent?: () => void;
}

/** One turn the agent asked the model for, as the script sees it, whichever the API. */
export interface Turn {
  /** The text of the last user message that is not a tool result (the prompt, with what the agent added). */
  prompt: string;
  /** The output of the tool call this request answers, or undefined when it answers none. */
  toolResult: string | undefined;
  /** Every text the request carries: what the model "remembers". */
  transcript: string;
}

export type Script = (turn: Turn) => Reply;

/** Bound on a request body the servers read: the agents send their whole conversation each turn. */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

/** Parses an API's request into a turn and writes the reply in the API's wire format. */
export interface ModelApi {
  /** Whether this request is a turn of the conversation (else a side request: title, classifier). */
  route(url: URL, method: string, body: unknown): "turn" | "side" | "unknown";
  turn(body: unknown): Turn;
  /** Answers a side request (a title, a routing decision) without consuming the script. */
  side(url: URL, body: unknown, res: ServerResponse): void;
  /** Streams `reply` (text, tool call) as the API does; resolves when it is written. */
  stream(reply: Reply, body: unknown, res: ServerResponse): Promise<void>;
  error(reply: NonNullable<Reply["error"]>, res: ServerResponse): void;
}

/** A request a server received, for assertions. */
export interface Received {
  method: string;
  path: string;
  kind: "turn" | "side" | "unknown";
  body: unknown;
}

/**
 * A scripted model API on 127.0.0.1 (port 0): each turn request is answered by `script`, the
 * rest by the API's defaults. `down()` makes every turn fail as an unreachable API would
 * (the connection is closed at once) until `up()`.
 */
export class ScriptedModelServer {
  readonly received: Received[] = [];
  readonly turns: Turn[] = [];
  private script: Script = () => ({ text: "ok" });
  private isDown = false;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private port = 0;

  constructor(private readonly api: ModelApi) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        // A reply the agent stopped reading (abort) fails to write: nothing to answer then.
        if (!res.headersSent) res.writeHead(500).end(String(err));
        else res.destroy();
      });
    });
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    this.port = address.port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  setScript(script: Script): void {
    this.script = script;
  }

  down(): void {
    this.isDown = true;
  }

  up(): void {
    this.isDown = false;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const text = await readBody(req);
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const kind = this.api.route(url, req.method ?? "GET", body);
    this.received.push({ method: req.method ?? "GET", path: url.pathname + url.search, kind, body });
    if (kind === "unknown") {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not scripted"}');
      return;
    }
    if (kind === "side") return this.api.side(url, body, res);
    if (this.isDown) {
      req.socket.destroy();
      return;
    }
    const turn = this.api.turn(body);
    this.turns.push(turn);
    const reply = this.script(turn);
    if (reply.error) return this.api.error(reply.error, res);
    await this.api.stream(reply, body, res);
    reply.sent?.();
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_REQUEST_BYTES) throw new Error(`request over ${MAX_REQUEST_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** `text` in pieces of `size` characters (never splitting a surrogate pair). */
export function pieces(text: string, size: number): string[] {
  const chars = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(""));
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Streams the reply's text pieces through `send`, pausing as scripted; returns false when the
 * script drops the connection mid-answer (the socket is destroyed then).
 */
export async function streamText(reply: Reply, res: ServerResponse, send: (piece: string) => void): Promise<boolean> {
  let sent = 0;
  for (const piece of pieces(reply.text ?? "", reply.pieceChars ?? 8)) {
    if (reply.pieceDelayMs) await sleep(reply.pieceDelayMs);
    if (res.destroyed) return false;
    if (reply.dropAfterChars !== undefined && sent + piece.length > reply.dropAfterChars) {
      res.destroy();
      return false;
    }
    send(piece);
    sent += piece.length;
    reply.progress?.(sent);
  }
  if (reply.dropAfterChars !== undefined) {
    res.destroy();
    return false;
  }
  return true;
}

/** Writes one server-sent event (`event:` line only when named). */
export function sse(res: ServerResponse, data: unknown, event?: string): void {
  res.write(`${event ? `event: ${event}\n` : ""}data: ${JSON.stringify(data)}\n\n`);
}

export function startSse(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  res.flushHeaders();
}
