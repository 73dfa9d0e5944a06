import { z } from "zod";
import { accountOf, channelKey, PEER_KINDS } from "./tiers.js";
import type { PeerKind, RoutableMessage } from "./tiers.js";

/**
 * How a binding groups messages into agent sessions:
 * - `per-peer` (the default): one session per conversation: channel, account and peer. The same
 *   peer always reaches the same session; each thread is its own peer.
 * - `per-channel`: one session per channel and account, shared by all its peers.
 * - `main`: one session for the agent, shared by everything routed to it with this mode.
 */
export const SESSION_MODES = ["per-peer", "per-channel", "main"] as const;
export type SessionMode = (typeof SESSION_MODES)[number];
export const SessionModeSchema = z.enum(SESSION_MODES);

/** The mode of a binding without `session`, and of routes to `defaultAgent`. */
export const DEFAULT_SESSION_MODE: SessionMode = "per-peer";

/**
 * What a session key names; `parseSessionKey` returns it. `channel` is lower-cased (channel
 * names compare case-insensitively) and `accountId` is `"default"` for messages without one.
 */
export type SessionScope =
  | { agentId: string; scope: "main" }
  | { agentId: string; scope: "channel"; channel: string; accountId: string }
  | { agentId: string; scope: "peer"; channel: string; accountId: string; peer: { kind: PeerKind; id: string } };

// Each variable part is percent-encoded (encodeURIComponent), so it never contains ":" and a
// key splits back into exactly the parts it was made of: different parts, different keys.
const enc = encodeURIComponent;

/**
 * The session key of a routed message (every `<part>` percent-encoded): `main` gives
 * `agent:<agentId>:main`; `per-channel` `agent:<agentId>:channel:<channel>:<accountId>`;
 * `per-peer` `agent:<agentId>:peer:<channel>:<accountId>:<peerKind>:<peerId>` (per-channel without a peer).
 * @example
 * sessionKey({ agentId: "coder", mode: "per-peer", message: { channel: "Discord", peer: { kind: "direct", id: "u:1" } } });
 * // => "agent:coder:peer:discord:default:direct:u%3A1"
 */
export function sessionKey(options: { agentId: string; mode: SessionMode; message: RoutableMessage }): string {
  const { agentId, mode, message } = options;
  const agent = `agent:${enc(agentId)}`;
  switch (mode) {
    case "main":
      return `${agent}:main`;
    case "per-channel":
      return `${agent}:channel:${enc(channelKey(message.channel))}:${enc(accountOf(message))}`;
    case "per-peer": {
      const { peer } = message;
      if (peer === undefined) return `${agent}:channel:${enc(channelKey(message.channel))}:${enc(accountOf(message))}`;
      return `${agent}:peer:${enc(channelKey(message.channel))}:${enc(accountOf(message))}:${peer.kind}:${enc(peer.id)}`;
    }
  }
}

/** Splits a key made by `sessionKey` back into its parts; `null` when it is not one. */
export function parseSessionKey(key: string): SessionScope | null {
  const parts = key.split(":");
  if (parts[0] !== "agent" || parts.length < 3) return null;
  const decoded = decodeParts(parts);
  if (decoded === null) return null;
  const [, agentId = "", scope, ...rest] = decoded;
  if (scope === "main" && rest.length === 0) return { agentId, scope };
  if (scope === "channel" && rest.length === 2) {
    const [channel = "", accountId = ""] = rest;
    return { agentId, scope, channel, accountId };
  }
  if (scope === "peer" && rest.length === 4) {
    const [channel = "", accountId = "", kind = "", id = ""] = rest;
    if (!isPeerKind(kind)) return null;
    return { agentId, scope, channel, accountId, peer: { kind, id } };
  }
  return null;
}

function decodeParts(parts: string[]): string[] | null {
  try {
    return parts.map((part) => decodeURIComponent(part));
  } catch (error) {
    // A malformed %-escape means the key was not made by sessionKey: report "not a key".
    if (error instanceof URIError) return null;
    throw error;
  }
}

function isPeerKind(kind: string): kind is PeerKind {
  return (PEER_KINDS as readonly string[]).includes(kind);
}
