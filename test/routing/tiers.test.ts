import { describe, expect, it } from "vitest";
import { SwitchboardError } from "../../src/protocol/errors.js";
import type { BindingMatch } from "../../src/routing/index.js";
import { compile, route, who } from "./helpers.js";

const bind = (agentId: string, match: BindingMatch) => ({ agentId, match });
const thread = { kind: "channel", id: "thread-1" } as const;
const devChat = { kind: "channel", id: "dev-chat" } as const;
const ada = { kind: "direct", id: "ada" } as const;

/** One binding per tier, least specific first, so config order never decides between tiers. */
const everyTier = compile({
  defaultAgent: "triage",
  bindings: [
    bind("ops", { channel: "discord" }), // 0 channel
    bind("ops", { channel: "discord", accountId: "default" }), // 1 account
    bind("ops", { channel: "discord", teamId: "t-1" }), // 2 team
    bind("support", { channel: "discord", guildId: "g-1" }), // 3 guild
    bind("reviewer", { channel: "discord", guildId: "g-1", roles: ["maintainer", "admin"] }), // 4 guild-roles
    bind("bob", { channel: "discord", peer: { kind: "channel", id: "*" } }), // 5 peer-wildcard
    bind("coder", { channel: "discord", peer: devChat }), // 6 parent-peer (when devChat is the parent)
    bind("ada", { channel: "discord", peer: thread }), // 7 peer
  ],
});

describe("tiers, most specific first", () => {
  const full = {
    channel: "discord",
    peer: thread,
    parentPeer: devChat,
    guildId: "g-1",
    teamId: "t-1",
    roles: ["admin"],
  };

  it("an exact peer binding wins over every less specific one, whatever the config order", () => {
    expect(who(everyTier, full)).toEqual(["ada", "peer", 7]);
  });

  it("a thread without its own binding goes to its parent's binding (parent-peer)", () => {
    expect(who(everyTier, { ...full, peer: { kind: "channel", id: "thread-2" } })).toEqual(["coder", "parent-peer", 6]);
  });

  it("a peer wildcard catches any peer of its kind when no exact or parent binding does", () => {
    expect(who(everyTier, { ...full, peer: { kind: "channel", id: "x" }, parentPeer: undefined })).toEqual([
      "bob",
      "peer-wildcard",
      5,
    ]);
  });

  it("a peer wildcard does not catch other kinds", () => {
    expect(who(everyTier, { ...full, peer: { kind: "group", id: "x" }, parentPeer: undefined })).toEqual([
      "reviewer",
      "guild-roles",
      4,
    ]);
  });

  it("guild-roles needs at least one of its roles on the message", () => {
    const noPeer = { channel: "discord", guildId: "g-1", teamId: "t-1" };
    expect(who(everyTier, { ...noPeer, roles: ["guest", "admin"] })).toEqual(["reviewer", "guild-roles", 4]);
    expect(who(everyTier, { ...noPeer, roles: ["guest"] })).toEqual(["support", "guild", 3]);
    expect(who(everyTier, { ...noPeer, roles: [] })).toEqual(["support", "guild", 3]);
    expect(who(everyTier, noPeer)).toEqual(["support", "guild", 3]);
  });

  it("guild-roles needs its guild too", () => {
    expect(who(everyTier, { channel: "discord", guildId: "g-2", roles: ["admin"], teamId: "t-1" })).toEqual([
      "ops",
      "team",
      2,
    ]);
  });

  it("team, then account, then channel", () => {
    expect(who(everyTier, { channel: "discord", teamId: "t-1" })).toEqual(["ops", "team", 2]);
    expect(who(everyTier, { channel: "discord", teamId: "t-2" })).toEqual(["ops", "account", 1]);
    const channelOnly = compile({ bindings: [bind("ops", { channel: "discord" })] });
    expect(who(channelOnly, { channel: "discord", teamId: "t-2" })).toEqual(["ops", "channel", 0]);
  });

  it("falls back to defaultAgent with matchedBy default and bindingIndex null", () => {
    expect(who(everyTier, { channel: "slack" })).toEqual(["triage", "default", null]);
  });

  it("without defaultAgent an unmatched message has no route, and resolveOrThrow says NO_ROUTE", () => {
    const router = compile({ bindings: [bind("ops", { channel: "discord" })] });
    expect(route(router, { channel: "slack" })).toBeNull();
    expect(() => router.resolveOrThrow({ channel: "slack" })).toThrow(SwitchboardError);
    try {
      router.resolveOrThrow({ channel: "slack", accountId: "work" });
      expect.unreachable("resolveOrThrow should throw");
    } catch (error) {
      expect(error).toBeInstanceOf(SwitchboardError);
      expect((error as SwitchboardError).code).toBe("NO_ROUTE");
      expect((error as SwitchboardError).status).toBe(404);
      expect((error as SwitchboardError).message).toContain('"slack" on account "work"');
    }
  });

  it("the first binding in config order wins within a tier", () => {
    const router = compile({
      bindings: [
        bind("ada", { channel: "slack", teamId: "t-2" }),
        bind("coder", { channel: "slack", teamId: "t-1" }),
        bind("bob", { channel: "slack", teamId: "t-1" }),
        bind("ops", { channel: "slack", teamId: "t-1", accountId: "*" }),
      ],
    });
    expect(who(router, { channel: "slack", teamId: "t-1" })).toEqual(["coder", "team", 1]);
  });

  it("first in config order also decides between a named account and the '*' account", () => {
    const router = compile({
      bindings: [
        bind("ops", { channel: "slack", teamId: "t-1", accountId: "*" }),
        bind("coder", { channel: "slack", teamId: "t-1", accountId: "work" }),
      ],
    });
    expect(who(router, { channel: "slack", accountId: "work", teamId: "t-1" })).toEqual(["ops", "team", 0]);
  });

  it("a peer in the thread position and the parent position at once counts as peer", () => {
    expect(who(everyTier, { channel: "discord", peer: devChat, parentPeer: devChat })).toEqual(["coder", "peer", 6]);
  });
});

