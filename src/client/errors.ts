// From the modules themselves, not the protocol's index: the CLI loads these without zod.
import { CLOSE_CODES } from "../protocol/close-codes.js";
import { SwitchboardError, isErrorCode, isPublicError } from "../protocol/errors.js";
import type { ErrorCode } from "../protocol/errors.js";

/**
 * Why the SDK could not get an answer from the gateway at all. The gateway's own refusals
 * are {@link SwitchboardError}s with the codes of `src/protocol/errors.ts`; these codes are
 * for what happens on the client's side of the wire.
 */
export const CONNECTION_ERROR_CODES = [
  /** The gateway could not be reached (refused, DNS, TLS, network down). */
  "UNREACHABLE",
  /** The connection dropped after the request was sent: it may or may not have been applied. */
  "DISCONNECTED",
  /** The gateway closed the connection to restart (close 1012): its sessions keep running, the client reconnects. */
  "RESTARTING",
  /** The client was closed (by `close()`, or after a fatal error). */
  "CLOSED",
  /** No answer within the request timeout. */
  "TIMEOUT",
  /** Too many requests are waiting for the connection to come back. */
  "QUEUE_FULL",
  /** The gateway answered with something that is not the protocol (a proxy's error page, say). */
  "BAD_RESPONSE",
] as const;
export type ConnectionErrorCode = (typeof CONNECTION_ERROR_CODES)[number];

/** Why a WebSocket closed, as an error: RESTARTING for 1012, else DISCONNECTED (with the code and reason). */
export function closedError(code: number, reason: string): ConnectionError {
  const text = `connection closed (${code}${reason ? ` ${reason}` : ""})`;
  return new ConnectionError(code === CLOSE_CODES.SERVICE_RESTART ? "RESTARTING" : "DISCONNECTED", text);
}

/** The SDK could not talk to the gateway; `code` says how. */
export class ConnectionError extends Error {
  override readonly name = "ConnectionError";
  readonly code: ConnectionErrorCode;

  constructor(code: ConnectionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Every error the SDK rejects with. */
export type ClientError = SwitchboardError | ConnectionError;

/**
 * The gateway's error from a wire body (`{error: {code, message}}`) or an error frame
 * (`{code, message}`). Codes this SDK does not know (a newer gateway) become `INTERNAL`
 * with the original code kept in `details.wireCode`.
 */
export function errorFromWire(
  value: { code?: unknown; message?: unknown } & Record<string, unknown>,
): SwitchboardError {
  const { code, message, ...rest } = value;
  const text = typeof message === "string" ? message : "the gateway refused the request";
  if (typeof code === "string" && isErrorCode(code)) return new SwitchboardError(code, text, rest);
  return new SwitchboardError("INTERNAL", text, { ...rest, wireCode: code });
}

/**
 * Narrows `error` to a gateway error, optionally with one of `codes` (a misspelt code does not
 * compile): `if (isSwitchboardError(e, "SESSION_NOT_FOUND")) ...`.
 */
export function isSwitchboardError(error: unknown, ...codes: ErrorCode[]): error is SwitchboardError {
  return isPublicError(error) && (codes.length === 0 || codes.includes(error.code));
}

/** Narrows `error` to a connection error, optionally with one of `codes`. */
export function isConnectionError(error: unknown, ...codes: ConnectionErrorCode[]): error is ConnectionError {
  return error instanceof ConnectionError && (codes.length === 0 || codes.includes(error.code));
}

/**
 * Marks a promise the caller may never await as handled, so that its rejection does not
 * become an unhandled rejection. The error still reaches whoever does await it.
 */
export function markHandled(promise: Promise<unknown>): void {
  promise.catch(ignoreUnawaited);
}

function ignoreUnawaited(_error: unknown): void {
  // Deliberately nothing: see markHandled. Awaiting callers get the same rejection.
}
