import { z } from "zod";

/**
 * What an agent last said of itself (ACP `available_commands_update`, `current_mode_update`,
 * `config_option_update`, `usage_update`, `session_info_update` and the `modes`/`configOptions`
 * of `session/new` and `session/load`): the shapes its `agent.*` events carry, and the state a
 * session shows as `SessionInfo.agentState`, reduced from those events by `reduceAgentState`
 * (agent-state-reducer.ts: the gateway keeps it in the session's record; a client may reduce the
 * events it reads the same way).
 */

/** A slash command the agent offers (ACP `AvailableCommand`); `hint`: what to type after it. */
export const AgentCommand = z.object({
  name: z.string(),
  description: z.string(),
  hint: z.string().optional(),
});
export type AgentCommand = z.infer<typeof AgentCommand>;

/** A mode the agent can work in (ACP `SessionMode`: "ask", "code", "plan"...). */
export const AgentMode = z.object({ id: z.string(), name: z.string(), description: z.string().optional() });
export type AgentMode = z.infer<typeof AgentMode>;

/** One value of a `select` config option; `group`: the name of the group it is listed under. */
export const AgentConfigValue = z.object({
  value: z.string(),
  name: z.string(),
  description: z.string().optional(),
  group: z.string().optional(),
});

/**
 * A setting of the agent's session (ACP `SessionConfigOption`): the model picker has category
 * `model`. `type`: `select` (a value of `options`) or `boolean`; another type is kept as sent.
 */
export const AgentConfigOption = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().optional(),
  category: z.string().optional(),
  type: z.string(),
  currentValue: z.union([z.string(), z.boolean()]).nullable(),
  options: z.array(AgentConfigValue).optional(),
});
export type AgentConfigOption = z.infer<typeof AgentConfigOption>;

/** The agent's context window (tokens used of `size`) and the session's cost so far (ACP `usage_update`). */
export const AgentUsage = z.object({
  used: z.number(),
  size: z.number(),
  cost: z.object({ amount: z.number(), currency: z.string() }).optional(),
});
export type AgentUsage = z.infer<typeof AgentUsage>;

/** `SessionInfo.agentState`: each field as the agent's last update of it left it; absent until the agent said it. */
export const AgentState = z.object({
  /** The modes the agent offers and the one it is in. */
  modes: z.object({ currentModeId: z.string(), availableModes: z.array(AgentMode) }).optional(),
  /** The current value of the option with category `model`, when the agent has one. */
  model: z.string().optional(),
  configOptions: z.array(AgentConfigOption).optional(),
  commands: z.array(AgentCommand).optional(),
  usage: AgentUsage.optional(),
  /** The conversation's title the agent chose (null: it cleared it). */
  title: z.string().nullable().optional(),
  /** The seq of the newest event this state took in (what a viewer has it up to). */
  seq: z.number().int().nonnegative(),
});
export type AgentState = z.infer<typeof AgentState>;
