import type { ClientConnection } from "@agentclientprotocol/sdk";
import type { Clock } from "../core/clock.js";
import type { AcpWire } from "./acp-wire.js";
import type { AgentLogger } from "./logger.js";
import { describeError } from "./logger.js";

/*
 * What the gateway tells an agent when it stops waiting on it: `session/close` for a deleted
 * session, `$/cancel_request` for the requests nobody waits for any more, each within a bound
 * so that an agent that reads no more input never holds a stop (test/agents/acp-lifecycle.test.ts).
 */

/**
 * When a session is deleted, how long the agent has to answer `session/close` (where it offers it)
 * before it is stopped anyway.
 */
export const ACP_CLOSE_TIMEOUT_MS = 2_000;
/**
 * After `$/cancel_request` for the requests the gateway gives up on, how long the agent has to
 * answer them (ACP: a result or error -32800) before it is stopped: an agent that reads no more
 * input must not hold the stop.
 */
export const ACP_CANCEL_ANSWER_MS = 500;

interface AgentAt {
  conn: ClientConnection;
  clock: Clock;
  logger: AgentLogger;
  /** The gateway session's id, for the log. */
  sessionId: string;
}

/**
 * Asks the agent to free its conversation `acpSessionId` (ACP `session/close`), waiting at most
 * {@link ACP_CLOSE_TIMEOUT_MS}; unanswered, the request is then cancelled with the others
 * ({@link cancelPendingRequests}).
 */
export async function closeAcpSession(agent: AgentAt & { acpSessionId: string }): Promise<void> {
  const { logger, sessionId } = agent;
  const closing = agent.conn.agent.request("session/close", { sessionId: agent.acpSessionId }).then(
    () => undefined,
    (err: unknown) => {
      logger.debug({ sessionId, err: describeError(err) }, "session/close failed");
    },
  );
  if (!(await settledWithin(agent.clock, closing, ACP_CLOSE_TIMEOUT_MS))) {
    logger.warn(
      { sessionId, timeoutMs: ACP_CLOSE_TIMEOUT_MS },
      "the agent did not answer session/close in time; stopping it",
    );
  }
}

/**
 * Sends `$/cancel_request` for every request the agent has not answered on `wire`: the gateway
 * gives up on them (a start timeout, a turn that did not end after an abort, a session/close
 * unanswered, a stop). Waits at most {@link ACP_CANCEL_ANSWER_MS} for the agent to answer them.
 */
export async function cancelPendingRequests(agent: AgentAt & { wire: AcpWire }): Promise<void> {
  const { conn, wire } = agent;
  const pending = wire.pendingRequests();
  if (pending.length === 0) return;
  const sent = Promise.all(
    pending.map((requestId) =>
      conn.agent.notify("$/cancel_request", { requestId }).catch((err: unknown) => {
        // The connection is closed already (the agent is gone): nothing to cancel there.
        agent.logger.debug({ err: describeError(err) }, "$/cancel_request not delivered");
      }),
    ),
  );
  await settledWithin(
    agent.clock,
    sent.then(() => wire.whenAnswered(pending)),
    ACP_CANCEL_ANSWER_MS,
  );
}

/** Whether `promise` settled within `ms` (it goes on either way). */
function settledWithin(clock: Clock, promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = clock.setTimeout(() => resolve(false), ms);
    void promise.then(() => {
      timer.cancel();
      resolve(true);
    });
  });
}
