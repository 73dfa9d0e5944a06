// Choosing an ACP agent's mode and settings (docs/agents.md, "Choosing"): POST
// /v1/sessions/:id/mode and /config, and the /v1/ws `mode` and `config` frames, reach the scripted
// agent as session/set_mode and session/set_config_option (its --record file), and the state GET
// /v1/sessions/:id shows changes once the agent confirmed; what the agent does not offer is
// refused naming what it does, with nothing sent; a viewer or a caller without the lease is refused.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("./fixtures/scripted-agent.mjs", import.meta.url));
const VIEWER = "viewer-token-0123456789abcdef0123";
const OPERATOR = "operator-token-0123456789abcdef01";

type Message = { method?: string; params?: Record<string, unknown> };

/** A gateway with a viewer and a second operator, and an agent session of the scripted agent. */
async function agentSession(flags: string[] = []) {
  const gw = await testGateway({
    config: {
      auth: {
        tokens: [
          { name: "vera", token: VIEWER, role: "viewer", sessions: ["*"] },
          { name: "otto", token: OPERATOR, role: "operator", sessions: ["*"] },
        ],
      },
    },
  });
  const http = api(gw.url);
  const record = join(tempDir(), "record.jsonl");
  const created = await http.post("/v1/sessions", {
    kind: "agent",
    agent: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT, "--state", `--record=${record}`, ...flags] },
  });
  expect(created.status).toBe(201);
  const id = created.json.id as string;
  /** The requests the agent received, by method. */
  const received = (method: string): Message[] => {
    let text = "";
    try {
      text = readFileSync(record, "utf8");
    } catch (error) {
      // Not written yet: the agent has not started.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    return text
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Message)
      .filter((m) => m.method === method);
  };
  return { gw, http, id, received };
}

