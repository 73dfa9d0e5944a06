import { z } from "zod";
import { SwitchboardError } from "../protocol/index.js";
import { PLUGIN_PERMISSIONS, type PluginPermission } from "./permissions.js";

/**
 * Plugin ids become folder names (`<dataDir>/plugins/<id>/`) and config paths, so they are
 * restricted to lower-case letters, digits, `-` and `_`: no dots, no slashes, no `..`.
 */
export const PLUGIN_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const PLUGIN_ID_RULE = "plugin ids are 1-63 lower-case letters, digits, - and _, starting with a letter or digit";
export const PluginId = z.string().regex(PLUGIN_ID_PATTERN, PLUGIN_ID_RULE);

/** Longest `path` of a plugin entry. */
const PLUGIN_PATH_CHARS = 4096;
/** Largest serialized `config` of one plugin entry. */
const PLUGIN_CONFIG_BYTES = 256 * 1024;

const validPermissionNames = PLUGIN_PERMISSIONS.join(", ");

/** `{runCommandWithTimeout?: boolean, writeConfigFile?: boolean}`, built from the one list. */
export const PluginPermissionsSchema = z.strictObject(
  Object.fromEntries(PLUGIN_PERMISSIONS.map((p) => [p, z.boolean().optional()])) as Record<
    PluginPermission,
    z.ZodOptional<z.ZodBoolean>
  >,
  {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown permission ${issue.keys.map((k) => `"${k}"`).join(", ")}; valid permissions are: ${validPermissionNames}`
        : undefined,
  },
);

export const PluginEntrySchema = z.strictObject({
  /** The plugin's folder (holding `package.json` with `main`, or `index.mjs`/`index.js`) or its entry file. Relative paths resolve against the gateway's base dir. */
  path: z.string().min(1).max(PLUGIN_PATH_CHARS),
  /** Default true. A disabled plugin is listed as `stopped`. */
  enabled: z.boolean().optional(),
  /** Free-form settings handed to the plugin as `api.config.get()`. */
  config: z
    .record(z.string(), z.unknown())
    .refine(
      (c) => JSON.stringify(c).length <= PLUGIN_CONFIG_BYTES,
      `a plugin's config is at most ${PLUGIN_CONFIG_BYTES} bytes of JSON`,
    )
    .optional(),
  /** Dangerous runtime APIs this plugin may call. Everything is denied unless granted here. */
  permissions: PluginPermissionsSchema.optional(),
  /**
   * Default false. Opens `/hooks/<id>/…` to callers without a token (a chat platform's or a
   * forge's webhooks): the plugin's HTTP hook gets them with `public: true`, and must check them
   * itself (a signature over `rawBody`, a shared secret).
   */
  publicHooks: z.boolean().optional(),
});
export type PluginEntry = z.infer<typeof PluginEntrySchema>;

/** The `plugins` section of the gateway config. */
export const PluginsConfigSchema = z.strictObject({
  entries: z
    .record(PluginId, PluginEntrySchema, {
      error: (issue) => (issue.code === "invalid_key" ? `invalid plugin id: ${PLUGIN_ID_RULE}` : undefined),
    })
    .default({}),
});
export type PluginsConfig = z.infer<typeof PluginsConfigSchema>;

/**
 * Parses the `plugins` section (`undefined` = no plugins). Throws `CONFIG_INVALID` whose
 * message names each wrong field by its full path, e.g.
 * `plugins.entries.x.permissions: unknown permission "runCommand"; valid permissions are: ...`.
 */
export function parsePluginsConfig(raw: unknown): PluginsConfig {
  const result = PluginsConfigSchema.safeParse(raw ?? {});
  if (result.success) return result.data;
  const message = result.error.issues
    .slice(0, 5)
    .map((i) => `${["plugins", ...i.path.map(String)].join(".")}: ${i.message}`)
    .join("; ");
  throw new SwitchboardError("CONFIG_INVALID", message);
}
