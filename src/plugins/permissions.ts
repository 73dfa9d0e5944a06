import { SwitchboardError } from "../protocol/index.js";

/**
 * The permissions a plugin can be granted: THE list. The config schema builds its strict
 * `permissions` object from it and the policy below names only members of it, so the policy
 * can never require a permission that the config cannot grant (OpenClaw PR #9006 had exactly
 * that mismatch). Everything not granted is denied: plugins are restricted by default.
 *
 * `runCommandWithTimeout` and `writeConfigFile` gate the runtime methods of those names;
 * `readAllSessions` widens what `sessions.list`/`get` and `events.subscribe` see from the
 * sessions the plugin owns (those its inbound messages created) to every session.
 */
export const PLUGIN_PERMISSIONS = ["runCommandWithTimeout", "writeConfigFile", "readAllSessions"] as const;
export type PluginPermission = (typeof PLUGIN_PERMISSIONS)[number];

export type PluginPermissions = { [P in PluginPermission]?: boolean | undefined };

export function isPluginPermission(name: string): name is PluginPermission {
  return (PLUGIN_PERMISSIONS as readonly string[]).includes(name);
}

/** The config path that grants `permission` to plugin `pluginId`, e.g. `plugins.entries.x.permissions.writeConfigFile`. */
export function permissionConfigPath(pluginId: string, permission: PluginPermission): string {
  return `plugins.entries.${pluginId}.permissions.${permission}`;
}

/** The permissions granted (set to `true`), in list order. */
export function grantedPermissions(permissions: PluginPermissions | undefined): PluginPermission[] {
  return PLUGIN_PERMISSIONS.filter((p) => permissions?.[p] === true);
}

/**
 * Throws `PLUGIN_PERMISSION_DENIED` unless `permissions` grants `permission`. The message names
 * the permission and the exact config path that grants it.
 */
export function requirePermission(
  pluginId: string,
  permissions: PluginPermissions | undefined,
  permission: PluginPermission,
): void {
  if (permissions?.[permission] === true) return;
  const configPath = permissionConfigPath(pluginId, permission);
  throw new SwitchboardError(
    "PLUGIN_PERMISSION_DENIED",
    `plugin "${pluginId}" lacks the permission "${permission}"; grant it with ${configPath}: true`,
    { permission, configPath },
  );
}
