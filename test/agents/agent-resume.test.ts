import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { cli } from "../cli/helpers.js";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("./fixtures/scripted-agent.mjs", import.meta.url));
const VIEWER = "viewer-token-0123456789abcdef";

type Ev = { seq: number; type: string; runId?: string; text?: string; [k: string]: unknown };
type Api = ReturnType<typeof api>;

/** A gateway with the scripted agent twice: one that offers ACP session/load, one that does not. */
function gatewayConfig(): string {
  const config = join(tempDir(), "config.json");
  const command = [process.execPath, SCRIPTED_AGENT];
  writeFileSync(
    config,
    JSON.stringify({
      agents: {
        loads: { adapter: "acp", command: [...command, "--load-session"] },
        fresh: { adapter: "acp", command },
      },
      auth: { tokens: [{ name: "vera", token: VIEWER, role: "viewer", sessions: ["*"] }] },
    }),
  );
  return config;
}

async function events(http: Api, id: string): Promise<Ev[]> {
  return (await http.get(`/v1/sessions/${id}/events`)).json.events as Ev[];
}

/** Prompts `script` and answers the run's chat.final text. */
async function ask(http: Api, id: string, script: object): Promise<string> {
  const sent = await http.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify(script) });
  expect(sent.status).toBe(202);
  const runId = sent.json.runId as string;
  const end = await waitFor(
    async () =>
      (await events(http, id)).find((e) => e.runId === runId && e.type.startsWith("chat.") && e.type !== "chat.delta"),
    15_000,
    `the end of run ${runId}`,
  );
  expect(end.type).toBe("chat.final");
  return end.text as string;
}

async function kill(gateway: ChildGateway): Promise<void> {
  gateway.child.kill("SIGKILL");
  await new Promise((resolve) => gateway.child.once("exit", resolve));
}

/**
 * An agent session of `agent` that answered one `{op: "session"}`, lost when its gateway was
 * killed: the gateway started again on the same data directory, the session and that answer.
 */
async function lostAfterOneAnswer(
  agent: "loads" | "fresh",
  before?: (http: Api, id: string) => Promise<void>,
): Promise<{ gateway: ChildGateway; http: Api; id: string; opened: string }> {
  const dataDir = tempDir();
  const config = gatewayConfig();
  const first = await serveInChild({ dataDir, config });
  const http1 = api(first.url);
  const id = (await http1.post("/v1/sessions", { kind: "agent", agent })).json.id as string;
  const opened = await ask(http1, id, { op: "session" });
  await before?.(http1, id);
  await kill(first);
  const gateway = await serveInChild({ dataDir, config });
  return { gateway, http: api(gateway.url), id, opened };
}

