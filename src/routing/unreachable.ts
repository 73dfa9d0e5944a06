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
 * Finds the bindings that can never win. The check is exact, not a heuristic: a binding B is
 * reachable iff it wins on one of its probe messages (below), and every binding listed as
 * shadowing it beats it on every message it matches.
 *
 * B's probes carry exactly B's fields: its channel; its account (none when B has none, an
 * unnamed one for "*"); its peer (an unnamed id of the same kind for a wildcard); its guildId
 * and teamId; and one of its roles (one probe per role). Any binding W that matches a probe
 * constrains only fields B also constrains, to values at least as wide (an unnamed id matches
 * only wildcards), so W matches every message B matches. If W beats B on the probe it beats
 * it everywhere: tiers are fixed by the binding except exact peers, and an exact peer W that
 * beats an exact peer B names the same peer, so both move together between `peer` and
 * `parent-peer`. With roles, each message B matches shares some role r with B, and the
 * winner of the probe for r matches it. Conversely, if B wins a probe, renaming the unnamed
 * ids to unused valid ids gives a real message it wins.
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
