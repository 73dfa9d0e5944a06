import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { payloadOf } from "../../src/server/push/push-notifier.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));
/** The acceptance bound: output that asks for attention shows in GET and the list within this. */
const ATTENTION_WITHIN_MS = 1_000;

type Api = ReturnType<typeof api>;
type Attention = { reason: string; text?: string; since: number } | undefined;

let http: Api;

async function attentionOf(id: string): Promise<Attention> {
  return (await http.get(`/v1/sessions/${id}`)).json.attention as Attention;
}

async function listedAttention(id: string): Promise<Attention> {
  const list = (await http.get("/v1/sessions")).json.sessions as Array<{ id: string; attention?: Attention }>;
  return list.find((s) => s.id === id)?.attention;
}

/** Waits (at most ATTENTION_WITHIN_MS) for `id`'s attention to be `reason` (with `text`), in GET and the list. */
async function expectAttention(id: string, reason: string, text?: string): Promise<void> {
  const expected = { reason, ...(text !== undefined ? { text } : {}) };
  await waitFor(
    async () => {
      expect(await attentionOf(id)).toMatchObject(expected);
      expect(await listedAttention(id)).toMatchObject(expected);
      return true;
    },
    ATTENTION_WITHIN_MS,
    `attention ${reason}`,
  );
}

async function expectNoAttention(id: string): Promise<void> {
  await waitFor(
    async () => (await attentionOf(id)) === undefined && (await listedAttention(id)) === undefined,
    2_000,
    "no attention",
  );
}

/** A PTY shell that runs what the test types. */
async function shell(): Promise<string> {
  const created = await http.post("/v1/sessions", { command: ["sh"], pty: true, env: { PS1: "$ " } });
  expect(created.status).toBe(201);
  return created.json.id as string;
}

async function type(id: string, data: string): Promise<void> {
  expect((await http.post(`/v1/sessions/${id}/input`, { data })).status).toBe(200);
}

beforeAll(async () => {
  const gw = await testGateway({
    config: { agents: { scripted: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT] } } },
  });
  http = api(gw.url);
});

describe("attention of a PTY session", () => {
  it("a bell sets it within 1 s; typing clears it; the log says both", async () => {
    const id = await shell();
    await type(id, "printf '\\a'\n");
    await expectAttention(id, "bell");
    await type(id, "true\n");
    await expectNoAttention(id);
    const events = (await http.get(`/v1/sessions/${id}/events?types=attention`)).json.events as Array<{
      attention: Attention | null;
      by?: { name: string };
    }>;
    expect(events.map((e) => e.attention?.reason ?? null)).toEqual(["bell", null]);
    expect(events[1]!.by?.name).toBe("admin");
    // The bell's attention comes after the output that rang it, as a replay shows them.
    const all = (await http.get(`/v1/sessions/${id}/events?types=output,attention`)).json.events as Array<{
      type: string;
      data?: string;
      enc?: string;
    }>;
    const rang = all.findIndex(
      (e) => e.type === "output" && Buffer.from(e.data!, e.enc === "base64" ? "base64" : "utf8").includes(7),
    );
    expect(rang).toBeGreaterThanOrEqual(0);
    expect(all.findIndex((e) => e.type === "attention")).toBeGreaterThan(rang);
  });

  it("OSC 9 and OSC 777 notifications set it with their text; OSC 9;4 progress does not", async () => {
    const id = await shell();
    await type(id, "printf '\\033]9;4;1;50\\007'; printf '\\033]9;Build finished\\033\\\\'\n");
    await expectAttention(id, "notification", "Build finished");
    await type(id, "printf '\\033]777;notify;Claude;Needs your input\\007'\n");
    await expectAttention(id, "notification", "Claude: Needs your input");
  });

  it("a notification split across reads is found, and a BEL ending an OSC title is no bell", async () => {
    const id = await shell();
    await type(id, "printf '\\033]0;a title\\007'; printf '\\033]9;hel'; sleep 0.3; printf 'lo\\007'\n");
    await expectAttention(id, "notification", "hello");
    const reasons = (
      (await http.get(`/v1/sessions/${id}/events?types=attention`)).json.events as Array<{ attention: Attention }>
    ).map((e) => e.attention?.reason);
    expect(reasons).toEqual(["notification"]);
  });

  it("a viewer who may steer clears it by looking (seen)", async () => {
    const id = await shell();
    await type(id, "printf '\\a'\n");
    await expectAttention(id, "bell");
    expect((await http.post(`/v1/sessions/${id}/seen`)).status).toBe(200);
    expect(await attentionOf(id)).toBeUndefined();
  });
});

