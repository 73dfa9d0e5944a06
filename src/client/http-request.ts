// One request of HttpClient to the gateway: credentials, the timeout and the caller's abort, and
// a failure as a typed error (the gateway's error body, or why nothing answered). Apart from the
// client's methods, which only say each route's path, query and body.
import { SwitchboardError } from "../protocol/errors.js";
import { abortReason, onAbort } from "./abort.js";
import { ConnectionError, errorFromWire } from "./errors.js";
import { COOKIE_KEY_HEADER, endpointUrl } from "./transport.js";
import type { GatewayTarget } from "./transport.js";

/** A body sent as it is (`application/octet-stream`), not as JSON: a file upload's. */
export class RawBody {
  constructor(readonly bytes: Blob | Uint8Array) {}
}

/** `bytes` to send as they are. */
export function rawBody(bytes: Blob | Uint8Array): RawBody {
  return new RawBody(bytes);
}

/** The gateway a request goes to, and how long it may take (HttpClient's `timeoutMs`). */
export interface HttpEndpoint {
  readonly target: GatewayTarget;
  readonly timeoutMs: number;
}

/** {@link request} of a JSON answer: one that is not JSON fails with BAD_RESPONSE. */
export function requestJson<T>(
  endpoint: HttpEndpoint,
  method: string,
  path: string,
  signal: AbortSignal | undefined,
  body?: unknown,
): Promise<T> {
  return request(endpoint, method, path, signal, body, async (res) => {
    try {
      return (await res.json()) as T;
    } catch (error) {
      throw new ConnectionError("BAD_RESPONSE", `${method} ${path}: the answer is not JSON`, { cause: error });
    }
  });
}

/**
 * One request: sends it, and `read`s a 2xx answer (any other is the gateway's error). The
 * timeout and the caller's `signal` cover the whole exchange, the answer's body included;
 * the timer and the listener on `signal` are removed however it ends.
 */
export async function request<T>(
  endpoint: HttpEndpoint,
  method: string,
  path: string,
  signal: AbortSignal | undefined,
  body: unknown,
  read: (res: Response) => Promise<T>,
): Promise<T> {
  if (signal?.aborted) throw abortReason(signal);
  // A session id "." or ".." is a dot segment to the URL parser, which would send the request to
  // another route (GET /v1/sessions/. lists sessions). No session has such an id.
  const dots = DOT_SEGMENT.exec(path);
  if (dots) throw new SwitchboardError("SESSION_NOT_FOUND", `no session ${dots[1]}`);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, endpoint.timeoutMs);
  const offAbort = onAbort(signal, (reason) => controller.abort(reason));
  try {
    const res = await send(endpoint.target, method, path, body, controller.signal);
    if (!res.ok) throw await failure(res);
    return await read(res);
  } catch (error) {
    // Whatever the failure looks like (fetch's AbortError, a body cut short), an abort or
    // the timeout is why.
    if (signal?.aborted) throw abortReason(signal);
    if (timedOut) {
      throw new ConnectionError(
        "TIMEOUT",
        `${method} ${path}: no answer from ${endpoint.target.url} within ${endpoint.timeoutMs} ms`,
        { cause: error },
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
    offAbort();
  }
}

async function send(
  target: GatewayTarget,
  method: string,
  path: string,
  body: unknown,
  signal: AbortSignal,
): Promise<Response> {
  const fetchImpl = target.fetch ?? globalThis.fetch;
  const headers: Record<string, string> = {};
  if (target.token !== undefined && target.token !== "") headers["Authorization"] = `Bearer ${target.token}`;
  else if (target.cookieKey !== undefined && target.cookieKey !== "") headers[COOKIE_KEY_HEADER] = target.cookieKey;
  if (body !== undefined)
    headers["Content-Type"] = body instanceof RawBody ? "application/octet-stream" : "application/json";
  const url = endpointUrl(target.url, path, "http");
  try {
    return await fetchImpl(url, {
      method,
      headers,
      ...(body instanceof RawBody
        ? { body: body.bytes as BodyInit }
        : body !== undefined
          ? { body: JSON.stringify(body) }
          : {}),
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    // Aborted (by the caller or the timeout): the caller tells which.
    if (signal.aborted) throw error;
    const reason = error instanceof Error ? describeCause(error) : String(error);
    // A connection that was made and then dropped is not "nothing answers": callers retry it.
    if (droppedAfterConnect(error)) {
      throw new ConnectionError(
        "DISCONNECTED",
        `${method} ${path}: the connection to ${target.url} dropped: ${reason}`,
        {
          cause: error,
        },
      );
    }
    throw new ConnectionError("UNREACHABLE", `cannot reach the gateway at ${target.url}: ${reason}`, {
      cause: error,
    });
  }
}

async function failure(res: Response): Promise<Error> {
  let body: unknown;
  try {
    body = await res.json();
  } catch (error) {
    return new ConnectionError(
      "BAD_RESPONSE",
      `HTTP ${res.status} ${res.statusText} without a Switchboard error body`,
      { cause: error },
    );
  }
  const error = (body as { error?: unknown } | null)?.error;
  if (error !== null && typeof error === "object") return errorFromWire(error as Record<string, unknown>);
  return new ConnectionError("BAD_RESPONSE", `HTTP ${res.status} ${res.statusText} without a Switchboard error body`);
}

/** A path segment that is "." or "..": only a session id can be one here. */
const DOT_SEGMENT = /\/(\.\.?)(?=[/?]|$)/;

/** Node's fetch hides the reason (ECONNREFUSED, ENOTFOUND) in `cause`. */
function describeCause(error: Error): string {
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === "string" ? `${code} (${cause.message})` : cause.message;
  }
  return error.message;
}

/** Socket errors (Node's fetch, undici) that mean the gateway accepted the connection and then it dropped. */
const DROPPED_CODES: ReadonlySet<string> = new Set(["UND_ERR_SOCKET", "UND_ERR_CLOSED", "ECONNRESET", "EPIPE"]);

function droppedAfterConnect(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && DROPPED_CODES.has(code)) return true;
  }
  return false;
}
