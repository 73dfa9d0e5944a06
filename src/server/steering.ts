import { inputTooLarge } from "../protocol/index.js";
import type { Actor, SignalName } from "../protocol/index.js";
import type { AgentOp, AnyOp, Session, SteerOp, TerminalOp } from "../sessions/session.js";
import { steerTarget } from "../sessions/steer-target.js";
import type { AgentGatewaySession } from "../sessions/agent-gateway-session.js";
import type { TerminalSession } from "../sessions/terminal-session.js";
import type { SessionManager } from "../sessions/session-manager.js";
import { sessionFor } from "./identity/access.js";
import type { Identity } from "./identity/identity.js";
import { resolveSession } from "./cluster/session-resolver.js";
import type { InputBudget } from "./input-budget.js";
import { refuseShareForce } from "./identity/share-access.js";

export type SteerAction =
  | {
      op: "input";
      data: Uint8Array;
      eof?: boolean;
      /** Told a refusal that comes after the call (TerminalSession.write); else the answer's wait has it. */
      refused?: ((error: unknown) => void) | undefined;
    }
  | { op: "signal"; signal: SignalName }
  | { op: "resize"; cols: number; rows: number };

/**
 * The one path by which any transport steers a terminal: the checks of {@link steerable}, then
 * the action, which the session records as an audit event with `by`.
 */
export function steer(
  sessions: SessionManager,
  identity: Identity,
  holderKey: string,
  sessionId: string,
  action: SteerAction,
  by: Actor,
): TerminalSession {
  const session = steerable(sessions, identity, holderKey, sessionId, action.op);
  switch (action.op) {
    case "input": {
      const refused = action.refused;
      const pending = session.write(action.data, by, action.eof === true);
      if (pending !== undefined && refused !== undefined) pending.catch(refused);
      break;
    }
    case "signal":
      session.signal(action.signal, by);
      break;
    case "resize":
      session.resize(action.cols, action.rows, by);
      break;
  }
  return session;
}

/**
 * The session `holderKey` may do `op` to now, after the checks every steering action makes, in
 * this order: the gateway not stopping (SHUTTING_DOWN), access (404/403), whether its kind takes `op` (WRONG_SESSION_KIND), running
 * (SESSION_NOT_RUNNING), control lease (CONTROL_HELD unless free or held by `holderKey`).
 */
export function steerable(
  sessions: SessionManager,
  identity: Identity,
  holderKey: string,
  sessionId: string,
  op: TerminalOp,
): TerminalSession;
export function steerable(
  sessions: SessionManager,
  identity: Identity,
  holderKey: string,
  sessionId: string,
  op: AgentOp,
): AgentGatewaySession;
export function steerable(
  sessions: SessionManager,
  identity: Identity,
  holderKey: string,
  sessionId: string,
  op: AnyOp,
): TerminalSession | AgentGatewaySession;
export function steerable(
  sessions: SessionManager,
  identity: Identity,
  holderKey: string,
  sessionId: string,
  op: SteerOp,
): TerminalSession | AgentGatewaySession {
  sessions.assertNotStopping();
  const found = sessionFor(sessions, identity, sessionId, "steer");
  // Another node runs it (cluster mode): WRONG_SESSION_KIND naming that node.
  const refusal = resolveSession(sessions, found).steerRefusal(op);
  if (refusal !== undefined) throw refusal;
  const session = steerTarget(found, op);
  session.assertRunning();
  session.lease.checkWriter(holderKey, identity.name);
  return session;
}

/**
 * Acquires or releases control of a session for `holderKey`; `reclaimKey` (see reclaimKeyOf) lets
 * the caller's next connection take it back within the grace period if this one closes.
 */
export function control(
  sessions: SessionManager,
  identity: Identity,
  holderKey: string,
  sessionId: string,
  action: "acquire" | "release",
  force: boolean,
  by: Actor,
  reclaimKey?: string,
): Session {
  sessions.assertNotStopping();
  const session = sessionFor(sessions, identity, sessionId, "control");
  if (action === "acquire") {
    refuseShareForce(identity, force);
    session.assertRunning();
    session.lease.acquire({ key: holderKey, actor: by, ...(reclaimKey !== undefined ? { reclaimKey } : {}) }, force);
  } else if (!session.lease.release(holderKey) && session.lease.holder) {
    throw session.lease.heldError(identity.name, (by) => `control is held by ${by}, not by this caller`);
  }
  return session;
}

/** Decodes `data` of an input frame or body: UTF-8 text, or raw bytes with `enc: "base64"` (PAYLOAD_TOO_LARGE past LIMITS.INPUT_BYTES). */
export function inputBytes(data: string, enc: "base64" | undefined): Uint8Array {
  // Sized before anything is decoded or copied.
  const tooLarge = inputTooLarge(Buffer.byteLength(data, enc === "base64" ? "base64" : "utf8"));
  if (tooLarge) throw tooLarge;
  return enc === "base64" ? Buffer.from(data, "base64") : Buffer.from(data, "utf8");
}

/**
 * Input from a WebSocket connection: decoded, charged to the connection's `budget`
 * (`limits.inputBytesPerSecond` and `limits.inputFramesPerSecond`: RATE_LIMITED), then steered. Input refused after that
 * (CONTROL_HELD, SESSION_NOT_RUNNING, ...) wrote nothing, so its charge is given back: a client
 * retrying while someone else held control was rate limited as soon as it had control.
 * `refused` is told a refusal that comes after the call (input that waited for its holder, see
 * TerminalSession.write), for a connection with no answer that waits for it (`/ws/session`).
 */
export function steerInput(
  sessions: SessionManager,
  identity: Identity,
  holderKey: string,
  sessionId: string,
  input: { data: string; enc?: "base64" | undefined; eof?: true | undefined },
  budget: InputBudget,
  by: Actor,
  refused?: (error: unknown) => void,
): void {
  steerInputBytes(
    sessions,
    identity,
    holderKey,
    sessionId,
    inputBytes(input.data, input.enc),
    input.eof === true,
    budget,
    by,
    refused,
  );
}

/** {@link steerInput} of bytes as they came (`/ws/session`'s binary input), sized as a frame's `data` is. */
export function steerInputBytes(
  sessions: SessionManager,
  identity: Identity,
  holderKey: string,
  sessionId: string,
  data: Uint8Array,
  eof: boolean,
  budget: InputBudget,
  by: Actor,
  refused?: (error: unknown) => void,
): void {
  const tooLarge = inputTooLarge(data.length);
  if (tooLarge) throw tooLarge;
  budget.take(data.length);
  const later =
    refused &&
    ((error: unknown) => {
      budget.giveBack(data.length);
      refused(error);
    });
  try {
    steer(sessions, identity, holderKey, sessionId, { op: "input", data, eof, refused: later }, by);
  } catch (error) {
    budget.giveBack(data.length);
    throw error;
  }
}
