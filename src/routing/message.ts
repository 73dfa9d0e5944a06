import { z } from "zod";
import { ROUTING_LIMITS } from "./limits.js";
import { PEER_KINDS } from "./tiers.js";

/**
 * A channel name: ASCII letters, digits and `_ . : -`, starting with a letter or digit.
 * ASCII keeps the case-insensitive comparison unambiguous (no locale-dependent folding).
 */
export const ChannelNameSchema = z
  .string()
  .regex(
    new RegExp(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,${ROUTING_LIMITS.CHANNEL_CHARS - 1}}$`),
    `channel is 1-${ROUTING_LIMITS.CHANNEL_CHARS} ASCII letters, digits or _ . : - (starting with a letter or digit)`,
  );

// A lone surrogate cannot be percent-encoded into a session key (encodeURIComponent throws).
const LONE_SURROGATE = /\p{Cs}/u;

/** A string of well-formed Unicode (no lone surrogate), `min` to `max` characters. */
export function wellFormedString(min: number, max: number) {
  return z
    .string()
    .min(min, min === 1 ? "must not be empty" : `at least ${min} characters`)
    .max(max)
    .refine((s) => !LONE_SURROGATE.test(s), "must be well-formed Unicode (no lone surrogate)");
}

/** An account, peer, guild, team or role id: compared exactly (case-sensitive). */
export const IdSchema = wellFormedString(1, ROUTING_LIMITS.ID_CHARS);

export const PeerKindSchema = z.enum(PEER_KINDS);

/** Who the message is with: a direct chat, a group, or a channel (a thread is a peer whose `parentPeer` is the channel). */
export const PeerSchema = z.strictObject({ kind: PeerKindSchema, id: IdSchema });

export const RolesSchema = z
  .array(IdSchema)
  .min(1, "roles needs at least one role")
  .max(ROUTING_LIMITS.ROLES, `at most ${ROUTING_LIMITS.ROLES} roles`);

/**
 * An inbound channel message, the body of `POST /v1/route` and `POST /v1/messages`.
 * @example
 * InboundMessageSchema.parse({ channel: "discord", accountId: "work-bot",
 *   peer: { kind: "channel", id: "thread-42" }, parentPeer: { kind: "channel", id: "dev-chat" },
 *   guildId: "g-1", roles: ["maintainer"], text: "why does CI fail?", sender: { id: "u-7", name: "Ada" } });
 */
export const InboundMessageSchema = z
  .strictObject({
    channel: ChannelNameSchema,
    /** The bot account the message arrived on; absent means `"default"`. */
    accountId: IdSchema.optional(),
    peer: PeerSchema.optional(),
    /** For a thread: the channel or group it belongs to. */
    parentPeer: PeerSchema.optional(),
    guildId: IdSchema.optional(),
    teamId: IdSchema.optional(),
    /** The sender's roles in the guild. */
    roles: z.array(IdSchema).max(ROUTING_LIMITS.ROLES, `at most ${ROUTING_LIMITS.ROLES} roles`).optional(),
    text: z.string().min(1, "text must not be empty").max(ROUTING_LIMITS.TEXT_CHARS),
    sender: z
      .strictObject({ id: IdSchema, name: z.string().max(ROUTING_LIMITS.SENDER_NAME_CHARS).optional() })
      .optional(),
  })
  .superRefine((message, ctx) => {
    if (message.parentPeer !== undefined && message.peer === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["parentPeer"],
        message: "parentPeer is the parent of the message's peer (a thread's channel): it needs peer",
      });
    }
  });
export type InboundMessage = z.output<typeof InboundMessageSchema>;
