import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ABORT_SETTLE_TIMEOUT_MS } from "../../src/agents/index.js";
import type { AgentSpec } from "../../src/agents/index.js";
import { LOG_BACKLOG_PAUSE_BYTES } from "../../src/log/index.js";
import type { Actor } from "../../src/protocol/index.js";
import { deltas, expectContiguous, heldBack, heldSession, runEnd } from "./helpers/held-session.js";
import type { HeldStore } from "./helpers/held-store.js";
import { waitFor } from "../helpers/wait-for.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("./fixtures/scripted-agent.mjs", import.meta.url));
const actor: Actor = { name: "alice", role: "operator" };
const node = process.execPath;

/** What the streams between an agent's pipe and its adapter may have buffered when it is held back. */
const STREAM_SLACK_BYTES = 1024 * 1024;

/**
 * The backlog a held-back agent may reach: the pause bound, plus what was read before the log
 * was seen full — at most one throttle window's text (the run's pacer appends it as one delta
 * at the window's end; at ~80 MB/s that is ~4 MiB) and what the streams had buffered.
 */
const holdBound = (store: HeldStore): number => LOG_BACKLOG_PAUSE_BYTES + store.biggestEntryBytes + STREAM_SLACK_BYTES;

/** A command agent printing `{prompt}` numbered lines of 10 bytes ("000000042\n"), as fast as the pipe takes them. */
const LINES_SCRIPT = fileURLToPath(new URL("./fixtures/numbered-lines.mjs", import.meta.url));
const lines = (n: number): string => Array.from({ length: n }, (_, i) => String(i).padStart(9, "0") + "\n").join("");

/** The text of the scripted agent's `flood` op (see fixtures/scripted-agent.mjs). */
const floodChunk = (i: number, size: number): string => String(i).padStart(8, "0") + ".".repeat(size - 9) + "\n";

