import type { SwitchboardError } from "../protocol/index.js";
import { ConnectionError, errorFromWire } from "./errors.js";

/**
 * The part of a WebSocket the SDK uses. Both the browser's `WebSocket` and the `ws`
 * package's class satisfy it, so either can be passed as the `WebSocket` option.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  /** Set to `arraybuffer`, so that binary messages arrive the same way in browsers and in Node. */
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: "open" | "error", listener: (event: unknown) => void): void;
}

/** A WebSocket class. The third argument is understood by `ws` (headers) and ignored by browsers. */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: { headers?: Record<string, string> },
) => WebSocketLike;

/**
 * How the SDK proves who it is on WebSocket upgrades: `header` (`Authorization: Bearer`, Node
 * only), `subprotocol` (`switchboard.bearer.<token>`, everywhere), or `cookie` (the browser's
 * cookie from `POST /v1/login`, plus subprotocol `switchboard.cookie-key.<key>`). HTTP uses
 * `Authorization` when there is a token, else `X-Switchboard-Cookie-Key`.
 */
export type AuthMode = "header" | "subprotocol" | "cookie";

/** The subprotocol prefix the gateway accepts a bearer token in (src/server/identity/auth.ts). */
export const BEARER_SUBPROTOCOL_PREFIX = "switchboard.bearer.";
/** The subprotocol prefix the gateway accepts a browser sign-in's cookie key in. */
export const COOKIE_KEY_SUBPROTOCOL_PREFIX = "switchboard.cookie-key.";
/** The header the gateway accepts a browser sign-in's cookie key in. */
export const COOKIE_KEY_HEADER = "X-Switchboard-Cookie-Key";
/** The subprotocol the server selects; offered next to the bearer one. */
export const SWITCHBOARD_SUBPROTOCOL = "switchboard.v1";

/** `readyState` of an open socket (the same in every implementation). */
const OPEN = 1;
/**
 * How long a socket closed by its owner waits for the gateway's answer to the close frame
 * before it is cut. `ws` waits 30 s, and its socket and timer keep Node running meanwhile: a
 * program that closed its client while the network was black-holed hung for 30 s.
 */
export const CLOSE_HANDSHAKE_TIMEOUT_MS = 1_000;
/** The most of a refused upgrade's body that is read: the gateway's JSON errors are far smaller. */
export const REFUSAL_BODY_MAX_BYTES = 64 * 1024;

/**
 * The HTTP answer given instead of an upgrade. Only the `ws` package exposes it (its
 * `unexpected-response` event); browsers say nothing but "closed".
 */
export interface UpgradeRefusal {
  status: number;
  body: string;
}

/** The part of `ws`'s `http.IncomingMessage` that a refusal is read from (no `node:` types here). */
interface RefusalResponse {
  readonly statusCode?: number | undefined;
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "end" | "close", listener: () => void): unknown;
  on(event: "error", listener: (error: unknown) => void): unknown;
}

/** Where and how to reach a gateway: shared by the multiplexed client, the terminal client and HTTP. */
export interface GatewayTarget {
  /** The gateway's base URL, e.g. `http://127.0.0.1:7317` (a `ws:` URL works too). */
  url: string;
  /** The bearer token. Leave it out in a browser that logged in with `POST /v1/login` (cookie). */
  token?: string | undefined;
  /**
   * In a browser signed in with `POST /v1/login`, without a token: the `cookieKey` its answer
   * gave. The gateway takes the cookie only with it (another server on the same host name is
   * sent the cookie too, never the key).
   */
  cookieKey?: string | undefined;
  /** Default: `subprotocol` with a token, `cookie` without (the Node entry defaults to `header`). */
  auth?: AuthMode | undefined;
  /** The WebSocket class; default the global one (browsers, Node ≥ 22). */
  WebSocket?: WebSocketConstructor | undefined;
  /** Default the global `fetch`. */
  fetch?: typeof fetch | undefined;
}

export function resolveAuth(target: GatewayTarget): AuthMode {
  if (target.token === undefined || target.token === "") return "cookie";
  return target.auth ?? "subprotocol";
}

