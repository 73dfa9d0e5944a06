import { STATUS_CODES } from "node:http";
import type { IncomingMessage, Server } from "node:http";
import type { Socket } from "node:net";

/** What idle keep-alive connections are told (`Keep-Alive: timeout=5`): clients close theirs before. */
export const KEEP_ALIVE_ADVERTISED_MS = 5_000;
/**
 * How much longer than advertised an idle connection is kept open. A client whose event loop ran
 * late (undici reuses a connection until its own timer, 2 s short of the hint, has run) sends its
 * next request on it; closed at the advertised time, that request is reset unread and fetch does
 * not retry it. The grace starts when the advertised time has run out on the gateway's own loop,
 * so a request that came in while the gateway's loop was held is read too.
 */
export const KEEP_ALIVE_GRACE_MS = 5_000;
/** How long a connection whose request the parser refused is read and discarded before it is closed. */
export const CLIENT_ERROR_LINGER_MS = 5_000;

/**
 * Closes idle keep-alive connections {@link KEEP_ALIVE_GRACE_MS} after the advertised
 * {@link KEEP_ALIVE_ADVERTISED_MS}: Node arms the socket timeout with `keepAliveTimeout` once a
 * response is done and clears it when the next request comes; a `timeout` listener on the server
 * makes closing the socket ours (test/server/connection-close.test.ts).
 */
export function graceIdleConnections(server: Server): void {
  server.keepAliveTimeout = KEEP_ALIVE_ADVERTISED_MS;
  const graced = new WeakSet<Socket>();
  server.prependListener("request", (req: IncomingMessage) => graced.delete(req.socket));
  server.on("timeout", (socket: Socket) => {
    if (graced.has(socket)) {
      socket.destroy();
      return;
    }
    graced.add(socket);
    socket.setTimeout(KEEP_ALIVE_GRACE_MS);
  });
}

/**
 * Answers a request Node's parser refused, as Node would (a head over 16 KiB: 431; one that took
 * longer than `requestTimeout`: 408; anything else: 400), and closes the connection once the
 * client has read the answer: the answer goes out with a FIN, and what the client still sends is
 * read and discarded until it closes, for at most {@link CLIENT_ERROR_LINGER_MS} in all. Node's
 * default closes at once, and a client still sending its request could get a reset before it
 * read the answer (test/server/connection-close.test.ts).
 */
export function answerClientErrors(server: Server): void {
  const answered = new WeakSet<Socket>();
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    // The parser reports every later chunk of the same connection again.
    if (answered.has(socket)) return;
    answered.add(socket);
    const status = statusOf(error.code);
    // A socket's own error (a reset), or a response under way that an answer would cut into.
    if (status === undefined || !socket.writable || responseStarted(socket)) {
      socket.destroy();
      return;
    }
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    closeBy(socket, CLIENT_ERROR_LINGER_MS);
  });
}

/** The answer to a request the parser refused, or undefined for an error of the socket itself. */
function statusOf(code: string | undefined): number | undefined {
  if (code === "HPE_HEADER_OVERFLOW") return 431;
  if (code === "HPE_CHUNK_EXTENSIONS_OVERFLOW") return 413;
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") return 408;
  return code?.startsWith("HPE_") ? 400 : undefined;
}

/** Whether a response on `socket` has sent its head (Node's own check before it answers a client error). */
function responseStarted(socket: Socket): boolean {
  const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  return current?.headersSent === true;
}

/** Destroys `socket` `ms` from now however it is used meanwhile (a socket timeout would wait for it to go quiet). */
export function closeBy(socket: Socket, ms: number): void {
  const timer = setTimeout(() => socket.destroy(), ms);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}
