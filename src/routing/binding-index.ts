import type { BindingMatch } from "./bindings.js";
import { accountOf, channelKey, DEFAULT_ACCOUNT, WILDCARD } from "./tiers.js";
import type { PeerKind, RoutableMessage, Tier } from "./tiers.js";

/** The index's answer: the winning binding's position in the config and the tier it matched in. */
export interface IndexMatch {
  bindingIndex: number;
  tier: Tier;
}

/** A binding as the index keeps it: its position and the fields a hash lookup does not check. */
interface Candidate {
  readonly index: number;
  readonly guildId: string | undefined;
  readonly teamId: string | undefined;
  readonly roles: ReadonlySet<string> | undefined;
}

/** Candidates under one key, in config order. */
type Bucket = Candidate[];

/**
 * The bindings of one channel and one account scope, by tier key. Maps are created on first
 * use: a config with one binding per account should not pay for seven empty maps per account.
 */
interface ScopeIndex {
  /** Exact peers, by kind then id: read for tier `peer` (message peer) and `parent-peer` (message parentPeer). */
  peer?: Partial<Record<PeerKind, Map<string, Bucket>>>;
  peerWildcard?: Partial<Record<PeerKind, Bucket>>;
  /** By guild, then by each role of the binding (a binding with three roles sits in three buckets). */
  guildRoles?: Map<string, Map<string, Bucket>>;
  guild?: Map<string, Bucket>;
  team?: Map<string, Bucket>;
  /** Bindings whose most specific field is an explicit accountId (only in a named account's scope). */
  account?: Bucket;
  /** Bindings with nothing more specific than channel (implicit "default" account, or "*"). */
  channel?: Bucket;
}

interface ChannelIndex {
  /** Bindings scoped to one account: an explicit accountId, or none (= "default"). */
  readonly byAccount: Map<string, ScopeIndex>;
  /** Bindings with accountId "*". */
  anyAccount: ScopeIndex | undefined;
}

/**
 * The hash index behind `Router.resolve`: a few Map lookups per tier, never a scan; immutable. It
 * answers what the linear rule does (test/routing/linear-reference.ts, property test): each binding sits in the buckets of its channel, account scope ("default" when it has
 * none, or "*") and most specific field, so in one tier only; a lookup for tier T reads the
 * message's channel, account and "*" buckets under its key for T, checks the binding's other
 * fields (guildId, teamId, roles), and takes the smallest config index; tiers go most specific
 * first. Two bindings share a bucket only if they differ just in guildId, teamId or roles.
 */
export class BindingIndex {
  private constructor(
    private readonly channels: ReadonlyMap<string, ChannelIndex>,
    /** Number of bindings indexed. */
    readonly size: number,
  ) {}

  /** Indexes `matches` (already validated by `BindingMatchSchema`); position i is binding index i. */
  static build(matches: readonly BindingMatch[]): BindingIndex {
    const channels = new Map<string, ChannelIndex>();
    matches.forEach((match, index) => {
      const key = channelKey(match.channel);
      let channel = channels.get(key);
      if (channel === undefined) {
        channel = { byAccount: new Map(), anyAccount: undefined };
        channels.set(key, channel);
      }
      const candidate: Candidate = {
        index,
        guildId: match.guildId,
        teamId: match.teamId,
        roles: match.roles === undefined ? undefined : new Set(match.roles),
      };
      place(scopeFor(channel, match.accountId), match, candidate);
    });
    return new BindingIndex(channels, matches.length);
  }

