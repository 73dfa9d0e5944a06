import { ClientFrame, EVENT_TYPES, SwitchboardError } from "../protocol/index.js";
import type { ErrorCode, Ref, SessionEvent, SessionInfo, ServerFrame, SignalName } from "../protocol/index.js";
import { encodeBase64 } from "../core/utf8-chunker.js";
import { backoffDelay, INITIAL_CONNECT_ATTEMPTS, RECONNECT_MAX_ATTEMPTS } from "./backoff.js";
import type { BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { ConnectionError, errorFromWire, isConnectionError, isSwitchboardError, markHandled } from "./errors.js";
import { HttpClient } from "./http.js";
import type { AppendEventInput, CreateSessionRequest, EventsPage, EventsQuery, OutputChunk } from "./http.js";
import { Subscription } from "./subscription.js";
import type { SubscribeOptions } from "./subscription.js";
import { SocketHandle, diagnoseUpgradeFailure } from "./transport.js";
import type { GatewayTarget } from "./transport.js";

/** A steering request not answered (`ack`/`error`) within this long rejects with TIMEOUT. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** A WebSocket that has not said `hello` within this long is given up and retried. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** The client pings this often while open (latency, and a dead-peer check). */
export const PING_INTERVAL_MS = 15_000;
/** With nothing received for a ping interval plus this long, the connection counts as dead and is replaced. */
export const PONG_TIMEOUT_MS = 10_000;
/** Requests waiting for the connection to come back; more reject with QUEUE_FULL. */
export const MAX_QUEUED_REQUESTS = 1_000;

/**
 * - `connecting`: the first connection (or the first after `idle`) is being opened;
 * - `open`: connected, `hello` received;
 * - `reconnecting`: the connection dropped and the client will try again after a backoff;
 * - `idle`: disconnected and not trying, because nothing needs the connection (every
 *   subscription has ended); the next subscribe or request reconnects;
 * - `closed`: `close()` was called, or a fatal error (bad token) ended the client.
 */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "idle" | "closed";

export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
  /** `reconnecting`: which attempt comes next (1 for the first) and after how long. */
  attempt?: number;
  delayMs?: number;
  /** Why the connection dropped or the client closed, when known. */
  error?: Error;
}

export type HelloFrame = Extract<ServerFrame, { op: "hello" }>;

export interface ClientEvents {
  state: StateChange;
  hello: HelloFrame;
  /** Control this client held was taken over, expired, or could not be re-acquired after a reconnect. */
  "control-lost": { session: string; code: ErrorCode; message: string };
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
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A `/v1/ws` frame without its `ref` (the client assigns refs). */
export type RequestFrame = DistributiveOmit<Exclude<ClientFrame, { op: "subscribe" | "unsubscribe" | "ping" }>, "ref">;

interface PendingRequest {
  frame: RequestFrame;
  text: string;
  sent: boolean;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface PendingPing {
  resolve: (ms: number) => void;
  reject: (error: Error) => void;
}

const now: () => number = typeof performance !== "undefined" ? () => performance.now() : () => Date.now();
const KNOWN_TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);

/**
 * A client of the gateway's multiplexed WebSocket (`/v1/ws`) and HTTP API, for browsers and
 * Node. It follows any number of sessions and never loses its place: after a dropped
 * connection it reconnects with jittered exponential backoff and resumes every live
 * subscription from the last seq it saw, dropping replayed duplicates. It stops reconnecting
 * once everything it follows has ended.
 *
 * Requests made while disconnected wait (bounded by `requestTimeoutMs` and
 * {@link MAX_QUEUED_REQUESTS}) and are sent, in order, once the connection is back. A request
 * already sent when the connection drops rejects with `ConnectionError` `DISCONNECTED`: it may
 * or may not have been applied, and input is never re-sent behind the caller's back.
 *
 * @example
 * const client = await connect({ url: "http://127.0.0.1:7317", token, WebSocket });
 * const session = await client.createSession({ command: ["bash"], pty: true });
 * const view = new OutputView();
 * const sub = client.subscribe(session.id, { types: ["output"] }, (e) => view.push(e));
 * await client.input(session.id, "echo hi; exit\r");
 * await sub.done; // the exit event
 * console.log(view.text());
 * client.close();
 */
export class SwitchboardClient {
  readonly http: HttpClient;
  private readonly options: ClientOptions;
  private readonly emitter = new Emitter<ClientEvents>();
  private readonly requestTimeoutMs: number;
  private _state: ConnectionState = "connecting";
  private socket: SocketHandle | undefined;
  private helloReceived = false;
  private everOpened = false;
  private attempt = 0;
  private _hello: HelloFrame | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastReceivedAt = 0;
  private nextRef = 1;
  private readonly pending = new Map<Ref, PendingRequest>();
  private readonly subscribeRefs = new Map<Ref, string>();
  private readonly ignoredRefs = new Set<Ref>();
  private readonly channels = new Map<string, Set<Subscription>>();
  private readonly controlled = new Set<string>();
  private readonly pings = new Map<number, PendingPing>();
  private lastLatency: number | undefined;
  private readonly firstOpen: Promise<void>;
  private settleFirstOpen!: { resolve: () => void; reject: (error: Error) => void };

