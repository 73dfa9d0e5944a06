import { compileRouting, configInvalidError, formatConfigIssue, RoutingTable } from "../routing/index.js";
import type { Router } from "../routing/index.js";
import { BUILT_IN_AGENTS } from "./agents.js";
import { loadConfigFile, parseConfig } from "./config.js";
import type { Config, ConfigInput } from "./config.js";

/** A validated config and what is compiled from it. Built whole or not at all. */
export interface Settings {
  config: Config;
  router: Router;
  warnings: string[];
}

/** Validates a config (file path or object) and compiles its routing; throws CONFIG_INVALID naming the field. */
export function buildSettings(source: string | ConfigInput | undefined): Settings {
  const raw: unknown = typeof source === "string" ? undefined : (source ?? {});
  const config = typeof source === "string" ? loadConfigFile(source) : parseConfig(raw);
  const compiled = compileRouting(config, {
    knownAgents: [...Object.keys(BUILT_IN_AGENTS), ...Object.keys(config.agents)],
    // Plugins register their agents once they run: bindings may name those.
    agentsFromPlugins: Object.keys(config.plugins ?? {}).length > 0,
  });
  if (!compiled.ok) throw configInvalidError(compiled.errors);
  return { config, router: compiled.router, warnings: compiled.warnings.map(formatConfigIssue) };
}

export { RoutingTable };
