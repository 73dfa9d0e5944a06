import { SwitchboardError } from "./errors.js";
/**
 * Protocol-level bounds. Each is a named constant so the server, the SDK, the UI and the
 * docs agree. The configurable bounds (body, frame, events per append) live in server/config/config.ts.
 */
export const LIMITS = {
  /** Largest single `input` payload in bytes. */
  INPUT_BYTES: 64 * 1024,
  /** Arguments in a command line. */
  COMMAND_ARGS: 1024,
  /** Bytes in one argument, env value or prompt text. */
  STRING_BYTES: 256 * 1024,
  /** Environment variables passed to a session. */
  ENV_ENTRIES: 512,
  /** Longest session name. */
  NAME_CHARS: 200,
  /** Largest terminal dimension. */
  MAX_COLS: 2000,
  MAX_ROWS: 1000,
  /**
   * Deepest nesting of arrays and objects in a JSON body (`[]` and `{}` are one level each, the
   * body itself included). What is appended is serialized again, and serializing recurses.
   */
  JSON_DEPTH: 64,
  /** Most events one page of `GET .../events` returns. */
  EVENTS_PAGE_MAX: 10_000,
  EVENTS_PAGE_DEFAULT: 1000,
  /**
   * Serialized bytes after which a page of `GET .../events` ends (whole events: the one that
   * reaches it is the last); `next` continues. Without it a page was bounded by count only, and
   * one request assembled up to a session's whole retained log (256 MiB) as one string.
   */
  EVENTS_PAGE_BYTES: 8 * 1024 * 1024,
  /**
   * Most sessions one page of `GET /v1/sessions` returns, and the page a request without
   * `limit` gets (with `next` when there are more). Ended sessions stay until removed, so
   * without a bound one answer grew with every session ever made; 1000 sessions are about
   * 400 KB of JSON and 10 ms of the gateway's event loop (docs/operations.md, "Scale").
   */
  SESSIONS_PAGE_MAX: 1000,
  /**
   * Serialized bytes (UTF-16 units, about bytes) after which a page of `GET /v1/sessions` ends
   * before `limit` (whole sessions, at least one; `next` continues): a session's command may be
   * ~1 MB, and a page of 1000 such was past what one string can hold.
   */
  SESSIONS_PAGE_BYTES: 4 * 1024 * 1024,
} as const;

/**
 * Input of `bytes` in one message, if over {@link LIMITS.INPUT_BYTES}: the refusal the gateway and
 * the SDK give. Here, not beside the input schemas in sessions.ts: the SDK's HTTP client needs it,
 * and a bundle that took it from there took all of zod along (sessions.ts builds schemas when loaded).
 */
export function inputTooLarge(bytes: number): SwitchboardError | undefined {
  if (bytes <= LIMITS.INPUT_BYTES) return undefined;
  return new SwitchboardError(
    "PAYLOAD_TOO_LARGE",
    `input is ${bytes} bytes; at most ${LIMITS.INPUT_BYTES} per message`,
  );
}
