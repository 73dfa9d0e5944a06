import type { ServerFrame } from "../protocol/index.js";
import { abortReason } from "./abort.js";
import type { BackoffOptions } from "./backoff.js";
import { ConnectionError, closedError } from "./errors.js";
import { Heartbeat } from "./heartbeat.js";
import type { HttpClient } from "./http.js";
import { ReconnectLoop } from "./reconnect-loop.js";
import type { ConnectionState, StateChange } from "./reconnect-loop.js";
import type { RequestLink } from "./requests.js";
import { SocketHandle, diagnoseUpgradeFailure, refusalError } from "./transport.js";
import type { GatewayTarget } from "./transport.js";

/** The gateway's greeting on each `/v1/ws` connection: its id, the protocol version and limits. */
export type HelloFrame = Extract<ServerFrame, { op: "hello" }>;

/** The frames the connection hands to its client: all but `hello` and `pong`, which it handles itself. */
export type ForwardedFrame = Exclude<ServerFrame, { op: "hello" | "pong" }>;

/** The client's options as the connection uses them, defaults resolved. */
export interface MultiplexConnectionOptions {
  target: GatewayTarget;
  /** Asks why an upgrade failed when the gateway's refusal does not say. */
  http: HttpClient;
  reconnect: BackoffOptions | undefined;
  connectTimeoutMs: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
}

/** What the connection tells its client, synchronously. */
export interface MultiplexConnectionHooks {
  /** Every change of the connection's state. */
  stateChanged(change: StateChange): void;
  /** The gateway said hello: the connection is open (again), and what waited for it can go out. */
  opened(hello: HelloFrame): void;
  /** A frame from the gateway. */
  frame(frame: ForwardedFrame): void;
  /** The gateway sent a frame that is not JSON; the connection goes on. */
  badFrame(error: ConnectionError): void;
  /** The connection dropped: nothing sent on it will be answered. */
  dropped(error: Error): void;
  /** Whether anything still needs the connection; without, a dropped one goes `idle` instead of reconnecting. */
  hasWork(): boolean;
  /**
   * The connection ended for good: whatever waits rejects with `reason`; `error` is why, unless
   * `close()` was called. The state becomes `closed` right after.
   */
  closed(reason: Error, error: Error | undefined): void;
}

/**
 * The client's connection to `/v1/ws`, one socket at a time. It counts as open once the
 * gateway says `hello`, and is pinged while open. When it drops it is opened again after a
 * backoff, unless nothing needs it any more: then it goes `idle` until {@link connect}. A
 * failed upgrade is diagnosed (the gateway's refusal, else an HTTP probe) and ends the
 * connection when retrying cannot help (see {@link ReconnectLoop.givesUp}). What travels on it
 * is the client's: the connection reports through {@link MultiplexConnectionHooks}.
 */
export class MultiplexConnection implements RequestLink {
  private readonly loop: ReconnectLoop;
  private readonly heartbeat: Heartbeat;
  private socket: SocketHandle | undefined;
  private helloReceived = false;
  private _hello: HelloFrame | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Aborted by `close()`: the HTTP probe of a failed upgrade must not keep a closed client's program running. */
  private readonly closing = new AbortController();

  constructor(
    private readonly options: MultiplexConnectionOptions,
    private readonly hooks: MultiplexConnectionHooks,
  ) {
    this.loop = new ReconnectLoop(options.reconnect, (change) => hooks.stateChanged(change));
    this.heartbeat = new Heartbeat({
      intervalMs: options.pingIntervalMs,
      timeoutMs: options.pongTimeoutMs,
      send: (text) => this.send(text),
    });
  }

  get state(): ConnectionState {
    return this.loop.state;
  }

  /** The gateway's `hello` of the current (or last) connection. */
  get hello(): HelloFrame | undefined {
    return this._hello;
  }

  /** The last measured round trip in ms, or undefined before the first. */
  get latency(): number | undefined {
    return this.heartbeat.latency;
  }

  /** Opens the first socket: once the client's parts are ready for what the hooks tell them. */
  start(): void {
    this.openSocket();
  }

  isOpen(): boolean {
    return this.loop.state === "open" && this.socket !== undefined && this.helloReceived;
  }

  send(text: string): void {
    this.socket?.send(text);
  }

  /** While `reconnecting`, tries now instead of after the rest of the backoff. */
  retryNow(): boolean {
    return this.loop.retryNow();
  }

  /** Connects if the connection is `idle`. */
  connect(): void {
    if (this.loop.state !== "idle") return;
    this.loop.restart();
    this.openSocket();
  }

  /** Measures one round trip now. Rejects with DISCONNECTED when not connected. */
  ping(signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (!this.isOpen()) return Promise.reject(new ConnectionError("DISCONNECTED", "not connected"));
    return this.heartbeat.ping(signal);
  }

