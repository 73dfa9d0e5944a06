import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import type { SessionEvent } from "../../src/protocol/index.js";
import type { AgentRunSink } from "../../src/plugins/types.js";
import { EXAMPLES, entry, hookCall, setup } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

function recordingSink() {
  const calls: Array<[string, ...unknown[]]> = [];
  const sink: AgentRunSink = {
    delta: (text) => calls.push(["delta", text]),
    tool: (event) => calls.push(["tool", event]),
    final: (text, stopReason) => calls.push(["final", text, stopReason]),
    error: (code, message) => calls.push(["error", code, message]),
  };
  return { sink, calls };
}

const terminals = (calls: Array<[string, ...unknown[]]>) =>
  calls.filter(([kind]) => kind === "final" || kind === "error");

describe("example agent plugin (examples/plugins/word-agent)", () => {
  it("registers an agent that streams deltas and tool events, then a final answer", async () => {
    const t = setup();
    await t.host.load({ entries: { word: entry(join(EXAMPLES, "word-agent"), { config: { delayMs: 2 } }) } });
    expect(t.agentChanges).toEqual(["+word/words"]);
    expect(t.host.agents()).toEqual([{ pluginId: "word", agentId: "words" }]);
    expect(t.host.get("word").agents).toEqual(["words"]);

    const { sink, calls } = recordingSink();
    const outcome = await t.host.runAgent(
      "words",
      { runId: "r1", sessionId: "s1", text: "hello  plugin world" },
      sink,
      new AbortController().signal,
    );
    expect(outcome).toBe("final");
    expect(calls).toEqual([
      ["tool", { toolCallId: "r1-count", status: "in_progress", title: "counting words", kind: "think" }],
      ["delta", "hello"],
      ["delta", " plugin"],
      ["delta", " world"],
      ["tool", { toolCallId: "r1-count", status: "completed", title: "3 words" }],
      ["final", "hello plugin world", "end_turn"],
    ]);

    await t.host.close();
    expect(t.agentChanges).toEqual(["+word/words", "-word/words"]);
  });

  it("stops streaming on abort: nothing reaches the sink after it, the outcome is aborted", async () => {
    const t = setup();
    await t.host.load({ entries: { word: entry(join(EXAMPLES, "word-agent"), { config: { delayMs: 50 } }) } });
    const { sink, calls } = recordingSink();
    const abort = new AbortController();
    const run = t.host.runAgent(
      "words",
      { runId: "r1", sessionId: "s1", text: "a b c d e f g h i j" },
      sink,
      abort.signal,
    );
    await waitFor(() => {
      expect(calls.some(([kind]) => kind === "delta")).toBe(true);
      return true;
    });
    abort.abort();
    expect(await run).toBe("aborted");
    const seen = calls.length;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(calls).toHaveLength(seen);
    expect(calls.some(([kind]) => kind === "final" || kind === "error")).toBe(false);
  });

  it("ends a run with AGENT_EXITED when the plugin dies, PLUGIN_TIMEOUT when it goes silent, AGENT_NOT_FOUND for no agent", async () => {
    const t = setup();
    await t.host.load({
      entries: {
        word: entry(join(EXAMPLES, "word-agent"), { config: { delayMs: 50 } }),
        slow: entry(join(EXAMPLES, "word-agent"), { config: { agentId: "slow", delayMs: 1_500 } }),
      },
    });
    const exited = recordingSink();
    const run = t.host.runAgent(
      "words",
      // 40 words, 50 ms apart: still streaming when the restart below stops it, even on a loaded machine.
      { runId: "r1", sessionId: "s1", text: Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ") },
      exited.sink,
      new AbortController().signal,
    );
    await waitFor(() => {
      expect(exited.calls.length).toBeGreaterThan(1);
      return true;
    });
    await t.host.restart("word");
    expect(await run).toBe("error");
    // Exactly one terminal call, even though the process exit and the run both end it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(terminals(exited.calls)).toEqual([
      ["error", "AGENT_EXITED", expect.stringContaining('plugin "word" exited')],
    ]);

    const silent = recordingSink();
    expect(
      await t.host.runAgent(
        "slow",
        { runId: "r2", sessionId: "s1", text: "x" },
        silent.sink,
        new AbortController().signal,
      ),
    ).toBe("error");
    expect(silent.calls.at(-1)).toEqual([
      "error",
      "PLUGIN_TIMEOUT",
      'plugin "slow" did not answer agent.run within 1000 ms',
    ]);

    const missing = recordingSink();
    expect(
      await t.host.runAgent(
        "nope",
        { runId: "r3", sessionId: "s1", text: "x" },
        missing.sink,
        new AbortController().signal,
      ),
    ).toBe("error");
    expect(missing.calls).toEqual([["error", "AGENT_NOT_FOUND", 'no plugin agent "nope" is registered']]);
  });
});