describe("attention of an agent session", () => {
  it("run-finished after a run, cleared by a look; run-failed; an elicitation until it is answered", async () => {
    const created = await http.post("/v1/sessions", { kind: "agent", agent: "scripted" });
    const id = created.json.id as string;
    const prompt = async (script: object) =>
      expect((await http.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify(script) })).status).toBe(202);
    await prompt({ op: "say", chunks: ["all ", "done"] });
    await waitFor(async () => (await attentionOf(id))?.reason === "run-finished", 15_000, "run-finished");
    expect(await attentionOf(id)).toMatchObject({ reason: "run-finished", text: "all done" });
    await http.post(`/v1/sessions/${id}/seen`);
    expect(await attentionOf(id)).toBeUndefined();

    await prompt({ op: "throw", message: "kaboom" });
    await waitFor(async () => (await attentionOf(id))?.reason === "run-failed", 15_000, "run-failed");

    await prompt({
      op: "elicit",
      message: "Which branch?",
      schema: { type: "object", properties: { b: { type: "string" } } },
    });
    await waitFor(async () => (await attentionOf(id))?.reason === "elicitation", 15_000, "elicitation");
    expect(await attentionOf(id)).toMatchObject({ text: "Which branch?" });
    // A look does not answer it: it still needs someone.
    await http.post(`/v1/sessions/${id}/seen`);
    expect((await attentionOf(id))?.reason).toBe("elicitation");
    const open = (
      (await http.get(`/v1/sessions/${id}/events?types=elicitation.request`)).json.events as Array<{
        requestId: string;
      }>
    )[0]!;
    await http.post(`/v1/sessions/${id}/elicitation`, { requestId: open.requestId, action: "decline" });
    await waitFor(
      async () => (await attentionOf(id))?.reason === "run-finished",
      15_000,
      "the run's end after the answer",
    );
  });
});

describe("attention notifications", () => {
  it("a terminal's bell and notification notify with their text; an agent's request a rule answered does not", () => {
    const at = { seq: 1, ts: 0 };
    const bell = { ...at, type: "attention", attention: { reason: "bell", since: 0 } } as SessionEvent;
    expect(payloadOf("build", "s1", bell)).toMatchObject({ reason: "attention", title: "build needs you" });
    const note = {
      ...at,
      type: "attention",
      attention: { reason: "notification", text: "Tests passed", since: 0 },
    } as SessionEvent;
    expect(payloadOf("build", "s1", note)).toMatchObject({ body: "Tests passed" });
    const cleared = { ...at, type: "attention", attention: null } as SessionEvent;
    expect(payloadOf("build", "s1", cleared)).toBeUndefined();
    const agentOnes = { ...at, type: "attention", attention: { reason: "run-finished", since: 0 } } as SessionEvent;
    expect(payloadOf("build", "s1", agentOnes)).toBeUndefined();
    const ruled = {
      ...at,
      type: "permission.request",
      runId: "r",
      requestId: "q",
      title: "Read",
      options: [],
      expiresAt: 0,
      rule: "reads",
    } as SessionEvent;
    expect(payloadOf("build", "s1", ruled)).toBeUndefined();
  });
});

describe("quiet", () => {
  it("sessions.quietAfterMs: a PTY session quiet that long after output needs someone", async () => {
    const gw = await testGateway({ config: { sessions: { quietAfterMs: 1_000 } } });
    const quiet = api(gw.url);
    const created = await quiet.post("/v1/sessions", { command: ["sh", "-c", "echo working; sleep 30"], pty: true });
    const id = created.json.id as string;
    const started = Date.now();
    await waitFor(
      async () => (await quiet.get(`/v1/sessions/${id}`)).json.attention?.reason === "quiet",
      5_000,
      "quiet",
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });
});