describe("a binding with several fields", () => {
  it("is in the tier of its most specific field and needs all the others to match (peer + guildId)", () => {
    const router = compile({
      bindings: [
        bind("ada", { channel: "discord", peer: ada, guildId: "g-1" }),
        bind("bob", { channel: "discord", guildId: "g-1" }),
        bind("ops", { channel: "discord" }),
      ],
    });
    expect(who(router, { channel: "discord", peer: ada, guildId: "g-1" })).toEqual(["ada", "peer", 0]);
    expect(who(router, { channel: "discord", peer: ada, guildId: "g-2" })).toEqual(["ops", "channel", 2]);
    expect(who(router, { channel: "discord", peer: ada })).toEqual(["ops", "channel", 2]);
  });

  it("teamId + accountId is tier team, scoped to that account", () => {
    const router = compile({
      bindings: [
        bind("ops", { channel: "slack", accountId: "work" }),
        bind("coder", { channel: "slack", teamId: "T1", accountId: "work" }),
      ],
    });
    expect(who(router, { channel: "slack", accountId: "work", teamId: "T1" })).toEqual(["coder", "team", 1]);
    expect(who(router, { channel: "slack", teamId: "T1" })).toBeNull();
  });

  it("peer + roles needs the guild and one of the roles as well as the peer", () => {
    const router = compile({
      defaultAgent: "triage",
      bindings: [bind("ada", { channel: "discord", peer: devChat, guildId: "g-1", roles: ["a", "b"] })],
    });
    const message = { channel: "discord", peer: devChat, guildId: "g-1" };
    expect(who(router, { ...message, roles: ["c", "b"] })).toEqual(["ada", "peer", 0]);
    expect(who(router, { ...message, roles: ["c"] })).toEqual(["triage", "default", null]);
    expect(who(router, { ...message, peer: thread, parentPeer: devChat, roles: ["a"] })).toEqual([
      "ada",
      "parent-peer",
      0,
    ]);
  });

  it("a failed extra field in an earlier binding of the same bucket does not hide a later one", () => {
    const router = compile({
      bindings: [
        bind("ada", { channel: "discord", peer: ada, teamId: "t-1" }),
        bind("bob", { channel: "discord", peer: ada, teamId: "t-2" }),
        bind("coder", { channel: "discord", peer: ada }),
      ],
    });
    expect(who(router, { channel: "discord", peer: ada, teamId: "t-2" })).toEqual(["bob", "peer", 1]);
    expect(who(router, { channel: "discord", peer: ada, teamId: "t-3" })).toEqual(["coder", "peer", 2]);
  });

  it("guild-roles bindings sharing roles: the earliest matching binding wins across role buckets", () => {
    const router = compile({
      bindings: [
        bind("ada", { channel: "discord", guildId: "g", roles: ["x", "y"], teamId: "t-9" }),
        bind("bob", { channel: "discord", guildId: "g", roles: ["z"] }),
        bind("coder", { channel: "discord", guildId: "g", roles: ["y", "z"] }),
      ],
    });
    expect(who(router, { channel: "discord", guildId: "g", roles: ["y", "z"] })).toEqual(["bob", "guild-roles", 1]);
    expect(who(router, { channel: "discord", guildId: "g", roles: ["y"] })).toEqual(["coder", "guild-roles", 2]);
    expect(who(router, { channel: "discord", guildId: "g", roles: ["y"], teamId: "t-9" })).toEqual([
      "ada",
      "guild-roles",
      0,
    ]);
  });
});

