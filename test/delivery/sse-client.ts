/**
 * An EventSource as the WHATWG spec has it, over node:http, for the SSE tests: it parses the
 * stream field by field, keeps the last event ID (an `id:` field takes effect when its message
 * is dispatched, even a message without data), reconnects with `Last-Event-ID` when a 200 stream
 * ends, and stops for good on any other status (204 included) — so a stream that ends without
 * moving the ID makes it reconnect, as a browser would.
 */
import { request } from "node:http";
import type { IncomingMessage } from "node:http";

export interface SseMessage {
  event: string;
  data: string;
  lastEventId: string;
}

export interface SseOptions {
  headers?: Record<string, string>;
  /** Called for each dispatched message; return "cut" to drop the connection right after it (then reconnect). */
  onMessage?: (m: SseMessage) => "cut" | void;
  /** Delay before reconnecting (the server's `retry:` is ignored: tests go fast). */
  reconnectMs?: number;
  /** Give up after this many connections (a loop that never ends is a failure, not a hang). */
  maxConnections?: number;
}

export interface SseRun {
  messages: SseMessage[];
  /** Statuses of every connection, in order (200 for streams, 204 when told to stop). */
  statuses: number[];
  /** The final status that stopped the client (or "gave-up"). */
  ended: number | "gave-up";
}

/** Parses SSE text fed in chunks; calls `dispatch` for each message. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  lastEventId = "";
  private idBuffer = "";

  constructor(private readonly dispatch: (m: SseMessage) => boolean | void) {}

  /** Feeds text; returns false once `dispatch` asked to stop. */
  feed(text: string): boolean {
    this.buffer += text;
    let nl: number;
    while ((nl = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + (this.buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        this.lastEventId = this.idBuffer;
        const data = this.data;
        const event = this.event;
        this.data = [];
        this.event = "";
        if (data.length === 0) continue;
        if (
          this.dispatch({ event: event || "message", data: data.join("\n"), lastEventId: this.lastEventId }) === false
        )
          return false;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.data.push(value);
      else if (field === "event") this.event = value;
      else if (field === "id" && !value.includes("\0")) this.idBuffer = value;
    }
    return true;
  }

  /** A new connection: a partial message is dropped, the last event ID stays. */
  reconnect(): void {
    this.buffer = "";
    this.data = [];
    this.event = "";
    this.idBuffer = this.lastEventId;
  }
}

function get(url: string, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, resolve);
    req.on("error", reject);
    req.end();
  });
}

/** Follows `url` like an EventSource until told to stop (a status other than 200). */
export async function followSse(url: string, options: SseOptions = {}): Promise<SseRun> {
  const messages: SseMessage[] = [];
  const statuses: number[] = [];
  let cut = false;
  const parser = new SseParser((m) => {
    messages.push(m);
    if (options.onMessage?.(m) === "cut") {
      cut = true;
      return false;
    }
  });
  const max = options.maxConnections ?? 100;
  for (let n = 0; n < max; n++) {
    if (n > 0) {
      parser.reconnect();
      await new Promise((r) => setTimeout(r, options.reconnectMs ?? 0));
    }
    const headers = {
      ...options.headers,
      ...(parser.lastEventId !== "" ? { "Last-Event-ID": parser.lastEventId } : {}),
    };
    const res = await get(url, headers);
    statuses.push(res.statusCode ?? 0);
    if (res.statusCode !== 200) {
      res.resume();
      return { messages, statuses, ended: res.statusCode ?? 0 };
    }
    cut = false;
    res.setEncoding("utf8");
    await new Promise<void>((resolve) => {
      res.on("data", (chunk: string) => {
        if (cut) return;
        if (!parser.feed(chunk)) res.destroy();
      });
      res.on("close", resolve);
    });
  }
  return { messages, statuses, ended: "gave-up" };
}
