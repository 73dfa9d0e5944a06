// The reducer of SessionInfo.agentState, apart from its schemas (agent-state.ts) so that a client
// that keeps the state current bundles it without zod (test/client/package.test.ts).
import type { AgentConfigOption, AgentState } from "./agent-state.js";
import type { SessionEvent } from "./events.js";

/** The events {@link reduceAgentState} takes in. */
export const AGENT_STATE_EVENT_TYPES = [
  "agent.commands",
  "agent.mode",
  "agent.config",
  "agent.usage",
  "agent.info",
] as const satisfies readonly SessionEvent["type"][];

/**
 * `state` with `event` applied: a new object when the event changes it, else `state` itself.
 * @example
 * let state: AgentState | undefined;
 * for (const event of events) state = reduceAgentState(state, event);
 */
export function reduceAgentState(state: AgentState | undefined, event: SessionEvent): AgentState | undefined {
  const next = { ...state, seq: event.seq };
  switch (event.type) {
    case "agent.commands":
      return { ...next, commands: event.commands };
    case "agent.mode": {
      const availableModes = event.availableModes ?? state?.modes?.availableModes ?? [];
      return { ...next, modes: { currentModeId: event.currentModeId, availableModes } };
    }
    case "agent.config": {
      const model = event.configOptions.find((o) => o.category === "model")?.currentValue;
      const { model: _old, ...rest } = next;
      const modes = modesFollowing(state?.modes, event.configOptions);
      return {
        ...rest,
        configOptions: event.configOptions,
        ...(typeof model === "string" ? { model } : {}),
        ...(modes !== undefined ? { modes } : {}),
      };
    }
    case "agent.usage":
      return {
        ...next,
        usage: { used: event.used, size: event.size, ...(event.cost !== undefined ? { cost: event.cost } : {}) },
      };
    case "agent.info":
      return event.title !== undefined ? { ...next, title: event.title } : state;
    default:
      return state;
  }
}

/**
 * `modes` with the current mode a config option of category `mode` names, when it is one of them:
 * ACP's `mode` option and its `modes` are one setting shown twice, and an agent that confirms
 * the option (codex-acp answering `session/set_config_option`) need not send a `current_mode_update`.
 */
function modesFollowing(modes: AgentState["modes"], options: AgentConfigOption[]): AgentState["modes"] {
  const mode = options.find((o) => o.category === "mode")?.currentValue;
  if (modes === undefined || typeof mode !== "string" || mode === modes.currentModeId) return modes;
  return modes.availableModes.some((m) => m.id === mode) ? { ...modes, currentModeId: mode } : modes;
}

/**
 * What the sessions list shows of an agent's state: all but its commands and config options,
 * which make up nearly all of it (Claude Code's: 9.8 of 12.6 KB), so that a list of many agent
 * sessions stays small; `GET /v1/sessions/:id` and `subscribed` carry the whole state.
 */
export function listedAgentState(state: AgentState): AgentState {
  const { commands: _commands, configOptions: _configOptions, ...summary } = state;
  return summary;
}
