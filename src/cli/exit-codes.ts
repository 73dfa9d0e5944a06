import { constants } from "node:os";
import { ConnectionError } from "../client/errors.js";
import { isPublicError } from "../protocol/errors.js";

/**
 * Exit codes of the client commands. `attach` (and `run --attach`) exit with the session's
 * own exit code when the session ends — `128 + N` when signal N killed it, as shells do — so
 * there the small numbers below can also be the program's; the message on stderr tells them apart.
 */
export const EXIT = {
  OK: 0,
  /** The gateway refused the request (validation, wrong session kind, ...) or something unexpected happened. */
  FAILURE: 1,
  /** Bad command line: unknown option, missing argument. */
  USAGE: 2,
  /** The gateway cannot be reached (not running, wrong --url). */
  UNREACHABLE: 3,
  /** No token, a wrong token, or a token that may not do this (UNAUTHORIZED, FORBIDDEN). */
  AUTH: 4,
  /** No such session (or not visible to this token), or no such plugin. */
  NOT_FOUND: 5,
  /** Someone else holds the session's control lease (CONTROL_HELD, CONTROL_LOST). */
  CONTROL_HELD: 6,
  /** The session has ended and cannot be steered (SESSION_NOT_RUNNING). */
  NOT_RUNNING: 7,
  /** Interrupted (Ctrl-C while following logs), as shells report SIGINT. */
  INTERRUPTED: 130,
  /** Told to stop with SIGTERM (`kill`, `timeout`, a service manager) while following, as shells report it. */
  TERMINATED: 143,
  /**
   * Standard output was closed by its reader (`switchboard logs ID | head`): stopped quietly,
   * with the code of a program SIGPIPE ended (128 + 13), as `cat` would.
   */
  BROKEN_PIPE: 141,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A command-line mistake: printed with the command's usage, exit {@link EXIT.USAGE}. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The exit code for an error thrown by a command. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof UsageError) return EXIT.USAGE;
  if (error instanceof ConnectionError)
    return error.code === "UNREACHABLE" || error.code === "TIMEOUT" ? EXIT.UNREACHABLE : EXIT.FAILURE;
  if (isPublicError(error)) {
    switch (error.code) {
      case "UNAUTHORIZED":
      case "FORBIDDEN":
        return EXIT.AUTH;
      case "SESSION_NOT_FOUND":
      case "PLUGIN_NOT_FOUND":
        return EXIT.NOT_FOUND;
      case "CONTROL_HELD":
      case "CONTROL_LOST":
        return EXIT.CONTROL_HELD;
      case "SESSION_NOT_RUNNING":
        return EXIT.NOT_RUNNING;
      default:
        return EXIT.FAILURE;
    }
  }
  return EXIT.FAILURE;
}

/**
 * A session's end as a process exit code: its code, `128 + N` for signal N, 1 when it was lost
 * (or killed by a signal without a number here), 0 when it exited with neither (agent and
 * stream sessions).
 */
export function sessionExitCode(end: {
  state: "exited" | "lost";
  exitCode: number | null;
  signal: string | null;
}): number {
  if (end.state === "lost") return EXIT.FAILURE;
  if (end.exitCode !== null) return end.exitCode;
  if (end.signal !== null) {
    const name = end.signal.startsWith("SIG") ? end.signal : `SIG${end.signal}`;
    const n = (constants.signals as Record<string, number | undefined>)[name];
    if (n !== undefined) return 128 + n;
    return EXIT.FAILURE;
  }
  return EXIT.OK;
}
