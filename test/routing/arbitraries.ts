/**
 * Random routing configs and messages for the property tests. Ids come from small numbered
 * pools (`p0`, `p1`, ...) whose width is drawn per config, so bindings collide with each other
 * and messages hit them; most messages are aimed at a random binding and then perturbed, so
 * every tier, wildcard, account rule and tie-break is exercised, not just "no match".
 */
import fc from "fast-check";
import type { Binding, BindingMatch, PeerKind, RoutableMessage, RoutingConfigInput } from "../../src/routing/index.js";
import { PEER_KINDS, SESSION_MODES } from "../../src/routing/index.js";

export const PROPERTY_AGENTS = ["a0", "a1", "a2", "a3", "echo"];

/** Spellings of three channels: they must route alike. */
const CHANNELS = ["discord", "Discord", "DISCORD", "slack", "Slack", "telegram"];

/** Present in `weight` of `weight + absentWeight` cases. */
function sometimes<T>(arb: fc.Arbitrary<T>, weight: number, absentWeight: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ arbitrary: fc.constant(undefined), weight: absentWeight }, { arbitrary: arb, weight });
}

/** A pool slot; the config's width folds it into `width` distinct ids. */
const slot = fc.nat({ max: 4095 });

interface RawPeer {
  kind: PeerKind;
  /** null: the wildcard "*". */
  slot: number | null;
}

interface RawMatch {
  channel: string;
  /** "implicit" = no accountId; "*", "default", or a pool slot. */
  account: "implicit" | "*" | "default" | number;
  peer: RawPeer | undefined;
  guild: number | undefined;
  roles: number[] | undefined;
  team: number | undefined;
}

const account = fc.oneof(
  { arbitrary: fc.constant("implicit" as const), weight: 4 },
  { arbitrary: fc.constant("*" as const), weight: 2 },
  { arbitrary: fc.constant("default" as const), weight: 1 },
  { arbitrary: slot, weight: 3 },
);

const rawMatch: fc.Arbitrary<RawMatch> = fc.record({
  channel: fc.constantFrom(...CHANNELS),
  account,
  peer: sometimes(
    fc.record({
      kind: fc.constantFrom(...PEER_KINDS),
      slot: fc.oneof({ arbitrary: fc.constant(null), weight: 1 }, { arbitrary: slot, weight: 3 }),
    }),
    1,
    1,
  ),
  guild: sometimes(slot, 1, 1),
  roles: sometimes(fc.array(slot, { minLength: 1, maxLength: 3 }), 1, 1),
  team: sometimes(slot, 1, 2),
});

const rawBinding = fc.record({
  agent: fc.nat({ max: PROPERTY_AGENTS.length - 1 }),
  match: rawMatch,
  session: sometimes(fc.constantFrom(...SESSION_MODES), 1, 2),
});
type RawBinding = typeof rawBinding extends fc.Arbitrary<infer T> ? T : never;

/** Id pool widths: 1 makes everything collide; 4096 makes nearly every id distinct. */
const width = fc.constantFrom(1, 2, 3, 8, 64, 4096);

export interface RawConfig {
  width: number;
  bindings: RawBinding[];
  hasDefault: boolean;
}

/**
 * Mostly small configs (quick to shrink), one in 200 with hundreds to thousands of bindings:
 * such a config costs as much to generate and compile as ~100 small ones, and 50 of them in the
 * property's 10,000 runs reach the thousands.
 */
export const rawConfig: fc.Arbitrary<RawConfig> = fc.record({
  width,
  bindings: fc.oneof(
    { arbitrary: fc.array(rawBinding, { maxLength: 40 }), weight: 199 },
    { arbitrary: fc.array(rawBinding, { minLength: 200, maxLength: 3000, size: "max" }), weight: 1 },
  ),
  hasDefault: fc.boolean(),
});

const id = (prefix: string, n: number, w: number) => `${prefix}${n % w}`;

/** The config file a raw config stands for. Roles without a guild are given a guild, so the config is valid. */
export function configOf(raw: RawConfig): RoutingConfigInput {
  const w = raw.width;
  const bindings = raw.bindings.map((b): Binding => {
    const m = b.match;
    const match: BindingMatch = { channel: m.channel };
    if (m.account !== "implicit") {
      match.accountId = typeof m.account === "number" ? id("acct", m.account, w) : m.account;
    }
    if (m.peer !== undefined) {
      match.peer = { kind: m.peer.kind, id: m.peer.slot === null ? "*" : id("p", m.peer.slot, w) };
    }
    if (m.guild !== undefined || m.roles !== undefined) match.guildId = id("g", m.guild ?? 0, w);
    if (m.roles !== undefined) match.roles = m.roles.map((r) => id("r", r, w));
    if (m.team !== undefined) match.teamId = id("t", m.team, w);
    const binding: Binding = { agentId: PROPERTY_AGENTS[b.agent]!, match };
    if (b.session !== undefined) binding.session = b.session;
    return binding;
  });
  return raw.hasDefault ? { bindings, defaultAgent: "a0" } : { bindings };
}

