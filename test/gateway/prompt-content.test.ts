// Prompts as ACP content through the gateway: an image reaches the agent as an image block; what
// the agent cannot take, or what is too large, is refused before anything reaches it, and the
// session goes on. The agent is the scripted one, recording what it receives.
import { existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { connect } from "../../src/client/node.js";
import { PROMPT_BLOCK_MAX_BYTES, PROMPT_BODY_MAX_BYTES } from "../../src/protocol/index.js";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));
/** A 1×1 PNG. */
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

type Ev = { seq: number; type: string; runId?: string; [k: string]: unknown };

async function agentSession(flags: string[]) {
  const gw = await testGateway();
  const http = api(gw.url);
  const record = path.join(tempDir(), "received.jsonl");
  const created = await http.post("/v1/sessions", {
    kind: "agent",
    agent: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT, `--record=${record}`, ...flags] },
  });
  expect(created.status, created.text).toBe(201);
  const id = created.json.id as string;
  const events = async (): Promise<Ev[]> => (await http.get(`/v1/sessions/${id}/events`)).json.events as Ev[];
  const end = (runId: string) =>
    waitFor(
      async () =>
        (await events()).find((e) => e.runId === runId && e.type.startsWith("chat.") && e.type !== "chat.delta"),
      15_000,
      `the end of ${runId}`,
    );
  const prompts = (): unknown[] =>
    existsSync(record)
      ? readFileSync(record, "utf8")
          .split("\n")
          .filter((l) => l.includes('"session/prompt"'))
          .map((l) => (JSON.parse(l) as { params: { prompt: unknown } }).params.prompt)
      : [];
  return { gw, http, id, events, end, prompts };
}

describe("prompts as content", () => {
  it("sends text and an image to an agent that takes images, and logs them in run.queued", async () => {
    const s = await agentSession(["--image"]);
    const image = { type: "image", mimeType: "image/png", data: PNG };
    const sent = await s.http.post(`/v1/sessions/${s.id}/prompt`, { text: "what is wrong?", content: [image] });
    expect(sent.status, sent.text).toBe(202);
    const end = await s.end(sent.json.runId as string);
    expect(end).toMatchObject({ type: "chat.final", text: `blocks: text/-/14, image/image/png/${PNG.length}` });
    expect(s.prompts()).toEqual([[{ type: "text", text: "what is wrong?" }, image]]);
    const queued = (await s.events()).find((e) => e.type === "run.queued");
    expect(queued).toMatchObject({
      text: "what is wrong?",
      content: [{ type: "text", text: "what is wrong?" }, image],
    });
  });

  it("refuses an image an agent does not take with 422 UNSUPPORTED_CONTENT, sending it nothing; text goes on", async () => {
    const s = await agentSession([]);
    const refused = await s.http.post(`/v1/sessions/${s.id}/prompt`, {
      content: [{ type: "image", mimeType: "image/png", data: PNG }],
    });
    expect(refused.status).toBe(422);
    expect(refused.json.error).toEqual({
      code: "UNSUPPORTED_CONTENT",
      message:
        "content[0] is an image, which the agent does not take in a prompt: it takes text and resource links only (its ACP promptCapabilities); nothing was sent to it",
    });
    // A link is baseline ACP: every agent takes it.
    const link = { type: "resource_link", uri: "https://example.com/bug/1", name: "1" };
    const ok = await s.http.post(`/v1/sessions/${s.id}/prompt`, { text: "and this", content: [link] });
    expect(ok.status, ok.text).toBe(202);
    await s.end(ok.json.runId as string);
    expect(s.prompts()).toEqual([[{ type: "text", text: "and this" }, link]]);
    expect((await s.events()).filter((e) => e.type === "run.queued")).toHaveLength(1);
  });

  it("refuses a 50 MB image on its Content-Length with 413, before reading it, and one over the block limit by name", async () => {
    const s = await agentSession(["--image"]);
    const url = new URL(`/v1/sessions/${s.id}/prompt`, s.gw.url);
    const declared = 50 * 1024 * 1024;
    // Only the head of the body is sent: the answer comes from the declared length alone.
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${TEST_TOKEN}`,
          "content-type": "application/json",
          "content-length": String(declared),
        },
      });
      req.on("response", (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.write('{"content":[{"type":"image","mimeType":"image/png","data":"');
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).error).toEqual({
      code: "PAYLOAD_TOO_LARGE",
      message: `the body is ${declared} bytes; the limit is ${PROMPT_BODY_MAX_BYTES} (PROMPT_BODY_MAX_BYTES)`,
    });
    // Under the body limit but over one block's.
    const big = Buffer.alloc(PROMPT_BLOCK_MAX_BYTES + 3).toString("base64");
    const over = await s.http.post(`/v1/sessions/${s.id}/prompt`, {
      text: "look",
      content: [{ type: "image", mimeType: "image/png", data: big }],
    });
    expect(over.status).toBe(413);
    expect(over.json.error.message).toBe(
      `content[1] (image) is ${PROMPT_BLOCK_MAX_BYTES + 3} bytes; one block may carry at most ${PROMPT_BLOCK_MAX_BYTES} (PROMPT_BLOCK_MAX_BYTES): send a smaller or compressed file`,
    );
    expect((await s.events()).filter((e) => e.type === "run.queued")).toEqual([]);
    expect(s.prompts()).toEqual([]);
  });

  it("takes content from the SDK (over HTTP) and in a /v1/ws prompt frame", async () => {
    const s = await agentSession(["--image"]);
    const client = await connect({ url: s.gw.url, token: TEST_TOKEN });
    try {
      const image = { type: "image" as const, mimeType: "image/png", data: PNG };
      const { runId } = await client.prompt(s.id, { content: [image] });
      expect(await s.end(runId)).toMatchObject({ type: "chat.final", text: `blocks: image/image/png/${PNG.length}` });
    } finally {
      client.close();
    }
    const ws = new WebSocket(`${s.gw.url.replace("http", "ws")}/v1/ws`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    const frames: Array<Record<string, unknown>> = [];
    ws.on("message", (d) => frames.push(JSON.parse(d.toString()) as Record<string, unknown>));
    await new Promise((resolve) => ws.once("open", resolve));
    ws.send(
      JSON.stringify({
        op: "prompt",
        session: s.id,
        ref: "p1",
        text: "see",
        content: [{ type: "resource", resource: { uri: "file:///tmp/a.txt", text: "hello" } }],
      }),
    );
    const ack = await waitFor(() => frames.find((f) => f.ref === "p1"), 5_000, "the ack");
    ws.close();
    // The scripted agent offers images only: the embedded file is refused as over HTTP.
    expect(ack).toMatchObject({ op: "error", code: "UNSUPPORTED_CONTENT" });
  });
});
