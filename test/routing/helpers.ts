import { expect } from "vitest";
import { compileRouting, formatConfigIssue } from "../../src/routing/index.js";
import type { Route, Router, RoutableMessage, RoutingConfig, RoutingConfigInput } from "../../src/routing/index.js";
import { linearResolve } from "./linear-reference.js";

export const AGENTS = ["coder", "reviewer", "support", "ops", "triage", "ada", "bob"];

/** Compiles a config that must be valid, failing the test with the issues when it is not. */
export function compile(config: RoutingConfigInput, knownAgents: Iterable<string> = AGENTS): Router {
  const result = compileRouting(config, { knownAgents });
  if (!result.ok) throw new Error(`config should compile: ${result.errors.map(formatConfigIssue).join("; ")}`);
  return result.router;
}

/**
 * Resolves with the index and checks the linear reference agrees on agent, tier and binding,
 * so every hand-written case also tests the reference.
 */
export function route(router: Router, message: RoutableMessage): Route | null {
  const indexed = router.resolve(message);
  const config: RoutingConfig = { bindings: [...router.bindings], defaultAgent: router.defaultAgent };
  const linear = linearResolve(config, message);
  expect(
    indexed === null
      ? null
      : { agentId: indexed.agentId, matchedBy: indexed.matchedBy, bindingIndex: indexed.bindingIndex },
  ).toEqual(linear);
  return indexed;
}

/** `route`, reduced to what most assertions compare. */
export function who(router: Router, message: RoutableMessage): [string, string, number | null] | null {
  const r = route(router, message);
  return r === null ? null : [r.agentId, r.matchedBy, r.bindingIndex];
}