describe("account scoping", () => {
  // OpenClaw PR #9006 made peer, guild and team lookups ignore the account: a binding for one
  // bot account answered messages to another. Each tier keeps its account scope here.
  const scoped = compile({
    bindings: [
      bind("ada", { channel: "discord", peer: ada }),
      bind("support", { channel: "discord", guildId: "g-1" }),
      bind("ops", { channel: "slack", teamId: "T1" }),
      bind("bob", { channel: "discord", peer: { kind: "direct", id: "*" } }),
      bind("reviewer", { channel: "discord", guildId: "g-1", roles: ["admin"] }),
    ],
  });

  it("regression (OpenClaw #9006): bindings without accountId do not match other accounts, in any tier", () => {
    expect(who(scoped, { channel: "discord", accountId: "work", peer: ada })).toBeNull();
    expect(who(scoped, { channel: "discord", accountId: "work", guildId: "g-1", roles: ["admin"] })).toBeNull();
    expect(who(scoped, { channel: "slack", accountId: "work", teamId: "T1" })).toBeNull();
    expect(who(scoped, { channel: "discord", accountId: "work", peer: { kind: "direct", id: "x" } })).toBeNull();
  });

  it("a message without accountId is on account default, as is one with accountId default", () => {
    expect(who(scoped, { channel: "discord", peer: ada })).toEqual(["ada", "peer", 0]);
    expect(who(scoped, { channel: "discord", accountId: "default", peer: ada })).toEqual(["ada", "peer", 0]);
    expect(who(scoped, { channel: "slack", accountId: "default", teamId: "T1" })).toEqual(["ops", "team", 2]);
  });

  it("accountId '*' matches any account, named, default or missing", () => {
    const router = compile({ bindings: [bind("ops", { channel: "discord", accountId: "*", guildId: "g-1" })] });
    for (const accountId of ["work", "default", undefined]) {
      expect(who(router, { channel: "discord", accountId, guildId: "g-1" })).toEqual(["ops", "guild", 0]);
    }
  });

  it("accountId '*' alone is tier channel, so a named account binding beats it", () => {
    const router = compile({
      bindings: [
        bind("ops", { channel: "discord", accountId: "*" }),
        bind("ada", { channel: "discord", accountId: "work" }),
      ],
    });
    expect(who(router, { channel: "discord", accountId: "work" })).toEqual(["ada", "account", 1]);
    expect(who(router, { channel: "discord", accountId: "home" })).toEqual(["ops", "channel", 0]);
  });

  it("a named account binding matches only that account", () => {
    const router = compile({ bindings: [bind("ada", { channel: "discord", accountId: "work", peer: ada })] });
    expect(who(router, { channel: "discord", accountId: "work", peer: ada })).toEqual(["ada", "peer", 0]);
    expect(who(router, { channel: "discord", accountId: "home", peer: ada })).toBeNull();
    expect(who(router, { channel: "discord", peer: ada })).toBeNull();
  });

  it("an explicit accountId default matches what a missing one matches, one tier higher when alone", () => {
    const router = compile({
      bindings: [bind("ops", { channel: "discord" }), bind("ada", { channel: "discord", accountId: "default" })],
    });
    expect(who(router, { channel: "discord" })).toEqual(["ada", "account", 1]);
  });
});

