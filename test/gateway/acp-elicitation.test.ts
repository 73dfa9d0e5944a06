// ACP `elicitation/create` (form mode) through the gateway, with the scripted agent
// (test/agents/fixtures/scripted-agent.mjs, op "elicit"): every viewer sees `elicitation.request`,
// the first valid answer reaches the agent, content that does not match the form is refused with
// nothing sent, and a withdrawn or abandoned elicitation ends `cancel` on both sides. Url mode:
// accepted without content, completed by the agent's `elicitation/complete`.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Gateway } from "../../src/server/gateway.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { connect } from "../../src/client/node.js";
import { AGENT_TOOLS } from "../../src/mcp/agent-tools.js";
import { GatewayAccess } from "../../src/mcp/gateway.js";
import { cli } from "../cli/helpers.js";
import { afterTest } from "../helpers/cleanup.js";
import { createSession } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { Mux, TOKENS, errorOf, eventsOf, http, secGateway } from "../security/helpers.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));

const SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 2 },
    age: { type: "integer", minimum: 0, maximum: 150 },
    color: { type: "string", enum: ["red", "green"] },
    email: { type: "string", format: "email" },
    subscribe: { type: "boolean" },
  },
  required: ["name", "age"],
};

type Ev = SessionEvent & { runId?: string; requestId?: string; text?: string; expiresAt?: number; url?: string };

async function setup() {
  const gw = await secGateway({
    config: { agents: { scripted: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT] } } },
  });
  const session = await createSession(gw, { kind: "agent", agent: "scripted", name: "shared-elicit" }, TOKENS.alice);
  return { gw, id: session.id as string };
}

/** Prompts `script` as alice and waits for its `elicitation.request`. */
async function elicit(gw: Gateway, id: string, script: Record<string, unknown>) {
  const { json } = await http(gw, "alice").post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify(script) });
  const runId = json.runId as string;
  const request = await waitFor(
    async () => ((await eventsOf(gw, id)) as Ev[]).find((e) => e.type === "elicitation.request" && e.runId === runId),
    20_000,
    "elicitation.request",
  );
  return { runId, requestId: request.requestId!, request };
}

async function runEnd(gw: Gateway, id: string, runId: string): Promise<{ events: Ev[]; text: string }> {
  const events = await waitFor(
    async () => {
      const all = (await eventsOf(gw, id)) as Ev[];
      return all.some((e) => e.runId === runId && ["chat.final", "chat.error", "chat.aborted"].includes(e.type))
        ? all
        : undefined;
    },
    20_000,
    "run end",
  );
  const text = events
    .filter((e) => e.type === "chat.delta" && e.runId === runId)
    .map((e) => e.text)
    .join("");
  return { events, text };
}

