// An image prompt through the gateway to Claude Code's ACP adapter (the real one in node_modules),
// its model API pointed at a scripted Anthropic server on loopback: the image must reach the model
// request as an image block. No key, no internet.
import { describe, expect, it } from "vitest";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { claudeSessionBody } from "./helpers/claude-session.js";
import { startAnthropicServer } from "./model-servers/anthropic.js";

/** Starting Claude Code takes seconds (more on a loaded machine). */
const TIMEOUT_MS = 120_000;
/** A 1×1 PNG. */
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

interface Block {
  type: string;
  text?: string;
  source?: { type: string; media_type: string; data: string };
}

describe("@agentclientprotocol/claude-agent-acp through the gateway", () => {
  it(
    "gets an image prompt to the model API as an image block, after the prompt's text",
    async ({ onTestFinished }) => {
      const server = await startAnthropicServer();
      onTestFinished(() => server.close());
      server.setScript(() => ({ text: "I see a single pixel." }));
      const gw = await testGateway();
      const http = api(gw.url);
      const created = await http.post("/v1/sessions", claudeSessionBody(server.url, "sb-claude-image-"));
      expect(created.status, created.text).toBe(201);
      const id = created.json.id as string;
      const sent = await http.post(`/v1/sessions/${id}/prompt`, {
        text: "what is in this picture?",
        content: [{ type: "image", mimeType: "image/png", data: PNG }],
      });
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
      expect(end).toMatchObject({ type: "chat.final", text: "I see a single pixel." });
      const turn = server.received.find((r) => r.kind === "turn")!;
      const messages = (turn.body as { messages: Array<{ role: string; content: string | Block[] }> }).messages;
      const blocks = messages.flatMap((m) => (m.role === "user" && Array.isArray(m.content) ? m.content : []));
      const image = blocks.findIndex((b) => b.type === "image");
      expect(blocks[image]).toEqual({
        type: "image",
        source: { type: "base64", media_type: "image/png", data: PNG },
      });
      const text = blocks.findIndex((b) => b.type === "text" && b.text === "what is in this picture?");
      expect(text).toBeGreaterThanOrEqual(0);
      expect(text).toBeLessThan(image);
    },
    TIMEOUT_MS,
  );
});
