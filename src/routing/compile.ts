import type { z } from "zod";
import { SwitchboardError } from "../protocol/errors.js";
import { RoutingConfigSchema } from "./bindings.js";
import type { Binding } from "./bindings.js";
import { BindingIndex } from "./binding-index.js";
import { IndexedRouter } from "./router.js";
import type { Router } from "./router.js";
import { findUnreachable } from "./unreachable.js";

/** Agent ids that exist whatever the config says. */
export const BUILTIN_AGENT_IDS: readonly string[] = ["echo"];

/** Most issues one compile reports; past it, one last issue says how many more there were. */
export const MAX_REPORTED_ISSUES = 100;

/**
 * One problem in the routing config. `path` says where (`bindings[3].match.roles`,
 * `defaultAgent`); `bindingIndex` and `field` are the same place split for programs
 * (`3` and `match.roles`; null and `defaultAgent` outside the bindings; field `""` for a
 * binding as a whole).
 */
export interface ConfigIssue {
  path: string;
  bindingIndex: number | null;
  field: string;
  message: string;
}

export interface CompileOptions {
  /** Ids of the configured agents; `echo` is always known. */
  knownAgents: Iterable<string>;
  /**
   * Plugins may register more agents once they run (the config has plugins): an agent id that
   * is not known is then a warning, not an error — a message routed to it while no plugin
   * provides it is refused with AGENT_NOT_FOUND.
   */
  agentsFromPlugins?: boolean;
}

/**
 * Errors make the config unusable (the caller keeps its previous Router); warnings do not
 * (today: bindings that can never win).
 */
export type CompileResult =
  { ok: true; router: Router; warnings: ConfigIssue[] } | { ok: false; errors: ConfigIssue[] };

/**
 * Validates the routing part of a parsed config and builds its Router. Errors: schema errors (roles
 * without guildId, a `"*"` guildId/teamId/role, ...), unknown agent ids; warnings: bindings that never win.
 * @example
 * const bindings = [{ agentId: "coder", match: { channel: "slack", teamId: "T1" } }];
 * const result = compileRouting({ defaultAgent: "echo", bindings }, { knownAgents: ["coder"] });
 * if (result.ok) result.router.resolve({ channel: "Slack", teamId: "T1" }); // => coder, matchedBy "team"
 */
export function compileRouting(config: unknown, options: CompileOptions): CompileResult {
  const parsed = RoutingConfigSchema.safeParse(config);
  // Agent ids are checked on the raw input too, so one pass reports schema and agent errors together.
  const unknown = unknownAgents(config, new Set([...BUILTIN_AGENT_IDS, ...options.knownAgents]), options);
  const agentErrors = options.agentsFromPlugins ? [] : unknown;
  if (!parsed.success || agentErrors.length > 0) {
    const schemaErrors = parsed.success ? [] : parsed.error.issues.flatMap(fromZodIssue);
    return { ok: false, errors: capped(inConfigOrder([...schemaErrors, ...agentErrors])) };
  }
  const routing = parsed.data;

  const matches = routing.bindings.map((binding) => binding.match);
  const index = BindingIndex.build(matches);
  const warnings = findUnreachable(index, matches).map(({ bindingIndex, shadowedBy }) =>
    bindingIssue(
      bindingIndex,
      "match",
      `never used: every message it matches goes first to ${shadowedBy
        .map((s) => `bindings[${s.bindingIndex}] (${s.tier})`)
        .join(" or ")}`,
    ),
  );
  // (With agentsFromPlugins, the unknown agents: warnings.)
  const agentWarnings = options.agentsFromPlugins ? unknown : [];
  return {
    ok: true,
    router: new IndexedRouter(frozen(routing.bindings), routing.defaultAgent, index),
    warnings: capped(inConfigOrder([...agentWarnings, ...warnings])),
  };
}

/**
 * `router.bindings` hands these objects to every caller; frozen, nobody can change what a
 * binding says behind the index that was built from it.
 */