/** `base` + `path` with the scheme switched to `http(s)` or `ws(s)`; keeps a path prefix of `base`. */
export function endpointUrl(base: string, path: string, scheme: "http" | "ws"): string {
  const url = new URL(base);
  const secure = url.protocol === "https:" || url.protocol === "wss:";
  if (!["http:", "https:", "ws:", "wss:"].includes(url.protocol)) {
    throw new TypeError(`the gateway URL must be http(s) or ws(s), not ${url.protocol}`);
  }
  // fetch() refuses such URLs anyway; said here without repeating them (a password).
  if (url.username !== "" || url.password !== "") {
    throw new TypeError(
      "the gateway URL must not carry a user name or password (user:pass@); pass the token as `token`",
    );
  }
  url.protocol = scheme === "ws" ? (secure ? "wss:" : "ws:") : secure ? "https:" : "http:";
  const prefix = url.pathname.replace(/\/+$/, "");
  const [pathname, query] = path.split("?", 2) as [string, string | undefined];
  url.pathname = prefix + pathname;
  url.search = query !== undefined ? `?${query}` : "";
  url.hash = "";
  return url.toString();
}

export function resolveWebSocket(given: WebSocketConstructor | undefined): WebSocketConstructor {
  const ctor = given ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!ctor) {
    throw new TypeError(
      "no WebSocket class: pass the WebSocket option, or in Node 20 import the SDK from 'switchboard-client/node', which uses the ws package",
    );
  }
  return ctor;
}

export interface SocketHandlers {
  onOpen(): void;
  onMessage(text: string): void;
  /** Binary messages; without this handler a binary message is a protocol error (close 1002). */
  onBinary?(bytes: Uint8Array): void;
  onClose(code: number, reason: string): void;
}

/**
 * One WebSocket and its listeners. The listeners stay attached for the socket's life (the
 * `ws` package throws on an `error` event nobody listens to) but fall silent once the handle
 * is closed, so a socket being torn down can never call back into its owner's new state.
 */
export class SocketHandle {
  private readonly ws: WebSocketLike;
  private silenced = false;
  private _refusal: UpgradeRefusal | undefined;

