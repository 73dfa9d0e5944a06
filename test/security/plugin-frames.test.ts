/**
 * A malicious plugin against the gateway process (threat model: plugins). Frames from a plugin
 * are parsed and then serialized again by the host — log fields into the gateway log, tool
 * events into a session's log — and serializing recurses: a value nested 100,000 levels deep
 * (200 KB, well under the frame size limit) threw `RangeError: Maximum call stack size
 * exceeded` in the pipe's "data" handler, uncaught, and the gateway process exited. Each test
 * runs `switchboard serve` in a child process, so such a crash shows as a dead gateway.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";

const PLUGIN = resolve("test/security/fixtures/deep-frames");

/** A gateway in a child process running the deep-frames plugin in `mode`; `exited` once the process ended. */
async function gatewayWithPlugin(mode: "log" | "tool"): Promise<ChildGateway & { exited: () => string | undefined }> {
  const dataDir = tempDir();
  const config = join(dataDir, "config.json");
  writeFileSync(config, JSON.stringify({ plugins: { entries: { deep: { path: PLUGIN, config: { mode } } } } }));
  const gw = await serveInChild({ dataDir, config });
  let exit: string | undefined;
  gw.child.once("exit", (code, signal) => (exit = `exited with ${signal ?? code}`));
  return Object.assign(gw, { exited: () => exit });
}

describe("a plugin sending deeply nested frames", () => {
  it("is killed as a protocol violation, and the gateway goes on (a log line whose fields nest 100,000 deep)", async () => {
    const gw = await gatewayWithPlugin("log");
    const http = api(gw.url);
    const status = await waitFor(
      async () => {
        if (gw.exited()) throw new Error(`the gateway ${gw.exited()}`);
        const plugin = (await http.get("/v1/plugins/deep")).json;
        return typeof plugin?.lastError === "string" ? plugin : undefined;
      },
      15_000,
      "the plugin to be killed",
    );
    expect(status.lastError).toMatch(/protocol violation: a frame nests deeper than 64 levels/);
    expect(gw.exited()).toBeUndefined();
    expect((await http.get("/healthz")).status).toBe(200);
  });

  it("ends its agent's run with AGENT_EXITED, and the gateway goes on (a tool event whose content nests 100,000 deep)", async () => {
    const gw = await gatewayWithPlugin("tool");
    const http = api(gw.url);
    await waitFor(
      async () => ((await http.get("/v1/agents")).json.agents as Array<{ id: string }>).some((a) => a.id === "deep"),
      15_000,
      "the plugin's agent",
    );
    const session = await http.post("/v1/sessions", { kind: "agent", agent: "deep" });
    expect(session.status).toBe(201);
    expect((await http.post(`/v1/sessions/${session.json.id}/prompt`, { text: "hi" })).status).toBe(202);
    const end = await waitFor(
      async () => {
        if (gw.exited()) throw new Error(`the gateway ${gw.exited()}`);
        const events = (await http.get(`/v1/sessions/${session.json.id}/events`)).json.events as Array<{
          type: string;
          code?: string;
          message?: string;
        }>;
        return events.find((e) => e.type === "chat.final" || e.type === "chat.error");
      },
      15_000,
      "the run to end",
    );
    expect(end).toMatchObject({ type: "chat.error", code: "AGENT_EXITED" });
    expect(end.message).toMatch(/nests deeper than 64 levels/);
    expect(gw.exited()).toBeUndefined();
    expect((await http.get("/healthz")).status).toBe(200);
  });
});
