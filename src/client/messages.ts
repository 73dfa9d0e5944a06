/** The chat routing API's shapes: `POST /v1/route` and `POST /v1/messages` (docs/routing.md). */

/** A chat message for `HttpClient.route` and `HttpClient.deliver` (docs/routing.md). */
export interface InboundMessage {
  /** The chat platform, e.g. `"discord"` (compared case-insensitively). */
  channel: string;
  /** The bot account it arrived on; absent means `"default"`. */
  accountId?: string;
  peer?: { kind: "direct" | "group" | "channel"; id: string };
  /** For a thread: the channel or group it belongs to. */
  parentPeer?: { kind: "direct" | "group" | "channel"; id: string };
  guildId?: string;
  teamId?: string;
  /** The sender's roles in the guild. */
  roles?: string[];
  text: string;
  sender?: { id: string; name?: string };
}

/** Where a message goes: the answer of `POST /v1/route`. */
export interface RouteResult {
  agentId: string;
  /** The tier of the binding that matched, or `"default"` (no binding: the default agent). */
  matchedBy:
    "peer" | "parent-peer" | "peer-wildcard" | "guild-roles" | "guild" | "team" | "account" | "channel" | "default";
  /** The matching binding's index in the config's `bindings`; null for the default agent. */
  bindingIndex: number | null;
  sessionKey: string;
}

/** Where a delivered message went: the answer of `POST /v1/messages`. */
export interface Delivery extends RouteResult {
  sessionId: string;
  runId: string;
}
