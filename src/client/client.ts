import type {
  AgentState,
  PromptRequest,
  SessionEvent,
  SessionInfo,
  ServerFrame,
  SignalName,
  FileUploaded,
  WorktreeDiff,
  WorktreeStatus,
} from "../protocol/index.js";
import { isSessionEnd } from "../protocol/index.js";
import { encodeBase64 } from "../core/utf8-chunker.js";
import { abortReason, untilAborted } from "./abort.js";
import type { AbortOptions } from "./abort.js";
import type { BackoffOptions } from "./backoff.js";
import { Channels } from "./channels.js";
import { ControlLeases } from "./control-leases.js";
import type { ControlLost } from "./control-leases.js";
import { handledDeferred } from "./deferred.js";
import { Emitter } from "./emitter.js";
import { ConnectionError, errorFromWire, isConnectionError } from "./errors.js";
import { PING_INTERVAL_MS, PONG_TIMEOUT_MS } from "./heartbeat.js";
import { httpClientFor } from "./http.js";
import { inputError } from "./input-size.js";
import type {
  AbortResult,
  AppendEventInput,
  AppendedEvents,
  CreateSessionRequest,
  EventsPage,
  EventsQuery,
  HttpClient,
  OutputChunk,
  SessionsPage,
  SessionsPageQuery,
  SessionsQuery,
  WorktreeRemoval,
} from "./http.js";
import { MultiplexConnection } from "./multiplex-connection.js";
import type { ForwardedFrame, HelloFrame } from "./multiplex-connection.js";
import { CONNECT_TIMEOUT_MS } from "./reconnect-loop.js";
import type { ConnectionState, StateChange } from "./reconnect-loop.js";
import { REQUEST_TIMEOUT_MS, RequestTracker } from "./requests.js";
import type { RequestFrame, RequestOptions } from "./requests.js";
import type { SubscribeOptions, Subscription } from "./subscription.js";
import type { GatewayTarget } from "./transport.js";

export interface ClientEvents {
  state: StateChange;
  hello: HelloFrame;
  /**
   * Control this client held was taken over, expired, or could not be re-acquired after a
   * reconnect. Not when its session ended (also while disconnected): the lease ends with it.
   */
  "control-lost": ControlLost;
  /** An error frame that answers no request (the gateway's own notices), or a frame that is not the protocol. */
  error: Error;
}

export interface ClientOptions extends GatewayTarget {
  reconnect?: BackoffOptions;
  /** Default {@link REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number;
  /** Default {@link CONNECT_TIMEOUT_MS}. */
  connectTimeoutMs?: number;
  /** Default {@link PING_INTERVAL_MS}. */
  pingIntervalMs?: number;
  /** Default {@link PONG_TIMEOUT_MS}. */
  pongTimeoutMs?: number;
  /** Timeout of the HTTP helpers. */
  httpTimeoutMs?: number;
  /**
   * A key this client keeps across reconnects and restarts (16–128 of A-Z a-z 0-9 _ -), sent with
   * every control acquire: control this client held when its connection closed is kept for it
   * for `control.reconnectGraceMs`, and its next connection (with the same token or sign-in)
   * takes it back without force. Without one, control ends with the connection.
   */
  clientKey?: string;
}

export interface ConnectOptions extends ClientOptions {
  /**
   * Gives up waiting for the first connection: `connect` rejects with the signal's reason and
   * the client is closed. It governs only the connecting: once `connect` has resolved, the
   * signal no longer matters (to tie the client's life to a signal, call `close()` on abort).
   */
  signal?: AbortSignal | undefined;
}

/**
 * A client of `/v1/ws` and the HTTP API, for browsers and Node: it reconnects with jittered backoff
 * and resumes every subscription from its last seq, without duplicates, until all it follows has
 * ended. Requests queue while disconnected ({@link RequestTracker}); calls take `{signal}`.
 * @example
 * const client = await connect({ url: "http://127.0.0.1:7317", token, WebSocket });
 * const sub = client.subscribe(id, { types: ["output"] }, (e) => view.push(e)); await sub.done;
 */
export class SwitchboardClient {
  readonly http: HttpClient;
  private readonly emitter = new Emitter<ClientEvents>();
  private readonly connection: MultiplexConnection;
  private readonly requests: RequestTracker;
  private readonly channels: Channels;
  private readonly leases: ControlLeases;
  /** See {@link ClientOptions.clientKey}. */
  private readonly clientKey: string | undefined;
  private readonly firstOpen = handledDeferred<void>();