describe("resuming a lost agent session (POST /v1/sessions/:id/resume)", () => {
  it("reloads the agent's conversation with ACP session/load and goes on in the same log", async () => {
    let crashed = "";
    const lost = await lostAfterOneAnswer("loads", async (http1, id) => {
      // An agent that crashed comes back with the same conversation too.
      await http1.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "crash" }) });
      crashed = await ask(http1, id, { op: "session" });
    });
    const { http, id } = lost;
    const agentSession = /^session=(scripted-\d+) loaded=none$/.exec(lost.opened)?.[1];
    expect(agentSession, lost.opened).toBeDefined();
    expect(crashed).toBe(`session=${agentSession} loaded=${agentSession}`);
    const lostInfo = (await http.get(`/v1/sessions/${id}`)).json;
    expect(lostInfo).toMatchObject({ state: "lost", pid: null });
    expect(lostInfo).not.toHaveProperty("cannotResume");
    const before = await events(http, id);

    // Who may not steer it may not resume it.
    const refused = await api(lost.gateway.url, VIEWER).post(`/v1/sessions/${id}/resume`, {});
    expect(refused.status).toBe(403);
    const badBody = await http.post(`/v1/sessions/${id}/resume`, { force: true });
    expect([badBody.status, badBody.json.error.code]).toEqual([400, "VALIDATION_FAILED"]);

    const resumed = await http.post(`/v1/sessions/${id}/resume`);
    expect(resumed.status, JSON.stringify(resumed.json)).toBe(200);
    expect(resumed.json).toMatchObject({ id, state: "running", endedAt: null });
    // The agent runs already (it loaded the conversation): its pid shows.
    expect(resumed.json.pid).toEqual(expect.any(Number));
    const after = await events(http, id);
    expect(after.slice(0, before.length)).toEqual(before);
    // What the agent replayed while loading is not logged again: the log has it.
    expect(after.slice(before.length)).toEqual([
      expect.objectContaining({ type: "resumed", loaded: true, by: expect.objectContaining({ name: "admin" }) }),
    ]);
    expect(after[before.length]!.seq).toBe(before[before.length - 1]!.seq + 1);
    expect(after.some((e) => String(e.text ?? "").includes("replayed"))).toBe(false);

    expect(await ask(http, id, { op: "session" })).toBe(`session=${agentSession} loaded=${agentSession}`);
    expect(await ask(http, id, { op: "pid" })).toBe(`pid=${resumed.json.pid}`);
    const again = await http.post(`/v1/sessions/${id}/resume`);
    expect([again.status, again.json.error.code]).toEqual([409, "AGENT_CANNOT_RESUME"]);
    expect(again.json.error.message).toContain("is running");
  }, 90_000);

  it("refuses with AGENT_CANNOT_RESUME when the agent does not offer session/load, and the session stays lost", async () => {
    let idle = "";
    const lost = await lostAfterOneAnswer("fresh", async (http1) => {
      // A session whose agent never started has no conversation to lose: it resumes without loading.
      idle = (await http1.post("/v1/sessions", { kind: "agent", agent: "fresh" })).json.id as string;
    });
    const { http, id } = lost;
    expect(lost.opened).toMatch(/^session=scripted-\d+ loaded=none$/);
    // The session says so before anyone tries: the agent's initialize answer had no loadSession.
    const reason = /^scripted-agent cannot reload its conversation: .*loadSession.*start a new session/;
    expect((await http.get(`/v1/sessions/${id}`)).json.cannotResume).toMatch(reason);
    const before = await events(http, id);
    const refused = await http.post(`/v1/sessions/${id}/resume`);
    expect([refused.status, refused.json.error.code]).toEqual([409, "AGENT_CANNOT_RESUME"]);
    expect(refused.json.error.message).toMatch(reason);
    expect((await http.get(`/v1/sessions/${id}`)).json).toMatchObject({ state: "lost", pid: null });
    expect(await events(http, id)).toEqual(before);

    // The same through the CLI: the refusal's code and what to do, then a resume that loads nothing.
    const env = { SWITCHBOARD_URL: lost.gateway.url, SWITCHBOARD_TOKEN: TEST_TOKEN };
    const cliRefused = await cli(["resume", id], env);
    expect(cliRefused.code).toBe(EXIT.FAILURE);
    expect(cliRefused.stderr).toMatch(
      /^switchboard: scripted-agent cannot reload .*; start a new session .*\(AGENT_CANNOT_RESUME\)\n$/,
    );
    const reopened = await cli(["resume", idle], env);
    expect(reopened).toEqual({ code: 0, stdout: `${idle} is running again, with a new conversation\n`, stderr: "" });
    expect((await http.get(`/v1/sessions/${idle}`)).json).toMatchObject({ state: "running", pid: null });
    expect((await events(http, idle)).at(-1)).toMatchObject({ type: "resumed", loaded: false });
    expect(await ask(http, idle, { op: "session" })).toMatch(/^session=scripted-\d+ loaded=none$/);
  }, 90_000);

  // Regression: the resumed agent started without the env it was given (the record does not keep
  // it) and the run failed as a misleading AGENT_AUTH_REQUIRED.
  it("an inline agent given env says plainly that it cannot be resumed, and why", async () => {
    const dataDir = tempDir();
    const first = await serveInChild({ dataDir });
    const agent = {
      adapter: "acp",
      command: [process.execPath, SCRIPTED_AGENT, "--load-session"],
      env: { SCRIPTED_KEY: "sk-secret" },
    };
    const http1 = api(first.url);
    const id = (await http1.post("/v1/sessions", { kind: "agent", agent })).json.id as string;
    await ask(http1, id, { op: "session" });
    await kill(first);
    const second = await serveInChild({ dataDir });
    const http = api(second.url);
    const reason = `session ${id} was given its agent inline with env, which the gateway does not keep`;
    expect((await http.get(`/v1/sessions/${id}`)).json.cannotResume).toContain(reason);
    const refused = await http.post(`/v1/sessions/${id}/resume`);
    expect([refused.status, refused.json.error.code]).toEqual([409, "AGENT_CANNOT_RESUME"]);
    expect(refused.json.error.message).toContain(reason);
    expect(JSON.stringify((await http.get(`/v1/sessions/${id}`)).json)).not.toContain("sk-secret");
  }, 60_000);
});
