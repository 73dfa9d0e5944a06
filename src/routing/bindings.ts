import { z } from "zod";
import { ROUTING_LIMITS } from "./limits.js";
import { ChannelNameSchema, IdSchema, PeerSchema, RolesSchema, wellFormedString } from "./message.js";
import { SessionModeSchema } from "./session-key.js";
import { WILDCARD } from "./tiers.js";

/** An agent id as bindings and `defaultAgent` name it (checked against the configured agents by `compileRouting`). */
export const AgentIdSchema = wellFormedString(1, ROUTING_LIMITS.AGENT_ID_CHARS);

/** An id where `"*"` would look like a wildcard but is not one: say so instead of matching a literal star. */
const literalId = (field: string) =>
  IdSchema.refine((id) => id !== WILDCARD, `${field} "*" is not a wildcard: omit ${field} to match any`);

/**
 * What a binding matches. Every field it specifies must match the message; `channel` is
 * required and compares case-insensitively. `accountId` absent matches only account
 * `"default"`, `"*"` matches any account. `peer.id` `"*"` matches any peer of that kind.
 * `roles` needs `guildId` and matches when the message has at least one of them.
 */
export const BindingMatchSchema = z
  .strictObject({
    channel: ChannelNameSchema,
    accountId: IdSchema.optional(),
    peer: PeerSchema.optional(),
    guildId: literalId("guildId").optional(),
    teamId: literalId("teamId").optional(),
    roles: RolesSchema.refine(
      (roles) => !roles.includes(WILDCARD),
      'role "*" is not a wildcard: omit roles to match any',
    ).optional(),
  })
  .superRefine((match, ctx) => {
    if (match.roles !== undefined && match.guildId === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["roles"],
        message: "roles needs guildId: roles are matched within one guild",
      });
    }
  });
export type BindingMatch = z.output<typeof BindingMatchSchema>;

/**
 * One binding: messages that match `match` go to `agentId`, grouped into sessions by `session`.
 *
 * @example
 * { agentId: "reviewer", match: { channel: "discord", guildId: "g-1", roles: ["maintainer"] }, session: "per-channel" }
 */
export const BindingSchema = z.strictObject({
  agentId: AgentIdSchema,
  match: BindingMatchSchema,
  /** Default `per-peer`. */
  session: SessionModeSchema.optional(),
});
export type Binding = z.output<typeof BindingSchema>;

/**
 * The routing part of the config file (`--config`); other top-level keys are ignored, so the
 * whole parsed file can be given to it.
 * @example
 * { "defaultAgent": "echo", "bindings": [
 *   { "agentId": "coder", "match": { "channel": "slack", "teamId": "T1" } },
 *   { "agentId": "support", "match": { "channel": "telegram", "accountId": "*" }, "session": "per-peer" } ] }
 */
export const RoutingConfigSchema = z.object({
  /** In order: within a tier, the first matching binding wins. */
  bindings: z
    .array(BindingSchema)
    .max(ROUTING_LIMITS.BINDINGS, `at most ${ROUTING_LIMITS.BINDINGS} bindings`)
    .default([]),
  /** Where messages go when no binding matches; without it they get NO_ROUTE. */
  defaultAgent: AgentIdSchema.optional(),
});
export type RoutingConfig = z.output<typeof RoutingConfigSchema>;
export type RoutingConfigInput = z.input<typeof RoutingConfigSchema>;