  constructor(target: GatewayTarget, path: string, handlers: SocketHandlers) {
    const WS = resolveWebSocket(target.WebSocket);
    const auth = resolveAuth(target);
    const url = endpointUrl(target.url, path, "ws");
    if (auth === "header") this.ws = new WS(url, [], { headers: { Authorization: `Bearer ${target.token}` } });
    // The server selects `switchboard.v1`, so the token is never echoed back in the handshake.
    else if (auth === "subprotocol")
      this.ws = new WS(url, [SWITCHBOARD_SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${target.token}`]);
    else if (target.cookieKey !== undefined && target.cookieKey !== "")
      this.ws = new WS(url, [SWITCHBOARD_SUBPROTOCOL, `${COOKIE_KEY_SUBPROTOCOL_PREFIX}${target.cookieKey}`]);
    else this.ws = new WS(url);
    this.ws.binaryType = "arraybuffer";
    const nodeSocket = this.ws as {
      on?: (event: "unexpected-response", listener: (req: unknown, res: RefusalResponse) => void) => unknown;
    };
    if (typeof nodeSocket.on === "function")
      nodeSocket.on.call(this.ws, "unexpected-response", (_req, res) => this.readRefusal(res));
    this.ws.addEventListener("open", () => {
      if (!this.silenced) handlers.onOpen();
    });
    this.ws.addEventListener("message", (event) => {
      if (this.silenced) return;
      if (typeof event.data === "string") handlers.onMessage(event.data);
      else if (handlers.onBinary && event.data instanceof ArrayBuffer) handlers.onBinary(new Uint8Array(event.data));
      // Only JSON text frames, unless the owner asked for binary output.
      else this.dropAndReport(handlers, "the gateway sent a binary frame");
    });
    this.ws.addEventListener("error", () => {
      // Every error is followed by a close event, which is where the owner learns of it.
    });
    this.ws.addEventListener("close", (event) => {
      if (this.silenced) return;
      this.silenced = true;
      handlers.onClose(event.code, event.reason);
    });
  }

  /** What the server answered instead of upgrading, once read (`ws` only); the close follows. */
  get refusal(): UpgradeRefusal | undefined {
    return this._refusal;
  }

  get open(): boolean {
    return !this.silenced && this.ws.readyState === OPEN;
  }

  /** Sends a text frame, or a binary one of `bytes`; false when the socket is not open. */
  send(data: string | Uint8Array): boolean {
    if (!this.open) return false;
    this.ws.send(data);
    return true;
  }

  /**
   * Closes without calling back. `abort` cuts the connection at once where the
   * implementation allows (`ws`'s `terminate()`), for peers that stopped answering.
   */
  close(code = 1000, reason = "", abort = false): void {
    if (this.silenced && !abort) return;
    this.silenced = true;
    const terminate = (this.ws as { terminate?: () => void }).terminate;
    if (abort && typeof terminate === "function") {
      terminate.call(this.ws);
      return;
    }
    try {
      this.ws.close(code, reason);
    } catch (error) {
      // Browsers throw InvalidAccessError on codes they reserve; the socket is abandoned either way.
      if (!(error instanceof Error)) throw error;
      this.ws.close();
    }
    // Browsers keep no program running; where the socket can be cut (`ws`), bound the wait.
    if (typeof terminate === "function") {
      const timer = setTimeout(() => terminate.call(this.ws), CLOSE_HANDSHAKE_TIMEOUT_MS);
      this.ws.addEventListener("close", () => clearTimeout(timer));
    }
  }

  /**
   * With a listener for `unexpected-response`, `ws` leaves the handshake to it: read the body
   * (bounded), keep it, then abort the handshake, which reports the close as usual.
   */
  private readRefusal(res: RefusalResponse): void {
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      const body = new Uint8Array(bytes);
      let at = 0;
      for (const chunk of chunks) {
        body.set(chunk, at);
        at += chunk.length;
      }
      this._refusal = { status: res.statusCode ?? 0, body: new TextDecoder().decode(body) };
      this.ws.close();
    };
    res.on("data", (chunk) => {
      const room = REFUSAL_BODY_MAX_BYTES - bytes;
      chunks.push(chunk.subarray(0, room));
      bytes += Math.min(chunk.length, room);
      if (bytes >= REFUSAL_BODY_MAX_BYTES) settle();
    });
    res.on("end", settle);
    res.on("close", settle);
    // A body cut short is still a refusal: what arrived is kept, and the close follows.
    res.on("error", settle);
  }

  private dropAndReport(handlers: SocketHandlers, reason: string): void {
    this.close(1002, reason);
    handlers.onClose(1002, reason);
  }
}

/**
 * The gateway's own error in a refused upgrade (`{error: {code, message}}`), or undefined when
 * the body is something else (a proxy's page): then only a probe can tell what is wrong.
 */
export function refusalError(refusal: UpgradeRefusal): SwitchboardError | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(refusal.body);
  } catch (error) {
    // Not JSON: not the gateway's answer.
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
  const wire = (parsed as { error?: unknown } | null)?.error;
  if (typeof wire !== "object" || wire === null) return undefined;
  return errorFromWire(wire as Record<string, unknown>);
}

/**
 * What a failed probe says about a failed upgrade: the gateway's error, or that it cannot be
 * reached. `timedOut` (the timeout's own words) when the attempt ended because nothing came back
 * in time: then a probe that gets through does not make it a refusal.
 */
export async function diagnoseUpgradeFailure(
  probe: () => Promise<unknown>,
  what: string,
  timedOut?: string,
): Promise<Error> {
  try {
    await probe();
  } catch (error) {
    if (error instanceof Error) return error;
    return new ConnectionError("UNREACHABLE", `${what}: ${String(error)}`);
  }
  // Seen through a proxy that stalled: the upgrade got no answer, the probe a moment later did.
  if (timedOut !== undefined)
    return new ConnectionError(
      "TIMEOUT",
      `${what}: ${timedOut}, though the gateway answers HTTP (a stalled or slow network, or a proxy that holds WebSocket upgrades)`,
    );
  return new ConnectionError(
    "BAD_RESPONSE",
    `${what}: the gateway answers HTTP but refused the WebSocket upgrade (a connection limit, or a proxy without WebSocket support)`,
  );
}
