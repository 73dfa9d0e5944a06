import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileRouting, DEFAULT_SESSION_MODE, formatConfigIssue, sessionKey } from "../../src/routing/index.js";
import type { BindingMatch, MatchedBy, Router, RoutingConfig } from "../../src/routing/index.js";
import { configOf, messageOf, probesOf, PROPERTY_AGENTS, rawConfig, rawMessage } from "./arbitraries.js";
import type { RawConfig } from "./arbitraries.js";
import { linearResolve } from "./linear-reference.js";

/** At least 10,000 in CI; raise locally with ROUTING_PROPERTY_RUNS. */
const RUNS = Math.max(10_000, Number(process.env["ROUTING_PROPERTY_RUNS"] ?? 0));

/**
 * About 5-10 s of CPU on an idle machine; the limit is generous so a CI machine shared with other
 * jobs does not fail it for being slow (vitest's default here is 30 s).
 */
const PROPERTY_TIMEOUT_MS = 120_000;

/** Complete warning check (quadratic) only up to this many bindings. */
const EXACT_WARNING_CHECK_MAX = 40;

function compiled(raw: RawConfig): { router: Router; config: RoutingConfig; unreachable: Set<number> } {
  const result = compileRouting(configOf(raw), { knownAgents: PROPERTY_AGENTS });
  if (!result.ok) {
    throw new Error(`generated config should compile: ${result.errors.map(formatConfigIssue).join("; ")}`);
  }
  const { router } = result;
  return {
    router,
    config: { bindings: [...router.bindings], defaultAgent: router.defaultAgent },
    unreachable: new Set(result.warnings.map((w) => w.bindingIndex ?? -1)),
  };
}

/** Which fields a binding specifies, with its account and peer kinds: 4 x 3 x 3 x 2 = 72 shapes. */
function shapeOf(match: BindingMatch): string {
  const account =
    match.accountId === undefined ? "implicit" : ["*", "default"].includes(match.accountId) ? match.accountId : "named";
  const peer = match.peer === undefined ? "-" : match.peer.id === "*" ? "wildcard" : "exact";
  const guild = match.roles !== undefined ? "guild+roles" : match.guildId !== undefined ? "guild" : "-";
  return [account, peer, guild, match.teamId === undefined ? "-" : "team"].join(" ");
}

describe("indexed routing equals the linear reference", () => {
  it(
    `agrees on agent, tier, binding index and session key on ${RUNS} random configs and their messages`,
    () => {
      const seen = new Map<MatchedBy | "none", number>();
      let messages = 0;
      let largest = 0;
      const shapes = new Set<string>();
      fc.assert(
        fc.property(rawConfig, fc.array(rawMessage, { minLength: 1, maxLength: 6 }), (raw, rawMessages) => {
          const { router, config, unreachable } = compiled(raw);
          largest = Math.max(largest, config.bindings.length);
          for (const b of config.bindings) shapes.add(shapeOf(b.match));
          for (const rm of rawMessages) {
            const message = messageOf(rm, config, raw.width);
            const indexed = router.resolve(message);
            const linear = linearResolve(config, message);
            expect(
              indexed && { agentId: indexed.agentId, matchedBy: indexed.matchedBy, bindingIndex: indexed.bindingIndex },
            ).toEqual(linear);
            if (indexed !== null) {
              const binding = indexed.bindingIndex === null ? undefined : config.bindings[indexed.bindingIndex];
              const mode = binding?.session ?? DEFAULT_SESSION_MODE;
              expect(indexed.sessionKey).toBe(sessionKey({ agentId: indexed.agentId, mode, message }));
            }
            // A binding reported as never used must indeed never be used.
            if (linear?.bindingIndex != null) expect(unreachable.has(linear.bindingIndex)).toBe(false);
            seen.set(linear?.matchedBy ?? "none", (seen.get(linear?.matchedBy ?? "none") ?? 0) + 1);
            messages++;
          }
        }),
        { numRuns: RUNS },
      );
      // The generators must reach every outcome often, or the agreement above proves little.
      for (const outcome of [
        "peer",
        "parent-peer",
        "peer-wildcard",
        "guild-roles",
        "guild",
        "team",
        "account",
        "channel",
        "default",
        "none",
      ] as const) {
        expect(seen.get(outcome) ?? 0, `messages resolved as ${outcome}`).toBeGreaterThan(messages / 200);
      }
      expect(largest).toBeGreaterThanOrEqual(1000);
      // Multi-field bindings (peer + guild, team + account, wildcard peer + roles, ...): of the
      // 72 possible shapes, nearly all occur.
      expect(shapes.size).toBeGreaterThanOrEqual(70);
      if (process.env["ROUTING_PROPERTY_STATS"]) console.log({ messages, largest, shapes: shapes.size, seen });
    },
    PROPERTY_TIMEOUT_MS,
  );

  it("warns about exactly the bindings the linear reference never picks", () => {
    const small = rawConfig.filter((raw) => raw.bindings.length > 0 && raw.bindings.length <= EXACT_WARNING_CHECK_MAX);
    let warned = 0;
    fc.assert(
      fc.property(small, (raw) => {
        const { config, unreachable } = compiled(raw);
        config.bindings.forEach((binding, index) => {
          const picked = probesOf(binding.match).some((probe) => linearResolve(config, probe)?.bindingIndex === index);
          expect(unreachable.has(index), `binding ${index} warned`).toBe(!picked);
        });
        warned += unreachable.size;
      }),
      { numRuns: 2000 },
    );
    expect(warned).toBeGreaterThan(100);
  });
});
