import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseSessionKey, PEER_KINDS, SESSION_MODES, sessionKey } from "../../src/routing/index.js";
import type { RoutableMessage } from "../../src/routing/index.js";

describe("session keys", () => {
  const message: RoutableMessage = {
    channel: "Discord",
    accountId: "work",
    peer: { kind: "channel", id: "thread-1" },
    parentPeer: { kind: "channel", id: "dev" },
    guildId: "g",
  };

  it("have the documented formats", () => {
    expect(sessionKey({ agentId: "coder", mode: "main", message })).toBe("agent:coder:main");
    expect(sessionKey({ agentId: "coder", mode: "per-channel", message })).toBe("agent:coder:channel:discord:work");
    expect(sessionKey({ agentId: "coder", mode: "per-peer", message })).toBe(
      "agent:coder:peer:discord:work:channel:thread-1",
    );
  });

  it("per-peer without a peer is the per-channel key; a missing account is default", () => {
    expect(sessionKey({ agentId: "a", mode: "per-peer", message: { channel: "slack" } })).toBe(
      "agent:a:channel:slack:default",
    );
  });

  it("percent-encode every part, so ':' in an id cannot forge another key", () => {
    const key = sessionKey({
      agentId: "a:b",
      mode: "per-peer",
      message: { channel: "x", accountId: "acc:1", peer: { kind: "direct", id: "u:2/%" } },
    });
    expect(key).toBe("agent:a%3Ab:peer:x:acc%3A1:direct:u%3A2%2F%25");
    expect(parseSessionKey(key)).toEqual({
      agentId: "a:b",
      scope: "peer",
      channel: "x",
      accountId: "acc:1",
      peer: { kind: "direct", id: "u:2/%" },
    });
  });

  it("the same peer always gets the same key, whatever else the message carries", () => {
    const a = sessionKey({ agentId: "c", mode: "per-peer", message });
    const b = sessionKey({
      agentId: "c",
      mode: "per-peer",
      message: {
        channel: "DISCORD",
        accountId: "work",
        peer: { kind: "channel", id: "thread-1" },
        teamId: "t",
        roles: ["r"],
      },
    });
    expect(b).toBe(a);
  });

  it("parseSessionKey refuses what sessionKey cannot make", () => {
    for (const key of [
      "",
      "agent",
      "agent:a",
      "session:a:main",
      "agent:a:main:x",
      "agent:a:peer:x:y:dm:z",
      "agent:%E0%A4%A:main",
    ]) {
      expect(parseSessionKey(key)).toBeNull();
    }
  });

  it("different conversations never share a key, and every key parses back (property)", () => {
    const id = fc.string({ unit: "grapheme", minLength: 1, maxLength: 8 });
    const ascii = fc.constantFrom("a", "b", ":", "%", "*", "A", "default", "a:b", "%3A");
    const part = fc.oneof(id, ascii);
    const args = fc.record({
      agentId: part,
      mode: fc.constantFrom(...SESSION_MODES),
      channel: fc.constantFrom("slack", "Slack", "discord", "a.b:c"),
      accountId: fc.option(part, { nil: undefined }),
      peer: fc.option(fc.record({ kind: fc.constantFrom(...PEER_KINDS), id: part }), { nil: undefined }),
    });
    fc.assert(
      fc.property(args, args, (x, y) => {
        const kx = sessionKey({ agentId: x.agentId, mode: x.mode, message: x });
        const ky = sessionKey({ agentId: y.agentId, mode: y.mode, message: y });
        const scope = (a: typeof x) => {
          const conversation = {
            channel: a.channel.toLowerCase(),
            accountId: a.accountId ?? "default",
            peer: a.mode === "per-peer" ? (a.peer ?? null) : null,
          };
          return JSON.stringify([a.agentId, a.mode === "main" ? "main" : conversation]);
        };
        expect(kx === ky).toBe(scope(x) === scope(y));
        expect(parseSessionKey(kx)?.agentId).toBe(x.agentId);
      }),
      { numRuns: 2000 },
    );
  });
});