  /** Prefer {@link connect}, which resolves once the connection is open. */
  constructor(options: ClientOptions) {
    this.clientKey = options.clientKey;
    this.http = httpClientFor(options);
    this.connection = new MultiplexConnection(
      {
        target: options,
        http: this.http,
        reconnect: options.reconnect,
        connectTimeoutMs: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
        pingIntervalMs: options.pingIntervalMs ?? PING_INTERVAL_MS,
        pongTimeoutMs: options.pongTimeoutMs ?? PONG_TIMEOUT_MS,
      },
      {
        stateChanged: (change) => {
          this.emitter.emit("state", change);
          // A closed client emits nothing more: `closed` is its last event.
          if (change.state === "closed") this.emitter.clear();
        },
        opened: (hello) => this.onOpen(hello),
        frame: (frame) => this.onFrame(frame),
        badFrame: (error) => this.emitter.emit("error", error),
        dropped: (error) => {
          this.requests.disconnected(error);
          this.channels.disconnected();
        },
        hasWork: () => this.channels.live || this.requests.hasQueued || this.leases.any,
        closed: (reason, error) => {
          this.requests.close(reason);
          this.channels.close(error);
          this.leases.clear();
          this.firstOpen.reject(reason);
        },
      },
    );
    this.requests = new RequestTracker(this.connection, options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS);
    this.channels = new Channels(this.connection, this.requests);
    this.leases = new ControlLeases(
      this.requests,
      (lost) => this.emitter.emit("control-lost", lost),
      options.clientKey,
    );
    this.connection.start();
  }

  get state(): ConnectionState {
    return this.connection.state;
  }

  /**
   * While `reconnecting`, tries to connect now instead of after the rest of the backoff (up to
   * 10 s): for an app that learned the gateway is back, e.g. an HTTP request of its own got
   * through, or the browser went `online`. Returns whether an attempt was waiting.
   */
  reconnectNow(): boolean {
    return this.connection.retryNow();
  }

  /** The gateway's `hello` of the current (or last) connection: connection id and limits. */
  get hello(): HelloFrame | undefined {
    return this.connection.hello;
  }

  /**
   * Resolves once the first connection is open; rejects if it could not be opened (bad token,
   * unreachable). Aborting `signal` gives up the waiting only: the client goes on connecting.
   */
  opened(options: AbortOptions = {}): Promise<void> {
    return untilAborted(this.firstOpen.promise, options.signal);
  }

  on<K extends keyof ClientEvents>(name: K, listener: (value: ClientEvents[K]) => void): () => void {
    return this.emitter.on(name, listener);
  }

  off<K extends keyof ClientEvents>(name: K, listener: (value: ClientEvents[K]) => void): void {
    this.emitter.off(name, listener);
  }

  /* ---------------------------------------------------------------- subscriptions */

  /**
   * Follows a session's events from `since` (the last seq you have). `onEvent` gets every
   * event exactly once, in seq order, across reconnects. The subscription's `done` resolves
   * with the session's last event (`exit`/`lost`).
   * @example
   * const sub = client.subscribe(id, { since: 0, types: ["output", "exit"] }, (event) => render(event));
   * await sub.ready; // confirmed by the gateway (rejects with SESSION_NOT_FOUND, ...)
   */
  subscribe(session: string, onEvent: (event: SessionEvent) => void): Subscription;
  subscribe(session: string, options: SubscribeOptions, onEvent: (event: SessionEvent) => void): Subscription;
  subscribe(
    session: string,
    a: SubscribeOptions | ((event: SessionEvent) => void),
    b?: (event: SessionEvent) => void,
  ): Subscription {
    const options = typeof a === "function" ? {} : a;
    const onEvent = typeof a === "function" ? a : b;
    if (!onEvent) throw new TypeError("subscribe needs an onEvent callback");
    if (this.connection.state === "closed") throw new ConnectionError("CLOSED", "the client is closed");
    const sub = this.channels.add(session, options, onEvent);
    if (!sub.live) return sub;
    if (this.connection.isOpen()) this.channels.subscribe(session);
    else this.connection.connect();
    return sub;
  }

  /* ---------------------------------------------------------------- steering */

  /**
   * Types into a session. Strings are sent as UTF-8; bytes as base64. Control rules apply.
   * `eof` ends the input after `data` (which may then be empty): a pipe's stdin is closed, a PTY gets ^D.
   * More than `LIMITS.INPUT_BYTES` (64 KiB) rejects with PAYLOAD_TOO_LARGE without being sent.
   */
  input(session: string, data: string | Uint8Array, options: { eof?: boolean } & AbortOptions = {}): Promise<void> {
    const refused = inputError(data);
    // An aborted signal still wins (the call rejects with its reason): checked where it is sent.
    if (refused && options.signal?.aborted !== true) return Promise.reject(refused);
    const frame: RequestFrame =
      typeof data === "string"
        ? { op: "input", session, data }
        : { op: "input", session, data: encodeBase64(data), enc: "base64" };
    return this.request(options.eof === true ? { ...frame, eof: true } : frame, options).then(toVoid);
  }

