import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { AppendMark, SessionLog } from "../../log/session-log.js";
import { SwitchboardError } from "../../protocol/index.js";
import { isPublicError, InternalError } from "../../protocol/errors.js";
import type { AnonymousConnectionGate } from "./anonymous-gate.js";
import { answerClientErrors, graceIdleConnections } from "./connection-close.js";
import { signInOf } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import type { GatewayCore, RequestContext } from "../context.js";
import type { RequestGuard } from "./guard.js";
import { HTTP_HOLDER_PREFIX, LOG_PENDING_HEADER } from "./http-constants.js";
import { holdAnswers, rejectUpgrade, requestUrl, sendError, sendJson, toSwitchboardError } from "./http.js";
import type { Router } from "./router.js";
import { checkShareRoute } from "../identity/share-access.js";
import { login, serveStatic } from "../routes/misc.js";
import { pair } from "../routes/devices.js";
import { answerPushAction } from "../routes/push.js";
import { isPublicHookPath, publicHook } from "../routes/plugins.js";
import type { MultiplexEndpoint } from "../ws/ws-multiplex.js";
import type { TerminalEndpoint } from "../ws/ws-terminal.js";

/** Time for a request's headers to arrive. */
export const HEADERS_TIMEOUT_MS = 30_000;
/** Time for a whole request (headers and body, at most `limits.bodyBytes`) to arrive: 408 after. */
export const REQUEST_TIMEOUT_MS = 60_000;
/**
 * How often Node checks those timeouts while a connection is open (its default, 30 s, let a
 * stalled request live up to twice as long); never while none is (see checkTimeoutsWhileConnected).
 */
const TIMEOUT_CHECK_INTERVAL_MS = 5_000;

/** What the gateway's HTTP server hands connections, requests and upgrades to. */
export interface FrontDoor {
  core: GatewayCore;
  guard: RequestGuard;
  router: Router;
  anonymous: AnonymousConnectionGate;
  multiplex: MultiplexEndpoint;
  terminal: TerminalEndpoint;
}

/**
 * The gateway's HTTP server: connections past the anonymous cap are refused on arrival, requests
 * go through the guard to the routes (or the UI's files), upgrades to `/v1/ws` or `/ws/session`.
 */
export function createHttpServer(door: FrontDoor, tls?: { cert: string | Buffer; key: string | Buffer }): Server {
  const { core, guard, anonymous } = door;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    // A refused connection has had its answer; its requests are left unanswered until it closes.
    if (anonymous.refused(req.socket)) return;
    handleRequest(door, req, res).catch((error: unknown) => requestFailed(core, req, res, error));
  };
  const options = { connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS };
  // HTTPS: Node's own TLS, HTTP/1.1 (WebSockets upgrade as over HTTP).
  const server: Server = tls
    ? createHttpsServer({ ...options, cert: tls.cert, key: tls.key }, onRequest)
    : createServer(options, onRequest);
  // Before Node's own listener: a connection over the cap is answered at once, before its request.
  // Over TLS, the socket requests carry is the TLS one, so it is admitted once its handshake is done.
  server.prependListener(tls ? "secureConnection" : "connection", (socket: Socket) => {
    if (!anonymous.admit(socket)) anonymous.refuse(socket);
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (anonymous.refused(req.socket)) return;
    const refuse = (error: unknown) => {
      const refusal = toSwitchboardError(error);
      // Counted, not logged: a client retrying against a limit would flood the log (HTTP refusals are counted the same way).
      core.metrics.wsRefused.inc({ code: refusal.code });
      rejectUpgrade(socket, refusal);
    };
    try {
      guard.checkHost(req);
      guard.checkOrigin(req);
      const path = requestUrl(req.url).pathname;
      if (path === "/v1/ws") {
        const identity = guard.authenticate(req);
        door.multiplex.handleUpgrade(req, socket, head, identity);
      } else if (path.startsWith("/ws/session/")) {
        // A resume on a remote session's copy may wait for the copy first (see TerminalEndpoint).
        door.terminal.handleUpgrade(req, socket, head, () => guard.authenticate(req))?.catch(refuse);
      } else {
        throw new SwitchboardError("NOT_FOUND", "no WebSocket endpoint here; use /v1/ws or /ws/session/:id");
      }
    } catch (error) {
      refuse(error);
    }
  });
  // A request (headers and body) must arrive within these; a client trickling bytes would
  // otherwise hold a socket forever without a token. They do not limit what follows a complete
  // request: SSE responses and upgraded WebSockets live on.
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  graceIdleConnections(server);
  answerClientErrors(server);
  checkTimeoutsWhileConnected(server, TIMEOUT_CHECK_INTERVAL_MS);
  return server;
}

