import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpClient } from "../../src/client/node.js";
import { FaultProxy, startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";
import { McpProcess } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

let gw: TestGateway;
let proxy: FaultProxy;
let http: HttpClient;
let mcp: McpProcess;

beforeAll(async () => {
  gw = await startTestGateway();
  proxy = await FaultProxy.start(gw.url);
  http = new HttpClient({ url: gw.url, token: gw.token });
  // The MCP server reaches the gateway through the proxy: "down" and a cut look like a killed gateway.
  mcp = await McpProcess.start({ SWITCHBOARD_URL: proxy.url, SWITCHBOARD_TOKEN: gw.token });
});
afterAll(async () => {
  await mcp?.close();
  await proxy?.close();
  await gw?.close();
});

describe("switchboard mcp when the gateway goes away during a wait", () => {
  // Regression (exploratory test, gateway killed with SIGKILL): a wait sat out its whole timeout
  // and then called the session "running"; after the gateway came back, prompt_agent waited
  // behind the old connection's reconnect backoff and answered "still queued" for a run that
  // had finished at once.
  it("says the connection was lost at once, and the next call after the gateway is back is not stuck", async () => {
    const id = (await mcp.ok("start_session", { command: ["sleep", "60"] })).data.session.id as string;
    const slow = (await mcp.ok("create_agent_session", { agent: "echo" })).data.session.id as string;
    const other = (await mcp.ok("create_agent_session", { agent: "echo" })).data.session.id as string;

    const waiting = mcp.call("wait_for_output", { id, pattern: "never", timeout_ms: 30_000 });
    // The echo agent streams this answer for about 15 s: the shared connection follows it when the gateway goes.
    const running = mcp.call("prompt_agent", { id: slow, text: "x".repeat(3000), timeout_ms: 30_000 });
    await waitFor(async () => (await http.getSession(id)).viewers === 1, 10_000);
    // prompt_agent follows its run once the prompt's answer reached it: a cut before that would
    // lose the answer on its way, and with it the run id (it fails as a lost request instead).
    await waitFor(async () => (await http.getSession(slow)).viewers === 1, 10_000);
    // Both follow their session through the proxy: the wait's terminal socket and the shared client's.
    await waitFor(() => proxy.openSockets === 2, 10_000);

    const cutAt = Date.now();
    proxy.down = true;
    proxy.cut();
    const lost = await waiting;
    expect(Date.now() - cutAt).toBeLessThan(15_000);
    expect(lost.data).toMatchObject({ reason: "disconnected", state: "unknown" });
    expect(lost.text).toMatch(/^\[the connection to the gateway was lost during the wait .*\| .* state unknown/);
    expect(lost.text).not.toContain("running (pid");
    const run = await running;
    expect(run.data?.status, run.text).toBe("disconnected");
    expect(run.text).toContain("wait_for_run");
    expect(Date.now() - cutAt).toBeLessThan(15_000);

    // Down long enough for a reconnect backoff to grow to seconds, then back.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    proxy.down = false;
    // The tester's call: it answered "still queued" behind the old connection's backoff.
    const answer = await mcp.ok("prompt_agent", { id: other, text: "hello", timeout_ms: 5000 });
    expect(answer.data).toMatchObject({ status: "chat.final" });
    expect(answer.output).toBe("hello");
  }, 90_000);
});