  /** Prefer {@link connect}, which resolves once the connection is open. */
  constructor(options: ClientOptions) {
    this.options = options;
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.http = new HttpClient({
      ...options,
      ...(options.httpTimeoutMs !== undefined ? { timeoutMs: options.httpTimeoutMs } : {}),
    });
    this.firstOpen = new Promise((resolve, reject) => (this.settleFirstOpen = { resolve, reject }));
    markHandled(this.firstOpen);
    this.openSocket();
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** The gateway's `hello` of the current (or last) connection: connection id and limits. */
  get hello(): HelloFrame | undefined {
    return this._hello;
  }

  /** Resolves once the first connection is open; rejects if it could not be opened (bad token, unreachable). */
  opened(): Promise<void> {
    return this.firstOpen;
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
   *
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
    if (this._state === "closed") throw new ConnectionError("CLOSED", "the client is closed");
    if (typeof session !== "string" || session.length === 0)
      throw new SwitchboardError("VALIDATION_FAILED", "session: an id is required");
    const since = options.since ?? 0;
    if (!Number.isSafeInteger(since) || since < 0)
      throw new SwitchboardError("VALIDATION_FAILED", "since: a non-negative integer seq");
    const unknown = options.types?.filter((t) => !KNOWN_TYPES.has(t)) ?? [];
    if (unknown.length > 0)
      throw new SwitchboardError("VALIDATION_FAILED", `types: unknown event type ${unknown.join(", ")}`);

    const sub = new Subscription(session, options, onEvent, (s) => this.removeSubscription(s));
    let channel = this.channels.get(session);
    if (!channel) {
      channel = new Set();
      this.channels.set(session, channel);
    }
    channel.add(sub);
    if (this.isOpen) this.sendSubscribe(session);
    else this.ensureConnecting();
    return sub;
  }

  /* ---------------------------------------------------------------- steering */

  /** Types into a session. Strings are sent as UTF-8; bytes as base64. Control rules apply. */
  input(session: string, data: string | Uint8Array): Promise<void> {
    const frame: RequestFrame =
      typeof data === "string"
        ? { op: "input", session, data }
        : { op: "input", session, data: encodeBase64(data), enc: "base64" };
    return this.request(frame).then(toVoid);
  }

  /** Sends a signal (`INT`, `SIGINT`, `int` all work) to the session's process group. */
  signal(session: string, signal: SignalName | string): Promise<void> {
    return this.request({ op: "signal", session, signal: signal as SignalName }).then(toVoid);
  }

  /** Resizes a PTY session. */
  resize(session: string, size: { cols: number; rows: number }): Promise<void> {
    return this.request({ op: "resize", session, cols: size.cols, rows: size.rows }).then(toVoid);
  }

  /**
   * Acquires or releases the session's control lease for this connection. Held control is
   * re-acquired (without force) after a reconnect; if that fails, `control-lost` is emitted.
   * Rejects with CONTROL_HELD when someone else holds it and `force` is not set.
   */
  async control(
    session: string,
    action: "acquire" | "release",
    options: { force?: boolean } = {},
  ): Promise<{ controller: string | null }> {
    const frame: RequestFrame = {
      op: "control",
      session,
      action,
      ...(options.force !== undefined ? { force: options.force } : {}),
    };
    const result = (await this.request(frame)) as { controller: string | null } | undefined;
    if (action === "acquire") this.controlled.add(session);
    else this.controlled.delete(session);
    return result ?? { controller: null };
  }

  /** Queues a prompt on an agent session; resolves with its run id. */
  async prompt(session: string, text: string): Promise<{ runId: string }> {
    return (await this.request({ op: "prompt", session, text })) as { runId: string };
  }

  /** Aborts the active run of an agent session (`all` also clears the queue). */
  async abort(session: string, options: { all?: boolean } = {}): Promise<{ runId: string }> {
    return (await this.request({
      op: "abort",
      session,
      ...(options.all !== undefined ? { all: options.all } : {}),
    })) as { runId: string };
  }

  /** Answers an agent's permission request. */
  permission(session: string, requestId: string, optionId: string): Promise<void> {
    return this.request({ op: "permission", session, requestId, optionId }).then(toVoid);
  }

  /* ---------------------------------------------------------------- latency */

  /** The last measured round trip to the gateway in ms (from ping/pong), or undefined before the first. */
  latency(): number | undefined {
    return this.lastLatency;
  }

  /** Measures one round trip now. Rejects with DISCONNECTED when not connected. */
  ping(): Promise<number> {
    if (!this.isOpen) return Promise.reject(new ConnectionError("DISCONNECTED", "not connected"));
    return new Promise((resolve, reject) => {
      const t = this.sendPing();
      this.pings.set(t, { resolve, reject });
    });
  }

  /* ---------------------------------------------------------------- HTTP helpers */

  createSession(body: CreateSessionRequest): Promise<SessionInfo> {
    return this.http.createSession(body);
  }

  listSessions(): Promise<SessionInfo[]> {
    return this.http.listSessions();
  }

  getSession(id: string): Promise<SessionInfo> {
    return this.http.getSession(id);
  }

  deleteSession(id: string): Promise<SessionInfo> {
    return this.http.deleteSession(id);
  }

  events(id: string, query?: EventsQuery): Promise<EventsPage> {
    return this.http.events(id, query);
  }

  output(id: string, query?: { since?: number }): Promise<OutputChunk> {
    return this.http.output(id, query);
  }

  appendEvents(
    id: string,
    events: AppendEventInput | readonly AppendEventInput[],
  ): ReturnType<HttpClient["appendEvents"]> {
    return this.http.appendEvents(id, events);
  }

  /* ---------------------------------------------------------------- lifecycle */

  /**
   * Closes the connection and stops reconnecting. Pending requests reject with CLOSED;
   * subscriptions stop (their `done` resolves with `undefined`). Idempotent.
   */
  close(): void {
    this.shutdown(undefined);
  }

  private get isOpen(): boolean {
    return this._state === "open" && this.socket !== undefined && this.helloReceived;
  }

  private setState(state: ConnectionState, extra: Omit<StateChange, "state" | "previous"> = {}): void {
    const previous = this._state;
    if (previous === "closed") return;
    this._state = state;
    this.emitter.emit("state", { state, previous, ...extra });
  }

  private openSocket(): void {
    this.helloReceived = false;
    const handle = new SocketHandle(this.options, "/v1/ws", {
      onOpen: () => {
        // Nothing yet: the connection counts as open once the gateway says hello.
      },
      onMessage: (text) => this.onFrame(handle, text),
      onClose: (code, reason) =>
        this.onSocketClosed(
          handle,
          new ConnectionError("DISCONNECTED", `connection closed (${code}${reason ? ` ${reason}` : ""})`),
        ),
    });
    this.socket = handle;
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      this.dropSocket(
        handle,
        new ConnectionError(
          "TIMEOUT",
          `no hello from the gateway within ${this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS} ms`,
        ),
      );
    }, this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
  }