describe("choosing an ACP agent's mode and settings", () => {
  it("a mode switch and a model switch reach the agent and show in agentState (the agent not started yet is started)", async () => {
    const { http, id, received } = await agentSession();
    // The agent starts with this call: its modes come with its session.
    const mode = await http.post(`/v1/sessions/${id}/mode`, { modeId: "code" });
    expect(mode.status).toBe(200);
    expect(mode.json.agentState.modes.currentModeId).toBe("code");
    expect(received("session/set_mode").map((m) => m.params?.modeId)).toEqual(["code"]);

    const model = await http.post(`/v1/sessions/${id}/config`, { configId: "model", value: "fast-1" });
    expect(model.status).toBe(200);
    expect(model.json.agentState.model).toBe("fast-1");
    const think = await http.post(`/v1/sessions/${id}/config`, { configId: "think", value: false });
    expect(think.status).toBe(200);
    expect(received("session/set_config_option").map((m) => [m.params?.configId, m.params?.value])).toEqual([
      ["model", "fast-1"],
      ["think", false],
    ]);
    // The boolean goes as ACP's boolean variant.
    expect(received("session/set_config_option")[1]!.params?.type).toBe("boolean");

    const shown = (await http.get(`/v1/sessions/${id}`)).json.agentState;
    expect(shown.modes.currentModeId).toBe("code");
    expect(shown.model).toBe("fast-1");
    expect(shown.configOptions.find((o: { id: string }) => o.id === "think").currentValue).toBe(false);
    // One agent.mode for the switch (after the opening one), logged after the agent answered,
    // naming who asked; the opening state, the agent's own, names nobody.
    const events = (await http.get(`/v1/sessions/${id}/events`)).json.events as Array<Record<string, unknown>>;
    const modes = events.filter((e) => e.type === "agent.mode");
    expect(modes.map((e) => e.currentModeId)).toEqual(["ask", "code"]);
    expect(modes[0]).not.toHaveProperty("by");
    expect(modes[1]!.by).toMatchObject({ id: expect.stringMatching(/^token:/), role: "admin" });
    const configs = events.filter((e) => e.type === "agent.config");
    expect(configs[0]).not.toHaveProperty("by");
    expect(configs.slice(1).map((e) => (e.by as { id?: string } | undefined)?.id)).toEqual([
      (modes[1]!.by as { id: string }).id,
      (modes[1]!.by as { id: string }).id,
    ]);
  });

  it("an agent's own current_mode_update is the one agent.mode logged for the switch", async () => {
    const { http, id } = await agentSession(["--mode-update"]);
    expect((await http.post(`/v1/sessions/${id}/mode`, { modeId: "code" })).status).toBe(200);
    const events = (await http.get(`/v1/sessions/${id}/events`)).json.events as Array<Record<string, unknown>>;
    const modes = events.filter((e) => e.type === "agent.mode");
    expect(modes.map((e) => e.currentModeId)).toEqual(["ask", "code"]);
    // The agent said it while it answered the gateway's request: who asked is named there too.
    expect(modes[1]!.by).toMatchObject({ id: expect.stringMatching(/^token:/) });
  });

  it("an agent's models offered as ACP's `models` (as Gemini CLI does) show as the model option, chosen through session/set_model", async () => {
    const { http, id, received } = await agentSession(["--session-models"]);
    const opened = (await http.post(`/v1/sessions/${id}/mode`, { modeId: "code" })).json.agentState;
    expect(opened.model).toBe("slow-1");
    expect(opened.configOptions).toEqual([
      {
        id: "model",
        name: "Model",
        category: "model",
        type: "select",
        currentValue: "slow-1",
        options: [
          { value: "slow-1", name: "Slow" },
          { value: "fast-1", name: "Fast", description: "Quick" },
        ],
      },
    ]);
    const chosen = await http.post(`/v1/sessions/${id}/config`, { configId: "model", value: "fast-1" });
    expect(chosen.status, chosen.text).toBe(200);
    expect(chosen.json.agentState.model).toBe("fast-1");
    expect(chosen.json.agentState.configOptions[0].currentValue).toBe("fast-1");
    expect(received("session/set_model").map((m) => m.params)).toEqual([
      { sessionId: expect.any(String), modelId: "fast-1" },
    ]);
    expect(received("session/set_config_option")).toEqual([]);
    const unknown = await http.post(`/v1/sessions/${id}/config`, { configId: "model", value: "huge-9" });
    expect(unknown.json.error.code).toBe("INVALID_OPTION");
    expect((await http.get(`/v1/sessions/${id}`)).json.agentState.model).toBe("fast-1");
  });

  it("a config option of category mode (as codex-acp sends) moves the mode shown once the agent confirmed it", async () => {
    const { http, id, received } = await agentSession(["--mode-option"]);
    const chosen = await http.post(`/v1/sessions/${id}/config`, { configId: "mode", value: "code" });
    expect(chosen.status, chosen.text).toBe(200);
    expect(received("session/set_mode")).toEqual([]);
    expect(chosen.json.agentState.modes.currentModeId).toBe("code");
    expect((await http.get(`/v1/sessions/${id}`)).json.agentState.modes.currentModeId).toBe("code");
  });

  it("refuses a mode, setting or value the agent does not offer, naming those it does, and sends nothing", async () => {
    const { http, id, received } = await agentSession();
    const mode = await http.post(`/v1/sessions/${id}/mode`, { modeId: "plan" });
    expect(mode.status).toBe(400);
    expect(mode.json.error.code).toBe("INVALID_OPTION");
    expect(mode.json.error.message).toContain("ask, code");
    const value = await http.post(`/v1/sessions/${id}/config`, { configId: "model", value: "huge-9" });
    expect(value.status).toBe(400);
    expect(value.json.error.code).toBe("INVALID_OPTION");
    expect(value.json.error.message).toContain("slow-1, fast-1");
    const setting = await http.post(`/v1/sessions/${id}/config`, { configId: "temperature", value: "1" });
    expect(setting.json.error.message).toContain("model, think");
    const notBoolean = await http.post(`/v1/sessions/${id}/config`, { configId: "think", value: "yes" });
    expect(notBoolean.json.error.code).toBe("INVALID_OPTION");
    const malformed = await http.post(`/v1/sessions/${id}/mode`, { mode: "code" });
    expect(malformed.json.error.code).toBe("VALIDATION_FAILED");
    // The agent was started (to know its modes), and was sent no choice.
    expect(received("session/new")).toHaveLength(1);
    expect(received("session/set_mode")).toEqual([]);
    expect(received("session/set_config_option")).toEqual([]);
    expect((await http.get(`/v1/sessions/${id}`)).json.agentState.modes.currentModeId).toBe("ask");
  });

  it("an agent that offers no modes is refused as such", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const created = await http.post("/v1/sessions", {
      kind: "agent",
      agent: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT] },
    });
    const id = created.json.id as string;
    const mode = await http.post(`/v1/sessions/${id}/mode`, { modeId: "code" });
    expect(mode.json.error).toMatchObject({ code: "INVALID_OPTION", message: "the agent offers no modes" });
    const config = await http.post(`/v1/sessions/${id}/config`, { configId: "model", value: "x" });
    expect(config.json.error).toMatchObject({ code: "INVALID_OPTION", message: "the agent offers no settings" });
  });

  it("an agent's error answer is AGENT_FAILED and leaves the state as it was", async () => {
    const { http, id } = await agentSession(["--refuse-choices"]);
    const mode = await http.post(`/v1/sessions/${id}/mode`, { modeId: "code" });
    expect(mode.status).toBe(502);
    expect(mode.json.error.code).toBe("AGENT_FAILED");
    expect(mode.json.error.message).toContain("session/set_mode");
    const model = await http.post(`/v1/sessions/${id}/config`, { configId: "model", value: "fast-1" });
    expect(model.json.error.code).toBe("AGENT_FAILED");
    const shown = (await http.get(`/v1/sessions/${id}`)).json.agentState;
    expect(shown.modes.currentModeId).toBe("ask");
    expect(shown.model).toBe("slow-1");
  });

  it("refuses a viewer, and a caller while another holds the control lease (CONTROL_HELD)", async () => {
    const { gw, http, id, received } = await agentSession();
    const viewer = await api(gw.url, VIEWER).post(`/v1/sessions/${id}/mode`, { modeId: "code" });
    expect(viewer.status).toBe(403);
    expect(viewer.json.error.code).toBe("FORBIDDEN");
    expect((await http.post(`/v1/sessions/${id}/control`, { action: "acquire" })).status).toBe(200);
    const other = await api(gw.url, OPERATOR).post(`/v1/sessions/${id}/config`, { configId: "model", value: "fast-1" });
    expect(other.status).toBe(409);
    expect(other.json.error.code).toBe("CONTROL_HELD");
    expect(received("session/set_mode")).toEqual([]);
    expect(received("session/set_config_option")).toEqual([]);
    // The holder may.
    expect((await http.post(`/v1/sessions/${id}/mode`, { modeId: "code" })).status).toBe(200);
  });

  it("over /v1/ws: `mode` and `config` frames are acked with the new agentState", async () => {
    const { gw, id, received } = await agentSession();
    const ws = new WebSocket(`${gw.url.replace("http", "ws")}/v1/ws`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    const answers = new Map<string, Record<string, unknown>>();
    await new Promise<void>((resolve, reject) => {
      ws.on("message", (data) => {
        const frame = JSON.parse(data.toString()) as Record<string, unknown>;
        if (frame.op === "hello") {
          ws.send(JSON.stringify({ op: "mode", session: id, modeId: "code", ref: "m" }));
          ws.send(JSON.stringify({ op: "config", session: id, configId: "model", value: "nope", ref: "bad" }));
        }
        if (typeof frame.ref === "string") answers.set(frame.ref, frame);
        if (answers.get("m") !== undefined && !answers.has("c")) {
          answers.set("c", {});
          ws.send(JSON.stringify({ op: "config", session: id, configId: "model", value: "fast-1", ref: "c2" }));
        }
        if (answers.has("c2") && answers.has("bad")) resolve();
      });
      ws.once("error", reject);
    });
    ws.close();
    expect(answers.get("m")).toMatchObject({ op: "ack", result: { agentState: { modes: { currentModeId: "code" } } } });
    expect(answers.get("c2")).toMatchObject({ op: "ack", result: { agentState: { model: "fast-1" } } });
    expect(answers.get("bad")).toMatchObject({ op: "error", code: "INVALID_OPTION" });
    expect(received("session/set_config_option").map((m) => m.params?.value)).toEqual(["fast-1"]);
  });
});
