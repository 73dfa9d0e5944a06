import { compileRouting, configInvalidError, formatConfigIssue, RoutingTable } from "../../routing/index.js";
import type { Router } from "../../routing/index.js";
import { BUILT_IN_AGENTS } from "../agents.js";
import { loadConfigFile, parseConfig } from "./config.js";
import type { Config, ConfigInput } from "./config.js";

/** A validated config and what is compiled from it. Built whole or not at all. */
export interface Settings {
  config: Config;
  router: Router;
  warnings: string[];
}

/**
 * Validates a config (file path or object) and compiles its routing; throws CONFIG_INVALID naming
 * the field. `pluginAgents`: the agents plugins registered so far, which bindings may name
 * without a warning.
 */
export function buildSettings(source: string | ConfigInput | undefined, pluginAgents: Iterable<string> = []): Settings {
  const raw: unknown = typeof source === "string" ? undefined : (source ?? {});
  const config = typeof source === "string" ? loadConfigFile(source) : parseConfig(raw);
  const compiled = compileRouting(config, routingOptions(config, pluginAgents));
  if (!compiled.ok) throw configInvalidError(compiled.errors);
  return { config, router: compiled.router, warnings: compiled.warnings.map(formatConfigIssue) };
}

/**
 * The warnings of a config already built, once plugins registered `pluginAgents`: at start they
 * are said after the plugins started, so that a binding naming an agent a plugin provides is
 * not warned about (it was, at every start and reload).
 */
export function configWarnings(config: Config, pluginAgents: Iterable<string>): string[] {
  const compiled = compileRouting(config, routingOptions(config, pluginAgents));
  return compiled.ok ? compiled.warnings.map(formatConfigIssue) : [];
}

function routingOptions(config: Config, pluginAgents: Iterable<string>) {
  return {
    knownAgents: [...Object.keys(BUILT_IN_AGENTS), ...Object.keys(config.agents), ...pluginAgents],
    // Plugins register their agents once they run: bindings may name those.
    agentsFromPlugins: Object.keys(config.plugins ?? {}).length > 0,
  };
}

export { RoutingTable };
