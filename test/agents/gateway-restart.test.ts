import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("./fixtures/scripted-agent.mjs", import.meta.url));

type Ev = { seq: number; type: string; runId?: string; requestId?: string; [k: string]: unknown };

const RUN_ENDS = new Set(["chat.final", "chat.error", "chat.aborted"]);

describe("an agent session when the gateway dies under it", () => {
  it("ends every run that was active or queued, and every open permission request, before the lost event", async () => {
    const dataDir = tempDir();
    const config = join(tempDir(), "config.json");
    writeFileSync(
      config,
      JSON.stringify({ agents: { scripted: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT] } } }),
    );
    const first = await serveInChild({ dataDir, config });
    const http1 = api(first.url);
    const created = await http1.post("/v1/sessions", { kind: "agent", agent: "scripted" });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    // The active run waits for a permission answer; a second prompt queues behind it.
    const active = await http1.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "permission" }) });
    const queued = await http1.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "pid" }) });
    expect([active.status, queued.status]).toEqual([202, 202]);
    await waitFor(
      async () =>
        ((await http1.get(`/v1/sessions/${id}/events`)).json.events as Ev[]).some(
          (e) => e.type === "permission.request",
        ),
      15_000,
      "the permission request",
    );

    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
    const second = await serveInChild({ dataDir, config });
    const http2 = api(second.url);
    const info = await http2.get(`/v1/sessions/${id}`);
    expect(info.json.state).toBe("lost");
    const events = (await http2.get(`/v1/sessions/${id}/events`)).json.events as Ev[];

    // Exactly one terminal event per run that got run.queued, as for a session deleted while running.
    for (const runId of [active.json.runId, queued.json.runId] as string[]) {
      const ends = events.filter((e) => e.runId === runId && RUN_ENDS.has(e.type));
      expect(ends, `run ${runId}: ${events.map((e) => e.type).join(", ")}`).toHaveLength(1);
      expect(ends[0]).toMatchObject({ type: "chat.aborted" });
    }
    const request = events.find((e) => e.type === "permission.request")!;
    expect(events.filter((e) => e.type === "permission.resolved" && e.requestId === request.requestId)).toEqual([
      expect.objectContaining({ outcome: "cancelled", optionId: null, by: null }),
    ]);
    // The session's last event is still its end, and the permission is resolved before its run ends.
    expect(events[events.length - 1]).toMatchObject({ type: "lost" });
    const order = events.map((e) => e.type);
    expect(order.indexOf("permission.resolved")).toBeLessThan(order.indexOf("chat.aborted"));
    // A restart does not do it twice.
    second.child.kill("SIGKILL");
    await new Promise((resolve) => second.child.once("exit", resolve));
    const third = await serveInChild({ dataDir, config });
    expect(((await api(third.url).get(`/v1/sessions/${id}/events`)).json.events as Ev[]).length).toBe(events.length);
  }, 60_000);

  it("ends an open elicitation (cancel) before its run's chat.aborted", async () => {
    const dataDir = tempDir();
    const config = join(tempDir(), "config.json");
    writeFileSync(
      config,
      JSON.stringify({ agents: { scripted: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT] } } }),
    );
    const first = await serveInChild({ dataDir, config });
    const http1 = api(first.url);
    const id = (await http1.post("/v1/sessions", { kind: "agent", agent: "scripted" })).json.id as string;
    const schema = { type: "object", properties: { n: { type: "integer" } } };
    const active = await http1.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "elicit", schema }) });
    await waitFor(
      async () =>
        ((await http1.get(`/v1/sessions/${id}/events`)).json.events as Ev[]).some(
          (e) => e.type === "elicitation.request",
        ),
      15_000,
      "the elicitation",
    );
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
    const second = await serveInChild({ dataDir, config });
    const events = (await api(second.url).get(`/v1/sessions/${id}/events`)).json.events as Ev[];
    const request = events.find((e) => e.type === "elicitation.request")!;
    expect(events.filter((e) => e.type === "elicitation.resolved")).toEqual([
      expect.objectContaining({ requestId: request.requestId, runId: active.json.runId, action: "cancel", by: null }),
    ]);
    const order = events.map((e) => e.type);
    expect(order.indexOf("elicitation.resolved")).toBeLessThan(order.indexOf("chat.aborted"));
    expect(order.at(-1)).toBe("lost");
  }, 60_000);
});
