// Everything an ACP agent says reaches the session's log, in and out of runs, and what it says of
// itself (modes, model, commands, usage, title) is the session's `agentState`: on GET
// /v1/sessions/:id, the list, the /v1/ws `subscribed` frame, and again after the gateway is killed
// and started on the same data directory. The scripted agent's `every` op sends each variant of
// ACP's stable schema (docs/agents.md, "ACP coverage", names this test per row).
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("./fixtures/scripted-agent.mjs", import.meta.url));

type Ev = { seq: number; type: string; runId?: string; [k: string]: unknown };

/** The `subscribed` frame /v1/ws answers a subscribe to `session` with. */
async function subscribedFrame(url: string, session: string): Promise<Record<string, unknown>> {
  const ws = new WebSocket(`${url.replace("http", "ws")}/v1/ws`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  try {
    return await new Promise((resolve, reject) => {
      ws.on("message", (data) => {
        const frame = JSON.parse(data.toString()) as Record<string, unknown>;
        if (frame.op === "hello") ws.send(JSON.stringify({ op: "subscribe", session, since: 0 }));
        if (frame.op === "subscribed" || frame.op === "error") resolve(frame);
      });
      ws.once("error", reject);
    });
  } finally {
    ws.close();
  }
}

/** The state the `every` op leaves once its later updates (outside the run) are in. */
const FINAL_STATE = {
  modes: {
    currentModeId: "ask",
    availableModes: [
      { id: "ask", name: "Ask" },
      { id: "code", name: "Code", description: "Writes code" },
    ],
  },
  model: "fast-1",
  configOptions: [
    {
      id: "model",
      name: "Model",
      category: "model",
      type: "select",
      currentValue: "fast-1",
      options: [
        { value: "slow-1", name: "Slow", group: "Big" },
        { value: "fast-1", name: "Fast", description: "Quick", group: "Small" },
      ],
    },
    { id: "think", name: "Think hard", type: "boolean", currentValue: false },
  ],
  commands: [{ name: "compact", description: "Compact the context", hint: "focus" }],
  usage: { used: 1500, size: 200000, cost: { amount: 0.5, currency: "USD" } },
  title: "Later title",
};

describe("an ACP agent's updates and state through the gateway", () => {
  it("logs every session/update variant, in and out of runs, and keeps the agent's state across a restart", async () => {
    const dataDir = tempDir();
    const first = await serveInChild({ dataDir });
    const http = api(first.url);
    const created = await http.post("/v1/sessions", {
      kind: "agent",
      agent: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT, "--state"] },
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const prompted = await http.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "every" }) });
    expect(prompted.status).toBe(202);
    const runId = prompted.json.runId as string;
    const events = async (): Promise<Ev[]> => (await http.get(`/v1/sessions/${id}/events`)).json.events as Ev[];
    let log: Ev[] = [];
    await waitFor(
      async () => {
        log = await events();
        return log.some((e) => e.type === "agent.update" && e.sessionUpdate === "idle_future_update");
      },
      15_000,
      "the updates the agent sends after its run",
    );

    // The agent starts with the first run: the session/new answer's modes and config come before
    // its first update, outside the run (no runId); the commands that follow session/new come in
    // the run or before it, as the turn begins.
    const opening = log.filter((e) => e.type.startsWith("agent.") && e.runId === undefined).slice(0, 2);
    expect(opening.map((e) => e.type)).toEqual(["agent.mode", "agent.config"]);
    expect(opening[0]).toMatchObject({ currentModeId: "ask", availableModes: FINAL_STATE.modes.availableModes });
    expect(opening[1]).toMatchObject({ configOptions: [{ id: "model", currentValue: "slow-1" }, { id: "think" }] });
    expect(log.filter((e) => e.type === "agent.commands")[0]).toMatchObject({
      commands: [
        { name: "review", description: "Review the diff", hint: "what to review" },
        { name: "init", description: "Write AGENTS.md" },
      ],
    });

    // The run: a retried message shows as abandoned, and the answer is the agent's, not both attempts glued.
    const run = log.filter((e) => e.runId === runId);
    const abandoned = run.filter((e) => e.type === "chat.abandoned");
    expect(abandoned).toEqual([expect.objectContaining({ messageId: "m1", chars: "w000 w001 ".length })]);
    const deltas = run.filter((e) => e.type === "chat.delta");
    expect(deltas.map((e) => [e.messageId, e.text])).toEqual([
      ["m1", "w000 w001 "],
      ["m2", "w000 w001 w002 done."],
      ["m3", " After the tool."],
    ]);
    expect(run.find((e) => e.type === "chat.thought")).toMatchObject({ text: "thinking", messageId: "m1" });
    expect(run.find((e) => e.type === "chat.final")).toMatchObject({
      text: "w000 w001 w002 done. After the tool.",
      stopReason: "end_turn",
    });
    expect(run.find((e) => e.type === "tool")).toMatchObject({ locations: [{ path: "/work/a.txt", line: 3 }] });
    expect(run.find((e) => e.type === "plan")).toMatchObject({ entries: [{ content: "check" }] });
    const byType = (type: string): Ev[] => run.filter((e) => e.type === type);
    expect(byType("agent.update").map((e) => [e.sessionUpdate, e.update ?? null, e.bytes ?? null])).toEqual([
      [
        "user_message_chunk",
        { sessionUpdate: "user_message_chunk", content: { type: "text", text: "echoed prompt" } },
        null,
      ],
      ["future_update", { sessionUpdate: "future_update", value: 7, _meta: { vendor: { x: 1 } } }, null],
      ["huge_update", null, expect.any(Number)],
    ]);
    expect(byType("agent.update")[2]!.bytes as number).toBeGreaterThan(64 * 1024);
    expect(byType("agent.mode")).toEqual([expect.objectContaining({ currentModeId: "code" })]);
    expect(byType("agent.config")[0]).toMatchObject({ configOptions: FINAL_STATE.configOptions });
    expect(byType("agent.commands").at(-1)).toMatchObject({ commands: FINAL_STATE.commands });
    expect(byType("agent.usage")).toEqual([
      expect.objectContaining({ used: 1200, size: 200000, cost: { amount: 0.25, currency: "USD" } }),
    ]);
    expect(byType("agent.info")).toEqual([
      expect.objectContaining({ title: "Scripted title", updatedAt: "2026-01-01T00:00:00Z" }),
    ]);
    expect(byType("agent.notice")).toEqual([
      expect.objectContaining({ level: "warning", title: "Heads up", description: "details follow" }),
    ]);
    expect(
      byType("agent.compaction").map(({ compactionId, status, chunk, summary }) => ({
        compactionId,
        status,
        chunk,
        summary,
      })),
    ).toEqual([
      { compactionId: "c1", status: "in_progress", chunk: undefined, summary: undefined },
      { compactionId: "c1", status: undefined, chunk: "so far", summary: undefined },
      { compactionId: "c1", status: "completed", chunk: undefined, summary: "all of it" },
    ]);

    // After the run: state updates, a chunk no run takes and an unknown variant, all logged (the
    // session's own "finished, not seen yet" attention is the gateway's, not the agent's).
    const end = log.find((e) => e.type === "chat.final")!.seq;
    const after = log.filter((e) => e.seq > end && e.type !== "attention");
    expect(after.map((e) => e.type)).toEqual([
      "agent.usage",
      "agent.info",
      "agent.mode",
      "agent.update",
      "agent.update",
    ]);
    expect(after.every((e) => e.runId === undefined)).toBe(true);
    expect(after[3]).toMatchObject({ sessionUpdate: "agent_message_chunk" });
    expect(after[4]).toMatchObject({ update: { _meta: { why: "between runs" } } });

    // The agent's state at a glance, as the last updates left it, up to the last of them.
    const lastStateSeq = after[2]!.seq;
    const expected = { ...FINAL_STATE, seq: lastStateSeq };
    expect((await http.get(`/v1/sessions/${id}`)).json.agentState).toEqual(expected);
    const listed = (await http.get("/v1/sessions")).json as { sessions?: unknown[] } | unknown[];
    const sessions = (Array.isArray(listed) ? listed : (listed.sessions ?? [])) as Array<{
      id: string;
      agentState?: unknown;
    }>;
    // The list shows it without its bulk (commands, config options): many agent sessions stay small.
    const { commands: _commands, configOptions: _configOptions, ...summary } = expected;
    expect(sessions.find((s) => s.id === id)?.agentState).toEqual(summary);
    expect(await subscribedFrame(first.url, id)).toMatchObject({ op: "subscribed", agentState: expected });
    const metrics = (await http.get("/metrics")).text;
    expect(metrics).toMatch(/switchboard_acp_unknown_updates_total\{variant="future_update"\} 1/);
    expect(metrics).toMatch(/switchboard_acp_unknown_updates_total\{variant="idle_future_update"\} 1/);

    // Killed and started again: the record brings the state back, without the agent running.
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
    // As if the gateway had died between the commit of the run's state events and the next one,
    // which writes the record: the record's state is older than the log's. A start reduces the
    // state events the record missed again.
    const commandsSeq = byType("agent.commands").at(-1)!.seq;
    const db = new Database(join(dataDir, "switchboard.db"));
    try {
      const meta = JSON.parse((db.prepare("SELECT meta FROM sessions WHERE id = ?").get(id) as { meta: string }).meta);
      meta.agentState = { seq: commandsSeq - 1, modes: FINAL_STATE.modes, title: "stale", usage: { used: 1, size: 2 } };
      db.prepare("UPDATE sessions SET meta = ? WHERE id = ?").run(JSON.stringify(meta), id);
    } finally {
      db.close();
    }
    const second = await serveInChild({ dataDir });
    const again = await api(second.url).get(`/v1/sessions/${id}`);
    expect(again.json.state).toBe("lost");
    expect(again.json.agentState).toEqual(expected);
    expect(await subscribedFrame(second.url, id)).toMatchObject({ op: "subscribed", agentState: expected });
  }, 60_000);

  // The wire applies an update as it is read; the handshake names the session from the session/new
  // answer a few promise turns later. Commands sent right after that answer were dropped when
  // applied first (a loaded CI run of the test above); sent before it, they always are applied first.
  it("keeps the commands an agent sends before the gateway has read its session/new answer, after the opening state (regression)", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const created = await http.post("/v1/sessions", {
      kind: "agent",
      agent: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT, "--state", "--commands-first"] },
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const prompted = await http.post(`/v1/sessions/${id}/prompt`, { text: "hello" });
    expect(prompted.status).toBe(202);
    const log = await waitFor(
      async () => {
        const events = (await http.get(`/v1/sessions/${id}/events`)).json.events as Ev[];
        return events.some((e) => e.type === "chat.final" && e.runId === prompted.json.runId) ? events : undefined;
      },
      15_000,
      "the run's end",
    );
    const opening = log.filter((e) => e.type.startsWith("agent."));
    expect(opening.map((e) => [e.type, e.runId])).toEqual([
      ["agent.mode", undefined],
      ["agent.config", undefined],
      ["agent.commands", undefined],
    ]);
    const commands = [
      { name: "review", description: "Review the diff", hint: "what to review" },
      { name: "init", description: "Write AGENTS.md" },
    ];
    expect(opening[2]).toMatchObject({ commands });
    expect((await http.get(`/v1/sessions/${id}`)).json.agentState.commands).toEqual(commands);
  });
});
