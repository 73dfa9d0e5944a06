import { HttpClient, connect } from "../client/node.js";
import type { GatewayTarget, SwitchboardClient } from "../client/node.js";
import { InternalError } from "../protocol/errors.js";

export interface GatewayAccessOptions {
  target: GatewayTarget & { url: string };
  /** Where sessions started without `cwd` run (the MCP server's directory when the gateway is local). */
  defaultCwd?: string | undefined;
  /** Where the token came from, for the message when the gateway refuses it. */
  tokenSource?: string | undefined;
}

/** The last input send_input typed into a session: where its output was, and the line whose echo after_input skips. */
export interface SentInput {
  offset: number;
  /** The last line typed (what a PTY echoes last before the line break Enter echoes). */
  echo: string;
}

/** Sessions whose last input is remembered for after_input (the oldest is forgotten first). */
export const MAX_SENT_INPUTS = 1000;

/**
 * The MCP server's way to the gateway: the SDK's HTTP client, and one WebSocket client shared
 * by every call that follows a session (opened on first use, opened afresh after a drop).
 */
export class GatewayAccess {
  readonly http: HttpClient;
  readonly target: GatewayTarget & { url: string };
  readonly defaultCwd: string | undefined;
  readonly tokenSource: string;
  private socket: Promise<SwitchboardClient> | undefined;
  private closed = false;
  private readonly inputs = new Map<string, SentInput>();

  constructor(options: GatewayAccessOptions) {
    this.target = options.target;
    this.http = new HttpClient(options.target);
    this.defaultCwd = options.defaultCwd;
    this.tokenSource = options.tokenSource ?? "the MCP server's options";
  }

  get url(): string {
    return this.target.url;
  }

  /**
   * The shared WebSocket client, connected. A client whose connection dropped is not handed out
   * again: it is closed at the drop (the calls following a session through it end, saying the
   * connection was lost) and the next call connects afresh. Left to the SDK, it would reconnect
   * after a backoff of up to 10 s (RECONNECT_MAX_DELAY_MS), and a call made when the gateway was
   * back already waited behind that: prompt_agent then timed out "still queued" on a run that
   * had finished at once.
   */
  async client(): Promise<SwitchboardClient> {
    if (this.closed) throw new InternalError("the MCP server is shutting down");
    const current = this.socket;
    if (current !== undefined) {
      const open = await current.catch((error: unknown) => {
        // A failed connect is retried by the next call: the gateway may be up by then.
        if (current === this.socket) this.socket = undefined;
        throw error;
      });
      // `idle`: the connection dropped while nothing used it; a subscribe would reconnect it
      // with the SDK's backoff when the gateway is still down. `open` and `connecting` serve.
      if (open.state === "open" || open.state === "connecting") return open;
      if (current === this.socket) this.socket = undefined;
      open.close();
    }
    const opening = connect(this.target).then((client) => {
      client.on("state", ({ state }) => {
        if (state !== "reconnecting") return;
        if (this.socket === opening) this.socket = undefined;
        // Not inside the SDK's own state change: it goes on to arm the reconnect, which close() cancels.
        queueMicrotask(() => client.close());
      });
      return client;
    });
    this.socket = opening;
    return opening.catch((error: unknown) => {
      if (opening === this.socket) this.socket = undefined;
      throw error;
    });
  }

  /** Remembers send_input's input to `id` (one that pressed Enter; undefined: one that did not, forgotten). */
  recordInput(id: string, input: SentInput | undefined): void {
    this.inputs.delete(id);
    if (input === undefined) return;
    this.inputs.set(id, input);
    if (this.inputs.size > MAX_SENT_INPUTS) this.inputs.delete(this.inputs.keys().next().value!);
  }

  lastInput(id: string): SentInput | undefined {
    return this.inputs.get(id);
  }

  /** Closes the shared client. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const socket = this.socket;
    this.socket = undefined;
    socket?.then(
      (client) => client.close(),
      (_error: unknown) => {
        // It never opened: nothing to close.
      },
    );
  }
}
