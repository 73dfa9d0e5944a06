import { SwitchboardError } from "../protocol/errors.js";
import { SPAWN_FDS, readFdUsage } from "./fd-usage.js";
import type { FdUsage } from "./fd-usage.js";

/*
 * Why a process the gateway starts (a terminal session's, an agent's, a plugin's or a plugin's
 * command) could not be started, as the error that crosses the wire. One wording for all of them,
 * so that a client, an operator and the docs see the same message whatever failed.
 */

/**
 * RESOURCE_EXHAUSTED for a spawn that failed for lack of file descriptors, saying whose limit and
 * what to do; null when that is not why. `cause`'s errno decides when it has one (EMFILE ours,
 * ENFILE the system's `fs.file-max`); without one (node-pty says only "forkpty(3) failed.") it is
 * the count: fewer than {@link SPAWN_FDS} descriptors were free.
 * @example
 * fdExhaustedError("sleep", err, { open: 128, limit: 128 }); // "cannot start sleep: the gateway is out of file descriptors …"
 */
export function fdExhaustedError(program: string, cause: unknown, usage: FdUsage | null): SwitchboardError | null {
  const errno = errnoOf(cause);
  if (errno === "ENFILE") {
    return new SwitchboardError(
      "RESOURCE_EXHAUSTED",
      `cannot start ${program}: the system is out of file descriptors (ENFILE: the open-file table all processes share is full; ` +
        "its size is the sysctl `fs.file-max`, not the gateway's own limit): end processes that hold many files, or raise `fs.file-max`",
    );
  }
  const ownLimit =
    errno === "EMFILE" || (errno === undefined && usage !== null && usage.open + SPAWN_FDS > usage.limit);
  if (!ownLimit) return null;
  const counts = usage === null ? "" : ` (limit ${usage.limit}, ${usage.open} open)`;
  return new SwitchboardError(
    "RESOURCE_EXHAUSTED",
    `cannot start ${program}: the gateway is out of file descriptors${counts}: ` +
      "end sessions or connections, or raise the limit (`ulimit -n`, systemd `LimitNOFILE=`) and restart the gateway",
  );
}

/**
 * What to throw (or report) when starting `program` failed with `cause`: RESOURCE_EXHAUSTED when
 * file descriptors ran out ({@link fdExhaustedError}, counted now), else SPAWN_FAILED with the reason.
 */
export function spawnError(program: string, cause: unknown): SwitchboardError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return (
    fdExhaustedError(program, cause, readFdUsage()) ??
    new SwitchboardError("SPAWN_FAILED", `cannot start ${program}: ${reason}`)
  );
}

/** The errno code (`"EMFILE"`) of a Node system error; undefined for anything else. */
function errnoOf(error: unknown): string | undefined {
  // A SwitchboardError's code (an InternalError's INTERNAL) is not an errno.
  if (error instanceof SwitchboardError) return undefined;
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  return typeof error.code === "string" ? error.code : undefined;
}
