import { describe, expect, it } from "vitest";
import { InboundMessageSchema, ROUTING_LIMITS } from "../../src/routing/index.js";

const paths = (value: unknown) => {
  const result = InboundMessageSchema.safeParse(value);
  return result.success ? [] : result.error.issues.map((issue) => issue.path.join("."));
};

describe("inbound message schema", () => {
  it("accepts a full message and a minimal one", () => {
    const full = {
      channel: "discord",
      accountId: "work",
      peer: { kind: "channel", id: "thread-1" },
      parentPeer: { kind: "channel", id: "dev" },
      guildId: "g",
      teamId: "t",
      roles: ["admin"],
      text: "hello",
      sender: { id: "u", name: "Ada" },
    };
    expect(InboundMessageSchema.parse(full)).toEqual(full);
    expect(InboundMessageSchema.parse({ channel: "slack", text: "hi" })).toEqual({ channel: "slack", text: "hi" });
  });

  it("names the field that is wrong", () => {
    expect(paths({ text: "hi" })).toEqual(["channel"]);
    expect(paths({ channel: "slack" })).toEqual(["text"]);
    expect(paths({ channel: "slack", text: "" })).toEqual(["text"]);
    expect(paths({ channel: "slack", text: "x", peer: { kind: "dm", id: "u" } })).toEqual(["peer.kind"]);
    expect(paths({ channel: "slack", text: "x", sender: { name: "no id" } })).toEqual(["sender.id"]);
    expect(paths({ channel: "slack", text: "x", extra: 1 })).toEqual([""]);
  });

  it("refuses parentPeer without peer", () => {
    expect(paths({ channel: "slack", text: "x", parentPeer: { kind: "channel", id: "c" } })).toEqual(["parentPeer"]);
  });

  it("bounds every string and list", () => {
    const long = "x".repeat(ROUTING_LIMITS.ID_CHARS + 1);
    expect(paths({ channel: "s", text: "x", accountId: long })).toEqual(["accountId"]);
    expect(paths({ channel: "s", text: "x", guildId: long })).toEqual(["guildId"]);
    expect(paths({ channel: "s", text: "x", roles: Array(ROUTING_LIMITS.ROLES + 1).fill("r") })).toEqual(["roles"]);
    expect(paths({ channel: "s", text: "x".repeat(ROUTING_LIMITS.TEXT_CHARS + 1) })).toEqual(["text"]);
    expect(
      paths({ channel: "s", text: "x", sender: { id: "u", name: "n".repeat(ROUTING_LIMITS.SENDER_NAME_CHARS + 1) } }),
    ).toEqual(["sender.name"]);
  });
});
