import type { BindingMatch } from "./bindings.js";
import type { BindingIndex, IndexMatch } from "./binding-index.js";
import { ROUTING_LIMITS } from "./limits.js";
import { WILDCARD } from "./tiers.js";
import type { RoutableMessage } from "./tiers.js";

/** A binding that never wins, and the bindings that take its messages. */
export interface UnreachableBinding {
  bindingIndex: number;
  shadowedBy: IndexMatch[];
}

/**
 * An id longer than any valid one, so it equals no id in a validated config: it stands for
 * "some account" or "some peer" that no binding names.
 */
const UNNAMED_ID = "\u0000".repeat(ROUTING_LIMITS.ID_CHARS + 1);

/**
 * Finds the bindings that can never win, exactly: B is reachable iff it wins one of its probes,
 * messages with exactly B's fields (unnamed ids for "*" and wildcards, one probe per role). A W
 * matching a probe constrains only B's fields, at least as widely, so matches all B matches;
 * tiers move together (an exact-peer W beating B names the same peer), so W beating B on the
 * probe beats it everywhere. A won probe with unnamed ids renamed is a real message B wins.
 */
export function findUnreachable(index: BindingIndex, matches: readonly BindingMatch[]): UnreachableBinding[] {
  const unreachable: UnreachableBinding[] = [];
  matches.forEach((match, bindingIndex) => {
    const shadowedBy: IndexMatch[] = [];
    for (const probe of probesOf(match)) {
      const winner = index.lookup(probe);
      // The binding matches its own probe, so something always wins it.
      if (winner === null || winner.bindingIndex === bindingIndex) return;
      if (!shadowedBy.some((s) => s.bindingIndex === winner.bindingIndex)) shadowedBy.push(winner);
    }
    unreachable.push({ bindingIndex, shadowedBy });
  });
  return unreachable;
}

function probesOf(match: BindingMatch): RoutableMessage[] {
  const probe: RoutableMessage = { channel: match.channel };
  if (match.accountId !== undefined) probe.accountId = match.accountId === WILDCARD ? UNNAMED_ID : match.accountId;
  if (match.peer !== undefined) {
    probe.peer = match.peer.id === WILDCARD ? { kind: match.peer.kind, id: UNNAMED_ID } : match.peer;
  }
  if (match.guildId !== undefined) probe.guildId = match.guildId;
  if (match.teamId !== undefined) probe.teamId = match.teamId;
  if (match.roles === undefined) return [probe];
  return [...new Set(match.roles)].map((role) => ({ ...probe, roles: [role] }));
}
