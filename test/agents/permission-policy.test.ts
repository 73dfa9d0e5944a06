import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import type { PermissionPolicyInput } from "../../src/protocol/index.js";
import { parseConfig } from "../../src/server/config/config.js";
import { api, testGateway } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("./fixtures/scripted-agent.mjs", import.meta.url));
const VIEWER = "viewer-token-0123456789abcdef";
/** Short, so that the request no rule answers is rejected within the test. */
const TIMEOUT_MS = 400;

type Ev = { seq: number; type: string; runId?: string; text?: string; [k: string]: unknown };
type Api = ReturnType<typeof api>;

const POLICY: PermissionPolicyInput = {
  rules: [
    { name: "reads", kind: "read", answer: "allow_once" },
    { name: "no-rm", command: "^rm -rf", answer: "reject_once" },
  ],
  timeoutMs: TIMEOUT_MS,
  onTimeout: "reject_once",
};

let http: Api;
let viewer: Api;
let sessionId: string;
let cwd: string;

async function events(id: string): Promise<Ev[]> {
  return (await http.get(`/v1/sessions/${id}/events`)).json.events as Ev[];
}

/** Prompts a script of the scripted agent and answers its run's chat.final text. */
async function ask(script: object): Promise<{ runId: string; text: string }> {
  const sent = await http.post(`/v1/sessions/${sessionId}/prompt`, { text: JSON.stringify(script) });
  expect(sent.status).toBe(202);
  const runId = sent.json.runId as string;
  const end = await waitFor(
    async () => (await events(sessionId)).find((e) => e.runId === runId && /^chat\.(final|error)$/.test(e.type)),
    15_000,
    `the end of run ${runId}`,
  );
  expect(end.type).toBe("chat.final");
  return { runId, text: end.text as string };
}

async function resolvedOf(runId: string): Promise<Ev> {
  return (await events(sessionId)).find((e) => e.type === "permission.resolved" && e.runId === runId)!;
}

beforeAll(async () => {
  cwd = tempDir();
  const gw = await testGateway({
    config: {
      agents: { scripted: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT], permissionPolicy: POLICY } },
      auth: { tokens: [{ name: "vera", token: VIEWER, role: "viewer", sessions: ["*"] }] },
    },
  });
  http = api(gw.url);
  viewer = api(gw.url, VIEWER);
  const created = await http.post("/v1/sessions", { kind: "agent", agent: "scripted", cwd });
  expect(created.status).toBe(201);
  sessionId = created.json.id as string;
});

