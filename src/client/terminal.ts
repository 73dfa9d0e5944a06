import { CLOSE_CODES, LAG_TAKEN_EVERY_BYTES, SwitchboardError, readBinaryOutput } from "../protocol/index.js";
import type {
  LagMode,
  SignalName,
  TerminalClientFrame,
  TerminalOutputMode,
  TerminalServerFrame,
} from "../protocol/index.js";
import { decodeOutputData } from "../core/utf8-chunker.js";
import { abortReason, noAbortListener, onAbort } from "./abort.js";
import type { BackoffOptions } from "./backoff.js";
import { handledDeferred } from "./deferred.js";
import { Emitter } from "./emitter.js";
import { screenOf } from "./screen.js";
import type { SessionScreen } from "./screen.js";
import { ConnectionError, closedError, errorFromWire } from "./errors.js";
import { Heartbeat, PING_INTERVAL_MS, PONG_TIMEOUT_MS } from "./heartbeat.js";
import { httpClientFor } from "./http.js";
import type { HttpClient } from "./http.js";
import { inputError } from "./input-size.js";
import { CONNECT_TIMEOUT_MS, ReconnectLoop } from "./reconnect-loop.js";
import type { ConnectionState, StateChange } from "./reconnect-loop.js";
import { SocketHandle, diagnoseUpgradeFailure, refusalError } from "./transport.js";
import type { GatewayTarget } from "./transport.js";

export interface TerminalClientOptions extends GatewayTarget {
  session: string;
  /**
   * The output bytes you already have: the gateway replays from this byte offset, then
   * streams live. Leave it out to see only new output (0 replays everything retained).
   * `"screen"` (PTY sessions): a `screen` event first, the session's screen as ANSI, then the
   * output from the byte it reflects on; a reconnect resumes from the next byte, as with a number.
   */
  since?: number | "screen";
  /** With `since: "screen"` or `lag`: the viewer's size, which screens are drawn for (the PTY's when absent). */
  screenSize?: { cols: number; rows: number };
  /**
   * `"screen"` (`?lag=screen`), for a human watching: once the viewer trails the output by more
   * than LAG_SCREEN_BYTES, a `screen` event with `skipped` (the bytes it skips, kept in the log)
   * instead of those bytes, then output from its offset. Without it every byte comes.
   */
  lag?: LagMode;
  /**
   * Ask for the session's control lease with the connection (`?control=`): `acquire` takes it
   * when free (else an `error` event CONTROL_HELD, and the client stays a viewer); `force`
   * takes it over. It is released when the connection closes and asked for again on reconnect
   * (without force: a lease someone took meanwhile is theirs).
   */
  control?: "acquire" | "force";
  /**
   * Sent with `control` (`?clientKey=`, 16–128 of A-Z a-z 0-9 _ -): control held when a
   * connection drops is kept for this key for `control.reconnectGraceMs`, and the reconnect
   * takes it back; without one, control ends with the connection (as ClientOptions.clientKey).
   */
  clientKey?: string;
  /**
   * How output travels (`?output=`): `binary` (default) as binary messages with the bytes as
   * the process wrote them; `json` as JSON text frames (UTF-8 text, base64 otherwise), for
   * gateways older than binary output.
   */
  output?: TerminalOutputMode;
  reconnect?: BackoffOptions;
  /** Default {@link CONNECT_TIMEOUT_MS}: no frame at all within this long counts as a failed attempt. */
  connectTimeoutMs?: number;
  /** Default {@link PING_INTERVAL_MS}. */
  pingIntervalMs?: number;
  /**
   * Default {@link PONG_TIMEOUT_MS}. A connection that brings nothing (no output, no pong) for
   * the ping interval plus this long is taken for dead — a black-holed network, a gateway
   * host that vanished — and replaced, resuming at the next byte.
   */
  pongTimeoutMs?: number;
  httpTimeoutMs?: number;
  /**
   * Stops following, as `close()` does, except that `done` rejects with the signal's reason.
   * It covers the client's whole life, from connecting to the exit (as a `fetch` signal covers
   * reading the body); an already-aborted signal opens no connection.
   */
  signal?: AbortSignal | undefined;
}

