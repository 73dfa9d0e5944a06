/**
 * The routing rule of docs/routing.md, written as plainly as possible: look at every
 * binding, work out whether and in which tier it matches, keep the best. It shares no matching
 * code with src/routing (only types and the tier names), so the property test comparing the two
 * compares two independent readings of the rule. bench/routing.ts times it against the index.
 */
import type { BindingMatch, RoutingConfig } from "../../src/routing/bindings.js";
import { TIERS } from "../../src/routing/tiers.js";
import type { MatchedBy, PeerRef, RoutableMessage, Tier } from "../../src/routing/tiers.js";

export interface LinearRoute {
  agentId: string;
  matchedBy: MatchedBy;
  bindingIndex: number | null;
}

/** The route the rule gives `message` under `config`; null when nothing matches and there is no defaultAgent. */
export function linearResolve(config: RoutingConfig, message: RoutableMessage): LinearRoute | null {
  let best: { index: number; tier: Tier; rank: number } | null = null;
  for (let index = 0; index < config.bindings.length; index++) {
    const binding = config.bindings[index]!;
    const tier = tierOf(binding.match, message);
    if (tier === null) continue;
    const rank = TIERS.indexOf(tier);
    // Strictly better only: on a tie the earlier binding (already kept) wins.
    if (best === null || rank < best.rank) best = { index, tier, rank };
    // Nothing beats the first binding of the most specific tier.
    if (rank === 0) break;
  }
  if (best !== null) {
    return { agentId: config.bindings[best.index]!.agentId, matchedBy: best.tier, bindingIndex: best.index };
  }
  if (config.defaultAgent !== undefined) {
    return { agentId: config.defaultAgent, matchedBy: "default", bindingIndex: null };
  }
  return null;
}

/**
 * The tier in which `match` matches `message`, or null if it does not: every field the binding
 * specifies must match, and its most specific field names the tier.
 */
export function tierOf(match: BindingMatch, message: RoutableMessage): Tier | null {
  if (match.channel.toLowerCase() !== message.channel.toLowerCase()) return null;

  const account = message.accountId ?? "default";
  if (match.accountId === undefined) {
    if (account !== "default") return null;
  } else if (match.accountId !== "*" && match.accountId !== account) {
    return null;
  }
  if (match.guildId !== undefined && match.guildId !== message.guildId) return null;
  if (match.teamId !== undefined && match.teamId !== message.teamId) return null;
  if (match.roles !== undefined && !match.roles.some((role) => message.roles?.includes(role) === true)) return null;

  if (match.peer !== undefined) {
    if (match.peer.id === "*") return message.peer?.kind === match.peer.kind ? "peer-wildcard" : null;
    if (samePeer(match.peer, message.peer)) return "peer";
    if (samePeer(match.peer, message.parentPeer)) return "parent-peer";
    return null;
  }
  if (match.roles !== undefined) return "guild-roles";
  if (match.guildId !== undefined) return "guild";
  if (match.teamId !== undefined) return "team";
  if (match.accountId !== undefined && match.accountId !== "*") return "account";
  return "channel";
}

function samePeer(a: PeerRef, b: PeerRef | undefined): boolean {
  return b !== undefined && a.kind === b.kind && a.id === b.id;
}
