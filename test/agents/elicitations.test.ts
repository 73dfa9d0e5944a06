// The ElicitationBroker and the form checks without an agent (the whole path, with the scripted
// agent: test/gateway/acp-elicitation.test.ts): the timeout, the bounds, the field checks, and
// url mode (accepted without content, completed or withdrawn by the agent).
import { describe, expect, it } from "vitest";
import { MemoryLog } from "../../src/agents/index.js";
import {
  ElicitationBroker,
  MAX_ELICITATION_MESSAGE_CHARS,
  MAX_ELICITATION_SCHEMA_BYTES,
  MAX_ELICITATION_URL_CHARS,
  MAX_PENDING_ELICITATIONS,
  checkElicitationContent,
  readElicitationAsk,
} from "../../src/agents/elicitations.js";
import type { ElicitationAsk } from "../../src/agents/elicitations.js";
import { ManualClock } from "../../src/core/clock.js";

const ask: ElicitationAsk = {
  mode: "form",
  message: "Which?",
  requestedSchema: { type: "object", properties: { n: { type: "integer" } }, required: ["n"] },
};

function broker(timeoutMs = 60_000) {
  const clock = new ManualClock(0);
  const log = new MemoryLog("s1", { clock });
  let n = 0;
  const overLimit: string[] = [];
  const b = new ElicitationBroker({
    log,
    clock,
    timeoutMs,
    newId: () => `e-${++n}`,
    onChange: () => {},
    onOverLimit: (runId) => overLimit.push(runId),
  });
  return { clock, log, b, overLimit };
}

describe("ElicitationBroker", () => {
  it("answers the agent cancel when nobody answers in time, and says so to the viewers", async () => {
    const { clock, log, b } = broker(1_000);
    const outcome = b.request("r1", ask);
    expect(log.events.at(-1)).toMatchObject({ type: "elicitation.request", requestId: "e-1", expiresAt: 1_000 });
    clock.advance(999);
    expect(b.open).toBe(1);
    clock.advance(1);
    await expect(outcome).resolves.toEqual({ action: "cancel" });
    expect(log.events.at(-1)).toMatchObject({
      type: "elicitation.resolved",
      action: "cancel",
      by: null,
      reason: "timeout",
    });
    expect(() => b.answer("e-1", { action: "decline" }, { name: "a", role: "operator" })).toThrow(
      expect.objectContaining({ code: "ELICITATION_NOT_FOUND" }),
    );
  });

  it(`cancels at once past ${MAX_PENDING_ELICITATIONS} open, without asking anyone`, async () => {
    const { log, b, overLimit } = broker();
    for (let i = 0; i < MAX_PENDING_ELICITATIONS; i++) void b.request("r1", ask);
    await expect(b.request("r1", ask)).resolves.toEqual({ action: "cancel" });
    expect(overLimit).toEqual(["r1"]);
    expect(log.events.filter((e) => e.type === "elicitation.request")).toHaveLength(MAX_PENDING_ELICITATIONS);
  });

  it("refuses content with decline, and keeps the request open after a refused answer", async () => {
    const { b } = broker();
    const outcome = b.request("r1", ask);
    const by = { name: "a", role: "operator" as const };
    expect(() => b.answer("e-1", { action: "decline", content: { n: 1 } }, by)).toThrow(
      expect.objectContaining({ code: "VALIDATION_FAILED" }),
    );
    expect(() => b.answer("e-1", { action: "accept", content: { n: "1" } }, by)).toThrow(
      expect.objectContaining({
        code: "ELICITATION_CONTENT_INVALID",
        details: { field: "n", reason: "must be a number" },
      }),
    );
    b.answer("e-1", { action: "accept", content: { n: 1 } }, by);
    await expect(outcome).resolves.toEqual({ action: "accept", content: { n: 1 } });
  });
});