/** Bytes of output, never delivered twice: `offset` is the session's byte offset of `bytes[0]`. */
export interface TerminalData {
  kind: "replay" | "stdout" | "stderr";
  bytes: Uint8Array;
  offset: number;
}

export interface TerminalExit {
  exitCode: number | null;
  signal: string | null;
  /**
   * `lost` when the session's process went without an exit status (the gateway died under it):
   * then `exitCode` and `signal` are null. Absent from gateways older than this field.
   */
  state?: "exited" | "lost";
}

/** The screen `since: "screen"` asked for: ANSI that redraws it, then output goes on from `offset`. */
export type TerminalScreen = SessionScreen;

export interface TerminalEvents {
  state: StateChange;
  /** The screen asked for with `since: "screen"` (before any `data`), or with `lag` one that skips output (`skipped`). */
  screen: TerminalScreen;
  connected: { mode: "pipe" | "pty"; sessionId: string; offset: number };
  data: TerminalData;
  exit: TerminalExit;
  /** Output between `from` and `to` is gone (retention dropped it while this viewer lagged). */
  gap: { from: number; to: number };
  /** An error frame from the gateway (e.g. CONTROL_HELD for stdin, HISTORY_TRIMMED). */
  error: SwitchboardError;
  /** Someone took control over (close 4001): the client reconnects as a viewer, without asking for control again. */
  "control-lost": { message: string };
}

/**
 * A client of `/ws/session/:id`, positions in bytes: output exactly once in order across reconnects
 * (`since` = the next byte needed), a silent link replaced (`pongTimeoutMs`), done at `exit`. Closed
 * with 4001 when another client takes control, it resumes as a viewer and does not fight back.
 * @example
 * const term = new TerminalClient({ url, token, session: id, since: 0, WebSocket });
 * term.on("data", ({ bytes }) => process.stdout.write(bytes)); // then: await term.done
 */
export class TerminalClient {
  readonly session: string;
  /** Resolves with the session's exit; rejects if the session cannot be followed (not found, bad token, closed first). */
  readonly done: Promise<TerminalExit>;
  private readonly options: TerminalClientOptions;
  private readonly emitter = new Emitter<TerminalEvents>();
  private readonly http: HttpClient;
  private readonly settleDone = handledDeferred<TerminalExit>();
  private readonly loop: ReconnectLoop;
  private readonly heartbeat: Heartbeat;
  private socket: SocketHandle | undefined;
  /** The gateway said it takes binary messages as input (`connected`'s `binary_input`). */
  private binaryInput = false;
  /**
   * With `lag`, from the gateway's `connected` on when it takes `taken` frames (`lag_taken`): the
   * output byte last told. The gateway counts what it sent past it as queued: without it, output
   * waiting in socket buffers keeps a person seconds behind (docs/protocol.md, `taken`).
   */
  private takenTold: number | undefined;
  private _offset: number | undefined;
  /** `since: "screen"` until the screen came. */
  private wantsScreen: boolean;
  private _mode: "pipe" | "pty" | undefined;
  private exited = false;
  private frameSeen = false;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly encoder = new TextEncoder();
  private control: "acquire" | "force" | undefined;
  private offAbort: () => void = noAbortListener;
  /** Aborted by `close()`: the HTTP probe of a failed upgrade must not keep a closed client's program running. */
  private readonly closing = new AbortController();