describe("example channel plugin (examples/plugins/webhook-channel)", () => {
  const post = hookCall;
  const final = (runId: string, text: string): SessionEvent => ({
    seq: 5,
    ts: 1,
    type: "chat.final",
    runId,
    text,
    stopReason: "end_turn",
  });

  /** A gateway whose "agent" answers each routed message after `delayMs` (or never). */
  function gateway(delayMs: number | null, config: Record<string, unknown> = {}) {
    const ref: { emit?: (sessionId: string, event: SessionEvent) => void } = {};
    const t = setup({
      inbound: (message) => {
        const runId = `wr-${String(message["text"])}`;
        if (delayMs === 0) ref.emit?.("s9", final(runId, `answer to ${String(message["text"])}`));
        else if (delayMs !== null)
          setTimeout(() => ref.emit?.("s9", final(runId, `answer to ${String(message["text"])}`)), delayMs);
        return { sessionId: "s9", runId, agentId: "echo" };
      },
    });
    ref.emit = t.emit;
    const load = () =>
      t.host.load({ entries: { hook: entry(join(EXAMPLES, "webhook-channel"), { config, publicHooks: true }) } });
    return { t, load };
  }

  it("routes a posted message through the bindings and answers with the run's final text", async () => {
    const { t, load } = gateway(30);
    await load();
    const answer = await t.host.handleHttp("hook", post({ text: "hi", peer: "alice" }));
    expect(answer).toEqual({ status: 200, body: { runId: "wr-hi", text: "answer to hi", stopReason: "end_turn" } });
    expect(t.inbound).toEqual([
      { channel: "webhook", accountId: "default", peer: { kind: "direct", id: "alice" }, text: "hi" },
    ]);
  });

  it("does not miss an answer that arrives before the plugin starts waiting", async () => {
    const { t, load } = gateway(0);
    await load();
    expect((await t.host.handleHttp("hook", post({ text: "fast" }))).body).toMatchObject({ text: "answer to fast" });
  });

  it("checks its shared secret and validates the body", async () => {
    const { t, load } = gateway(10, { secret: "s3cret" });
    await load();
    expect((await t.host.handleHttp("hook", post({ text: "hi" }))).status).toBe(401);
    expect((await t.host.handleHttp("hook", post({ text: "hi" }, { "x-webhook-secret": "wrong!" }))).status).toBe(401);
    expect((await t.host.handleHttp("hook", post({}, { "x-webhook-secret": "s3cret" }))).status).toBe(400);
    expect((await t.host.handleHttp("hook", post({ text: "hi" }, { "x-webhook-secret": "s3cret" }))).status).toBe(200);
    // At /hooks/hook (publicHooks): the secret is what admits a caller.
    const open = (headers: Record<string, string>) => ({ ...post({ text: "hi" }, headers), public: true });
    expect((await t.host.handleHttp("hook", open({}))).status).toBe(401);
    expect((await t.host.handleHttp("hook", open({ "x-webhook-secret": "s3cret" }))).status).toBe(200);
    expect(t.inbound).toHaveLength(2);
  });

  it("takes no public hook without a secret", async () => {
    const { t, load } = gateway(0);
    await load();
    const open = { ...post({ text: "hi" }), public: true };
    expect(await t.host.handleHttp("hook", open)).toMatchObject({ status: 401, body: { error: /set a secret/ } });
    expect(t.inbound).toEqual([]);
    expect((await t.host.handleHttp("hook", post({ text: "hi" }))).status).toBe(200);
  });

  it("answers 202 when the run takes longer, then posts the answer to the configured callback", async () => {
    // Outbound network from the sandbox: Node 20's permission model does not restrict it
    // (docs/plugins.md). On a Node with --allow-net this callback would need that grant.
    const received: unknown[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        received.push(JSON.parse(body));
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;

    const { t, load } = gateway(400, { replyTimeoutMs: 100, callbackUrl: `http://127.0.0.1:${port}/answers` });
    await load();
    expect(await t.host.handleHttp("hook", post({ text: "slow" }))).toEqual({
      status: 202,
      body: { runId: "wr-slow", sessionId: "s9", pending: true },
    });
    await waitFor(() => {
      expect(received).toEqual([{ runId: "wr-slow", sessionId: "s9", text: "answer to slow", stopReason: "end_turn" }]);
      return true;
    });
  });
});