/** Listens on `host:port`; a failure is rejected in words a user can act on. */
export async function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolveListen, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(listenError(error, host, port));
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolveListen();
    });
  });
  return server.address() as AddressInfo;
}

async function handleRequest(door: FrontDoor, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { core, guard, router } = door;
  const started = performance.now();
  let url: URL;
  try {
    url = requestUrl(req.url);
  } catch {
    // An unparsable request target cannot name a route.
    sendError(res, new SwitchboardError("BAD_REQUEST", "the request target is not a valid path"));
    return;
  }
  let identityName: string | undefined;
  try {
    if (url.pathname === "/healthz") {
      // A probe reads it; answered without credentials, so GET (and HEAD) only, as routes answer a wrong method.
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("Allow", "GET, HEAD");
        throw new SwitchboardError("METHOD_NOT_ALLOWED", `${req.method} is not allowed here; use GET`);
      }
      // Degraded while the log cannot write (a full disk, Redis unreachable): reads are served, new
      // work is refused. The code only: the storage's message may name internal addresses.
      const failure = core.events.store.writeFailure;
      sendJson(
        res,
        200,
        failure
          ? {
              ok: true,
              degraded: failure.code ?? "LOG_WRITE_FAILED",
              reason: "the event log cannot write; new work is refused until it can (see the gateway log)",
            }
          : { ok: true },
      );
      return;
    }
    guard.checkHost(req);
    guard.checkOrigin(req);
    if (url.pathname === "/v1/login") {
      // Outside the router (it takes no bearer token), answered as the router answers a wrong method.
      if (req.method !== "POST") {
        res.setHeader("Allow", "POST");
        throw new SwitchboardError("METHOD_NOT_ALLOWED", `${req.method} is not allowed here; use POST`);
      }
      await login(core, req, res, guard);
      return;
    }
    if (url.pathname === "/v1/pair") {
      // Outside the router too: the pairing code is the credential.
      if (req.method !== "POST") {
        res.setHeader("Allow", "POST");
        throw new SwitchboardError("METHOD_NOT_ALLOWED", `${req.method} is not allowed here; use POST`);
      }
      await pair(core, req, res, guard);
      return;
    }
    if (url.pathname === "/v1/push/answer") {
      // Outside the router too: the notification's one-time action token is the credential.
      if (req.method !== "POST") {
        res.setHeader("Allow", "POST");
        throw new SwitchboardError("METHOD_NOT_ALLOWED", `${req.method} is not allowed here; use POST`);
      }
      await answerPushAction(core, req, res, guard);
      return;
    }
    if (isPublicHookPath(url.pathname)) {
      // Webhooks cannot send a token: the plugin checks them itself (its config opted in).
      await publicHook(core, req, res, url);
      return;
    }
    if (
      (req.method === "GET" || req.method === "HEAD") &&
      !url.pathname.startsWith("/v1/") &&
      url.pathname !== "/metrics"
    ) {
      if (serveStatic(url.pathname, req.headers["accept-encoding"], res)) return;
    }
    const match = router.match(req.method ?? "GET", url.pathname);
    // A plain request to a WebSocket endpoint (it is upgraded before it gets here): say what it is.
    if (match.kind === "not-found" && (url.pathname === "/v1/ws" || url.pathname.startsWith("/ws/session/")))
      throw new SwitchboardError(
        "BAD_REQUEST",
        `${url.pathname.slice(0, 200)} is a WebSocket endpoint: open it with a WebSocket client (a GET with Upgrade: websocket), see docs/protocol.md`,
      );
    if (match.kind === "not-found")
      throw new SwitchboardError("NOT_FOUND", `no route ${req.method} ${url.pathname.slice(0, 200)}`);
    const identity = guard.authenticate(req);
    identityName = identity.name;
    // A share link opens its one session: every other route is refused before anything is looked up.
    if (identity.share !== undefined)
      checkShareRoute(
        identity.share,
        match.kind === "found" ? match.route : `${req.method} ?`,
        match.kind === "found" ? match.params : {},
      );
    endOnRevoke(core, req, res, identity);
    const named = match.kind === "found" && url.pathname.startsWith("/v1/sessions/") ? match.params["id"] : undefined;
    if (named !== undefined && core.discover !== undefined && core.sessions.get(named) === undefined)
      await core.discover(named);
    if (match.kind === "method-not-allowed") {
      res.setHeader("Allow", match.allow.join(", "));
      throw new SwitchboardError(
        "METHOD_NOT_ALLOWED",
        `${req.method} is not allowed here; use ${match.allow.join(" or ")}`,
      );
    }
    // A stopping gateway changes nothing more: retried, the request reaches the next one.
    if (req.method !== "GET" && req.method !== "HEAD") core.sessions.assertNotStopping();
    const ctx: RequestContext = {
      req,
      res,
      url,
      params: match.params,
      identity,
      holderKey: `${HTTP_HOLDER_PREFIX}${identity.principal}`,
    };
    // Read-your-writes: a request that may append answers once its events are published (durable).
    // While the disk refuses writes, only new work is refused (LOG_UNAVAILABLE); steering is
    // applied and its events wait in memory, so its answer says that instead of waiting for it.
    const appended = new Map<SessionLog, AppendMark>();
    if (req.method !== "GET" && req.method !== "HEAD")
      holdAnswers(res, () =>
        core.events
          .publishedOrFailing(appended)
          ?.then((failure) =>
            failure === undefined ? undefined : { [LOG_PENDING_HEADER]: failure.code ?? "write-failed" },
          ),
      );
    await core.events.tracking(appended, () => match.handler(ctx));
  } catch (error) {
    if (!isPublicError(error) && req.destroyed && !req.complete) {
      // The client went away (or was timed out) before its body arrived: nobody to answer, nothing broken.
      core.logger.debug({ path: url.pathname }, "request aborted by the client");
      res.destroy();
      return;
    }
    const e = toSwitchboardError(error);
    if (e.code === "INTERNAL") core.logger.error({ err: error, path: url.pathname }, "request failed");
    // An answer already under way (a stream) cannot become an error: it is cut.
    if (res.headersSent) res.destroy();
    else sendError(res, e);
  } finally {
    core.metrics.httpRequests.inc({ status: `${Math.floor(res.statusCode / 100)}xx` });
    core.logger.debug(
      {
        method: req.method,
        path: url.pathname,
        status: res.statusCode,
        ms: +(performance.now() - started).toFixed(2),
        who: identityName,
      },
      "request",
    );
  }
}

