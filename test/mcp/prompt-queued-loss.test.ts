import { describe, expect, it } from "vitest";
import { HttpClient } from "../../src/client/node.js";
import { AGENT_TOOLS } from "../../src/mcp/agent-tools.js";
import { GatewayAccess } from "../../src/mcp/gateway.js";
import type { Tool } from "../../src/mcp/tool.js";
import { startTestGateway } from "../client/helpers.js";
import { afterTest } from "../helpers/cleanup.js";
import { FaultProxy } from "../helpers/fault-proxy.js";

const tool = (name: string): Tool => AGENT_TOOLS.find((t) => t.listing.name === name)!;
const text = (result: { content: Array<{ type: string; text?: string }> }) =>
  result.content.map((c) => c.text ?? "").join("\n");

describe("prompt_agent when the gateway goes between queueing the run and following it", () => {
  // Once the prompt is queued, a follower that cannot connect must still answer with the run id:
  // a connection error alone leaves the model to prompt again.
  it("answers with the run id, which wait_for_run follows once the gateway is back", { timeout: 30_000 }, async () => {
    const gw = await startTestGateway();
    afterTest(() => gw.close());
    const proxy = await FaultProxy.start(gw.url);
    afterTest(() => proxy.close());
    const direct = new HttpClient({ url: gw.url, token: gw.token });
    const gateway = new GatewayAccess({ target: { url: proxy.url, token: gw.token } });
    afterTest(() => gateway.close());
    const id = (await direct.createSession({ kind: "agent", agent: "echo" })).id;

    // The gateway looks gone the moment the prompt's answer arrives.
    const prompt = gateway.http.prompt.bind(gateway.http);
    gateway.http.prompt = async (...args) => {
      const queued = await prompt(...args);
      proxy.down = true;
      proxy.cut();
      return queued;
    };
    const signal = new AbortController().signal;
    const lost = await tool("prompt_agent").call({ id, text: "hello there", timeout_ms: 10_000 }, { gateway, signal });
    expect(lost.isError, text(lost)).not.toBe(true);
    const data = lost.structuredContent as { run_id: string; status: string };
    expect(data.status).toBe("disconnected");
    expect(text(lost)).toContain(`wait_for_run {"id": "${id}", "run_id": "${data.run_id}"}`);
    // The run id named is the run the gateway queued.
    const queued = [];
    for await (const e of direct.allEvents(id, { types: ["run.queued"] })) queued.push(e);
    expect(queued.map((e) => (e as { runId?: string }).runId)).toEqual([data.run_id]);

    proxy.down = false;
    const answer = await tool("wait_for_run").call(
      { id, run_id: data.run_id, timeout_ms: 10_000 },
      { gateway, signal },
    );
    expect(answer.structuredContent, text(answer)).toMatchObject({ run_id: data.run_id, status: "chat.final" });
    expect(text(answer)).toContain("hello there");
  });
});
