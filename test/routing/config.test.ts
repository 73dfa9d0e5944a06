import { describe, expect, it } from "vitest";
import { SwitchboardError } from "../../src/protocol/errors.js";
import {
  compileRouting,
  configInvalidError,
  formatConfigIssue,
  MAX_REPORTED_ISSUES,
  ROUTING_LIMITS,
} from "../../src/routing/index.js";
import type { ConfigIssue } from "../../src/routing/index.js";
import { AGENTS } from "./helpers.js";

function errorsOf(config: unknown, knownAgents: Iterable<string> = AGENTS): ConfigIssue[] {
  const result = compileRouting(config, { knownAgents });
  if (result.ok) throw new Error("config should not compile");
  return result.errors;
}

function warningsOf(config: unknown): string[] {
  const result = compileRouting(config, { knownAgents: AGENTS });
  if (!result.ok) throw new Error(`config should compile: ${result.errors.map(formatConfigIssue).join("; ")}`);
  return result.warnings.map(formatConfigIssue);
}

const one = (match: unknown, extra: Record<string, unknown> = {}) => ({
  bindings: [
    { agentId: "ops", match: { channel: "slack" } },
    { agentId: "coder", match, ...extra },
  ],
});

describe("config validation: errors name the binding index and field", () => {
  it("an unknown agent in a binding", () => {
    expect(errorsOf(one({ channel: "slack", teamId: "T" }, { agentId: "ghost" }))).toEqual([
      {
        path: "bindings[1].agentId",
        bindingIndex: 1,
        field: "agentId",
        message: expect.stringContaining('unknown agent "ghost"'),
      },
    ]);
  });

  it("an agent no one configured is only a warning when plugins may provide it (they register agents once they run)", () => {
    const result = compileRouting(
      { defaultAgent: "ghost", ...one({ channel: "slack", teamId: "T" }, { agentId: "words" }) },
      { knownAgents: AGENTS, agentsFromPlugins: true },
    );
    if (!result.ok) throw new Error(result.errors.map(formatConfigIssue).join("; "));
    expect(result.warnings.map((w) => [w.path, w.message])).toEqual([
      ["bindings[1].agentId", expect.stringMatching(/^agent "words" is not configured .*a plugin must provide it/)],
      ["defaultAgent", expect.stringMatching(/^agent "ghost" is not configured/)],
    ]);
    expect(result.router.resolve({ channel: "slack", teamId: "T" })?.agentId).toBe("words");
  });

  it("an unknown defaultAgent", () => {
    const [issue, ...rest] = errorsOf({ defaultAgent: "ghost", bindings: [] });
    expect(rest).toEqual([]);
    expect(issue).toMatchObject({ path: "defaultAgent", bindingIndex: null, field: "defaultAgent" });
    expect(issue?.message).toContain('unknown agent "ghost"');
  });

  it("schema errors and unknown agents come in one report, in config order", () => {
    const errors = errorsOf({
      defaultAgent: "nobody",
      bindings: [
        { agentId: "coder", match: { channel: "discord", roles: ["maintainer"] } },
        { agentId: "ghost", match: { channel: "slack", teamID: "T1" } },
        { agentId: "ghost", match: { channel: "slack" } },
      ],
    });
    expect(errors.map(formatConfigIssue)).toEqual([
      "bindings[0].match.roles: roles needs guildId: roles are matched within one guild",
      'bindings[1].match.teamID: unknown field "teamID"',
      'bindings[1].agentId: unknown agent "ghost"; configured agents: echo, coder, reviewer, support, ops, triage, ada, bob',
      'bindings[2].agentId: unknown agent "ghost"; configured agents: echo, coder, reviewer, support, ops, triage, ada, bob',
      'defaultAgent: unknown agent "nobody"; configured agents: echo, coder, reviewer, support, ops, triage, ada, bob',
    ]);
  });

  it("the built-in echo agent is always known", () => {
    const result = compileRouting(
      { defaultAgent: "echo", bindings: [{ agentId: "echo", match: { channel: "x" } }] },
      {
        knownAgents: [],
      },
    );
    expect(result.ok).toBe(true);
  });

  it("roles without guildId", () => {
    expect(errorsOf(one({ channel: "slack", roles: ["admin"] }))).toEqual([
      {
        path: "bindings[1].match.roles",
        bindingIndex: 1,
        field: "match.roles",
        message: "roles needs guildId: roles are matched within one guild",
      },
    ]);
  });

  it("empty roles", () => {
    expect(errorsOf(one({ channel: "slack", guildId: "g", roles: [] }))[0]).toMatchObject({
      path: "bindings[1].match.roles",
      message: "roles needs at least one role",
    });
  });

  it.each([
    ["guildId", { channel: "slack", guildId: "*" }, "match.guildId"],
    ["teamId", { channel: "slack", teamId: "*" }, "match.teamId"],
    ["role", { channel: "slack", guildId: "g", roles: ["a", "*"] }, "match.roles"],
  ])("a '*' %s is refused (it is not a wildcard)", (_name, match, field) => {
    const [issue] = errorsOf(one(match));
    expect(issue).toMatchObject({ bindingIndex: 1, field });
    expect(issue?.message).toContain("is not a wildcard");
  });

  it("an unknown field in match, named with its path", () => {
    expect(errorsOf(one({ channel: "slack", guildID: "g" }))).toEqual([
      {
        path: "bindings[1].match.guildID",
        bindingIndex: 1,
        field: "match.guildID",
        message: 'unknown field "guildID"',
      },
    ]);
  });

  it("a missing channel, a bad peer kind, an empty peer id and a bad session mode, all reported", () => {
    const errors = errorsOf(one({ peer: { kind: "dm", id: "" } }, { session: "per-user" }));
    expect(errors.map((e) => e.path).sort()).toEqual([
      "bindings[1].match.channel",
      "bindings[1].match.peer.id",
      "bindings[1].match.peer.kind",
      "bindings[1].session",
    ]);
  });

  it("a channel name that is not an ASCII token", () => {
    for (const channel of ["", "dis cord", "-x", "kanal-ü", "x".repeat(ROUTING_LIMITS.CHANNEL_CHARS + 1)]) {
      expect(errorsOf(one({ channel }))[0]).toMatchObject({ field: "match.channel", bindingIndex: 1 });
    }
  });

  it("an id longer than the limit or with a lone surrogate", () => {
    expect(errorsOf(one({ channel: "s", teamId: "t".repeat(ROUTING_LIMITS.ID_CHARS + 1) }))[0]).toMatchObject({
      field: "match.teamId",
    });
    expect(errorsOf(one({ channel: "s", peer: { kind: "direct", id: "a\ud800" } }))[0]).toMatchObject({
      field: "match.peer.id",
      message: expect.stringContaining("well-formed"),
    });
  });

  it("a binding that is not an object, and a config that is not one", () => {
    expect(errorsOf({ bindings: [{ agentId: "ops", match: { channel: "x" } }, 5] })).toEqual([
      { path: "bindings[1]", bindingIndex: 1, field: "", message: expect.stringContaining("expected object") },
    ]);
    expect(errorsOf("bindings")[0]).toMatchObject({ path: "config", bindingIndex: null });
    expect(errorsOf({ bindings: {} })[0]).toMatchObject({ path: "bindings", bindingIndex: null, field: "bindings" });
  });

  it("ignores other top-level keys, so the whole config file can be given", () => {
    const result = compileRouting({ agents: { coder: {} }, plugins: [], bindings: [] }, { knownAgents: ["coder"] });
    expect(result.ok).toBe(true);
  });

  it("no bindings and no defaultAgent is a valid config that routes nothing", () => {
    const result = compileRouting({}, { knownAgents: [] });
    expect(result.ok && result.router.resolve({ channel: "x" })).toBeNull();
  });

  it(`reports at most ${MAX_REPORTED_ISSUES} issues, then how many more`, () => {
    const bindings = Array.from({ length: MAX_REPORTED_ISSUES + 5 }, () => ({
      agentId: "ghost",
      match: { channel: "x" },
    }));
    const errors = errorsOf({ bindings });
    expect(errors).toHaveLength(MAX_REPORTED_ISSUES + 1);
    expect(errors.at(-1)?.message).toBe("and 5 more issues");
  });

  it("refuses more bindings than the limit", () => {
    const bindings = Array.from({ length: ROUTING_LIMITS.BINDINGS + 1 }, () => ({
      agentId: "ops",
      match: { channel: "x" },
    }));
    expect(errorsOf({ bindings })[0]).toMatchObject({
      path: "bindings",
      message: `at most ${ROUTING_LIMITS.BINDINGS} bindings`,
    });
  });

  it("configInvalidError carries code CONFIG_INVALID, every issue in the message and in details", () => {
    const errors = errorsOf(one({ channel: "slack", roles: ["a"] }, { agentId: "ghost" }));
    const error = configInvalidError(errors);
    expect(error).toBeInstanceOf(SwitchboardError);
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toContain("bindings[1].match.roles: roles needs guildId");
    expect(error.toJSON()).toMatchObject({ code: "CONFIG_INVALID", issues: errors });
  });
});

