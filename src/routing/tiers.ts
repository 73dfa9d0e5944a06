/**
 * The routing tiers and the small matching helpers shared by the index and the config checks.
 * docs/routing.md defines the rule and explains it with examples.
 */

/**
 * The tiers, most specific first. A message goes to the first binding (in config order) of the
 * first tier that has a matching binding. These strings are the `matchedBy` words on the wire.
 */
export const TIERS = [
  "peer",
  "parent-peer",
  "peer-wildcard",
  "guild-roles",
  "guild",
  "team",
  "account",
  "channel",
] as const;
export type Tier = (typeof TIERS)[number];

/** `matchedBy` of a resolved route: the tier of the winning binding, or `default` for `defaultAgent`. */
export type MatchedBy = Tier | "default";

/** The account a message is on when it names none; a binding without `accountId` matches only it. */
export const DEFAULT_ACCOUNT = "default";

/** In a binding's `accountId`: any account. In a binding's `peer.id`: any peer of that kind. */
export const WILDCARD = "*";

export const PEER_KINDS = ["direct", "group", "channel"] as const;
export type PeerKind = (typeof PEER_KINDS)[number];

export interface PeerRef {
  kind: PeerKind;
  id: string;
}

/**
 * The routing-relevant part of an inbound message. Every `InboundMessage` is one; tests and
 * benchmarks build these directly.
 */
export interface RoutableMessage {
  channel: string;
  accountId?: string | undefined;
  peer?: PeerRef | undefined;
  parentPeer?: PeerRef | undefined;
  guildId?: string | undefined;
  teamId?: string | undefined;
  roles?: readonly string[] | undefined;
}

/**
 * Channel names compare case-insensitively: this is the one normalisation both sides of a
 * comparison go through. Channel names are ASCII (the schema says so), so lower-casing is
 * unambiguous.
 */
export function channelKey(channel: string): string {
  return channel.toLowerCase();
}

/** The account a message is on: its `accountId`, or `"default"` when it names none. */
export function accountOf(message: RoutableMessage): string {
  return message.accountId ?? DEFAULT_ACCOUNT;
}
