import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { PluginHost } from "../../src/plugins/host.js";
import type { AgentRunOutcome, AgentRunSink } from "../../src/plugins/types.js";
import { FIXTURES, entry, setup } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

/** What a run handed to its sink. */
function recordingSink() {
  const got = { deltas: [] as string[], final: undefined as string | undefined, errors: [] as string[] };
  const sink: AgentRunSink = {
    delta: (text) => got.deltas.push(text),
    tool: () => undefined,
    final: (text) => {
      got.final = text;
    },
    error: (code, message) => got.errors.push(`${code}: ${message}`),
  };
  return { got, sink };
}

/** Runs agent `agentId` with `text` on the host of `t`; what reached the sink, and how it ended. */
async function prompt(t: { host: PluginHost }, agentId: string, text: string, signal = new AbortController().signal) {
  const { got, sink } = recordingSink();
  const outcome: AgentRunOutcome = await t.host.runAgent(
    agentId,
    { runId: `r-${agentId}`, sessionId: "s1", text },
    sink,
    signal,
  );
  return { got, outcome };
}

/** A restart window long enough to prompt inside it (the backoff), short enough for a test. */
const RESTART_MS = 400;

/** A host running the flood fixture (agent "flood"), from a copy that the test may remove (and that is removed after it). */
async function floodPlugin(onTestFinished: (fn: () => void) => void) {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-flood-copy-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(FIXTURES, "flood"), dir, { recursive: true });
  const t = setup({ limits: { restartBackoffBaseMs: RESTART_MS, restartBackoffMaxMs: RESTART_MS } });
  await t.host.load({ entries: { flood: entry(dir) } });
  await t.waitForState("flood", "running");
  return { ...t, dir, removeCopy: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Kills the plugin's process as the kernel would (no goodbye), and waits until the host is restarting it. */
async function crash(t: Awaited<ReturnType<typeof floodPlugin>>): Promise<void> {
  const pid = t.host.get("flood").pid;
  expect(pid).toEqual(expect.any(Number));
  process.kill(pid!, "SIGKILL");
  await t.waitForState("flood", "restarting");
}

/** {@link floodPlugin}, killed: its host is restarting it. */
async function crashedPlugin(onTestFinished: (fn: () => void) => void) {
  const t = await floodPlugin(onTestFinished);
  await crash(t);
  return t;
}

describe("a run for a plugin agent while its plugin restarts", () => {
  it("waits for the plugin to come back and runs there, instead of failing with AGENT_NOT_FOUND", async ({
    onTestFinished,
  }) => {
    const t = await crashedPlugin(onTestFinished);
    const started = performance.now();
    const { got, outcome } = await prompt(t, "flood", JSON.stringify({ say: "back again" }));
    expect(got.errors).toEqual([]);
    expect(outcome).toBe("final");
    expect(got.final).toBe("back again");
    expect(got.deltas.join("")).toBe("back again");
    // It did wait for the restart (the backoff alone is RESTART_MS).
    expect(performance.now() - started).toBeGreaterThan(RESTART_MS / 2);
    expect(t.host.get("flood").state).toBe("running");
  });

  it("is aborted while it waits: nothing reaches the sink", async ({ onTestFinished }) => {
    const t = await crashedPlugin(onTestFinished);
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    const { got, outcome } = await prompt(t, "flood", '{"say":"x"}', abort.signal);
    expect(outcome).toBe("aborted");
    expect(got).toEqual({ deltas: [], final: undefined, errors: [] });
  });

  it("fails with PLUGIN_UNAVAILABLE when the plugin does not come back, and names it", async ({ onTestFinished }) => {
    const t = await crashedPlugin(onTestFinished);
    // Its folder is gone before the restart: that start fails for good.
    t.removeCopy();
    const { got, outcome } = await prompt(t, "flood", '{"say":"x"}');
    expect(outcome).toBe("error");
    expect(got.errors).toHaveLength(1);
    expect(got.errors[0]).toMatch(/^PLUGIN_UNAVAILABLE: plugin "flood", which serves agent "flood", is failed/);
    expect(t.host.get("flood").state).toBe("failed");
  });

  it("a run whose signal was aborted before it asked ends at once, without waiting for the restart", async ({
    onTestFinished,
  }) => {
    const t = await crashedPlugin(onTestFinished);
    const started = performance.now();
    const { got, outcome } = await prompt(t, "flood", '{"say":"x"}', AbortSignal.abort());
    expect(outcome).toBe("aborted");
    expect(got).toEqual({ deltas: [], final: undefined, errors: [] });
    expect(performance.now() - started).toBeLessThan(RESTART_MS / 2);
  });

  it("an agent no plugin ever registered is AGENT_NOT_FOUND at once", async ({ onTestFinished }) => {
    const t = await crashedPlugin(onTestFinished);
    const started = performance.now();
    const { got, outcome } = await prompt(t, "nobody", "hi");
    expect(outcome).toBe("error");
    expect(got.errors).toEqual(['AGENT_NOT_FOUND: no plugin agent "nobody" is registered']);
    expect(performance.now() - started).toBeLessThan(RESTART_MS / 2);
  });
});

describe("the gateway's registry of a plugin's agents across a restart", () => {
  it("keeps the agent while its plugin restarts (no unregister), and forgets it once the plugin has failed", async ({
    onTestFinished,
  }) => {
    const t = await floodPlugin(onTestFinished);
    expect(t.agentChanges).toEqual(["+flood/flood"]);
    await crash(t);
    expect(t.agentChanges).toEqual(["+flood/flood"]);
    await t.waitForState("flood", "running");
    // Registered again by the new process, never forgotten in between.
    expect(t.agentChanges).toEqual(["+flood/flood", "+flood/flood"]);
    await crash(t);
    t.removeCopy();
    await t.waitForState("flood", "failed");
    expect(t.agentChanges).toEqual(["+flood/flood", "+flood/flood", "-flood/flood"]);
  });

  it("a restart that fails before the plugin registers anything leaves the agent known: a prompt then waits", async ({
    onTestFinished,
  }) => {
    const t = await floodPlugin(onTestFinished);
    const index = join(t.dir, "index.mjs");
    const original = readFileSync(index, "utf8");
    await crash(t);
    // The next start dies while loading the plugin, before `activate` registers anything.
    writeFileSync(index, 'throw new Error("broken on purpose");\n');
    await waitFor(() => {
      const status = t.host.get("flood");
      if (status.restarts < 1 || status.state !== "restarting") throw new Error(`still ${status.state}`);
      return true;
    }, 10_000);
    const run = prompt(t, "flood", JSON.stringify({ say: "after two restarts" }));
    writeFileSync(index, original);
    const { got, outcome } = await run;
    expect(got.errors).toEqual([]);
    expect(outcome).toBe("final");
    expect(got.final).toBe("after two restarts");
    expect(t.agentChanges.filter((c) => c.startsWith("-"))).toEqual([]);
  });

  it("forgets the agents of a plugin removed from the config, and of one disabled", async () => {
    const t = setup();
    await t.host.load({ entries: { flood: entry(join(FIXTURES, "flood")) } });
    await t.waitForState("flood", "running");
    await t.host.load({ entries: { flood: entry(join(FIXTURES, "flood"), { enabled: false }) } });
    expect(t.agentChanges).toEqual(["+flood/flood", "-flood/flood"]);
    await t.host.load({ entries: { flood: entry(join(FIXTURES, "flood")) } });
    await t.waitForState("flood", "running");
    await t.host.load({ entries: {} });
    expect(t.agentChanges).toEqual(["+flood/flood", "-flood/flood", "+flood/flood", "-flood/flood"]);
    const { got, outcome } = await prompt(t, "flood", '{"say":"x"}');
    expect(outcome).toBe("error");
    expect(got.errors).toEqual(['AGENT_NOT_FOUND: no plugin agent "flood" is registered']);
  });
});