  /** Sends a signal (`INT`, `SIGINT`, `int` all work) to the session's process group. */
  signal(session: string, signal: SignalName | string, options: AbortOptions = {}): Promise<void> {
    return this.request({ op: "signal", session, signal: signal as SignalName }, options).then(toVoid);
  }

  /** Resizes a PTY session. */
  resize(session: string, size: { cols: number; rows: number }, options: AbortOptions = {}): Promise<void> {
    return this.request({ op: "resize", session, cols: size.cols, rows: size.rows }, options).then(toVoid);
  }

  /**
   * Acquires or releases the session's control lease for this connection; held control is asked
   * for again (without force) after a reconnect, else `control-lost`. Rejects with CONTROL_HELD
   * when someone else holds it and `force` is not set. An acquire that was aborted, or whose
   * answer a drop or the timeout cut off while a control event named this connection, holds the
   * lease as if answered (docs/sdk.md, "Steer a terminal"; control-leases.test.ts).
   */
  async control(
    session: string,
    action: "acquire" | "release",
    options: { force?: boolean } & AbortOptions = {},
  ): Promise<{ controller: string | null }> {
    const frame: RequestFrame = {
      op: "control",
      session,
      action,
      ...(options.force !== undefined ? { force: options.force } : {}),
      ...(action === "acquire" && this.clientKey !== undefined ? { clientKey: this.clientKey } : {}),
    };
    const pending = action === "acquire" ? this.leases.asking(session) : undefined;
    try {
      const result = (await this.request(frame, {
        signal: options.signal,
        // The ack comes on the connection the request was sent on: the one holding the lease now.
        onAck: () => this.leases.update(session, action, this.connection.hello?.connId),
      })) as { controller: string | null } | undefined;
      return result ?? { controller: null };
    } catch (error) {
      // No answer (the connection dropped under it, or it timed out), but the log's control event
      // named this client's connection: granted, and held as if answered (taken back after a
      // reconnect, or reported lost).
      const granted = pending?.granted;
      if (granted === undefined || !isConnectionError(error, "DISCONNECTED", "TIMEOUT")) throw error;
      this.leases.update(session, "acquire", granted.connId);
      return { controller: granted.holder };
    } finally {
      pending?.done();
    }
  }

  /**
   * Queues a prompt on an agent session; resolves with its run id. A prompt with `content` (ACP
   * blocks: images, files, links) goes over HTTP, whose body may be larger than a `/v1/ws` frame
   * (`PROMPT_BODY_MAX_BYTES`); it rejects with UNSUPPORTED_CONTENT when the agent does not take a block.
   * @example
   * await client.prompt(id, "hello");
   * await client.prompt(id, { text: "this fails", content: [{ type: "image", mimeType: "image/png", data: base64 }] });
   */
  async prompt(
    session: string,
    prompt: string | PromptRequest,
    options: AbortOptions = {},
  ): Promise<{ runId: string }> {
    if (typeof prompt !== "string" && prompt.content !== undefined) return this.http.prompt(session, prompt, options);
    const text = typeof prompt === "string" ? prompt : (prompt.text ?? "");
    return (await this.request({ op: "prompt", session, text }, options)) as { runId: string };
  }

  /**
   * Aborts the active run of an agent session (`all` also clears the queue); the run ends with
   * `chat.aborted`. Rejects with RUN_NOT_ACTIVE when there is nothing to abort.
   */
  async abort(session: string, options: { all?: boolean } & AbortOptions = {}): Promise<AbortResult> {
    return (await this.request(
      {
        op: "abort",
        session,
        ...(options.all !== undefined ? { all: options.all } : {}),
      },
      options,
    )) as AbortResult;
  }

  /**
   * Appends events to a session as a producer (`POST …/events` over the connection): resolves
   * with their seqs once durable, in the order made (pipelined). One sent as the link drops
   * rejects DISCONNECTED: it may have been appended (read the log to know).
   *
   * @example
   * const { first, last } = await client.append(id, [{ type: "output", data: { data: "built\n" } }]);
   */
  async append(
    session: string,
    events: readonly AppendEventInput[],
    options: AbortOptions = {},
  ): Promise<AppendedEvents> {
    return (await this.request({ op: "append", session, events: [...events] }, options)) as AppendedEvents;
  }

