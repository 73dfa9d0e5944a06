/**
 * A malicious plugin against the gateway (threat model: plugins, docs/plugins.md "Security
 * model"), with real plugin processes. What a plugin sends is bounded by the host: answers it
 * leaves unread must not pile up in the gateway's memory, and a plugin agent's tool events must
 * not name sessions as its child terminals.
 */
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import type { SessionEvent } from "../../src/protocol/index.js";
import { afterTest } from "../helpers/cleanup.js";
import { api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { serveInChild, type ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { entry, setup } from "../plugins/helpers.js";

const UNREAD = resolve("test/security/fixtures/unread-answers");
const TOOL_TERMINALS = resolve("test/security/fixtures/tool-terminals");
const ORPHAN = resolve("test/security/fixtures/orphan");

/** Resident memory of a process, in MiB (Linux). */
function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) / 1024;
}

/** `switchboard serve` in a child process with one plugin configured. */
async function serveWithPlugin(id: string, entry: { path: string; config?: unknown }): Promise<ChildGateway> {
  const dataDir = tempDir();
  const config = join(dataDir, "config.json");
  writeFileSync(config, JSON.stringify({ plugins: { entries: { [id]: entry } } }));
  return await serveInChild({ dataDir, config });
}

async function pluginRunning(http: ReturnType<typeof api>, id: string): Promise<void> {
  await waitFor(async () => (await http.get(`/v1/plugins/${id}`)).json?.state === "running", 15_000, `${id} to run`);
}

describe("a plugin that leaves the answers to its calls unread", () => {
  // Regression: every call gets an answer, queued towards the plugin however much of it the
  // plugin had left unread; this plugin grew the gateway by ~90 MB a second (2.4 GB in 25 s).
  it("is not read from while its answers are unread, so the gateway's memory stays flat", async () => {
    const gw = await serveWithPlugin("unread", { path: UNREAD });
    const pid = gw.child.pid!;
    const http = api(gw.url);
    await pluginRunning(http, "unread");
    // Answers worth something: the sessions it lists.
    for (let i = 0; i < 10; i++)
      expect(
        (await http.post("/v1/sessions", { kind: "agent", agent: "echo", name: `s${i}-${"n".repeat(100)}` })).status,
      ).toBe(201);
    const before = rssMb(pid);
    await new Promise((done) => setTimeout(done, 6_000));
    const grown = rssMb(pid) - before;
    expect((await http.get("/healthz")).status).toBe(200);
    expect(grown).toBeLessThan(150);
  }, 30_000);

  it("is killed as hung once it has left its pipe unread for the heartbeat timeout", async () => {
    const t = setup({ limits: { heartbeatTimeoutMs: 1_500, maxRestarts: 0 } });
    await t.host.load({ entries: { unread: entry(UNREAD) } });
    const status = await t.waitForState("unread", "failed", 15_000);
    expect(status.lastError).toMatch(/^hung: it left \d+ bytes sent to it unread for 1500 ms$/);
  });
});

describe("a plugin agent's tool events", () => {
  it("cannot name child terminals: a plugin starts none", async () => {
    const gw = await serveWithPlugin("claims", {
      path: TOOL_TERMINALS,
      config: { claimed: ["not-its-own", "nor-this"] },
    });
    const http = api(gw.url);
    await waitFor(
      async () => ((await http.get("/v1/agents")).json.agents as Array<{ id: string }>).some((a) => a.id === "claims"),
      15_000,
      "the plugin's agent",
    );
    const session = await http.post("/v1/sessions", { kind: "agent", agent: "claims" });
    expect(session.status).toBe(201);
    expect((await http.post(`/v1/sessions/${session.json.id}/prompt`, { text: "hi" })).status).toBe(202);
    const events = await waitFor(
      async () => {
        const all = (await http.get(`/v1/sessions/${session.json.id}/events`)).json.events as SessionEvent[];
        return all.some((e) => e.type === "chat.final" || e.type === "chat.error") ? all : undefined;
      },
      15_000,
      "the run to end",
    );
    const tools = events.filter((e) => e.type === "tool");
    expect(tools).toEqual([
      expect.objectContaining({ toolCallId: "t1", status: "pending", content: [{ type: "text", text: "a" }] }),
      expect.objectContaining({ toolCallId: "t1", status: "completed" }),
    ]);
    for (const tool of tools) expect(tool).not.toHaveProperty("terminalSessionIds");
    expect(events.filter((e) => e.type !== "attention").at(-1)).toMatchObject({ type: "chat.final", text: "done" });
  });
});

/** The pids of `parent`'s child processes (Linux). */
function childrenOf(parent: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "latin1");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === parent) pids.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
};

describe("a plugin that will not exit when its pipe closes", () => {
  // Regression: a gateway killed with SIGKILL (or by the OOM killer) left such a plugin running,
  // orphaned, for good.
  it("dies with a gateway that was killed", async () => {
    const gw = await serveWithPlugin("orphan", { path: ORPHAN });
    await pluginRunning(api(gw.url), "orphan");
    const plugins = childrenOf(gw.child.pid!).filter((pid) =>
      readFileSync(`/proc/${pid}/cmdline`, "latin1").includes("plugins/runner/main.mjs"),
    );
    expect(plugins).toHaveLength(1);
    const plugin = plugins[0]!;
    afterTest(() => {
      if (alive(plugin)) process.kill(plugin, "SIGKILL");
    });
    gw.child.kill("SIGKILL");
    await waitFor(() => !alive(plugin), 5_000, `plugin ${plugin} to die with its gateway`);
  }, 30_000);
});