describe("config validation: warnings for bindings that can never win", () => {
  it("an exact duplicate (channel case and role order aside)", () => {
    expect(
      warningsOf({
        bindings: [
          { agentId: "ops", match: { channel: "Discord", guildId: "g", roles: ["a", "b"] } },
          { agentId: "coder", match: { channel: "discord", guildId: "g", roles: ["b", "a"] } },
        ],
      }),
    ).toEqual(["bindings[1].match: never used: every message it matches goes first to bindings[0] (guild-roles)"]);
  });

  it("a binding covered by an earlier one with fewer fields in the same tier", () => {
    expect(
      warningsOf({
        bindings: [
          { agentId: "ops", match: { channel: "d", peer: { kind: "direct", id: "u" } } },
          { agentId: "coder", match: { channel: "d", peer: { kind: "direct", id: "u" }, guildId: "g" } },
        ],
      }),
    ).toEqual(["bindings[1].match: never used: every message it matches goes first to bindings[0] (peer)"]);
  });

  it("a binding covered by an earlier accountId '*' binding of the same tier", () => {
    expect(
      warningsOf({
        bindings: [
          { agentId: "ops", match: { channel: "d", accountId: "*", teamId: "t" } },
          { agentId: "coder", match: { channel: "d", accountId: "work", teamId: "t" } },
        ],
      }),
    ).toHaveLength(1);
  });

  it("a channel binding under a later explicit accountId default (a more specific tier for the same messages)", () => {
    expect(
      warningsOf({
        bindings: [
          { agentId: "ops", match: { channel: "d" } },
          { agentId: "coder", match: { channel: "d", accountId: "default" } },
        ],
      }),
    ).toEqual(["bindings[0].match: never used: every message it matches goes first to bindings[1] (account)"]);
  });

  it("roles split over several earlier bindings", () => {
    expect(
      warningsOf({
        bindings: [
          { agentId: "ops", match: { channel: "d", guildId: "g", roles: ["a"] } },
          { agentId: "bob", match: { channel: "d", guildId: "g", roles: ["b", "c"] } },
          { agentId: "coder", match: { channel: "d", guildId: "g", roles: ["c", "a"] } },
        ],
      }),
    ).toEqual([
      "bindings[2].match: never used: every message it matches goes first to bindings[1] (guild-roles) or bindings[0] (guild-roles)",
    ]);
  });

  it("no warning when the later binding still wins somewhere", () => {
    expect(
      warningsOf({
        bindings: [
          { agentId: "ops", match: { channel: "d", guildId: "g", roles: ["a"] } },
          { agentId: "coder", match: { channel: "d", guildId: "g", roles: ["a", "b"] } },
          { agentId: "coder", match: { channel: "d" } },
          { agentId: "ops", match: { channel: "d", accountId: "*" } },
          { agentId: "coder", match: { channel: "d", peer: { kind: "direct", id: "*" }, teamId: "t" } },
          { agentId: "coder", match: { channel: "d", peer: { kind: "direct", id: "*" } } },
          { agentId: "coder", match: { channel: "d", peer: { kind: "direct", id: "x" }, teamId: "t" } },
          { agentId: "coder", match: { channel: "d", peer: { kind: "direct", id: "x" }, accountId: "*" } },
        ],
      }),
    ).toEqual([]);
  });

  it("an exact peer after a wildcard of its kind still wins: its tier is more specific", () => {
    expect(
      warningsOf({
        bindings: [
          { agentId: "ops", match: { channel: "d", peer: { kind: "channel", id: "*" } } },
          { agentId: "coder", match: { channel: "d", peer: { kind: "channel", id: "c" } } },
        ],
      }),
    ).toEqual([]);
  });
});
