import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { describe, expect, it, onTestFinished } from "vitest";
import { api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("./fixtures/scripted-agent.mjs", import.meta.url));

type Ev = { seq: number; type: string; runId?: string; text?: string; [k: string]: unknown };
type Api = ReturnType<typeof api>;

/** A data directory with a config naming the scripted agent, recording what it reads into `record`. */
function setUp(): { dataDir: string; config: string; record: string } {
  const dataDir = mkdtempSync(join(tmpdir(), "switchboard-held-turn-"));
  onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = join(dataDir, "..", `${dataDir.split("/").pop()}.json`);
  onTestFinished(() => rmSync(config, { force: true }));
  const record = join(dataDir, "agent-read.jsonl");
  writeFileSync(
    config,
    JSON.stringify({
      agents: {
        scripted: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT, `--record=${record}`] },
      },
    }),
  );
  return { dataDir, config, record };
}

async function events(http: Api, id: string): Promise<Ev[]> {
  return (await http.get(`/v1/sessions/${id}/events`)).json.events as Ev[];
}

const ENDS = new Set(["chat.final", "chat.error", "chat.aborted"]);

async function runEnd(http: Api, id: string, runId: string, ms = 20_000): Promise<Ev> {
  try {
    return await waitFor(
      async () => (await events(http, id)).find((e) => e.runId === runId && ENDS.has(e.type)),
      ms,
      `the end of run ${runId}`,
    );
  } catch (error) {
    const last = (await events(http, id)).slice(-8).map((e) => `${e.seq} ${e.type} ${e.runId ?? ""}`);
    throw new Error(`${(error as Error).message}; the session's last events:\n${last.join("\n")}`, { cause: error });
  }
}

async function stop(gateway: ChildGateway, signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise((resolve) => gateway.child.once("exit", resolve));
  gateway.child.kill(signal);
  await exited;
}

/** The messages the agent read (its `--record` file), parsed. */
function agentRead(record: string): Array<Record<string, unknown>> {
  return readFileSync(record, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const WORDS = 150;
const ANSWER = Array.from({ length: WORDS }, (_, i) => `w${i + 1} `).join("");

/** Stops (SIGSTOP) the holder of the agent process `agentPid` until the test ends; its pid. */
function stopHolderOf(agentPid: number): number {
  const stat = readFileSync(`/proc/${agentPid}/stat`, "utf8");
  const holderPid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  process.kill(holderPid, "SIGSTOP");
  onTestFinished(() => {
    try {
      process.kill(holderPid, "SIGCONT");
    } catch {
      // The holder has ended (its session was deleted): nothing to let go on.
    }
  });
  return holderPid;
}

/**
 * A held agent's gateway killed -9 with a run started whose prompt (250 KB) it had not written
 * out: the agent's holder was stopped, so the record names the run with no prompt id.
 */
async function promptLeftInKilledGateway(dataDir: string, config: string): Promise<{ id: string; runId: string }> {
  const first = await serveInChild({ dataDir, config, holders: true });
  const http1 = api(first.url);
  const id = (await http1.post("/v1/sessions", { kind: "agent", agent: "scripted" })).json.id as string;
  const started = (await http1.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "pid" }) })).json
    .runId as string;
  const said = await runEnd(http1, id, started);
  const agentPid = Number(/pid=(\d+)/.exec(String(said.text))![1]);
  // A stopped holder reads nothing: a prompt larger than the kernel's socket buffer (about
  // 200 KiB) stays partly in the gateway's own write buffer, where its death loses it.
  const holderPid = stopHolderOf(agentPid);
  const text = JSON.stringify({ op: "words", n: 3, ms: 1, pad: "x".repeat(250_000) });
  const sent = await http1.post(`/v1/sessions/${id}/prompt`, { text });
  expect(sent.status, sent.text.slice(0, 300)).toBe(202);
  const runId = sent.json.runId as string;
  await waitFor(
    async () => (await events(http1, id)).some((e) => e.type === "run.started" && e.runId === runId),
    15_000,
    "the run's start",
  );
  // The run's start is in the log; the record naming it commits right behind it (the store's
  // next batch), and the prompt is written to the holder's socket as it is saved.
  await new Promise((resolve) => setTimeout(resolve, 300));
  await stop(first, "SIGKILL");
  process.kill(holderPid, "SIGCONT");

  return { id, runId };
}