/**
 * Ends the request when its identity or sign-in is revoked (a device unpaired, a token removed
 * by a reload, a logout), whatever it is doing: a transcript download, an events page, an answer
 * that waits. A route that ends its own answer on revocation (the event stream, which ends it
 * cleanly so that EventSource reconnects and is refused) does it first; whatever is still open
 * on the next turn is cut. test/security/sign-out-ends-all.test.ts.
 */
function endOnRevoke(core: GatewayCore, req: IncomingMessage, res: ServerResponse, identity: Identity): void {
  const untrack = core.connections.track({ identity, signIn: signInOf(req) }, () =>
    setImmediate(() => {
      if (!res.writableEnded) res.destroy();
    }),
  );
  res.once("close", untrack);
}

/**
 * What escaped a request's own error handling (an answer that failed after its headers were
 * sent, a failing log line): the request ends — 500 INTERNAL when nothing was sent yet, else its
 * connection is cut — and the error is logged with the request's socket; it never reaches the
 * process, where an unhandled rejection ends the gateway.
 */
function requestFailed(core: GatewayCore, req: IncomingMessage, res: ServerResponse, error: unknown): void {
  const where = {
    method: req.method,
    // The path only: a query may carry a cookie key.
    path: req.url?.split("?", 1)[0]?.slice(0, 200),
    peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
  };
  try {
    core.logger.error({ err: error, ...where }, "a request failed outside its error handling; it was ended");
  } catch {
    // The logger itself failed (the error cannot be serialized): the request is still ended below.
  }
  if (!res.headersSent && !res.destroyed) {
    try {
      sendError(res, new SwitchboardError("INTERNAL", "internal error; the gateway log has details"));
      return;
    } catch {
      // Answering failed as well: cut the connection instead.
    }
  }
  res.destroy();
}