let cwd: string;
beforeAll(async () => {
  cwd = await realpath(await mkdtemp(path.join(tmpdir(), "sb-log-room-")));
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe("an agent whose output the log cannot take as fast as it comes", () => {
  it("command agent: is held back near the pause bound while the store is stuck, and every byte arrives in order once it catches up", async ({
    onTestFinished,
  }) => {
    const n = 5_000_000; // 50 MB: three times the pause bound
    const s = heldSession(onTestFinished, {
      spec: { adapter: "command", command: [node, LINES_SCRIPT, "{prompt}"] },
      cwd,
    });
    s.store.stuck = true;
    const { runId } = s.agent.prompt(String(n), actor);

    await heldBack(s.store);
    expect(s.store.peakWaitingBytes).toBeLessThanOrEqual(holdBound(s.store));
    expect(s.agent.info().active).toBe(runId);

    s.store.stuck = false;
    const end = await waitFor(() => runEnd(s.published, runId), 20_000, "the run to end");
    const expected = lines(n);
    expect(end).toMatchObject({ type: "chat.final", stopReason: "end_turn" });
    expect(end.type === "chat.final" && end.text === expected).toBe(true);
    const text = deltas(s.published, runId);
    expect(text.length).toBe(expected.length);
    expect(text === expected).toBe(true);
    expectContiguous(s.published);
  }, 60_000);

  it("ACP agent: is held back near the pause bound, its permission request waiting in the pipe works once it resumes, and every chunk arrives in order", async ({
    onTestFinished,
  }) => {
    const chunks = 800;
    const size = 64 * 1024; // 50 MiB in all
    const permissionAt = 600; // well past what the bound lets through before the agent is held back
    const s = heldSession(onTestFinished, { spec: { adapter: "acp", command: [node, SCRIPTED_AGENT] }, cwd });
    s.store.stuck = true;
    const { runId } = s.agent.prompt(JSON.stringify({ op: "flood", chunks, size, permissionAt }), actor);

    await heldBack(s.store);
    expect(s.store.peakWaitingBytes).toBeLessThanOrEqual(holdBound(s.store));
    expect(s.store.queuedTypes).not.toContain("permission.request");

    s.store.stuck = false;
    const ask = await waitFor(
      () => s.published.find((e) => e.type === "permission.request"),
      20_000,
      "the permission request",
    );
    if (ask.type !== "permission.request") throw new Error("unreachable");
    s.agent.answerPermission(ask.requestId, "yes", actor);
    const end = await waitFor(() => runEnd(s.published, runId), 30_000, "the run to end");

    const all = Array.from({ length: chunks }, (_, i) => floodChunk(i, size));
    const expected = [...all.slice(0, permissionAt), "chose yes", ...all.slice(permissionAt)].join("");
    expect(end).toMatchObject({ type: "chat.final", stopReason: "end_turn" });
    const text = deltas(s.published, runId);
    expect(text.length).toBe(expected.length);
    expect(text === expected).toBe(true);
    expect(end.type === "chat.final" && end.text === expected).toBe(true);
    // The tool call and the request sit between the text before and after them.
    const kinds = s.published.filter((e) => "runId" in e && e.runId === runId && e.type !== "chat.delta");
    expect(kinds.map((e) => e.type)).toEqual([
      "run.queued",
      "run.started",
      "tool",
      "permission.request",
      "permission.resolved",
      // The agent never finished the call: it ends, failed, with the run.
      "tool",
      "chat.final",
    ]);
    const toolAt = s.published.findIndex((e) => e.type === "tool");
    expect(deltas(s.published.slice(0, toolAt), runId)).toBe(all.slice(0, permissionAt).join(""));
    expectContiguous(s.published);
  }, 60_000);

  for (const kind of ["command", "acp"] as const) {
    const spec: AgentSpec =
      kind === "command"
        ? { adapter: "command", command: [node, LINES_SCRIPT, "{prompt}"] }
        : { adapter: "acp", command: [node, SCRIPTED_AGENT] };
    const flood = kind === "command" ? "5000000" : JSON.stringify({ op: "flood", chunks: 800, size: 64 * 1024 });
    const short = kind === "command" ? "1" : JSON.stringify({ op: "say", chunks: ["next"] });
    const shortText = kind === "command" ? "000000000\n" : "next";

    it(`${kind} agent: an abort while it is held back ends the run at once and frees the lane promptly`, async ({
      onTestFinished,
    }) => {
      const s = heldSession(onTestFinished, { spec, cwd });
      s.store.stuck = true;
      const first = s.agent.prompt(flood, actor);
      const second = s.agent.prompt(short, actor);
      await heldBack(s.store);
      expect(s.store.peakWaitingBytes).toBeLessThanOrEqual(holdBound(s.store));

      const abortedAt = Date.now();
      s.agent.abort({}, actor);
      expect(s.agent.info().active).toBeNull();
      // The lane is free once the adapter finished the aborted turn: the next run starts, with the
      // store still stuck (so before the settle timeout would have restarted the agent).
      await waitFor(
        () => s.store.queuedTypes.filter((t) => t === "run.started").length === 2,
        20_000,
        "the next run to start",
      );
      const freedMs = Date.now() - abortedAt;
      expect(freedMs).toBeLessThan(ABORT_SETTLE_TIMEOUT_MS / 2);

      s.store.stuck = false;
      const end = await waitFor(() => runEnd(s.published, second.runId), 20_000, "the next run to end");
      expect(end).toMatchObject({ type: "chat.final", text: shortText });
      const ends = s.published.filter((e) => "runId" in e && e.runId === first.runId && e.type.startsWith("chat."));
      expect(ends.at(-1)).toMatchObject({ type: "chat.aborted" });
      expect(ends.filter((e) => e.type !== "chat.delta")).toHaveLength(1);
      expectContiguous(s.published);
    }, 60_000);

    it(`${kind} agent: disposing the session while it is held back does not hang`, async ({ onTestFinished }) => {
      const s = heldSession(onTestFinished, { spec, cwd });
      s.store.stuck = true;
      s.agent.prompt(flood, actor);
      await heldBack(s.store);
      expect(s.store.peakWaitingBytes).toBeLessThanOrEqual(holdBound(s.store));
      const started = Date.now();
      await s.agent.dispose();
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(s.store.queuedTypes.at(-1)).toBe("chat.aborted");
    }, 60_000);
  }
});