function frozen(bindings: Binding[]): readonly Binding[] {
  for (const binding of bindings) {
    const { match } = binding;
    if (match.peer !== undefined) Object.freeze(match.peer);
    if (match.roles !== undefined) Object.freeze(match.roles);
    Object.freeze(match);
    Object.freeze(binding);
  }
  return Object.freeze(bindings);
}

/** `bindings[3].match.roles: roles needs guildId: ...` */
export function formatConfigIssue(issue: ConfigIssue): string {
  return `${issue.path}: ${issue.message}`;
}

/** The error to answer or log when a config does not compile: CONFIG_INVALID, issues in the message and in `details.issues`. */
export function configInvalidError(errors: readonly ConfigIssue[]): SwitchboardError {
  return new SwitchboardError("CONFIG_INVALID", `invalid routing config: ${errors.map(formatConfigIssue).join("; ")}`, {
    issues: errors,
  });
}

/** A binding's agentId or the defaultAgent that is a string but names no known agent (other shapes are schema errors). */
function unknownAgents(config: unknown, known: ReadonlySet<string>, options: CompileOptions): ConfigIssue[] {
  if (typeof config !== "object" || config === null) return [];
  const listed = [...known].slice(0, 20).join(", ") + (known.size > 20 ? ", ..." : "");
  const message = (agentId: string) =>
    options.agentsFromPlugins
      ? `agent "${agentId}" is not configured (configured agents: ${listed}): a plugin must provide it, else messages routed to it are refused (AGENT_NOT_FOUND)`
      : `unknown agent "${agentId}"; configured agents: ${listed}`;
  const issues: ConfigIssue[] = [];
  const { bindings, defaultAgent } = config as { bindings?: unknown; defaultAgent?: unknown };
  if (Array.isArray(bindings)) {
    bindings.forEach((binding: unknown, index) => {
      const agentId =
        typeof binding === "object" && binding !== null ? (binding as { agentId?: unknown }).agentId : undefined;
      if (typeof agentId === "string" && !known.has(agentId)) {
        issues.push(bindingIssue(index, "agentId", message(agentId)));
      }
    });
  }
  if (typeof defaultAgent === "string" && !known.has(defaultAgent)) {
    issues.push({ path: "defaultAgent", bindingIndex: null, field: "defaultAgent", message: message(defaultAgent) });
  }
  return issues;
}

/** Issues of binding 0, then binding 1, ..., then config-level ones; stable within each. */
function inConfigOrder(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort(
    (a, b) => (a.bindingIndex ?? Number.MAX_SAFE_INTEGER) - (b.bindingIndex ?? Number.MAX_SAFE_INTEGER),
  );
}

function bindingIssue(index: number, field: string, message: string): ConfigIssue {
  return { path: `bindings[${index}]${field === "" ? "" : `.${field}`}`, bindingIndex: index, field, message };
}

function fromZodIssue(issue: z.core.$ZodIssue): ConfigIssue[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => issueAt([...issue.path, key], `unknown field "${key}"`));
  }
  return [issueAt(issue.path, issue.message)];
}

function issueAt(path: readonly PropertyKey[], message: string): ConfigIssue {
  const [top, index, ...rest] = path;
  if (top === "bindings" && typeof index === "number") return bindingIssue(index, pathString(rest), message);
  const where = pathString(path);
  return { path: where === "" ? "config" : where, bindingIndex: null, field: where, message };
}

function pathString(path: readonly PropertyKey[]): string {
  return path
    .map((part, i) => (typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`))
    .join("");
}

function capped(issues: ConfigIssue[]): ConfigIssue[] {
  if (issues.length <= MAX_REPORTED_ISSUES) return issues;
  const more = issues.length - MAX_REPORTED_ISSUES;
  return [
    ...issues.slice(0, MAX_REPORTED_ISSUES),
    { path: "config", bindingIndex: null, field: "", message: `and ${more} more issue${more === 1 ? "" : "s"}` },
  ];
}