describe("ACP elicitation through the gateway", () => {
  it("accept with valid content reaches the agent; invalid content is refused with nothing sent", async () => {
    const { gw, id } = await setup();
    const { runId, requestId, request } = await elicit(gw, id, { op: "elicit", schema: SCHEMA, message: "Who?" });
    expect(request).toMatchObject({ mode: "form", message: "Who?", requestedSchema: { required: ["name", "age"] } });
    expect(request.expiresAt).toBeGreaterThan(Date.now());
    const alice = http(gw, "alice");
    const url = `/v1/sessions/${id}/elicitation`;
    for (const [content, field, why] of [
      [{ name: "Al" }, "age", "is required"],
      [{ name: "Al", age: 200 }, "age", "must be at most 150"],
      [{ name: "Al", age: 1.5 }, "age", "must be an integer"],
      [{ name: "A", age: 3 }, "name", "must be at least 2 characters"],
      [{ name: "Al", age: 3, color: "blue" }, "color", 'must be one of "red", "green"'],
      [{ name: "Al", age: 3, email: "nope" }, "email", "is not a valid email"],
      [{ name: "Al", age: 3, extra: 1 }, "extra", "is not a field of the form"],
      [{ name: "Al", age: 3, subscribe: "yes" }, "subscribe", "must be true or false"],
    ] as const) {
      const r = await alice.post(url, { requestId, action: "accept", content });
      expect(errorOf(r), JSON.stringify(content)).toMatchObject({ status: 400, code: "ELICITATION_CONTENT_INVALID" });
      expect(r.json.error.message).toBe(`field "${field}" ${why}`);
      expect(r.json.error).toMatchObject({ field, reason: why });
    }
    // Nothing reached the agent: the request is still open, and the run still waits.
    const between = (await eventsOf(gw, id)) as Ev[];
    expect(between.filter((e) => e.type === "elicitation.resolved")).toEqual([]);
    expect(between.some((e) => e.runId === runId && e.type === "chat.final")).toBe(false);
    const content = { name: "Ada", age: 36, color: "green", email: "ada@example.org", subscribe: true };
    expect((await alice.post(url, { requestId, action: "accept", content })).status).toBe(200);
    // The first answer won: a second one finds nothing open.
    expect(errorOf(await alice.post(url, { requestId, action: "decline" }))).toMatchObject({
      status: 404,
      code: "ELICITATION_NOT_FOUND",
    });
    const { events, text } = await runEnd(gw, id, runId);
    expect(text).toBe(`elicited ${JSON.stringify({ action: "accept", content })}`);
    expect(events.filter((e) => e.type === "elicitation.resolved")).toMatchObject([
      { requestId, runId, action: "accept", content, by: { name: "alice" } },
    ]);
  });

  it("decline over /v1/ws reaches the agent; a viewer's answer is refused and changes nothing", async () => {
    const { gw, id } = await setup();
    const { runId, requestId } = await elicit(gw, id, { op: "elicit", schema: SCHEMA });
    const refused = await http(gw, "vera").post(`/v1/sessions/${id}/elicitation`, { requestId, action: "decline" });
    expect(errorOf(refused)).toMatchObject({ status: 403, code: "FORBIDDEN" });
    const vera = await Mux.open(gw, "vera");
    expect(
      await vera.request({ op: "elicitation", session: id, requestId, action: "accept", content: {} }),
    ).toMatchObject({
      code: "FORBIDDEN",
    });
    expect(((await eventsOf(gw, id)) as Ev[]).filter((e) => e.type === "elicitation.resolved")).toEqual([]);
    const alice = await Mux.open(gw, "alice");
    expect(await alice.request({ op: "elicitation", session: id, requestId, action: "decline" })).toMatchObject({
      op: "ack",
    });
    const { events, text } = await runEnd(gw, id, runId);
    expect(text).toBe('elicited {"action":"decline"}');
    expect(events.filter((e) => e.type === "elicitation.resolved")).toMatchObject([
      { requestId, action: "decline", by: { name: "alice" } },
    ]);
  });

  it("the agent withdrawing it ($/cancel_request) resolves it cancelled", async () => {
    const { gw, id } = await setup();
    const { runId, requestId } = await elicit(gw, id, { op: "elicit", schema: SCHEMA, cancelAfterMs: 300 });
    const { events, text } = await runEnd(gw, id, runId);
    expect(text).toBe('elicited {"action":"cancel"}');
    expect(events.filter((e) => e.type === "elicitation.resolved")).toMatchObject([
      { requestId, action: "cancel", by: null },
    ]);
    expect(
      errorOf(await http(gw, "alice").post(`/v1/sessions/${id}/elicitation`, { requestId, action: "decline" })),
    ).toMatchObject({ code: "ELICITATION_NOT_FOUND" });
  });

  it("aborting the run answers the agent cancel and tells the viewers who ended it", async () => {
    const { gw, id } = await setup();
    const { runId, requestId } = await elicit(gw, id, { op: "elicit", schema: SCHEMA });
    expect((await http(gw, "alice").post(`/v1/sessions/${id}/abort`, {})).status).toBe(200);
    const { events } = await runEnd(gw, id, runId);
    const resolved = events.filter((e) => e.type === "elicitation.resolved");
    expect(resolved).toMatchObject([{ requestId, action: "cancel", by: { name: "alice" } }]);
    const aborted = events.findIndex((e) => e.type === "chat.aborted" && e.runId === runId);
    expect(events.indexOf(resolved[0]!)).toBeLessThan(aborted);
  });

  it("refuses a form the gateway does not serve: the agent gets an error, nobody is asked", async () => {
    const { gw, id } = await setup();
    const { json } = await http(gw, "alice").post(`/v1/sessions/${id}/prompt`, {
      text: JSON.stringify({ op: "elicit", schema: { type: "object", properties: { x: { type: "object" } } } }),
    });
    const { events, text } = await runEnd(gw, id, json.runId);
    expect(text).toMatch(/^ERR -32602 /);
    expect(events.some((e) => e.type === "elicitation.request")).toBe(false);
  });

  it("the SDK, the CLI and MCP's answer_elicitation answer it", { timeout: 60_000 }, async () => {
    const { gw, id } = await setup();
    // The SDK, over /v1/ws.
    const client = await connect({ url: gw.url, token: TOKENS.alice });
    afterTest(() => client.close());
    const first = await elicit(gw, id, { op: "elicit", schema: SCHEMA });
    await expect(client.elicitation(id, first.requestId, "accept", { name: "Al" })).rejects.toMatchObject({
      code: "ELICITATION_CONTENT_INVALID",
    });
    await client.elicitation(id, first.requestId, "accept", { name: "Al", age: 7 });
    expect((await runEnd(gw, id, first.runId)).text).toBe(
      'elicited {"action":"accept","content":{"name":"Al","age":7}}',
    );
    // The CLI: a content that does not match is exit code 1, naming the field; then an answer.
    const env = { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: TOKENS.alice };
    const second = await elicit(gw, id, { op: "elicit", schema: SCHEMA });
    const bad = await cli(["elicit", id, second.requestId, "accept", '{"name":"Al","age":"7"}'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('field "age" must be a number');
    const ok = await cli(["elicit", id, second.requestId, "accept", '{"name":"Bo","age":8}'], env);
    expect(ok, ok.stderr).toMatchObject({ code: 0 });
    expect((await runEnd(gw, id, second.runId)).text).toBe(
      'elicited {"action":"accept","content":{"name":"Bo","age":8}}',
    );
    // MCP's tool.
    const gateway = new GatewayAccess({ target: { url: gw.url, token: TOKENS.alice } });
    afterTest(() => gateway.close());
    const tool = AGENT_TOOLS.find((t) => t.listing.name === "answer_elicitation")!;
    const third = await elicit(gw, id, { op: "elicit", schema: SCHEMA });
    const signal = new AbortController().signal;
    // wait_for_run says what the run waits on and how to answer it.
    const waiting = await AGENT_TOOLS.find((t) => t.listing.name === "wait_for_run")!.call(
      { id, run_id: third.runId, timeout_ms: 0 },
      { gateway, signal },
    );
    const said = waiting.content.map((c) => (c as { text?: string }).text ?? "").join("\n");
    expect(said).toContain(
      `[elicitation] Tell me: waiting for an answer (answer_elicitation request_id ${third.requestId}`,
    );
    const answered = await tool.call({ id, request_id: third.requestId, action: "decline" }, { gateway, signal });
    expect(answered.isError).not.toBe(true);
    expect(answered.structuredContent).toEqual({ id, request_id: third.requestId, action: "decline" });
    expect((await runEnd(gw, id, third.runId)).text).toBe('elicited {"action":"decline"}');
  });

  it(
    "url mode: accepted without content by the CLI, cancelled over MCP, completed or withdrawn by the agent",
    {
      timeout: 60_000,
    },
    async () => {
      const { gw, id } = await setup();
      const visit = { op: "elicit", mode: "url", url: "https://login.example/auth?code=secret", message: "Log in" };
      const first = await elicit(gw, id, visit);
      expect(first.request).toMatchObject({
        mode: "url",
        url: "https://login.example/auth?code=secret",
        message: "Log in",
      });
      expect(first.request).not.toHaveProperty("requestedSchema");
      const url = `/v1/sessions/${id}/elicitation`;
      const withContent = await http(gw, "alice").post(url, {
        requestId: first.requestId,
        action: "accept",
        content: {},
      });
      expect(errorOf(withContent)).toMatchObject({ status: 400, code: "VALIDATION_FAILED" });
      const env = { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: TOKENS.alice };
      const ok = await cli(["elicit", id, first.requestId, "accept"], env);
      expect(ok, ok.stderr).toMatchObject({ code: 0 });
      const accepted = await runEnd(gw, id, first.runId);
      expect(accepted.text).toBe('elicited {"action":"accept"}');
      expect(accepted.events.filter((e) => e.type === "elicitation.resolved")).toMatchObject([
        {
          requestId: first.requestId,
          action: "accept",
          by: { name: "alice", id: "token:alice" },
          reason: "answered",
        },
      ]);
      // The user cancels (MCP): the agent gets cancel.
      const gateway = new GatewayAccess({ target: { url: gw.url, token: TOKENS.alice } });
      afterTest(() => gateway.close());
      const tool = AGENT_TOOLS.find((t) => t.listing.name === "answer_elicitation")!;
      const second = await elicit(gw, id, visit);
      const signal = new AbortController().signal;
      await tool.call({ id, request_id: second.requestId, action: "cancel" }, { gateway, signal });
      expect((await runEnd(gw, id, second.runId)).text).toBe('elicited {"action":"cancel"}');
      // The agent says the visit is done: accepted for everyone, by nobody.
      const third = await elicit(gw, id, { ...visit, completeAfterMs: 200 });
      const completed = await runEnd(gw, id, third.runId);
      expect(completed.text).toBe('elicited {"action":"accept"}');
      expect(
        completed.events.filter((e) => e.type === "elicitation.resolved" && e.requestId === third.requestId),
      ).toMatchObject([{ action: "accept", by: null, reason: "agent-completed" }]);
      // The agent withdraws it ($/cancel_request): the card goes, with the reason logged.
      const fourth = await elicit(gw, id, { ...visit, cancelAfterMs: 200 });
      const withdrawn = await runEnd(gw, id, fourth.runId);
      expect(withdrawn.text).toBe('elicited {"action":"cancel"}');
      expect(
        withdrawn.events.filter((e) => e.type === "elicitation.resolved" && e.requestId === fourth.requestId),
      ).toMatchObject([{ action: "cancel", by: null, reason: "agent-cancelled" }]);
    },
  );
});