  constructor(options: TerminalClientOptions) {
    this.options = options;
    this.session = options.session;
    this.wantsScreen = options.since === "screen";
    this._offset = options.since === "screen" ? undefined : options.since;
    this.control = options.control;
    this.http = httpClientFor(options);
    this.loop = new ReconnectLoop(options.reconnect, (change) => this.emitter.emit("state", change));
    this.heartbeat = new Heartbeat({
      intervalMs: options.pingIntervalMs ?? PING_INTERVAL_MS,
      timeoutMs: options.pongTimeoutMs ?? PONG_TIMEOUT_MS,
      send: (text) => this.socket?.send(text),
      pingFrame: () => JSON.stringify({ type: "ping" } satisfies TerminalClientFrame),
    });
    this.done = this.settleDone.promise;
    const signal = options.signal;
    if (signal?.aborted) {
      this.abandon(abortReason(signal));
      return;
    }
    this.offAbort = onAbort(signal, (reason) => this.abandon(reason));
    this.open();
  }

  get state(): ConnectionState {
    return this.loop.state;
  }

  /** The next byte offset this client expects (undefined until the gateway said where output stands). */
  get offset(): number | undefined {
    return this._offset;
  }

  /** `pty` or `pipe`, once connected. */
  get mode(): "pipe" | "pty" | undefined {
    return this._mode;
  }

  on<K extends keyof TerminalEvents>(name: K, listener: (value: TerminalEvents[K]) => void): () => void {
    return this.emitter.on(name, listener);
  }

  /**
   * Sends text to the process's stdin (control rules apply). False when not connected, or when
   * it is more than the gateway takes in one message (`LIMITS.INPUT_BYTES`): then nothing is
   * sent and an `error` event says PAYLOAD_TOO_LARGE.
   */
  write(data: string): boolean {
    const refused = inputError(data);
    if (refused) {
      this.emitter.emit("error", refused);
      return false;
    }
    // As a binary message where the gateway takes one: no JSON on either side (docs/protocol.md, "Binary input").
    if (this.binaryInput) return this.socket?.send(this.encoder.encode(data)) ?? false;
    return this.send({ type: "stdin", data });
  }

  /** Ends the process's input, after anything written before: a pipe's stdin is closed, a PTY gets ^D. */
  endInput(): boolean {
    return this.send({ type: "stdin", data: "", eof: true });
  }

  resize(cols: number, rows: number): boolean {
    return this.send({ type: "resize", cols, rows });
  }

  signal(signal: SignalName): boolean {
    return this.send({ type: "signal", signal });
  }

  /** Stops following. `done` rejects with CLOSED unless the session already exited. Idempotent. */
  close(): void {
    this.finish(new ConnectionError("CLOSED", "the terminal client was closed"));
  }

  /** The signal aborted: ends like `close()`, `done` rejecting with the signal's reason. */
  private abandon(reason: unknown): void {
    this.finish(reason instanceof Error ? reason : undefined, reason);
  }

  private send(frame: TerminalClientFrame): boolean {
    return this.socket?.send(JSON.stringify(frame)) ?? false;
  }