  /** Answers an agent's permission request. */
  permission(session: string, requestId: string, optionId: string, options: AbortOptions = {}): Promise<void> {
    return this.request({ op: "permission", session, requestId, optionId }, options).then(toVoid);
  }

  /**
   * Switches an agent session's agent to one of its modes (`agentState.modes.availableModes`),
   * under the control lease as a prompt is; resolves with the agent's state once the agent
   * confirmed. Rejects with INVALID_OPTION naming its modes (nothing was sent), AGENT_FAILED.
   * @example
   * await client.setMode(id, "plan");
   */
  async setMode(
    session: string,
    modeId: string,
    options: AbortOptions = {},
  ): Promise<{ agentState: AgentState | null }> {
    return (await this.request({ op: "mode", session, modeId }, options)) as { agentState: AgentState | null };
  }

  /**
   * Sets one of the agent's settings (`agentState.configOptions`: the model is the one with
   * category `model`) to one of its values (`true`/`false` for a boolean one); resolves with the
   * agent's state once the agent confirmed. Rejects with INVALID_OPTION naming the values.
   * @example
   * await client.setConfig(id, "model", "claude-opus-4");
   */
  async setConfig(
    session: string,
    configId: string,
    value: string | boolean,
    options: AbortOptions = {},
  ): Promise<{ agentState: AgentState | null }> {
    return (await this.request({ op: "config", session, configId, value }, options)) as {
      agentState: AgentState | null;
    };
  }

  /**
   * Answers an agent's elicitation (`elicitation.request`): `content` goes with a form's `accept`
   * and must match its `requestedSchema` (else ELICITATION_CONTENT_INVALID, and it stays open); a
   * url one (`mode: "url"`) is accepted without content once the user has visited it.
   *
   * @example
   * await client.elicitation(id, requestId, "accept", { db: "pg", port: 5432 });
   */
  elicitation(
    session: string,
    requestId: string,
    action: "accept" | "decline" | "cancel",
    content?: Record<string, string | number | boolean | string[]>,
    options: AbortOptions = {},
  ): Promise<void> {
    return this.request(
      { op: "elicitation", session, requestId, action, ...(content !== undefined ? { content } : {}) },
      options,
    ).then(toVoid);
  }

  /* ---------------------------------------------------------------- latency */

  /** The last measured round trip to the gateway in ms (from ping/pong), or undefined before the first. */
  latency(): number | undefined {
    return this.connection.latency;
  }

  /** Measures one round trip now. Rejects with DISCONNECTED when not connected. */
  ping(options: AbortOptions = {}): Promise<number> {
    return this.connection.ping(options.signal);
  }

  /* ---------------------------------------------------------------- HTTP helpers */

  createSession(body: CreateSessionRequest, options?: AbortOptions): Promise<SessionInfo> {
    return this.http.createSession(body, options);
  }

  /** Every session the token may see; see {@link HttpClient.listSessions}. */
  listSessions(options?: SessionsQuery & AbortOptions): Promise<SessionInfo[]> {
    return this.http.listSessions(options);
  }

  /** One page of sessions; see {@link HttpClient.sessionsPage}. */
  sessionsPage(query?: SessionsPageQuery & AbortOptions): Promise<SessionsPage> {
    return this.http.sessionsPage(query);
  }

  getSession(id: string, options?: AbortOptions): Promise<SessionInfo> {
    return this.http.getSession(id, options);
  }

  /** See {@link HttpClient.deleteSession}. */
  deleteSession(id: string, options?: WorktreeRemoval & AbortOptions): Promise<SessionInfo> {
    return this.http.deleteSession(id, options);
  }

  /** See {@link HttpClient.removeSession}. */
  removeSession(id: string, options?: { force?: boolean } & WorktreeRemoval & AbortOptions): Promise<SessionInfo[]> {
    return this.http.removeSession(id, options);
  }

  /** See {@link HttpClient.worktree}. */
  worktree(id: string, options?: AbortOptions): Promise<WorktreeStatus> {
    return this.http.worktree(id, options);
  }

  /** See {@link HttpClient.worktreeDiff}. */
  worktreeDiff(id: string, options?: AbortOptions): Promise<WorktreeDiff> {
    return this.http.worktreeDiff(id, options);
  }

  /** See {@link HttpClient.uploadFile}. */
  uploadFile(id: string, path: string, body: Blob | Uint8Array, options?: AbortOptions): Promise<FileUploaded> {
    return this.http.uploadFile(id, path, body, options);
  }

