import { SwitchboardError } from "../protocol/index.js";
import type { Actor, SignalName } from "../protocol/index.js";
import type { Session } from "../sessions/session.js";
import type { SessionManager } from "../sessions/session-manager.js";
import { sessionFor } from "./access.js";
import type { Identity } from "./auth.js";

export type SteerAction =
  | { op: "input"; data: Uint8Array; eof?: boolean }
  | { op: "signal"; signal: SignalName }
  | { op: "resize"; cols: number; rows: number };

/**
 * The one path by which any transport steers a session: access check (404/403), running
 * check, control lease (CONTROL_HELD unless free or held by `holderKey`), then the action,
 * which the session records as an audit event with `by`.
 */
export function steer(
  sessions: SessionManager,
  identity: Identity,
  holderKey: string,
  sessionId: string,
  action: SteerAction,
  by: Actor,
): Session {
  const session = sessionFor(sessions, identity, sessionId, "steer");
  session.assertRunning();
  session.lease.checkWriter(holderKey);
  switch (action.op) {
    case "input":
      session.write(action.data, by, action.eof === true);
      break;
    case "signal":
      session.signal(action.signal, by);
      break;
    case "resize":
      session.resize(action.cols, action.rows, by);
      break;
  }
  return session;
}

/** Acquires or releases control of a session for `holderKey`. */
export function control(
  sessions: SessionManager,
  identity: Identity,
  holderKey: string,
  sessionId: string,
  action: "acquire" | "release",
  force: boolean,
  by: Actor,
): Session {
  const session = sessionFor(sessions, identity, sessionId, "steer");
  if (action === "acquire") {
    session.assertRunning();
    session.lease.acquire({ key: holderKey, actor: by }, force);
  } else if (!session.lease.release(holderKey)) {
    const holder = session.lease.holder;
    if (holder)
      throw new SwitchboardError("CONTROL_HELD", `control is held by ${holder.actor.name}, not by this caller`, {
        holder: holder.actor.name,
      });
  }
  return session;
}

/** Decodes `data` of an input frame or body: UTF-8 text, or raw bytes with `enc: "base64"`. */
export function inputBytes(data: string, enc: "base64" | undefined, maxBytes: number): Uint8Array {
  // Sized before anything is decoded or copied.
  const size = Buffer.byteLength(data, enc === "base64" ? "base64" : "utf8");
  if (size > maxBytes) {
    throw new SwitchboardError("PAYLOAD_TOO_LARGE", `input is ${size} bytes; at most ${maxBytes} per message`);
  }
  return enc === "base64" ? Buffer.from(data, "base64") : Buffer.from(data, "utf8");
}