  private open(): void {
    const query = new URLSearchParams();
    if (this._offset !== undefined) query.set("since", String(this._offset));
    else if (this.wantsScreen) {
      query.set("since", "screen");
      const size = this.options.screenSize;
      if (size !== undefined) {
        query.set("cols", String(size.cols));
        query.set("rows", String(size.rows));
      }
    }
    if (this.options.lag !== undefined) {
      query.set("lag", this.options.lag);
      const size = this.options.screenSize;
      if (size !== undefined && !query.has("cols")) {
        query.set("cols", String(size.cols));
        query.set("rows", String(size.rows));
      }
    }
    if (this.control !== undefined) {
      query.set("control", this.control);
      if (this.options.clientKey !== undefined) query.set("clientKey", this.options.clientKey);
    }
    const output = this.options.output ?? "binary";
    if (output !== "json") query.set("output", output);
    const qs = query.toString();
    const path = `/ws/session/${encodeURIComponent(this.session)}${qs ? `?${qs}` : ""}`;
    this.frameSeen = false;
    this.takenTold = undefined;
    const handle = new SocketHandle(this.options, path, {
      onOpen: () => {
        // Wait for the first frame: replay or connected.
      },
      onMessage: (text) => this.onFrame(handle, text),
      onBinary: (bytes) => this.onBinaryFrame(handle, bytes),
      onClose: (code, reason) => this.onClosed(handle, code, reason),
    });
    this.socket = handle;
    const timeout = this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      if (handle !== this.socket) return;
      handle.close(1000, "", true);
      this.onClosed(handle, 0, `no frame within ${timeout} ms`);
    }, timeout);
  }

  /**
   * A frame arrived: the connection is alive. The first one of a connection means it was
   * accepted: stop the connect timeout and start pinging.
   */
  private sawFrame(handle: SocketHandle): void {
    this.heartbeat.received();
    if (this.frameSeen) return;
    this.frameSeen = true;
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.heartbeat.start(
      () => handle === this.socket,
      (error) => {
        // Nothing came back: the peer cannot take a close frame either, so cut the socket.
        handle.close(1000, "", true);
        this.onClosed(handle, 1006, error.message);
      },
    );
  }

  private onBinaryFrame(handle: SocketHandle, frame: Uint8Array): void {
    if (handle !== this.socket) return;
    this.sawFrame(handle);
    const output = readBinaryOutput(frame);
    if (output === null) {
      this.finish(new ConnectionError("BAD_RESPONSE", "the gateway sent a binary frame that is not output"));
      return;
    }
    this.accept(output.kind, output.offset, output.bytes);
  }

  private onFrame(handle: SocketHandle, text: string): void {
    if (handle !== this.socket) return;
    this.sawFrame(handle);
    let frame: TerminalServerFrame;
    try {
      frame = JSON.parse(text) as TerminalServerFrame;
    } catch (error) {
      this.finish(new ConnectionError("BAD_RESPONSE", "the gateway sent a frame that is not JSON", { cause: error }));
      return;
    }
    switch (frame.type) {
      case "screen":
        if (frame.skipped !== undefined) {
          // `lag=screen`: the viewer fell behind; output goes on from the screen's offset.
          this._offset = frame.offset;
          this.emitter.emit("screen", screenOf(frame));
          if (this.takenTold !== undefined) this.tellTaken(frame.offset);
          return;
        }
        if (!this.wantsScreen) return;
        this.wantsScreen = false;
        this._offset = frame.offset;
        this.emitter.emit("screen", screenOf(frame));
        return;
      case "replay": {
        const bytes = decodeOutputData(frame.data, frame.enc);
        // A replay frame's offset is where it ends (the next byte).
        this.accept("replay", frame.offset - bytes.length, bytes);
        return;
      }
      case "connected":
        // `force` took control over once, as asked. A reconnect asks for it back without force:
        // whoever took the lease while this client was away (after its lease ended with the
        // connection) keeps it, and this client stays a viewer (CONTROL_HELD).
        if (this.control === "force") this.control = "acquire";
        this._mode = frame.mode;
        this.binaryInput = frame.binary_input === true;
        if (this._offset === undefined) this._offset = frame.offset;
        if (this.options.lag !== undefined && frame.lag_taken === true) this.tellTaken(this._offset);
        this.loop.opened();
        this.emitter.emit("connected", { mode: frame.mode, sessionId: frame.session_id, offset: frame.offset });
        return;
      case "stdout":
      case "stderr":
        this.accept(
          frame.type,
          frame.offset,
          frame.enc === "base64" ? decodeOutputData(frame.data, "base64") : this.encoder.encode(frame.data),
        );
        return;
      case "exit": {
        if (this.exited) return;
        this.exited = true;
        const exit: TerminalExit = {
          exitCode: frame.exit_code,
          signal: frame.signal,
          ...(frame.state !== undefined ? { state: frame.state } : {}),
        };
        this.emitter.emit("exit", exit);
        this.settleDone.resolve(exit);
        this.finish(undefined);
        return;
      }
      case "error": {
        const { type: _type, ...body } = frame;
        this.emitter.emit("error", errorFromWire(body));
        return;
      }
      case "pong":
        this.heartbeat.pong();
        return;
      default:
        // A newer gateway's frame: ignore it.
        return;
    }
  }

  private accept(kind: TerminalData["kind"], start: number, bytes: Uint8Array): void {
    if (this._offset === undefined) this._offset = start;
    const end = start + bytes.length;
    if (end <= this._offset) return;
    if (start > this._offset) this.emitter.emit("gap", { from: this._offset, to: start });
    const fresh = start < this._offset ? bytes.subarray(this._offset - start) : bytes;
    const offset = Math.max(start, this._offset);
    this._offset = end;
    if (fresh.length > 0) this.emitter.emit("data", { kind, bytes: fresh, offset });
    const told = this.takenTold;
    if (told !== undefined && end - told >= LAG_TAKEN_EVERY_BYTES) this.tellTaken(end);
  }

  /** Tells the gateway this client took the output up to byte `offset` (`lag` only). */
  private tellTaken(offset: number): void {
    this.takenTold = offset;
    this.send({ type: "taken", offset });
  }

  private onClosed(handle: SocketHandle, code: number, reason: string): void {
    if (handle !== this.socket) return;
    this.socket = undefined;
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.heartbeat.stop();
    this.heartbeat.disconnected(new ConnectionError("DISCONNECTED", "the connection dropped"));
    if (this.loop.state === "closed" || this.exited) return;
    const error = closedError(code, reason);
    if (code === CLOSE_CODES.CONTROL_LOST) {
      this.control = undefined;
      this.emitter.emit("control-lost", { message: reason || "control was taken over by another client" });
      this.scheduleReconnect(error);
      return;
    }
    if (code === CLOSE_CODES.SESSION_GONE) {
      this.finish(new SwitchboardError("SESSION_NOT_FOUND", `session ${this.session} is gone`));
      return;
    }
    if (this.frameSeen) {
      this.scheduleReconnect(error);
      return;
    }
    // The gateway's refusal says why (`ws` hands it over). A refusal for the caller's own
    // fault (4xx: bad since, token, session, a connection limit) is final: retrying it would
    // only show "reconnecting" and then a vaguer error. Without it (browsers), probe over HTTP.
    const refused = handle.refusal && refusalError(handle.refusal);
    if (refused !== undefined && refused.status >= 400 && refused.status < 500) {
      this.finish(refused);
      return;
    }
    void (
      refused !== undefined
        ? Promise.resolve(refused)
        : diagnoseUpgradeFailure(
            () => this.http.getSession(this.session, { signal: this.closing.signal }),
            `cannot open /ws/session/${this.session}`,
            code === 0 ? reason : undefined,
          )
    ).then((why) => {
      if (this.loop.state === "closed") return;
      if (this.loop.givesUp(why, ["UNAUTHORIZED", "FORBIDDEN", "SESSION_NOT_FOUND", "BAD_REQUEST"])) this.finish(why);
      else this.scheduleReconnect(why);
    });
  }

  private scheduleReconnect(error: Error): void {
    this.loop.schedule(
      error,
      () => this.open(),
      (why) => this.finish(why),
    );
  }

  /**
   * Ends the client: `done` rejects with `rejection` (default `error`) unless the session
   * exited. An abort's reason need not be an Error, so the two can differ.
   */
  private finish(error: Error | undefined, rejection: unknown = error): void {
    if (this.loop.state === "closed") return;
    this.offAbort();
    this.closing.abort();
    this.loop.cancel();
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.heartbeat.stop();
    this.heartbeat.close(error ?? new ConnectionError("CLOSED", "the terminal client was closed"));
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(1000, "client closed");
    if (rejection !== undefined) this.settleDone.reject(rejection);
    this.loop.setState("closed", error ? { error } : {});
    this.emitter.clear();
  }
}