  /** See {@link HttpClient.downloadFile}. */
  downloadFile(id: string, path: string, options?: AbortOptions): Promise<Blob> {
    return this.http.downloadFile(id, path, options);
  }

  events(id: string, query?: EventsQuery & AbortOptions): Promise<EventsPage> {
    return this.http.events(id, query);
  }

  output(id: string, query?: { since?: number; max?: number } & AbortOptions): Promise<OutputChunk> {
    return this.http.output(id, query);
  }

  appendEvents(
    id: string,
    events: AppendEventInput | readonly AppendEventInput[],
    options?: AbortOptions,
  ): ReturnType<HttpClient["appendEvents"]> {
    return this.http.appendEvents(id, events, options);
  }

  /* ---------------------------------------------------------------- lifecycle */

  /**
   * Closes the connection and stops reconnecting. Pending requests reject with CLOSED;
   * subscriptions stop (their `done` resolves with `undefined`). Idempotent.
   */
  close(): void {
    this.connection.close(undefined);
  }

  private request(frame: RequestFrame, options: RequestOptions): Promise<unknown> {
    if (options.signal?.aborted) return Promise.reject(abortReason(options.signal));
    if (this.connection.state === "closed")
      return Promise.reject(new ConnectionError("CLOSED", "the client is closed"));
    return this.requests.request(frame, options);
  }

  /* ---------------------------------------------------------------- from the connection */

  /** The connection is open (again): follow every session and take back held control, then send what waited. */
  private onOpen(hello: HelloFrame): void {
    this.emitter.emit("hello", hello);
    this.firstOpen.resolve();
    this.channels.subscribeAll();
    this.leases.reacquireAll(hello.connId);
    this.requests.flush();
  }

  private onFrame(frame: ForwardedFrame): void {
    switch (frame.op) {
      case "screen":
        this.channels.screen(frame);
        return;
      case "subscribed":
        this.channels.confirmed(frame);
        if (frame.end !== undefined) this.leases.ended(frame.session);
        return;
      case "event":
        this.channels.deliver(frame.session, [frame.event]);
        this.leasesSee(frame.session, [frame.event]);
        return;
      case "events":
        this.channels.deliver(frame.session, frame.events);
        this.leasesSee(frame.session, frame.events);
        return;
      case "reset":
        this.channels.reset(frame);
        if (frame.reason === "deleted") this.leases.ended(frame.session);
        return;
      case "ack":
        this.requests.ack(frame.ref, frame.result);
        return;
      case "error":
        this.onErrorFrame(frame);
        return;
      default:
        // A newer gateway's frame this client does not know: ignore it (the protocol only grows).
        return;
    }
  }

  /** What the leases learn from a session's events: who holds control, and the session's end. */
  private leasesSee(session: string, events: readonly SessionEvent[]): void {
    for (const event of events) {
      if (event.type === "control") this.leases.controlEvent(session, event, this.connection.hello?.connId);
      else if (isSessionEnd(event)) this.leases.ended(session);
    }
  }

  /** An error frame answers a request or a subscribe by its ref; without one it is the gateway's own notice. */
  private onErrorFrame(frame: Extract<ServerFrame, { op: "error" }>): void {
    const { op: _op, ref, ...body } = frame;
    const error = errorFromWire(body);
    if (ref !== undefined && (this.requests.fail(ref, error) || this.channels.refused(ref, error))) return;
    if (frame.code === "CONTROL_LOST" && frame.session !== undefined) {
      const { session, code, message, holder, reason } = frame;
      this.leases.lost({ session, code, message, ...(holder ? { holder } : {}), ...(reason ? { reason } : {}) });
      return;
    }
    this.emitter.emit("error", error);
  }
}

function toVoid(): void {
  // Steering acks carry no result the caller needs.
}

/**
 * Opens a client and waits for the gateway's `hello`. Rejects with `SwitchboardError`
 * `UNAUTHORIZED` for a bad token, `ConnectionError` `UNREACHABLE` when nothing answers, or
 * `signal`'s reason when it aborts first (the client is closed then).
 * @example
 * const client = await connect({ url, token, signal: AbortSignal.timeout(5_000) });
 */
export async function connect(options: ConnectOptions): Promise<SwitchboardClient> {
  const { signal, ...clientOptions } = options;
  if (signal?.aborted) throw abortReason(signal);
  const client = new SwitchboardClient(clientOptions);
  try {
    await client.opened({ signal });
  } catch (error) {
    client.close();
    throw error;
  }
  return client;
}