const FIELDS = ["channel", "accountId", "peer", "parentPeer", "guildId", "teamId", "roles"] as const;
type Field = (typeof FIELDS)[number];

const rawPeer = fc.record({ kind: fc.constantFrom(...PEER_KINDS), slot });

/** A message: random, or aimed at one binding and then perturbed. */
export const rawMessage = fc.record({
  /** The binding to aim at (modulo the number of bindings); undefined: a random message. */
  aim: sometimes(fc.nat(), 4, 1),
  /** Move the aimed-at peer to parentPeer, as for a message in a thread of that peer. */
  asThread: fc.boolean(),
  /** Fields taken from `random` instead of from the aimed-at binding. */
  perturb: fc.uniqueArray(fc.constantFrom(...FIELDS), { maxLength: 3 }),
  /** Roles added to the aimed-at binding's. */
  extraRoles: fc.array(slot, { maxLength: 2 }),
  channelCase: fc.constantFrom("as-is", "lower", "upper"),
  random: fc.record({
    channel: fc.constantFrom(...CHANNELS),
    account: sometimes(
      fc.oneof(
        slot.map((n) => n as number | "default" | "*"),
        fc.constantFrom("default" as const, "*" as const),
      ),
      1,
      1,
    ),
    peer: sometimes(rawPeer, 2, 1),
    parentPeer: sometimes(rawPeer, 1, 2),
    guild: sometimes(slot, 1, 1),
    team: sometimes(slot, 1, 1),
    roles: sometimes(fc.array(slot, { maxLength: 4 }), 1, 1),
  }),
});
export type RawMessage = typeof rawMessage extends fc.Arbitrary<infer T> ? T : never;

export function messageOf(raw: RawMessage, config: RoutingConfigInput, w: number): RoutableMessage {
  const r = raw.random;
  const random: RoutableMessage = { channel: r.channel };
  if (r.account !== undefined) random.accountId = typeof r.account === "number" ? id("acct", r.account, w) : r.account;
  if (r.peer !== undefined) random.peer = { kind: r.peer.kind, id: id("p", r.peer.slot, w) };
  if (r.parentPeer !== undefined) random.parentPeer = { kind: r.parentPeer.kind, id: id("p", r.parentPeer.slot, w) };
  if (r.guild !== undefined) random.guildId = id("g", r.guild, w);
  if (r.team !== undefined) random.teamId = id("t", r.team, w);
  if (r.roles !== undefined) random.roles = r.roles.map((n) => id("r", n, w));

  const bindings = config.bindings ?? [];
  let message: RoutableMessage = random;
  if (raw.aim !== undefined && bindings.length > 0) {
    const match = bindings[raw.aim % bindings.length]!.match;
    message = { ...random, channel: match.channel };
    if (match.accountId === undefined) delete message.accountId;
    else if (match.accountId !== "*") message.accountId = match.accountId;
    if (match.peer !== undefined) {
      const peer = match.peer.id === "*" ? { kind: match.peer.kind, id: random.peer?.id ?? "p0" } : match.peer;
      if (raw.asThread) message.parentPeer = peer;
      else message.peer = peer;
    }
    if (match.guildId !== undefined) message.guildId = match.guildId;
    if (match.teamId !== undefined) message.teamId = match.teamId;
    if (match.roles !== undefined) message.roles = [...match.roles, ...raw.extraRoles.map((n) => id("r", n, w))];
    for (const field of raw.perturb) overwrite(message, random, field);
  }
  if (raw.channelCase === "lower") message.channel = message.channel.toLowerCase();
  if (raw.channelCase === "upper") message.channel = message.channel.toUpperCase();
  return message;
}

function overwrite(message: RoutableMessage, random: RoutableMessage, field: Field): void {
  if (field === "channel") message.channel = random.channel;
  else if (random[field] === undefined) delete message[field];
  else Object.assign(message, { [field]: random[field] });
}

/**
 * Messages on which `match` matches and only bindings as wide or wider can: its own fields
 * with ids no config uses where it has wildcards, one message per role. The test's own copy
 * of the idea behind src/routing/unreachable.ts, to check that module against the reference.
 */
export function probesOf(match: BindingMatch): RoutableMessage[] {
  const probe: RoutableMessage = { channel: match.channel };
  if (match.accountId !== undefined) probe.accountId = match.accountId === "*" ? "unnamed-account" : match.accountId;
  if (match.peer !== undefined) {
    probe.peer = { kind: match.peer.kind, id: match.peer.id === "*" ? "unnamed-peer" : match.peer.id };
  }
  if (match.guildId !== undefined) probe.guildId = match.guildId;
  if (match.teamId !== undefined) probe.teamId = match.teamId;
  return match.roles === undefined ? [probe] : match.roles.map((role) => ({ ...probe, roles: [role] }));
}
