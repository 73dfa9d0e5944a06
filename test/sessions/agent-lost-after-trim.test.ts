import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";

type Ev = { seq: number; type: string; runId?: string; requestId?: string; [k: string]: unknown };

const RUN_ENDS = new Set(["chat.final", "chat.error", "chat.aborted"]);

describe("an agent session lost in a crash after retention dropped the start of its runs", () => {
  it("still ends every run and permission request a client saw open, though their run.queued and permission.request are trimmed", async () => {
    const dataDir = tempDir();
    const config = join(tempDir(), "config.json");
    writeFileSync(config, JSON.stringify({ retention: { maxEvents: 40 } }));
    const first = await serveInChild({ dataDir, config });
    const http1 = api(first.url);
    const id = (await http1.post("/v1/sessions", { kind: "agent", agent: "echo" })).json.id as string;
    // The echo agent's first run waits for a permission answer; the others queue behind it.
    const runIds: string[] = [];
    for (const text of ["/permission go on?", "one", "two", "three"]) {
      const prompted = await http1.post(`/v1/sessions/${id}/prompt`, { text });
      expect(prompted.status).toBe(202);
      runIds.push(prompted.json.runId as string);
    }
    await waitFor(
      async () =>
        ((await http1.get(`/v1/sessions/${id}/events`)).json.events as Ev[]).some(
          (e) => e.type === "permission.request",
        ),
      10_000,
      "the permission request",
    );
    const seen = (await http1.get(`/v1/sessions/${id}/events`)).json.events as Ev[];
    const request = seen.find((e) => e.type === "permission.request")!;
    // Enough other events that retention drops every run.queued and the permission.request.
    for (let i = 0; i < 5; i++) {
      const appended = await http1.post(
        `/v1/sessions/${id}/events`,
        Array.from({ length: 10 }, (_, k) => ({ type: "note", data: { i, k } })),
      );
      expect(appended.status).toBe(200);
    }
    const before = (await http1.get(`/v1/sessions/${id}/events`)).json as { events: Ev[]; head: number };
    expect(before.events.some((e) => e.type === "run.queued" || e.type === "permission.request")).toBe(false);

    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
    const second = await serveInChild({ dataDir, config });
    const after = (await api(second.url).get(`/v1/sessions/${id}/events?since=${before.head}`)).json.events as Ev[];

    // Before the fix only the retained log was read: no run and no request was found open, and the
    // session went straight to `lost` (after = [lost]).
    expect(after.map((e) => e.type)).toEqual(["permission.resolved", ...runIds.map(() => "chat.aborted"), "lost"]);
    expect(after[0]).toMatchObject({ requestId: request.requestId, runId: runIds[0], outcome: "cancelled" });
    for (const runId of runIds) {
      expect(after.filter((e) => e.runId === runId && RUN_ENDS.has(e.type))).toHaveLength(1);
    }
    // A second crash and restart adds nothing: the record no longer names them.
    second.child.kill("SIGKILL");
    await new Promise((resolve) => second.child.once("exit", resolve));
    const third = await serveInChild({ dataDir, config });
    const again = (await api(third.url).get(`/v1/sessions/${id}`)).json as { head: number; state: string };
    expect(again).toMatchObject({ state: "lost", head: before.head + after.length });
  }, 60_000);
});