describe("url elicitations", () => {
  const visit: ElicitationAsk = {
    mode: "url",
    message: "Log in",
    url: "https://auth.example/x?t=1",
    elicitationId: "v1",
  };
  const by = { name: "alice", role: "operator" as const, id: "token:alice" };

  it("are accepted without content, attributed, as the first answer", async () => {
    const { log, b } = broker();
    const outcome = b.request("r1", visit);
    expect(log.events.at(-1)).toMatchObject({
      type: "elicitation.request",
      mode: "url",
      url: "https://auth.example/x?t=1",
      message: "Log in",
    });
    expect(log.events.at(-1)).not.toHaveProperty("requestedSchema");
    expect(() => b.answer("e-1", { action: "accept", content: {} }, by)).toThrow(
      expect.objectContaining({ code: "VALIDATION_FAILED" }),
    );
    b.answer("e-1", { action: "accept" }, by);
    await expect(outcome).resolves.toEqual({ action: "accept" });
    expect(log.events.at(-1)).toEqual(
      expect.objectContaining({ type: "elicitation.resolved", action: "accept", by, reason: "answered" }),
    );
    expect(log.events.at(-1)).not.toHaveProperty("content");
    expect(() => b.answer("e-1", { action: "cancel" }, by)).toThrow(
      expect.objectContaining({ code: "ELICITATION_NOT_FOUND" }),
    );
  });

  it("end accepted when the agent says they are complete, cancelled when it withdraws them", async () => {
    const { log, b } = broker();
    const done = b.request("r1", visit);
    expect(b.complete("other")).toBe(false);
    expect(b.complete("v1")).toBe(true);
    await expect(done).resolves.toEqual({ action: "accept" });
    expect(log.events.at(-1)).toMatchObject({ action: "accept", by: null, reason: "agent-completed" });
    // Completed once: a second notification finds nothing open.
    expect(b.complete("v1")).toBe(false);
    const withdraw = new AbortController();
    const withdrawn = b.request("r1", visit, withdraw.signal);
    withdraw.abort();
    await expect(withdrawn).resolves.toEqual({ action: "cancel" });
    expect(log.events.at(-1)).toMatchObject({ action: "cancel", by: null, reason: "agent-cancelled" });
    expect(b.open).toBe(0);
  });

  it("a second open request with the same elicitationId is cancelled at once", async () => {
    const { log, b } = broker();
    void b.request("r1", visit);
    await expect(b.request("r1", visit)).resolves.toEqual({ action: "cancel" });
    expect(log.events.filter((e) => e.type === "elicitation.request")).toHaveLength(1);
  });

  it("are refused with a url that does not parse or is too long", () => {
    const base = { mode: "url", message: "m", elicitationId: "v" };
    expect(readElicitationAsk({ ...base, url: "not a url" })).toBe("url must be an absolute URL");
    expect(readElicitationAsk({ ...base, url: `https://a.example/${"x".repeat(MAX_ELICITATION_URL_CHARS)}` })).toMatch(
      /MAX_ELICITATION_URL_CHARS/,
    );
    expect(readElicitationAsk({ ...base, url: "https://a.example", elicitationId: 7 })).toBe(
      "elicitationId must be a string",
    );
    // The scheme is the UI's business (it links http(s) only): the request itself is served.
    expect(readElicitationAsk({ ...base, url: "javascript:alert(1)" })).toEqual({
      mode: "url",
      message: "m",
      url: "javascript:alert(1)",
      elicitationId: "v",
    });
  });
});

describe("the form an agent may ask", () => {
  it("is refused over its bounds or with a field type the gateway does not serve", () => {
    const schema = { type: "object", properties: { a: { type: "string" } } };
    expect(
      readElicitationAsk({ message: "x".repeat(MAX_ELICITATION_MESSAGE_CHARS + 1), requestedSchema: schema }),
    ).toMatch(/MAX_ELICITATION_MESSAGE_CHARS/);
    const big = {
      type: "object",
      properties: { a: { type: "string", description: "d".repeat(MAX_ELICITATION_SCHEMA_BYTES) } },
    };
    expect(readElicitationAsk({ message: "m", requestedSchema: big })).toMatch(/MAX_ELICITATION_SCHEMA_BYTES/);
    expect(readElicitationAsk({ message: "m", requestedSchema: { properties: { a: { type: "object" } } } })).toMatch(
      /not a form the gateway serves/,
    );
    expect(readElicitationAsk({ message: "m", requestedSchema: { ...schema, required: ["b"] } })).toMatch(
      /requires "b", which it does not define/,
    );
    // ACP's null means omitted.
    expect(readElicitationAsk({ message: "m", requestedSchema: { ...schema, title: null, required: null } })).toEqual({
      mode: "form",
      message: "m",
      requestedSchema: { type: "object", properties: { a: { type: "string" } } },
    });
  });

  it("checks formats, multi-selects and titled choices", () => {
    const { requestedSchema } = readElicitationAsk({
      message: "m",
      requestedSchema: {
        type: "object",
        properties: {
          day: { type: "string", format: "date" },
          at: { type: "string", format: "date-time" },
          site: { type: "string", format: "uri" },
          size: { type: "string", oneOf: [{ const: "s", title: "Small" }] },
          tags: { type: "array", items: { enum: ["a", "b", "c"] }, minItems: 1, maxItems: 2 },
        },
      },
    }) as Extract<ElicitationAsk, { mode: "form" }>;
    const bad = (content: Record<string, unknown>) => {
      try {
        checkElicitationContent(requestedSchema, content);
        return "accepted";
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(bad({ day: "2026-02-30" })).toBe('field "day" is not a valid date');
    expect(bad({ day: "2026-02-28" })).toBe("accepted");
    expect(bad({ at: "2026-02-28 10:00" })).toBe('field "at" is not a valid date-time');
    expect(bad({ at: "2026-02-28T10:00:00Z" })).toBe("accepted");
    expect(bad({ site: "not a url" })).toBe('field "site" is not a valid uri');
    expect(bad({ size: "Small" })).toBe('field "size" must be one of "s"');
    expect(bad({ tags: [] })).toBe('field "tags" needs at least 1 choices');
    expect(bad({ tags: ["a", "b", "c"] })).toBe('field "tags" takes at most 2 choices');
    expect(bad({ tags: ["a", "d"] })).toBe('field "tags" "d" is not one of its choices');
    expect(bad({ tags: ["a", "a"] })).toBe('field "tags" lists a choice twice');
    expect(bad({ size: "s", tags: ["a", "c"] })).toBe("accepted");
  });
});