  /** Abandons a socket that is not usable any more and handles it as closed. */
  private dropSocket(handle: SocketHandle, error: Error): void {
    if (handle !== this.socket) return;
    handle.close(1000, "", true);
    this.onSocketClosed(handle, error);
  }

  private ensureConnecting(): void {
    if (this._state !== "idle") return;
    this.attempt = 0;
    this.setState("connecting");
    this.openSocket();
  }

  /** Whether anything still needs the connection. */
  private hasWork(): boolean {
    for (const subs of this.channels.values()) for (const sub of subs) if (sub.live) return true;
    for (const p of this.pending.values()) if (!p.sent) return true;
    return this.controlled.size > 0;
  }

  private onSocketClosed(handle: SocketHandle, error: Error): void {
    if (handle !== this.socket) return;
    this.socket = undefined;
    const wasOpen = this.helloReceived;
    this.helloReceived = false;
    this.clearConnectionTimers();
    for (const [ref, p] of this.pending) {
      if (!p.sent) continue;
      this.pending.delete(ref);
      clearTimeout(p.timer);
      p.reject(
        new ConnectionError(
          "DISCONNECTED",
          `the connection dropped before the gateway answered ${p.frame.op}; it may or may not have been applied`,
          { cause: error },
        ),
      );
    }
    for (const ping of this.pings.values())
      ping.reject(new ConnectionError("DISCONNECTED", "the connection dropped", { cause: error }));
    this.pings.clear();
    this.subscribeRefs.clear();
    this.ignoredRefs.clear();
    if (this._state === "closed") return;
    if (wasOpen) {
      this.scheduleReconnect(error);
      return;
    }
    // The upgrade failed or never finished: ask over HTTP why (bad token? gateway down?).
    void diagnoseUpgradeFailure(() => this.http.whoami(), "cannot open /v1/ws").then((why) => {
      if (this._state === "closed") return;
      const fatal =
        isSwitchboardError(why, "UNAUTHORIZED", "FORBIDDEN") ||
        (!this.everOpened && (isConnectionError(why, "UNREACHABLE") || this.attempt + 1 >= INITIAL_CONNECT_ATTEMPTS));
      if (fatal) this.shutdown(why);
      else this.scheduleReconnect(why, true);
    });
  }

