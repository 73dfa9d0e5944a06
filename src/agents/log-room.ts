import { LOG_BACKLOG_PAUSE_BYTES } from "../log/session-log.js";
import type { SessionLog } from "../log/session-log.js";
import type { LogRoom } from "./adapter.js";

/** What {@link logRoom} needs of a log: how far its store is behind, and a wait until it caught up. */
export type BackloggedLog = Pick<SessionLog, "backlogBytes" | "caughtUp">;

/**
 * The {@link LogRoom} of a session's log: no room while more than {@link LOG_BACKLOG_PAUSE_BYTES}
 * wait for the store, room again once it is down to `LOG_BACKLOG_RESUME_BYTES` (or the log was
 * retired) — the bound terminal sessions are held back by. Everyone who asks while there is no
 * room shares one wait.
 *
 * @example
 * createAgentSession({ sessionId, log, spec, room: logRoom(log) });
 */
export function logRoom(log: BackloggedLog): LogRoom {
  let waiting: Promise<void> | undefined;
  return () => {
    if (waiting) return waiting;
    if (log.backlogBytes <= LOG_BACKLOG_PAUSE_BYTES) return undefined;
    waiting = log.caughtUp().then(() => {
      waiting = undefined;
    });
    return waiting;
  };
}
