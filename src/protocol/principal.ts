/**
 * The kinds of caller that can own sessions and appear in audit events. A share link
 * (`share:ID`) owns nothing: it watches, and steers only one session (docs/security.md, "Share links").
 */
export const PRINCIPAL_KINDS = ["token", "device", "proxy", "plugin", "share"] as const;
export type PrincipalKind = (typeof PRINCIPAL_KINDS)[number];

/**
 * Who a caller is, immutably: `KIND:ID` — `token:NAME` for a configured token (its config name,
 * unique there and stable across restarts and reloads), `device:ID` for a paired device (the
 * random id pairing gave it, so a device paired again under a name is someone new),
 * `proxy:USER` for a trusted proxy's user, `plugin:ID` for a plugin, `share:ID` for a share link. Ownership and attribution compare it; names are
 * display only, and two kinds never share an id (docs/security.md, "Identities, roles and globs").
 */
export type PrincipalId = `${PrincipalKind}:${string}`;

/** The id of `kind`'s caller `id`. */
export function principalId(kind: PrincipalKind, id: string): PrincipalId {
  return `${kind}:${id}`;
}

/**
 * Who answered a permission request for a permission policy's rule: `rule:NAME` (`rule:timeout`
 * for the policy's `onTimeout` answer). Not a principal: it owns nothing and signs in nowhere;
 * it appears only as the `by.id` of `permission.resolved` (docs/agents.md, "Permission policy").
 */
export type RuleId = `rule:${string}`;

/** The id a permission answer by rule `name` is logged with. */
export function ruleId(name: string): RuleId {
  return `rule:${name}`;
}
