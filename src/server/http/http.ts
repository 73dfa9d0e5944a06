import { isUtf8 } from "node:buffer";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { z } from "zod";
import { ERROR_CODES, EventTypes, LIMITS, SwitchboardError, textNestsDeeperThan } from "../../protocol/index.js";
import { isPublicError } from "../../protocol/errors.js";
import { describeJsonError, formatIssues } from "../config/config.js";

/**
 * Headers on every response: no sniffing, no framing, no referrer leaks, no caching of API data,
 * and a CSP that lets an API answer opened in a browser run nothing (the UI's static files
 * replace it with their own policy).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
};

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendJsonText(res, status, JSON.stringify(body), headers);
}

/**
 * Sends an already-serialized JSON body (the log keeps events serialized). `headers` may add
 * headers and replace `Cache-Control`, not the security headers or the content type.
 */
export function sendJsonText(
  res: ServerResponse,
  status: number,
  text: string | Buffer,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  const hold = answerHolds.get(res)?.();
  if (hold) {
    answerHolds.delete(res);
    res.statusCode = status;
    // Refused: what the request appended will never be written (fenced, removed), so the
    // request did not take effect and its answer is that error, never the success.
    void hold.then(
      (more) => sendJsonText(res, status, text, { ...headers, ...more }),
      (error: unknown) => sendError(res, error),
    );
    return;
  }
  res.writeHead(status, {
    // Lower case, as `headers` come: a header given twice with different case is sent twice.
    "cache-control": "no-store",
    ...headers,
    ...SECURITY_HEADERS,
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** What a held answer waits for; it may add headers to the answer (lower case). */
export type AnswerHold = () => Promise<Record<string, string> | undefined> | undefined;

const answerHolds = new WeakMap<ServerResponse, AnswerHold>();

/**
 * JSON answers on `res` wait for `hold()` (when it returns a promise) before they are sent. The
 * gateway holds the answers of requests that change something until what they appended to any
 * log is published, so a client that POSTs and then GETs reads its own writes.
 */
export function holdAnswers(res: ServerResponse, hold: AnswerHold): void {
  answerHolds.set(res, hold);
}

/** `Retry-After` (seconds) for a refusal that says when to try again (`retryAfterSeconds`). */
function retryAfter(error: SwitchboardError): string | undefined {
  const seconds = error.details?.["retryAfterSeconds"];
  return typeof seconds === "number" && seconds > 0 ? String(seconds) : undefined;
}

/** Turns any thrown value into `{error: {code, message}}` with the code's status. */
export function sendError(res: ServerResponse, error: unknown, extraHeaders: Record<string, string> = {}): void {
  const e = toSwitchboardError(error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
  const retry = retryAfter(e);
  if (retry !== undefined) res.setHeader("Retry-After", retry);
  sendJson(res, e.status, { error: e.toJSON() });
}

/**
 * A whole HTTP/1.1 response carrying `{error}`, for sockets no ServerResponse owns (a refused
 * upgrade, a connection refused on arrival): written as is, then the connection closes.
 */
export function rawHttpError(error: SwitchboardError, headers: Record<string, string> = {}): string {
  const retry = retryAfter(error);
  if (retry !== undefined) headers = { ...headers, "Retry-After": retry };
  const body = JSON.stringify({ error: error.toJSON() });
  const lines = [
    `HTTP/1.1 ${error.status} ${error.code}`,
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    "Connection: close",
  ];
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

export function toSwitchboardError(error: unknown): SwitchboardError {
  if (isPublicError(error)) return error;
  return new SwitchboardError("INTERNAL", "internal error; the gateway log has details");
}

/**
 * The body of a route whose fields are all optional: `{}` when the request carries none at all
 * (`curl -X POST URL`: no Content-Type, no length), else as {@link readJson}.
 */
export async function readOptionalJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const length = req.headers["content-length"];
  if ((length === undefined || length === "0") && req.headers["transfer-encoding"] === undefined) return {};
  return readJson(req, limit);
}

/**
 * Reads a JSON body of at most `limit` bytes. 415 unless the content type is JSON, 413 past the
 * limit (checked on Content-Length first, then while reading), 400 INVALID_JSON when it does not
 * parse, 400 VALIDATION_FAILED when it nests deeper than `LIMITS.JSON_DEPTH`.
 */
export async function readJson(req: IncomingMessage, limit: number, limitName = "limits.bodyBytes"): Promise<unknown> {
  if (!isJsonContentType(req.headers["content-type"])) {
    throw new SwitchboardError(
      "UNSUPPORTED_MEDIA_TYPE",
      "send the body as Content-Type: application/json (UTF-8, the charset of JSON)",
    );
  }
  const body = await readBody(req, limit, limitName);
  if (body.length === 0) throw new SwitchboardError("INVALID_JSON", "the body is empty; send a JSON value");
  return parseJsonBody(body);
}

/**
 * Reads a body of at most `limit` bytes, whatever its type: 413 past the limit (checked on
 * Content-Length first, then while reading).
 */
export async function readBody(req: IncomingMessage, limit: number, limitName = "limits.bodyBytes"): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new SwitchboardError(
      "PAYLOAD_TOO_LARGE",
      `the body is ${declared} bytes; the limit is ${limit} (${limitName})`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new SwitchboardError("PAYLOAD_TOO_LARGE", `the body is over the limit of ${limit} bytes (${limitName})`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A JSON body's value: 400 INVALID_JSON unless it is UTF-8 JSON, 400 VALIDATION_FAILED past `LIMITS.JSON_DEPTH`. */
export function parseJsonBody(body: Buffer): unknown {
  // Decoded leniently, bytes that are not UTF-8 would become U+FFFD: input typed into a session
  // changed without a word, where /v1/ws and /ws/session close such a frame (1007).
  if (!isUtf8(body))
    throw new SwitchboardError(
      "INVALID_JSON",
      'the body is not valid UTF-8, as JSON must be (input bytes that are not text go as base64, with "enc": "base64")',
    );
  const text = body.toString("utf8");
  // A deeper value parses, but serializing it again (an appended event, a frame to a plugin)
  // overflows the stack: refused on the text, before parsing builds it.
  if (textNestsDeeperThan(text, LIMITS.JSON_DEPTH)) {
    throw new SwitchboardError(
      "VALIDATION_FAILED",
      `the body nests arrays and objects deeper than ${LIMITS.JSON_DEPTH} levels; flatten it`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new SwitchboardError("INVALID_JSON", `the body is not valid JSON: ${describeJsonError(error)}`);
  }
}

/**
 * Whether a Content-Type header is JSON: the media type `application/json` exactly (not
 * `application/json-patch+json` or `application/jsonl`, which mean something else), with a
 * `charset`, if any, of UTF-8 — the body is decoded as UTF-8 whatever it says.
 */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [mediaType, ...params] = header.split(";");
  if (mediaType!.trim().toLowerCase() !== "application/json") return false;
  for (const param of params) {
    const eq = param.indexOf("=");
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== "charset") continue;
    const charset = param
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .toLowerCase();
    if (charset !== "utf-8" && charset !== "utf8") return false;
  }
  return true;
}

/**
 * The URL of a request target. An origin-form target is always a path, also when it starts
 * with `//` (`new URL("//v1/sessions", base)` would take `v1` for a host and route `/sessions`).
 */
export function requestUrl(target: string | undefined): URL {
  const t = target ?? "/";
  return t.startsWith("/") ? new URL(`http://localhost${t}`) : new URL(t, "http://localhost");
}

/**
 * The value of a query parameter, or null when it is absent or empty (`?limit=` is no limit).
 * Given more than once it is BAD_REQUEST: which one counts would be a guess (`types=a&types=b`
 * read as only `a` silently dropped `b`).
 */
export function queryParam(url: URL, name: string): string | null {
  const values = url.searchParams.getAll(name);
  if (values.length > 1) {
    throw new SwitchboardError("BAD_REQUEST", `${name} is given ${values.length} times; give it once`);
  }
  return values[0] === undefined || values[0] === "" ? null : values[0];
}

/** Validates `value` against `schema`; VALIDATION_FAILED names the field that is wrong. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, at: readonly PropertyKey[] = []): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new SwitchboardError("VALIDATION_FAILED", formatIssues(result.error, at));
  return result.data;
}

/**
 * Validates query parameters against `schema`: BAD_REQUEST naming the parameter, as every query
 * parameter of every route answers (VALIDATION_FAILED is for bodies and frames).
 */
export function validateQuery<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new SwitchboardError("BAD_REQUEST", formatIssues(result.error, []));
  return result.data;
}

/** An integer query parameter from `min` to `max`, or `fallback` when absent. */
export function intParam(url: URL, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER, min = 0): number {
  const raw = queryParam(url, name);
  if (raw === null) return fallback;
  if (!/^\d{1,16}$/.test(raw) || Number(raw) > max || Number(raw) < min) {
    throw new SwitchboardError("BAD_REQUEST", `${name} must be an integer from ${min} to ${max}`);
  }
  return Number(raw);
}

const TypesFilter = z.object({ types: EventTypes });

/**
 * A `types=a,b` filter, checked with the schema of /v1/ws's `subscribe.types`: known event
 * types only (a typo would otherwise match nothing, silently), else BAD_REQUEST in its words.
 */
export function typesParam(url: URL): Set<string> | undefined {
  const raw = queryParam(url, "types");
  const names = raw?.split(",").filter(Boolean) ?? [];
  // No type named (`types=`, or `types=,` from an empty list joined) is no filter, as `types: []`
  // is on /v1/ws — not a filter that matches nothing.
  if (names.length === 0) return undefined;
  return new Set(validateQuery(TypesFilter, { types: names }).types);
}

/** A yes/no query parameter: absent, `0`/`false` or `1`/`true`. */
export function boolParam(url: URL, name: string): boolean {
  const raw = queryParam(url, name);
  if (raw === null || raw === "0" || raw === "false") return false;
  if (raw === "1" || raw === "true") return true;
  throw new SwitchboardError("BAD_REQUEST", `${name} must be true or false (or 1 or 0)`);
}

/** The status for each code, for routes that need it before throwing. */
export function statusOf(code: keyof typeof ERROR_CODES): number {
  return ERROR_CODES[code].status;
}

/** Hostname of a Host header value (`[::1]:7317` → `[::1]`, `a.b:80` → `a.b`). */
export function hostnameOf(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.lastIndexOf(":");
  return colon >= 0 ? h.slice(0, colon) : h;
}

/** Answers a refused upgrade with a plain HTTP response carrying the JSON error. */
export function rejectUpgrade(socket: Duplex, error: SwitchboardError): void {
  if (socket.writable) socket.end(rawHttpError(error));
  socket.destroy();
}