  /** Closes the socket and stops reconnecting; `error` is why, when not asked to. Idempotent. */
  close(error: Error | undefined): void {
    if (this.loop.state === "closed") return;
    this.loop.cancel();
    this.closing.abort();
    this.clearConnectionTimers();
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(1000, "client closed");
    const reason = error ?? new ConnectionError("CLOSED", "the client was closed");
    this.hooks.closed(reason, error);
    this.heartbeat.close(reason);
    this.loop.setState("closed", error ? { error } : {});
  }

  private openSocket(): void {
    this.helloReceived = false;
    const handle = new SocketHandle(this.options.target, "/v1/ws", {
      onOpen: () => {
        // Nothing yet: the connection counts as open once the gateway says hello.
      },
      onMessage: (text) => this.onFrame(handle, text),
      onClose: (code, reason) => this.onSocketClosed(handle, closedError(code, reason)),
    });
    this.socket = handle;
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      this.dropSocket(
        handle,
        new ConnectionError("TIMEOUT", `no hello from the gateway within ${this.options.connectTimeoutMs} ms`),
      );
    }, this.options.connectTimeoutMs);
  }

  /** Abandons a socket that is not usable any more and handles it as closed. */
  private dropSocket(handle: SocketHandle, error: Error): void {
    if (handle !== this.socket) return;
    handle.close(1000, "", true);
    this.onSocketClosed(handle, error);
  }

  private onSocketClosed(handle: SocketHandle, error: Error): void {
    if (handle !== this.socket) return;
    this.socket = undefined;
    const wasOpen = this.helloReceived;
    this.helloReceived = false;
    this.clearConnectionTimers();
    this.hooks.dropped(error);
    this.heartbeat.disconnected(error);
    if (this.loop.state === "closed") return;
    if (wasOpen) {
      this.scheduleReconnect(error);
      return;
    }
    // The upgrade failed or never finished: the gateway's refusal says why (`ws` hands it over);
    // without one (browsers, a proxy's page) ask over HTTP (bad token? gateway down?).
    const refused = handle.refusal && refusalError(handle.refusal);
    void (
      refused !== undefined
        ? Promise.resolve(refused)
        : diagnoseUpgradeFailure(
            () => this.options.http.whoami({ signal: this.closing.signal }),
            "cannot open /v1/ws",
            error instanceof ConnectionError && error.code === "TIMEOUT" ? error.message : undefined,
          )
    ).then((why) => {
      if (this.loop.state === "closed") return;
      if (this.loop.givesUp(why, ["UNAUTHORIZED", "FORBIDDEN"])) this.close(why);
      else this.scheduleReconnect(why, true);
    });
  }

  private scheduleReconnect(error: Error, initial = false): void {
    if (!initial && !this.hooks.hasWork()) {
      this.loop.setState("idle", { error });
      return;
    }
    this.loop.schedule(
      error,
      () => {
        // Decide with today's state, not the state at the time of the drop: whatever ended meanwhile is not followed.
        if (this.loop.hasOpened && !this.hooks.hasWork()) {
          this.loop.setState("idle");
          return;
        }
        this.openSocket();
      },
      (why) => this.close(why),
    );
  }

  private onHello(handle: SocketHandle, hello: HelloFrame): void {
    // A `state` listener may have closed the client while this connection was opening.
    if (this.helloReceived || this.loop.state === "closed") return;
    this.helloReceived = true;
    this._hello = hello;
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.heartbeat.received();
    this.loop.opened();
    this.hooks.opened(hello);
    // A `state` or `hello` listener may have closed the client just now: a heartbeat started
    // anyway would tick for good (nothing clears it after close; a browser cannot unref it).
    if (this.isClosed() || handle !== this.socket) return;
    this.heartbeat.start(
      () => handle === this.socket,
      (error) => this.dropSocket(handle, error),
    );
  }

  /** Not narrowed by an earlier check: listeners called meanwhile may have closed the client. */
  private isClosed(): boolean {
    return this.loop.state === "closed";
  }

  private clearConnectionTimers(): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.heartbeat.stop();
  }

  private onFrame(handle: SocketHandle, text: string): void {
    if (handle !== this.socket) return;
    this.heartbeat.received();
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch (error) {
      this.hooks.badFrame(
        new ConnectionError("BAD_RESPONSE", "the gateway sent a frame that is not JSON", { cause: error }),
      );
      return;
    }
    switch (frame.op) {
      case "hello":
        this.onHello(handle, frame);
        return;
      case "pong":
        if (frame.t !== undefined) this.heartbeat.pong(frame.t);
        return;
      default:
        this.hooks.frame(frame);
    }
  }
}
