// No agent process outlives its gateway: a stop ends the agent's process group, and the start
// after a crash ends what is left of it (an agent that ignores the end of its stdin, as codex-acp
// does, lives on otherwise) — without ever signalling a process that merely got the same pid.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { describe, expect, it, onTestFinished } from "vitest";
import { api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("./fixtures/scripted-agent.mjs", import.meta.url));

type Api = ReturnType<typeof api>;

/** Whether `pid` runs: exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

function config(): string {
  const file = join(tempDir(), "config.json");
  const command = [process.execPath, SCRIPTED_AGENT, "--load-session", "--ignore-eof"];
  writeFileSync(file, JSON.stringify({ agents: { stubborn: { adapter: "acp", command } } }));
  return file;
}

async function answer(http: Api, id: string, script: object): Promise<string> {
  const runId = (await http.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify(script) })).json.runId as string;
  const end = await waitFor(
    async () =>
      ((await http.get(`/v1/sessions/${id}/events`)).json.events as Array<Record<string, unknown>>).find(
        (e) => e.runId === runId && e.type === "chat.final",
      ),
    15_000,
    `the end of run ${runId}`,
  );
  return end.text as string;
}

/** A gateway with one agent session whose agent answered once; the agent's pid and conversation. */
async function withAgent(
  dataDir: string,
  file: string,
): Promise<{ gw: ChildGateway; http: Api; id: string; pid: number }> {
  const gw = await serveInChild({ dataDir, config: file });
  const http = api(gw.url);
  const id = (await http.post("/v1/sessions", { kind: "agent", agent: "stubborn" })).json.id as string;
  const pid = Number((await answer(http, id, { op: "pid" })).replace("pid=", ""));
  return { gw, http, id, pid };
}

function exited(gw: ChildGateway): Promise<unknown> {
  return new Promise((resolve) => gw.child.once("exit", resolve));
}

/**
 * Stops `gw` with SIGTERM, which ends its agents' processes: the clean-up's SIGKILL would leave
 * an agent that ignores the end of its stdin running after the test, with no next start to end it.
 */
async function stopCleanly(gw: ChildGateway): Promise<void> {
  const done = exited(gw);
  gw.child.kill("SIGTERM");
  await done;
}

describe("agent processes and the gateway's end", () => {
  it("the start after a crash ends an agent that ignores the end of its stdin, and the session resumes", async () => {
    const dataDir = tempDir();
    const file = config();
    const first = await withAgent(dataDir, file);
    first.gw.child.kill("SIGKILL");
    await exited(first.gw);
    // The premise: its stdin closed with the gateway, and it runs on.
    await new Promise((r) => setTimeout(r, 500));
    expect(alive(first.pid)).toBe(true);

    const second = await serveInChild({ dataDir, config: file });
    const http = api(second.url);
    await waitFor(() => !alive(first.pid), 10_000, `agent ${first.pid} to end`);
    const info = (await http.get(`/v1/sessions/${first.id}`)).json;
    expect(info.state).toBe("lost");
    const events = (await http.get(`/v1/sessions/${first.id}/events`)).json.events as Array<Record<string, unknown>>;
    expect(events.at(-1)).toMatchObject({
      type: "lost",
      reason:
        "the gateway stopped while this session was running; 1 process(es) of its agent were still running and were terminated",
    });
    expect((await http.post(`/v1/sessions/${first.id}/resume`)).status).toBe(200);
    expect(await answer(http, first.id, { op: "session" })).toMatch(/^session=(scripted-\d+) loaded=\1$/);
    await stopCleanly(second);
  }, 60_000);

  // Regression: after SIGTERM agent sessions were `exited` (signal null) and resume answered
  // 409 AGENT_CANNOT_RESUME "was stopped, not lost"; after kill -9 they resumed.
  it("a SIGTERM stop ends the agent, and after the next start the session resumes with its conversation", async () => {
    const dataDir = tempDir();
    const file = config();
    const first = await withAgent(dataDir, file);
    const opened = await answer(first.http, first.id, { op: "session" });
    await stopCleanly(first.gw);
    expect(alive(first.pid)).toBe(false);

    const second = await serveInChild({ dataDir, config: file });
    const http = api(second.url);
    const info = (await http.get(`/v1/sessions/${first.id}`)).json;
    expect(info).toMatchObject({ state: "lost", signal: "SIGTERM" });
    const resumed = await http.post(`/v1/sessions/${first.id}/resume`);
    expect(resumed.status, resumed.text).toBe(200);
    const conversation = /^session=(scripted-\d+)/.exec(opened)![1];
    expect(await answer(http, first.id, { op: "session" })).toBe(`session=${conversation} loaded=${conversation}`);
    await stopCleanly(second);
  }, 60_000);

  it("a recorded pid that now names another process is never signalled", async () => {
    const dataDir = tempDir();
    const file = config();
    const first = await withAgent(dataDir, file);
    first.gw.child.kill("SIGKILL");
    await exited(first.gw);
    onTestFinished(() => {
      if (alive(first.pid)) process.kill(first.pid, "SIGKILL");
    });
    // A pid cannot be made to be reused on purpose: the record is given a start time that is not
    // the agent's, which is what the record of a reused pid looks like.
    const db = new Database(join(dataDir, "switchboard.db"));
    const row = db.prepare("SELECT meta FROM sessions WHERE id = ?").get(first.id) as { meta: string };
    const meta = JSON.parse(row.meta) as { agentPid: number; agentPidStart: number };
    expect(meta.agentPid).toBe(first.pid);
    meta.agentPidStart -= 1;
    db.prepare("UPDATE sessions SET meta = ? WHERE id = ?").run(JSON.stringify(meta), first.id);
    db.close();

    const second = await serveInChild({ dataDir, config: file });
    const http = api(second.url);
    const events = (await http.get(`/v1/sessions/${first.id}/events`)).json.events as Array<Record<string, unknown>>;
    expect(events.at(-1)).toMatchObject({ type: "lost", reason: "the gateway stopped while this session was running" });
    await new Promise((r) => setTimeout(r, 500));
    expect(alive(first.pid)).toBe(true);
  }, 60_000);
});
