import { LIMITS } from "../protocol/limits.js";

/**
 * Bounds on routing config and inbound messages. Every list and string a client or a config
 * file can make long has one, so validation rejects what resolution would otherwise have to
 * carry (STYLE.md: every bound is a named constant).
 */
export const ROUTING_LIMITS = {
  /** Bindings in one config. The index is O(1) per resolve at any count; this bounds memory and compile time. */
  BINDINGS: 100_000,
  /** Characters in an id: account, peer, guild, team, role, sender. */
  ID_CHARS: 256,
  /** Characters in an agent id (the same bound as `POST /v1/sessions` `agent`). */
  AGENT_ID_CHARS: 200,
  /** Characters in a channel name. */
  CHANNEL_CHARS: 64,
  /** Roles on one binding or one message. */
  ROLES: 256,
  /** Characters in a message's text (the same bound as a prompt). */
  TEXT_CHARS: LIMITS.STRING_BYTES,
  /** Characters in a sender's display name. */
  SENDER_NAME_CHARS: LIMITS.NAME_CHARS,
} as const;
