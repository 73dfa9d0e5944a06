import { SwitchboardError } from "../protocol/index.js";

/**
 * The permissions a plugin can be granted: the one list the config schema and the policy below
 * both use, so the policy can never require one the config cannot grant. Not granted is denied.
 * `runCommandWithTimeout` and `writeConfigFile` gate those runtime methods; `readAllSessions`
 * widens `sessions.list`/`get` and `events.subscribe` from the plugin's own sessions to all.
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