/** A listen failure in words a user can act on. */
function listenError(error: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  if (error.code === "EADDRINUSE")
    return new InternalError(
      `${where} is in use (another gateway?): stop what listens there, or choose another port with --port or SWITCHBOARD_PORT (0 picks a free one)`,
    );
  if (error.code === "EADDRNOTAVAIL")
    return new InternalError(
      `${host} is not an address of this machine: choose another with --host or SWITCHBOARD_HOST`,
    );
  if (error.code === "EACCES")
    return new InternalError(
      `not allowed to listen on ${where}: ports below 1024 need privileges; choose another with --port`,
    );
  if (error.code === "ENOTFOUND" || error.code === "EAI_AGAIN")
    return new InternalError(
      `${host} is not a name this machine can resolve (${error.code}): give an address (127.0.0.1, 0.0.0.0, ::1) or a host name that resolves, with --host or SWITCHBOARD_HOST`,
    );
  return error;
}

/** Node's name for the interval that enforces `headersTimeout` and `requestTimeout` (Node 18–24). */
const CHECKING_INTERVAL = "http.server.connectionsCheckingInterval";

/**
 * Runs Node's check of the request timeouts (408 to a client that trickles its request) only
 * while the server has a connection: Node runs it on an interval from `listen` on, which woke an
 * idle gateway every `connectionsCheckingInterval` (docs/benchmarks.md, "Idle cluster node").
 * A Node whose server keeps that interval under another name is left as it is.
 */
export function checkTimeoutsWhileConnected(server: Server, everyMs: number): void {
  server.once("listening", () => {
    // Node's own "listening" listener, added when the server was made, has started the interval.
    const record = server as unknown as Record<symbol, NodeJS.Timeout | undefined>;
    const key = Object.getOwnPropertySymbols(server).find((s) => s.description === CHECKING_INTERVAL);
    const started = key === undefined ? undefined : record[key];
    const check = (started as unknown as { _onTimeout?: unknown } | undefined)?._onTimeout;
    if (key === undefined || started === undefined || typeof check !== "function") return;
    clearInterval(started);
    record[key] = undefined;
    let open = 0;
    server.on("connection", (socket: Socket) => {
      // `server.close()` clears the interval under Node's name: it is kept there.
      if (open++ === 0) record[key] = setInterval(check as () => void, everyMs).unref();
      socket.once("close", () => {
        if (--open === 0) {
          clearInterval(record[key]);
          record[key] = undefined;
        }
      });
    });
  });
}