  /** The first binding of the most specific tier that matches `message`, or null when none does. */
  lookup(message: RoutableMessage): IndexMatch | null {
    const channel = this.channels.get(channelKey(message.channel));
    if (channel === undefined) return null;
    const scoped = channel.byAccount.get(accountOf(message));
    const any = channel.anyAccount;
    const { peer, parentPeer, guildId, teamId, roles } = message;
    let found: number;

    if (peer !== undefined) {
      found = firstOf(scoped?.peer?.[peer.kind]?.get(peer.id), any?.peer?.[peer.kind]?.get(peer.id), message);
      if (found >= 0) return { bindingIndex: found, tier: "peer" };
    }
    if (parentPeer !== undefined) {
      const { kind, id } = parentPeer;
      found = firstOf(scoped?.peer?.[kind]?.get(id), any?.peer?.[kind]?.get(id), message);
      if (found >= 0) return { bindingIndex: found, tier: "parent-peer" };
    }
    if (peer !== undefined) {
      found = firstOf(scoped?.peerWildcard?.[peer.kind], any?.peerWildcard?.[peer.kind], message);
      if (found >= 0) return { bindingIndex: found, tier: "peer-wildcard" };
    }
    if (guildId !== undefined) {
      if (roles !== undefined) {
        const scopedRoles = scoped?.guildRoles?.get(guildId);
        const anyRoles = any?.guildRoles?.get(guildId);
        if (scopedRoles !== undefined || anyRoles !== undefined) {
          found = -1;
          for (const role of roles) {
            found = earliest(found, firstOf(scopedRoles?.get(role), anyRoles?.get(role), message));
          }
          if (found >= 0) return { bindingIndex: found, tier: "guild-roles" };
        }
      }
      found = firstOf(scoped?.guild?.get(guildId), any?.guild?.get(guildId), message);
      if (found >= 0) return { bindingIndex: found, tier: "guild" };
    }
    if (teamId !== undefined) {
      found = firstOf(scoped?.team?.get(teamId), any?.team?.get(teamId), message);
      if (found >= 0) return { bindingIndex: found, tier: "team" };
    }
    found = firstOf(scoped?.account, undefined, message);
    if (found >= 0) return { bindingIndex: found, tier: "account" };
    found = firstOf(scoped?.channel, any?.channel, message);
    if (found >= 0) return { bindingIndex: found, tier: "channel" };
    return null;
  }
}

function scopeFor(channel: ChannelIndex, accountId: string | undefined): ScopeIndex {
  if (accountId === WILDCARD) return (channel.anyAccount ??= {});
  const account = accountId ?? DEFAULT_ACCOUNT;
  let scope = channel.byAccount.get(account);
  if (scope === undefined) {
    scope = {};
    channel.byAccount.set(account, scope);
  }
  return scope;
}

/** Puts the candidate under its tier key: the binding's most specific field (see the class comment, step 1). */
function place(scope: ScopeIndex, match: BindingMatch, candidate: Candidate): void {
  const { peer, guildId, roles, teamId, accountId } = match;
  if (peer !== undefined) {
    if (peer.id === WILDCARD) {
      const wildcards = (scope.peerWildcard ??= {});
      (wildcards[peer.kind] ??= []).push(candidate);
    } else {
      const byKind = (scope.peer ??= {});
      push((byKind[peer.kind] ??= new Map()), peer.id, candidate);
    }
  } else if (guildId !== undefined && roles !== undefined) {
    const byGuild = (scope.guildRoles ??= new Map());
    let byRole = byGuild.get(guildId);
    if (byRole === undefined) {
      byRole = new Map();
      byGuild.set(guildId, byRole);
    }
    // A binding listing a role twice must still sit in that role's bucket once.
    for (const role of new Set(roles)) push(byRole, role, candidate);
  } else if (guildId !== undefined) {
    push((scope.guild ??= new Map()), guildId, candidate);
  } else if (teamId !== undefined) {
    push((scope.team ??= new Map()), teamId, candidate);
  } else if (accountId !== undefined && accountId !== WILDCARD) {
    (scope.account ??= []).push(candidate);
  } else {
    (scope.channel ??= []).push(candidate);
  }
}

function push(map: Map<string, Bucket>, key: string, candidate: Candidate): void {
  const bucket = map.get(key);
  if (bucket === undefined) map.set(key, [candidate]);
  else bucket.push(candidate);
}

/** Smallest binding index of the first passing candidate in either bucket; -1 when neither has one. */
function firstOf(a: Bucket | undefined, b: Bucket | undefined, message: RoutableMessage): number {
  return earliest(a === undefined ? -1 : firstPassing(a, message), b === undefined ? -1 : firstPassing(b, message));
}

function firstPassing(bucket: Bucket, message: RoutableMessage): number {
  for (const candidate of bucket) if (restMatches(candidate, message)) return candidate.index;
  return -1;
}

function earliest(a: number, b: number): number {
  if (a < 0) return b;
  if (b < 0) return a;
  return a < b ? a : b;
}

/** The fields a bucket key does not cover (step 3): guildId, teamId and roles. */
function restMatches(candidate: Candidate, message: RoutableMessage): boolean {
  if (candidate.guildId !== undefined && candidate.guildId !== message.guildId) return false;
  if (candidate.teamId !== undefined && candidate.teamId !== message.teamId) return false;
  if (candidate.roles !== undefined) {
    const { roles } = message;
    if (roles === undefined) return false;
    for (const role of roles) if (candidate.roles.has(role)) return true;
    return false;
  }
  return true;
}
