// Claude Code's ACP adapter (the real one in node_modules) switched to plan mode and to another
// model through POST /v1/sessions/:id/mode and /config, its model API pointed at a scripted
// Anthropic server on loopback: the state shown changes once the agent confirmed, and the model
// server sees the new model in the next turn's request. No key, no internet.
import { describe, expect, it } from "vitest";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { claudeSessionBody } from "./helpers/claude-session.js";
import { startAnthropicServer } from "./model-servers/anthropic.js";

/** Starting Claude Code takes seconds (more on a loaded machine). */
const TIMEOUT_MS = 120_000;

type Option = { id: string; category?: string; currentValue: unknown; options?: Array<{ value: string }> };

describe("@agentclientprotocol/claude-agent-acp through the gateway", () => {
  it(
    "switches to plan mode and another model; the next model request names the new model",
    async ({ onTestFinished }) => {
      const server = await startAnthropicServer();
      onTestFinished(() => server.close());
      server.setScript(() => ({ text: "planned." }));
      const gw = await testGateway();
      const http = api(gw.url);
      const created = await http.post("/v1/sessions", claudeSessionBody(server.url, "sb-claude-choices-"));
      expect(created.status, created.text).toBe(201);
      const id = created.json.id as string;

      // The agent starts with the first choice.
      const plan = await http.post(`/v1/sessions/${id}/mode`, { modeId: "plan" });
      expect(plan.status, plan.text).toBe(200);
      expect(plan.json.agentState.modes.currentModeId).toBe("plan");
      const options = plan.json.agentState.configOptions as Option[];
      const model = options.find((o) => o.category === "model")!;
      const other = model.options!.map((o) => o.value).find((v) => v !== model.currentValue)!;
      const chosen = await http.post(`/v1/sessions/${id}/config`, { configId: model.id, value: other });
      expect(chosen.status, chosen.text).toBe(200);
      expect(chosen.json.agentState.model).toBe(other);
      const shown = (await http.get(`/v1/sessions/${id}`)).json.agentState;
      expect({ mode: shown.modes.currentModeId, model: shown.model }).toEqual({ mode: "plan", model: other });

      const sent = await http.post(`/v1/sessions/${id}/prompt`, { text: "plan the work" });
      expect(sent.status, sent.text).toBe(202);
      const runId = sent.json.runId as string;
      const end = await waitFor(
        async () =>
          ((await http.get(`/v1/sessions/${id}/events`)).json.events as Array<Record<string, unknown>>).find(
            (e) => e.runId === runId && (e.type === "chat.final" || e.type === "chat.error"),
          ),
        TIMEOUT_MS - 10_000,
        "the run's end",
      );
      expect(end).toMatchObject({ type: "chat.final" });
      const turn = server.received.find((r) => r.kind === "turn")!;
      // The adapter's value is an alias ("opus"); the request names the model it stands for.
      expect((turn.body as { model: string }).model).toContain(other);
    },
    TIMEOUT_MS,
  );
});