  private scheduleReconnect(error: Error, initial = false): void {
    if (!initial && !this.hasWork()) {
      this.setState("idle", { error });
      return;
    }
    this.attempt++;
    const maxAttempts = this.options.reconnect?.maxAttempts ?? RECONNECT_MAX_ATTEMPTS;
    if (this.attempt > maxAttempts) {
      this.shutdown(
        new ConnectionError("UNREACHABLE", `gave up after ${maxAttempts} reconnect attempts: ${error.message}`, {
          cause: error,
        }),
      );
      return;
    }
    const delayMs = backoffDelay(this.attempt, this.options.reconnect);
    this.setState("reconnecting", { attempt: this.attempt, delayMs, error });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this._state !== "reconnecting") return;
      // Decide with today's state, not the state at the time of the drop: whatever ended meanwhile is not followed.
      if (this.everOpened && !this.hasWork()) {
        this.setState("idle");
        return;
      }
      try {
        this.openSocket();
      } catch (openError) {
        this.shutdown(openError instanceof Error ? openError : new Error(String(openError)));
      }
    }, delayMs);
  }

  private onOpen(hello: HelloFrame): void {
    if (this.helloReceived) return;
    this.helloReceived = true;
    this._hello = hello;
    this.everOpened = true;
    this.attempt = 0;
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.lastReceivedAt = now();
    this.setState("open");
    this.emitter.emit("hello", hello);
    this.settleFirstOpen.resolve();
    for (const session of [...this.channels.keys()]) this.sendSubscribe(session);
    for (const session of this.controlled) this.reacquire(session);
    for (const p of this.pending.values()) {
      if (p.sent) continue;
      p.sent = true;
      this.socket?.send(p.text);
    }
    this.startHeartbeat();
  }

  private reacquire(session: string): void {
    const handle = this.socket;
    const ref = this.nextRef++;
    const frame: RequestFrame = { op: "control", session, action: "acquire" };
    const timer = setTimeout(() => this.pending.delete(ref), this.requestTimeoutMs);
    this.pending.set(ref, {
      frame,
      text: JSON.stringify({ ...frame, ref }),
      sent: true,
      timer,
      resolve: () => undefined,
      reject: (error) => {
        if (!isSwitchboardError(error)) return; // dropped again: the next reconnect retries
        this.controlled.delete(session);
        this.emitter.emit("control-lost", {
          session,
          code: error.code,
          message: `could not take control back after reconnecting: ${error.message}`,
        });
      },
    });
    handle?.send(JSON.stringify({ ...frame, ref }));
  }

  private startHeartbeat(): void {
    const interval = this.options.pingIntervalMs ?? PING_INTERVAL_MS;
    const timeout = this.options.pongTimeoutMs ?? PONG_TIMEOUT_MS;
    const handle = this.socket;
    this.heartbeat = setInterval(() => {
      if (!handle || handle !== this.socket) return;
      if (now() - this.lastReceivedAt > interval + timeout) {
        this.dropSocket(
          handle,
          new ConnectionError("TIMEOUT", `nothing from the gateway for ${interval + timeout} ms`),
        );
        return;
      }
      this.sendPing();
    }, interval);
    (this.heartbeat as { unref?: () => void }).unref?.();
  }

  private sendPing(): number {
    let t = now();
    while (this.pings.has(t)) t += 0.001;
    if (!this.pings.has(t)) this.pings.set(t, { resolve: () => undefined, reject: () => undefined });
    this.socket?.send(JSON.stringify({ op: "ping", t }));
    return t;
  }

  private clearConnectionTimers(): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.connectTimer = undefined;
    this.heartbeat = undefined;
  }

  private sendSubscribe(session: string): void {
    const subs = [...(this.channels.get(session) ?? [])].filter((s) => s.live);
    if (subs.length === 0) return;
    const since = Math.min(...subs.map((s) => s.lastSeq));
    let types: Set<string> | undefined = new Set();
    for (const s of subs) {
      const t = s.serverTypes;
      if (!t) {
        types = undefined;
        break;
      }
      for (const x of t) types.add(x);
    }
    const ref = this.nextRef++;
    this.subscribeRefs.set(ref, session);
    // The new position is at or before every subscription's last seq: each waits for it.
    for (const sub of subs) sub.awaitConfirmation(ref);
    this.socket?.send(
      JSON.stringify({ op: "subscribe", session, since, ...(types ? { types: [...types] } : {}), ref }),
    );
  }

  private removeSubscription(sub: Subscription): void {
    const channel = this.channels.get(sub.session);
    if (!channel) return;
    channel.delete(sub);
    this.pruneChannel(sub.session, channel);
  }

  /** Forgets subscriptions that ended; tells the gateway when nobody follows the session any more. */
  private pruneChannel(session: string, channel: Set<Subscription>): void {
    for (const s of channel) if (!s.live) channel.delete(s);
    if (channel.size > 0) return;
    this.channels.delete(session);
    if (this.isOpen) {
      const ref = this.nextRef++;
      this.ignoredRefs.add(ref);
      this.socket?.send(JSON.stringify({ op: "unsubscribe", session, ref }));
    }
  }

  private request(frame: RequestFrame): Promise<unknown> {
    if (this._state === "closed") return Promise.reject(new ConnectionError("CLOSED", "the client is closed"));
    const ref = this.nextRef++;
    const parsed = ClientFrame.safeParse({ ...frame, ref });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
      return Promise.reject(new SwitchboardError("VALIDATION_FAILED", `${where}${issue?.message ?? "invalid frame"}`));
    }
    if (!this.isOpen) {
      let queued = 0;
      for (const p of this.pending.values()) if (!p.sent) queued++;
      if (queued >= MAX_QUEUED_REQUESTS) {
        return Promise.reject(
          new ConnectionError(
            "QUEUE_FULL",
            `${queued} requests are already waiting for the connection (MAX_QUEUED_REQUESTS)`,
          ),
        );
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new ConnectionError("TIMEOUT", `no answer to ${frame.op} within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      const entry: PendingRequest = { frame, text: JSON.stringify(parsed.data), sent: false, resolve, reject, timer };
      this.pending.set(ref, entry);
      if (this.isOpen) {
        entry.sent = true;
        this.socket?.send(entry.text);
      } else {
        this.ensureConnecting();
      }
    });
  }

  private onFrame(handle: SocketHandle, text: string): void {
    if (handle !== this.socket) return;
    this.lastReceivedAt = now();
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch (error) {
      this.emitter.emit(
        "error",
        new ConnectionError("BAD_RESPONSE", "the gateway sent a frame that is not JSON", { cause: error }),
      );
      return;
    }
    switch (frame.op) {
      case "hello":
        this.onOpen(frame);
        return;
      case "subscribed": {
        if (frame.ref !== undefined) this.subscribeRefs.delete(frame.ref);
        for (const sub of this.channels.get(frame.session) ?? [])
          sub.confirm(frame.ref, { from: frame.from, head: frame.head });
        return;
      }
      case "event":
        this.deliver(frame.session, [frame.event]);
        return;
      case "events":
        this.deliver(frame.session, frame.events);
        return;
      case "reset": {
        const channel = this.channels.get(frame.session);
        if (!channel) return;
        for (const sub of [...channel]) {
          if (frame.reason === "deleted")
            sub.fail(new SwitchboardError("SESSION_NOT_FOUND", `session ${frame.session} was deleted`));
          else sub.reset(frame.reason, frame.first, frame.head);
        }
        this.pruneChannel(frame.session, channel);
        return;
      }
      case "ack": {
        if (this.ignoredRefs.delete(frame.ref)) return;
        const p = this.pending.get(frame.ref);
        if (!p) return;
        this.pending.delete(frame.ref);
        clearTimeout(p.timer);
        p.resolve(frame.result);
        return;
      }
      case "error":
        this.onErrorFrame(frame);
        return;
      case "pong": {
        if (frame.t === undefined) return;
        const ping = this.pings.get(frame.t);
        if (!ping) return;
        this.pings.delete(frame.t);
        this.lastLatency = now() - frame.t;
        ping.resolve(this.lastLatency);
        return;
      }
      default:
        // A newer gateway's frame this client does not know: ignore it (the protocol only grows).
        return;
    }
  }

  private onErrorFrame(frame: Extract<ServerFrame, { op: "error" }>): void {
    const { op: _op, ref, ...body } = frame;
    const error = errorFromWire(body);
    if (ref !== undefined) {
      if (this.ignoredRefs.delete(ref)) return;
      const p = this.pending.get(ref);
      if (p) {
        this.pending.delete(ref);
        clearTimeout(p.timer);
        p.reject(error);
        return;
      }
      const session = this.subscribeRefs.get(ref);
      if (session !== undefined) {
        this.subscribeRefs.delete(ref);
        const channel = this.channels.get(session);
        if (!channel) return;
        for (const sub of [...channel]) sub.fail(error);
        this.pruneChannel(session, channel);
        return;
      }
    }
    if (frame.code === "CONTROL_LOST" && frame.session !== undefined) {
      this.controlled.delete(frame.session);
      this.emitter.emit("control-lost", { session: frame.session, code: frame.code, message: frame.message });
      return;
    }
    this.emitter.emit("error", error);
  }

  private deliver(session: string, events: readonly SessionEvent[]): void {
    const channel = this.channels.get(session);
    if (!channel) return;
    let ended = false;
    for (const event of events) {
      for (const sub of channel) if (sub.deliver(event)) ended = true;
    }
    // Subscriptions that stop otherwise (unsubscribe, failure) prune their channel themselves.
    if (ended) this.pruneChannel(session, channel);
  }

  private shutdown(error: Error | undefined): void {
    if (this._state === "closed") return;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.clearConnectionTimers();
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(1000, "client closed");
    const reason = error ?? new ConnectionError("CLOSED", "the client was closed");
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(reason);
    }
    for (const ping of this.pings.values()) ping.reject(reason);
    this.pings.clear();
    const subs = [...this.channels.values()].flatMap((channel) => [...channel]);
    this.channels.clear();
    for (const sub of subs) {
      if (error) sub.fail(error);
      else sub.unsubscribe();
    }
    this.controlled.clear();
    this.settleFirstOpen.reject(reason);
    this.setState("closed", error ? { error } : {});
    this._state = "closed";
    this.emitter.clear();
  }
}

function toVoid(): void {
  // Steering acks carry no result the caller needs.
}

/**
 * Opens a client and waits for the gateway's `hello`. Rejects with `SwitchboardError`
 * `UNAUTHORIZED` for a bad token, or `ConnectionError` `UNREACHABLE` when nothing answers.
 *
 * @example
 * const client = await connect({ url: "http://127.0.0.1:7317", token: process.env.SWITCHBOARD_TOKEN });
 */
export async function connect(options: ClientOptions): Promise<SwitchboardClient> {
  const client = new SwitchboardClient(options);
  try {
    await client.opened();
  } catch (error) {
    client.close();
    throw error;
  }
  return client;
}