describe("a turn in flight of a held agent across gateway restarts", () => {
  for (const signal of ["SIGKILL", "SIGTERM"] as const) {
    it(`goes on after a ${signal} of the gateway mid-answer: chat.final with every word once, then the run queued behind it`, async () => {
      const { dataDir, config, record } = setUp();
      const first = await serveInChild({ dataDir, config, holders: true });
      const http1 = api(first.url);
      const id = (await http1.post("/v1/sessions", { kind: "agent", agent: "scripted" })).json.id as string;
      const runId = (
        await http1.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "words", n: WORDS, ms: 8 }) })
      ).json.runId as string;
      await waitFor(
        async () => (await events(http1, id)).filter((e) => e.type === "chat.delta" && e.runId === runId).length >= 3,
        15_000,
        "the first words",
      );
      const queuedText = JSON.stringify({ op: "words", n: 5, ms: 1 });
      const queued = (await http1.post(`/v1/sessions/${id}/prompt`, { text: queuedText })).json.runId as string;
      await stop(first, signal);

      const second = await serveInChild({ dataDir, config, holders: true });
      const http2 = api(second.url);
      const end = await runEnd(http2, id, runId);
      expect(end.type, JSON.stringify(end)).toBe("chat.final");
      expect(end.text).toBe(ANSWER);
      const log = await events(http2, id);
      const deltas = log.filter((e) => e.type === "chat.delta" && e.runId === runId).map((e) => e.text);
      expect(deltas.join("")).toBe(ANSWER);
      expect(log.filter((e) => e.runId === runId && ENDS.has(e.type))).toHaveLength(1);
      // The run queued behind it waited through the restart and ran after it, once.
      const next = await runEnd(http2, id, queued);
      expect(next, JSON.stringify(next)).toMatchObject({ type: "chat.final", text: "w1 w2 w3 w4 w5 " });
      const after = await events(http2, id);
      expect(after.filter((e) => e.runId === queued).map((e) => e.type)).toEqual([
        "run.queued",
        "run.started",
        ...after.filter((e) => e.runId === queued && e.type === "chat.delta").map(() => "chat.delta"),
        "chat.final",
      ]);
      expect(after.findIndex((e) => e.runId === queued && e.type === "run.started")).toBeGreaterThan(
        after.findIndex((e) => e.runId === runId && e.type === "chat.final"),
      );
      expect(after.map((e) => e.seq)).toEqual(after.map((_, i) => after[0]!.seq + i));
      // The agent never saw the restart: each prompt once, no session/cancel.
      const read = agentRead(record);
      expect(
        read
          .filter((m) => m.method === "session/prompt")
          .map((m) => JSON.stringify((m.params as { prompt: unknown }).prompt)),
      ).toEqual([
        JSON.stringify([{ type: "text", text: JSON.stringify({ op: "words", n: WORDS, ms: 8 }) }]),
        JSON.stringify([{ type: "text", text: queuedText }]),
      ]);
      expect(read.filter((m) => m.method === "session/cancel")).toEqual([]);
    }, 60_000);
  }

  it("goes on after a kill -9 when the agent wrote stderr between its words: every word once (the cursor counts stderr)", async () => {
    const { dataDir, config, record } = setUp();
    const first = await serveInChild({ dataDir, config, holders: true });
    const http1 = api(first.url);
    const id = (await http1.post("/v1/sessions", { kind: "agent", agent: "scripted" })).json.id as string;
    // Words further apart than the pacer's window, so the cursor moves at each line, past stderr.
    const n = 40;
    const answer = Array.from({ length: n }, (_, i) => `w${i + 1} `).join("");
    const runId = (
      await http1.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "words", n, ms: 60, stderr: true }) })
    ).json.runId as string;
    await waitFor(
      async () => (await events(http1, id)).filter((e) => e.type === "chat.delta" && e.runId === runId).length >= 12,
      15_000,
      "a dozen words",
    );
    await stop(first, "SIGKILL");

    const second = await serveInChild({ dataDir, config, holders: true });
    const http2 = api(second.url);
    const end = await runEnd(http2, id, runId);
    expect(end.type, JSON.stringify(end)).toBe("chat.final");
    expect(end.text).toBe(answer);
    const deltas = (await events(http2, id)).filter((e) => e.type === "chat.delta" && e.runId === runId);
    expect(deltas.map((e) => e.text).join("")).toBe(answer);
    expect(agentRead(record).filter((m) => m.method === "session/prompt")).toHaveLength(1);
  }, 60_000);

  it("ends the run chat.error naming the cause when the agent process died while no gateway ran, and the next prompt starts it again", async () => {
    const { dataDir, config } = setUp();
    const first = await serveInChild({ dataDir, config, holders: true });
    const http1 = api(first.url);
    const id = (await http1.post("/v1/sessions", { kind: "agent", agent: "scripted" })).json.id as string;
    const runId = (
      await http1.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "words", n: WORDS, ms: 20 }) })
    ).json.runId as string;
    await waitFor(
      async () => (await events(http1, id)).some((e) => e.type === "chat.delta" && e.runId === runId),
      15_000,
      "the first words",
    );
    const pid = (await http1.get(`/v1/sessions/${id}`)).json.pid as number;
    await stop(first, "SIGKILL");
    process.kill(pid, "SIGKILL");

    const second = await serveInChild({ dataDir, config, holders: true });
    const http2 = api(second.url);
    const end = await runEnd(http2, id, runId);
    expect(end.type, JSON.stringify(end)).toBe("chat.error");
    expect(end.code).toBe("AGENT_EXITED");
    expect(end.message).toMatch(/killed by SIGKILL/);
    const next = (await http2.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "pid" }) })).json
      .runId as string;
    const again = await runEnd(http2, id, next);
    expect(again.type, JSON.stringify(again)).toBe("chat.final");
    expect(again.text).not.toBe(`pid=${pid}`);
  }, 60_000);

  it("sends a prompt again that had not left the killed gateway (its holder not reading): the agent reads it once, whole (regression)", async () => {
    const { dataDir, config, record } = setUp();
    const { id, runId } = await promptLeftInKilledGateway(dataDir, config);

    const second = await serveInChild({ dataDir, config, holders: true });
    const http2 = api(second.url);
    const end = await runEnd(http2, id, runId);
    expect(end, JSON.stringify(end)).toMatchObject({ type: "chat.final", text: "w1 w2 w3 " });
    const prompts = agentRead(record).filter((m) => m.method === "session/prompt");
    expect(prompts.map((m) => JSON.stringify(m.params).length > 250_000)).toEqual([false, true]);
  }, 60_000);

  it("ends a run the restart cut off, never sends it an empty prompt, when retention dropped the prompt it had not sent", async () => {
    const { dataDir, config, record } = setUp();
    const { id, runId } = await promptLeftInKilledGateway(dataDir, config);
    // Retention lowered while no gateway ran applies at the next start: the 250 KB `run.queued`
    // goes, the run's start and the record naming it stay.
    const lowered = { ...JSON.parse(readFileSync(config, "utf8")), retention: { maxBytes: 100_000 } };
    writeFileSync(config, JSON.stringify(lowered));

    const second = await serveInChild({ dataDir, config, holders: true });
    const http2 = api(second.url);
    const end = await runEnd(http2, id, runId);
    expect(end, JSON.stringify(end)).toMatchObject({
      type: "chat.aborted",
      reason: expect.stringContaining("the gateway restarted"),
    });
    expect((await events(http2, id)).some((e) => e.type === "run.queued" && e.runId === runId)).toBe(false);
    // The session goes on: the next prompt is answered.
    const next = (await http2.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "words", n: 2, ms: 1 }) }))
      .json.runId as string;
    const nextEnd = await runEnd(http2, id, next);
    expect(nextEnd, JSON.stringify(nextEnd)).toMatchObject({ type: "chat.final", text: "w1 w2 " });
    const prompts = agentRead(record)
      .filter((m) => m.method === "session/prompt")
      .map((m) => (m.params as { prompt: Array<{ text: string }> }).prompt.map((b) => b.text.slice(0, 20)).join(""));
    expect(prompts).toEqual(['{"op":"pid"}', '{"op":"words","n":2,']);
  }, 60_000);

  it("sends its own prompt for a run an adopting gateway started and was killed before prompting, whose cursor predates the run (regression)", async () => {
    const { dataDir, config, record } = setUp();
    const first = await serveInChild({ dataDir, config, holders: true });
    const http1 = api(first.url);
    const id = (await http1.post("/v1/sessions", { kind: "agent", agent: "scripted" })).json.id as string;
    const before = JSON.stringify({ op: "words", n: 5, ms: 1 });
    const ended = (await http1.post(`/v1/sessions/${id}/prompt`, { text: before })).json.runId as string;
    expect((await runEnd(http1, id, ended)).type).toBe("chat.final");
    // Killed between runs: the next gateway applies no stdout before its first run starts, so the
    // cursor stays as the first one saved it, at a seq before that run's `run.queued`.
    await stop(first, "SIGKILL");

    const second = await serveInChild({ dataDir, config, holders: true });
    const http2 = api(second.url);
    const agentPid = await waitFor(
      async () => ((await http2.get(`/v1/sessions/${id}`)).json.pid as number | null) ?? undefined,
      15_000,
      "the adoption",
    );
    // Time for the adoption to settle (anything it re-reads is applied by then).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // A stopped holder keeps the next prompt in this gateway (see the test above): the record
    // names the run, started after that cursor, with no prompt id when the gateway dies.
    const holderPid = stopHolderOf(agentPid);
    const text = JSON.stringify({ op: "words", n: 3, ms: 1, pad: "x".repeat(250_000) });
    const runId = (await http2.post(`/v1/sessions/${id}/prompt`, { text })).json.runId as string;
    await waitFor(
      async () => (await events(http2, id)).some((e) => e.type === "run.started" && e.runId === runId),
      15_000,
      "the run's start",
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await stop(second, "SIGKILL");
    process.kill(holderPid, "SIGCONT");

    const third = await serveInChild({ dataDir, config, holders: true });
    const http3 = api(third.url);
    const end = await runEnd(http3, id, runId);
    expect(end, JSON.stringify(end).slice(0, 300)).toMatchObject({ type: "chat.final", text: "w1 w2 w3 " });
    const prompts = agentRead(record)
      .filter((m) => m.method === "session/prompt")
      .map((m) => ((m.params as { prompt: Array<{ text: string }> }).prompt[0]?.text ?? "").slice(0, 40));
    expect(prompts).toEqual([before, text.slice(0, 40)]);
  }, 60_000);

  it("does not log a finished run's answer again after a kill -9 between runs", async () => {
    const { dataDir, config } = setUp();
    const first = await serveInChild({ dataDir, config, holders: true });
    const http1 = api(first.url);
    const id = (await http1.post("/v1/sessions", { kind: "agent", agent: "scripted" })).json.id as string;
    const runId = (
      await http1.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "words", n: 40, ms: 1 }) })
    ).json.runId as string;
    const final = await runEnd(http1, id, runId);
    expect(final).toMatchObject({
      type: "chat.final",
      text: Array.from({ length: 40 }, (_, i) => `w${i + 1} `).join(""),
    });
    // Time for what follows the end (the record without the run) to be committed.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await stop(first, "SIGKILL");

    const second = await serveInChild({ dataDir, config, holders: true });
    const http2 = api(second.url);
    await waitFor(
      async () => ((await http2.get(`/v1/sessions/${id}`)).json.pid as number | null) ?? undefined,
      15_000,
      "the adoption",
    );
    // What the agent said is read again from the cursor on: nothing of the answer may be logged twice.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const chunks = (await events(http2, id)).filter(
      (e) => e.seq > final.seq && e["sessionUpdate"] === "agent_message_chunk",
    );
    expect(chunks.map((e) => `${e.seq} ${JSON.stringify(e["update"]).slice(0, 100)}`)).toEqual([]);
  }, 60_000);

  it("does not log a finished run's answer again when the gateway died after the run's end but before the record without the run", async () => {
    const { dataDir, config } = setUp();
    const first = await serveInChild({ dataDir, config, holders: true });
    const http1 = api(first.url);
    const id = (await http1.post("/v1/sessions", { kind: "agent", agent: "scripted" })).json.id as string;
    const runId = (
      await http1.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "words", n: 40, ms: 25 }) })
    ).json.runId as string;
    // The record as it is mid-answer: the run named, its prompt's id, a cursor before the answer's end.
    const db = new Database(join(dataDir, "switchboard.db"), { readonly: true });
    const midRun = await waitFor(
      () => {
        const meta = JSON.parse(
          (db.prepare("SELECT meta FROM sessions WHERE id = ?").get(id) as { meta: string }).meta,
        ) as { heldTurn?: { run?: { runId: string; promptId: number | null } } };
        const run = meta.heldTurn?.run;
        return run?.runId === runId && typeof run.promptId === "number" ? meta.heldTurn : undefined;
      },
      15_000,
      "the record naming the run and its prompt",
    );
    db.close();
    const final = await runEnd(http1, id, runId);
    expect(final.text).toBe(Array.from({ length: 40 }, (_, i) => `w${i + 1} `).join(""));
    await new Promise((resolve) => setTimeout(resolve, 500));
    await stop(first, "SIGKILL");
    // The kill came between the commit of the run's end and the commit of the record without the
    // run (they are separate): the record is put back as it was mid-answer.
    const write = new Database(join(dataDir, "switchboard.db"));
    write
      .prepare("UPDATE sessions SET meta = json_set(meta, '$.heldTurn', json(?)) WHERE id = ?")
      .run(JSON.stringify(midRun), id);
    write.close();

    const second = await serveInChild({ dataDir, config, holders: true });
    const http2 = api(second.url);
    await waitFor(
      async () => ((await http2.get(`/v1/sessions/${id}`)).json.pid as number | null) ?? undefined,
      15_000,
      "the adoption",
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = (await events(http2, id)).filter((e) => e.seq > final.seq);
    expect(after.filter((e) => e["sessionUpdate"] === "agent_message_chunk").map((e) => e.seq)).toEqual([]);
    expect(after.filter((e) => e.runId === runId).map((e) => e.type)).toEqual([]);
    // The agent goes on: the next prompt is answered, once.
    const next = (await http2.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "words", n: 2, ms: 1 }) }))
      .json.runId as string;
    const nextEnd = await runEnd(http2, id, next);
    expect(nextEnd, JSON.stringify(nextEnd)).toMatchObject({ type: "chat.final", text: "w1 w2 " });
  }, 60_000);

  it("keeps a permission request pending across a kill -9: answered after it, the agent gets one answer", async () => {
    const { dataDir, config, record } = setUp();
    const first = await serveInChild({ dataDir, config, holders: true });
    const http1 = api(first.url);
    const id = (await http1.post("/v1/sessions", { kind: "agent", agent: "scripted" })).json.id as string;
    const runId = (await http1.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "permission" }) })).json
      .runId as string;
    const asked = await waitFor(
      async () => (await events(http1, id)).find((e) => e.type === "permission.request" && e.runId === runId),
      15_000,
      "the permission request",
    );
    await stop(first, "SIGKILL");

    const second = await serveInChild({ dataDir, config, holders: true });
    const http2 = api(second.url);
    // The same request, still open, answerable after the restart.
    const answered = await waitFor(
      async () => {
        const res = await http2.post(`/v1/sessions/${id}/permission`, { requestId: asked.requestId, optionId: "yes" });
        return res.status < 300 ? res : undefined;
      },
      15_000,
      "the request to be open again",
    );
    expect(answered.status).toBeLessThan(300);
    const end = await runEnd(http2, id, runId);
    expect(end.type, JSON.stringify(end)).toBe("chat.final");
    expect(end.text).toBe("chose yes");
    const log = await events(http2, id);
    expect(log.filter((e) => e.type === "permission.request")).toHaveLength(1);
    expect(log.filter((e) => e.type === "permission.resolved").map((e) => e.outcome)).toEqual(["selected"]);
    const request = agentRead(record).filter((m) => m.method === undefined && "result" in m);
    const answers = request.filter((m) => (m.result as { outcome?: unknown }).outcome !== undefined);
    expect(answers).toHaveLength(1);
  }, 60_000);
});