describe("comparisons", () => {
  it("channel names compare case-insensitively", () => {
    const router = compile({ bindings: [bind("ops", { channel: "Discord", peer: ada })] });
    for (const channel of ["discord", "DISCORD", "Discord", "dIsCoRd"]) {
      expect(who(router, { channel, peer: ada })).toEqual(["ops", "peer", 0]);
    }
  });

  it("ids compare exactly: case matters for accounts, peers, guilds, teams and roles", () => {
    const router = compile({
      bindings: [
        bind("ada", { channel: "d", accountId: "Work" }),
        bind("bob", { channel: "d", accountId: "*", peer: { kind: "direct", id: "Ada" } }),
        bind("coder", { channel: "d", accountId: "*", guildId: "G", roles: ["Admin"] }),
        bind("ops", { channel: "d", accountId: "*", teamId: "T" }),
      ],
    });
    expect(who(router, { channel: "d", accountId: "work" })).toBeNull();
    expect(who(router, { channel: "d", peer: { kind: "direct", id: "ada" } })).toBeNull();
    expect(who(router, { channel: "d", guildId: "G", roles: ["admin"] })).toBeNull();
    expect(who(router, { channel: "d", guildId: "g", roles: ["Admin"] })).toBeNull();
    expect(who(router, { channel: "d", teamId: "t" })).toBeNull();
  });

  it("a peer matches only with the same kind", () => {
    const router = compile({ bindings: [bind("ada", { channel: "d", peer: { kind: "group", id: "p" } })] });
    expect(who(router, { channel: "d", peer: { kind: "direct", id: "p" } })).toBeNull();
    expect(who(router, { channel: "d", peer: { kind: "group", id: "p" } })).toEqual(["ada", "peer", 0]);
  });
});

describe("session keys on routes", () => {
  it("uses the binding's session mode, per-peer by default, and per-peer for defaultAgent", () => {
    const router = compile({
      defaultAgent: "triage",
      bindings: [
        { agentId: "ada", match: { channel: "discord", peer: ada } },
        { agentId: "ops", match: { channel: "slack" }, session: "per-channel" },
        { agentId: "bob", match: { channel: "telegram" }, session: "main" },
      ],
    });
    expect(route(router, { channel: "Discord", peer: ada })?.sessionKey).toBe(
      "agent:ada:peer:discord:default:direct:ada",
    );
    expect(route(router, { channel: "slack", peer: ada })?.sessionKey).toBe("agent:ops:channel:slack:default");
    expect(route(router, { channel: "telegram", peer: ada })?.sessionKey).toBe("agent:bob:main");
    expect(route(router, { channel: "irc", accountId: "x", peer: ada })?.sessionKey).toBe(
      "agent:triage:peer:irc:x:direct:ada",
    );
  });
});
