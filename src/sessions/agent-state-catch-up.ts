import { eventOf } from "../log/output-entry.js";
import type { SessionLog } from "../log/session-log.js";
import type { AgentState } from "../protocol/index.js";
import { AGENT_STATE_EVENT_TYPES, reduceAgentState } from "../protocol/index.js";

/** The events the record's `agentState` is reduced from. */
export const AGENT_STATE_EVENTS: ReadonlySet<string> = new Set(AGENT_STATE_EVENT_TYPES);

/**
 * How far back from its head a restored session's log is read for state events its record missed
 * (see caughtUpAgentState): the record is at most one commit behind; state events of a commit
 * longer than this (a flood of answer text) may stay missed until the agent's next update.
 */
export const AGENT_STATE_CATCH_UP_EVENTS = 1000;

/**
 * The record is written in the commit after the events its `agentState` was reduced from: a
 * gateway killed between the two left it behind its log. At start the state events after it, in
 * the last {@link AGENT_STATE_CATCH_UP_EVENTS} of the log, are reduced again; returns the new
 * state, or undefined when `state` is up to date (test/agents/acp-agent-state.test.ts).
 */
export function caughtUpAgentState(state: AgentState | undefined, log: SessionLog): AgentState | undefined {
  const since = Math.max(state?.seq ?? 0, log.first - 1, log.head - AGENT_STATE_CATCH_UP_EVENTS);
  if (since >= log.head) return undefined;
  let next = state;
  for (const entry of log.read(since, { limit: AGENT_STATE_CATCH_UP_EVENTS, types: AGENT_STATE_EVENTS }).entries) {
    next = reduceAgentState(next, eventOf(entry));
  }
  return next === state ? undefined : next;
}
