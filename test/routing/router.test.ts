import { describe, expect, it } from "vitest";
import { RoutingTable } from "../../src/routing/index.js";
import { compile } from "./helpers.js";

describe("RoutingTable", () => {
  it("swaps the whole router on reload: resolves see the old config, then the new one", () => {
    const before = compile({ bindings: [{ agentId: "ops", match: { channel: "slack" } }] });
    const after = compile({ defaultAgent: "triage", bindings: [{ agentId: "coder", match: { channel: "slack" } }] });
    const table = new RoutingTable(before);
    expect(table.resolve({ channel: "slack" })?.agentId).toBe("ops");
    expect(table.resolve({ channel: "irc" })).toBeNull();

    expect(table.replace(after)).toBe(before);
    expect(table.router).toBe(after);
    expect(table.resolve({ channel: "slack" })?.agentId).toBe("coder");
    expect(table.resolveOrThrow({ channel: "irc" }).agentId).toBe("triage");
    // The old router is untouched: anything still holding it keeps answering the old way.
    expect(before.resolve({ channel: "slack" })?.agentId).toBe("ops");
  });

  it("exposes the validated bindings it routes by, in config order", () => {
    const router = compile({
      bindings: [
        { agentId: "ops", match: { channel: "Slack" }, session: "main" },
        { agentId: "coder", match: { channel: "discord", accountId: "*" } },
      ],
    });
    expect(router.bindings.map((b) => b.agentId)).toEqual(["ops", "coder"]);
    expect(router.bindings[0]?.match.channel).toBe("Slack");
    expect(router.defaultAgent).toBeUndefined();
  });

  it("hands out frozen bindings, so nobody can change routing behind the index", () => {
    const router = compile({ bindings: [{ agentId: "ops", match: { channel: "slack", guildId: "g", roles: ["r"] } }] });
    const binding = router.bindings[0]!;
    expect(() => {
      (binding as { agentId: string }).agentId = "coder";
    }).toThrow(TypeError);
    expect(() => (binding.match.roles as string[]).push("admin")).toThrow(TypeError);
    expect(() => (router.bindings as unknown[]).push(binding)).toThrow(TypeError);
    expect(router.resolve({ channel: "slack", guildId: "g", roles: ["r"] })?.agentId).toBe("ops");
  });
});
