import { AgentGatewaySession } from "./agent-gateway-session.js";
import { wrongKind } from "./session.js";
import type { AgentOp, AnyOp, Session, SteerOp, TerminalOp } from "./session.js";
import { TerminalSession } from "./terminal-session.js";

/**
 * `session` as the kind that takes `op` (a terminal for input, signals and, PTYs only, resize; an
 * agent for prompts, aborts, permission answers and choices of mode or setting), or WRONG_SESSION_KIND saying which kind does
 * (a copy of another cluster node's session is refused before, see `steerable`).
 */
export function steerTarget(session: Session, op: TerminalOp): TerminalSession;
export function steerTarget(session: Session, op: AgentOp): AgentGatewaySession;
export function steerTarget(session: Session, op: AnyOp): TerminalSession | AgentGatewaySession;
export function steerTarget(session: Session, op: SteerOp): TerminalSession | AgentGatewaySession;
export function steerTarget(session: Session, op: SteerOp): TerminalSession | AgentGatewaySession {
  switch (op) {
    case "input":
    case "signal":
      if (session instanceof TerminalSession) return session;
      break;
    case "resize":
      if (session instanceof TerminalSession && session.record.pty) return session;
      break;
    case "prompt":
    case "abort":
    case "permission":
    case "choose":
    case "elicitation":
    case "policy":
      if (session instanceof AgentGatewaySession) return session;
      break;
    case "seen":
      if (session instanceof TerminalSession || session instanceof AgentGatewaySession) return session;
      break;
  }
  throw wrongKind(session.record, op);
}