describe("permission policy", () => {
  it("answers a read at once (rule reads), logged by rule:reads, with nobody asked", async () => {
    const { runId, text } = await ask({
      op: "permission",
      toolCall: { kind: "read", locations: [{ path: `${cwd}/notes.txt` }] },
    });
    expect(text).toBe("chose yes");
    const request = (await events(sessionId)).find((e) => e.type === "permission.request" && e.runId === runId)!;
    expect(request.rule).toBe("reads");
    expect(await resolvedOf(runId)).toMatchObject({
      outcome: "selected",
      optionId: "yes",
      by: { name: "rule:reads", role: "system", id: "rule:reads" },
    });
    // Nobody was needed: no attention was set for it.
    expect(
      (await events(sessionId)).some(
        (e) =>
          e.type === "attention" && e.attention !== null && (e.attention as { reason: string }).reason === "permission",
      ),
    ).toBe(false);
  });

  it("rejects rm -rf (rule no-rm), logged by rule:no-rm", async () => {
    const { runId, text } = await ask({
      op: "permission",
      toolCall: { kind: "execute", rawInput: { command: "rm -rf /tmp/everything" } },
    });
    expect(text).toBe("chose no");
    expect(await resolvedOf(runId)).toMatchObject({ outcome: "selected", optionId: "no", by: { id: "rule:no-rm" } });
  });

  it("rejects a request no rule matches once timeoutMs passed (rule:timeout), and it needed someone meanwhile", async () => {
    const started = Date.now();
    const { runId, text } = await ask({
      op: "permission",
      toolCall: { kind: "edit", locations: [{ path: `${cwd}/src/a.ts` }] },
    });
    expect(text).toBe("chose no");
    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    const all = await events(sessionId);
    const request = all.find((e) => e.type === "permission.request" && e.runId === runId)!;
    expect(request.rule).toBeUndefined();
    expect(Math.abs((request.expiresAt as number) - ((request.ts as number) + TIMEOUT_MS))).toBeLessThanOrEqual(5);
    expect(await resolvedOf(runId)).toMatchObject({ outcome: "selected", optionId: "no", by: { id: "rule:timeout" } });
    const attentions = all.filter((e) => e.type === "attention" && e.seq > request.seq).map((e) => e.attention);
    expect(attentions[0]).toMatchObject({ reason: "permission", text: expect.any(String) });
    expect(attentions[1]).toBeNull();
  });

  it("previews another policy over the past requests: the rule that matches, the answer, and what each got", async () => {
    const preview = await http.post(`/v1/sessions/${sessionId}/permission-policy/preview`, {
      policy: {
        rules: [
          { name: "edits-here", kind: "edit", insideCwd: true, answer: "allow_once" },
          { name: "shell", kind: "execute", command: "^rm ", answer: "ask" },
        ],
      },
    });
    expect(preview.status).toBe(200);
    const rows = preview.json.requests as Array<Record<string, unknown>>;
    expect(rows.map((r) => [(r.toolCall as { kind: string }).kind, r.rule, r.answer, r.optionId ?? null])).toEqual([
      ["read", null, "ask", null],
      ["execute", "shell", "ask", null],
      ["edit", "edits-here", "allow_once", "yes"],
    ]);
    expect(rows.map((r) => (r.got as { by: string }).by)).toEqual(["rule:reads", "rule:no-rm", "rule:timeout"]);
    // Anyone who sees the session may preview; an invalid policy is refused naming its rule.
    const bad = await viewer.post(`/v1/sessions/${sessionId}/permission-policy/preview`, {
      policy: { rules: [{ name: "broken", command: "(", answer: "ask" }] },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain("rule broken: command is not a valid regular expression");
  });

  it("a session's own policy (PUT) answers from then on; GET says whose it is; viewers may not set it", async () => {
    expect((await http.get(`/v1/sessions/${sessionId}/permission-policy`)).json).toMatchObject({ source: "agent" });
    const own = { rules: [{ name: "edits", kind: "edit", answer: "allow_once" }] };
    expect((await viewer.call("PUT", `/v1/sessions/${sessionId}/permission-policy`, own)).status).toBe(403);
    const put = await http.call("PUT", `/v1/sessions/${sessionId}/permission-policy`, own);
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ source: "session", policy: { rules: [{ name: "edits" }] } });
    const { runId, text } = await ask({ op: "permission", toolCall: { kind: "edit", locations: [{ path: "a.ts" }] } });
    expect(text).toBe("chose yes");
    expect(await resolvedOf(runId)).toMatchObject({ by: { id: "rule:edits" } });
    expect((await events(sessionId)).find((e) => e.type === "permission.policy")).toMatchObject({
      policy: { rules: [{ name: "edits" }] },
      by: { name: "admin" },
    });
    // null: back to the agent's.
    const back = await http.call("PUT", `/v1/sessions/${sessionId}/permission-policy`, "null");
    expect(back.json).toMatchObject({ source: "agent", policy: { rules: [{ name: "reads" }, { name: "no-rm" }] } });
  });
});

describe("permission policy in the config", () => {
  const agentWith = (permissionPolicy: unknown) => ({
    agents: { a: { adapter: "acp", command: ["agent"], permissionPolicy } },
  });

  it("takes exactly the documented shape", () => {
    const config = parseConfig(agentWith(POLICY));
    expect(config.agents["a"]!.permissionPolicy).toEqual(POLICY);
  });

  it("refuses a bad regex or an unknown kind with a message naming the rule", () => {
    expect(() =>
      parseConfig(agentWith({ rules: [{ name: "no-rm", command: "^rm -rf (", answer: "reject_once" }] })),
    ).toThrow(/agents\.a\.permissionPolicy\.rules\.0\.command: rule no-rm: command is not a valid regular expression/);
    expect(() => parseConfig(agentWith({ rules: [{ name: "reads", kind: "reed", answer: "allow_once" }] }))).toThrow(
      /rule reads: unknown tool kind "reed"/,
    );
    expect(() =>
      parseConfig(agentWith({ rules: [{ name: "x", answer: "allow_always" }], onTimeout: "cancelled" })),
    ).toThrow(/rules\.0\.answer/);
  });
});
