import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Actor, SessionEvent } from "../../src/protocol/index.js";
import { LOG_BACKLOG_PAUSE_BYTES } from "../../src/log/index.js";
import { DEFAULT_PLUGIN_LIMITS } from "../../src/plugins/limits.js";
import type { PluginLimits } from "../../src/plugins/limits.js";
import type { AgentRunSink } from "../../src/plugins/types.js";
import { pluginAgentAdapter } from "../../src/server/plugin-agent-adapter.js";
import { deltas, expectContiguous, heldBack, heldSession, runEnd, type Held } from "../agents/helpers/held-session.js";
import type { HeldStore } from "../agents/helpers/held-store.js";
import { bigText } from "./fixtures/flood/index.mjs";
import { FAST_LIMITS, FIXTURES, entry, setup } from "./helpers.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

const actor: Actor = { name: "alice", role: "operator" };

/** The text of the flood fixture's chunk `i` (see fixtures/flood/index.mjs). */
const chunk = (i: number, size: number): string => String(i).padStart(8, "0") + ".".repeat(size - 9) + "\n";
const flood = (chunks: number, size: number): string =>
  Array.from({ length: chunks }, (_, i) => chunk(i, size)).join("");

const CHUNKS = 800;
const SIZE = 64 * 1024; // 50 MiB in all: three times the pause bound

/**
 * The backlog a held-back plugin agent may reach: the pause bound, plus what was taken before the
 * log was seen full — one throttle window's text (the run's pacer appends it as one delta, the
 * store's biggest entry) — and what the plugin may send without an ack: its window, overshot by
 * at most one frame.
 */
const holdBound = (store: HeldStore): number =>
  LOG_BACKLOG_PAUSE_BYTES +
  store.biggestEntryBytes +
  DEFAULT_PLUGIN_LIMITS.agentDeltaWindowChars +
  DEFAULT_PLUGIN_LIMITS.frameBytes;

/**
 * How long the flood plugin may leave a heartbeat unanswered. FAST_LIMITS' 800 ms killed it as
 * hung in a full test run, on a machine so loaded that building its 3 MiB delta or its burst of
 * tool events held its event loop that long; these tests are about back-pressure, not that.
 */
const HEARTBEAT_TIMEOUT_MS = 2_000;

/** A host running the flood fixture (FAST_LIMITS: heartbeat every 200 ms; runs idle out after 1 s). */
async function floodPlugin(limits: Partial<PluginLimits> = {}) {
  const t = setup({ limits: { heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS, ...limits } });
  await t.host.load({ entries: { flood: entry(join(FIXTURES, "flood")) } });
  return t;
}

type Plugin = Awaited<ReturnType<typeof floodPlugin>>;

function pluginSession(t: Plugin, onTestFinished: (fn: () => Promise<void>) => void, sessionId = "agent"): Held {
  return heldSession(onTestFinished, {
    spec: { adapter: "echo" },
    adapter: pluginAgentAdapter(t.host, "flood"),
    cwd: t.dataDir,
    sessionId,
  });
}

/** The fixture's "flood ended" report for `runId`: how many chunks its handler streamed, and whether it saw the abort. */
const floodEnded = (t: Plugin, runId: string): { sent: number; aborted: boolean } | undefined => {
  const record = t.logs.find((l) => l.msg === "flood ended" && (l.fields["data"] as { runId: string }).runId === runId);
  return record?.fields["data"] as { sent: number; aborted: boolean } | undefined;
};

describe("a plugin agent whose deltas the log cannot take as fast as they come", () => {
  for (const wait of [true, false]) {
    const how = wait ? "awaits run.delta()" : "ignores what run.delta() returns";
    it(`is held back near the pause bound when it ${how}, outlives the idle timeout meanwhile, and every chunk arrives in order once the store catches up`, async ({
      onTestFinished,
    }) => {
      const t = await floodPlugin();
      const s = pluginSession(t, onTestFinished);
      s.store.stuck = true;
      const { runId } = s.agent.prompt(JSON.stringify({ chunks: CHUNKS, size: SIZE, wait }), actor);

      await heldBack(s.store);
      expect(s.store.peakWaitingBytes).toBeLessThanOrEqual(holdBound(s.store));
      // Held for longer than the run's idle timeout (1 s): the gateway, not the plugin, is the slow one.
      await sleep(2 * FAST_LIMITS.agentIdleTimeoutMs!);
      expect(s.agent.info().active).toBe(runId);
      expect(s.store.queuedTypes).not.toContain("chat.error");
      if (!wait) {
        // Its handler returned long ago; the rest of its text waits in its own process, and the
        // run's answer behind it.
        expect(floodEnded(t, runId)).toMatchObject({ sent: CHUNKS, aborted: false });
        expect(s.store.queuedTypes).not.toContain("chat.final");
      }

      s.store.stuck = false;
      const end = await waitFor(() => runEnd(s.published, runId), 20_000, "the run to end");
      expect(end, JSON.stringify(end)).toMatchObject({ type: "chat.final", stopReason: "end_turn" });
      const expected = flood(CHUNKS, SIZE);
      const text = deltas(s.published, runId);
      expect(text.length).toBe(expected.length);
      expect(text === expected).toBe(true);
      expect(end.type === "chat.final" && end.text === expected).toBe(true);
      expectContiguous(s.published);
      expect(floodEnded(t, runId)).toMatchObject({ sent: CHUNKS, aborted: false });
    }, 60_000);
  }

  it("holds back only its own run: a run on another session and the plugin's heartbeats go on meanwhile", async ({
    onTestFinished,
  }) => {
    const t = await floodPlugin();
    const pid = t.host.get("flood").pid;
    const held = pluginSession(t, onTestFinished, "held");
    const free = pluginSession(t, onTestFinished, "free");
    held.store.stuck = true;
    const first = held.agent.prompt(JSON.stringify({ chunks: CHUNKS, size: SIZE, wait: true }), actor);
    await heldBack(held.store);
    expect(held.store.peakWaitingBytes).toBeLessThanOrEqual(holdBound(held.store));

    const second = free.agent.prompt(JSON.stringify({ say: "not stuck" }), actor);
    const end = await waitFor(() => runEnd(free.published, second.runId), 5_000, "the other session's run to end");
    expect(end).toMatchObject({ type: "chat.final", text: "not stuck" });
    expect(held.agent.info().active).toBe(first.runId);

    // Longer than the heartbeat timeout: a plugin whose pipe stalled would be killed as hung.
    await sleep(2 * HEARTBEAT_TIMEOUT_MS);
    expect(t.host.get("flood")).toMatchObject({ state: "running", pid, restarts: 0 });
    expect(held.agent.info().active).toBe(first.runId);

    held.store.stuck = false;
    const firstEnd = await waitFor(() => runEnd(held.published, first.runId), 20_000, "the held run to end");
    expect(firstEnd, JSON.stringify(firstEnd)).toMatchObject({ type: "chat.final", stopReason: "end_turn" });
    expect(deltas(held.published, first.runId) === flood(CHUNKS, SIZE)).toBe(true);
  }, 60_000);

  it("an abort while it is held back ends the run at once, and the plugin's awaited delta returns so it stops", async ({
    onTestFinished,
  }) => {
    const t = await floodPlugin();
    const s = pluginSession(t, onTestFinished);
    s.store.stuck = true;
    const first = s.agent.prompt(JSON.stringify({ chunks: CHUNKS, size: SIZE, wait: true }), actor);
    const second = s.agent.prompt(JSON.stringify({ say: "next" }), actor);
    await heldBack(s.store);
    expect(s.store.peakWaitingBytes).toBeLessThanOrEqual(holdBound(s.store));

    const abortedAt = Date.now();
    s.agent.abort({}, actor);
    expect(s.agent.info().active).not.toBe(first.runId);
    const ended = await waitFor(() => floodEnded(t, first.runId), 5_000, "the plugin's handler to return");
    expect(Date.now() - abortedAt).toBeLessThan(1_000);
    expect(ended.aborted).toBe(true);
    expect(ended.sent).toBeLessThan(CHUNKS);
    // The next run starts with the store still stuck.
    await waitFor(
      () => s.store.queuedTypes.filter((type) => type === "run.started").length === 2,
      20_000,
      "the next run",
    );

    s.store.stuck = false;
    const end = await waitFor(() => runEnd(s.published, second.runId), 20_000, "the next run to end");
    expect(end).toMatchObject({ type: "chat.final", text: "next" });
    const ends = s.published.filter((e) => "runId" in e && e.runId === first.runId && e.type.startsWith("chat."));
    expect(ends.filter((e) => e.type !== "chat.delta")).toEqual([expect.objectContaining({ type: "chat.aborted" })]);
    expectContiguous(s.published);
  }, 60_000);

  it("the plugin stopping while a run is held back ends the run at once with AGENT_EXITED", async ({
    onTestFinished,
  }) => {
    const t = await floodPlugin();
    const s = pluginSession(t, onTestFinished);
    s.store.stuck = true;
    const { runId } = s.agent.prompt(JSON.stringify({ chunks: CHUNKS, size: SIZE, wait: false }), actor);
    await heldBack(s.store);
    expect(s.store.peakWaitingBytes).toBeLessThanOrEqual(holdBound(s.store));

    const stoppedAt = Date.now();
    const restarted = t.host.restart("flood");
    await waitFor(() => s.agent.info().active === null, 5_000, "the run to end");
    // It exited on its own, before the stop grace period would have ended in SIGKILL.
    expect(Date.now() - stoppedAt).toBeLessThan(FAST_LIMITS.stopGraceMs!);
    expect(s.store.queuedTypes.at(-1)).toBe("chat.error");
    await restarted;

    s.store.stuck = false;
    const end = await waitFor(() => runEnd(s.published, runId), 20_000, "the run's end to be published");
    expect(end).toMatchObject({ type: "chat.error", code: "AGENT_EXITED" });
  }, 60_000);

  for (const wait of [true, false]) {
    const how = wait ? "awaits run.tool()" : "ignores what run.tool() returns";
    it(`reporting tool calls as fast as it can, is held back near the pause bound when it ${how}: tool events count against its window as deltas do`, async ({
      onTestFinished,
    }) => {
      const t = await floodPlugin();
      const s = pluginSession(t, onTestFinished);
      s.store.stuck = true;
      const { runId } = s.agent.prompt(JSON.stringify({ tools: CHUNKS, size: SIZE, wait }), actor);

      await heldBack(s.store);
      expect(s.store.peakWaitingBytes).toBeLessThanOrEqual(holdBound(s.store));
      await sleep(2 * FAST_LIMITS.agentIdleTimeoutMs!);
      expect(s.agent.info().active).toBe(runId);

      s.store.stuck = false;
      const end = await waitFor(() => runEnd(s.published, runId), 20_000, "the run to end");
      expect(end, JSON.stringify(end)).toMatchObject({ type: "chat.final", stopReason: "end_turn" });
      const tools = s.published.flatMap((e) => (e.type === "tool" && e.runId === runId ? [e] : []));
      expect(tools.map((e) => e.toolCallId)).toEqual(Array.from({ length: CHUNKS }, (_, i) => `t${i}`));
      expect(tools.every((e, i) => e.rawOutput === chunk(i, SIZE))).toBe(true);
      expectContiguous(s.published);
    }, 60_000);
  }

  it("counts a tool event with an own __proto__ key as the plugin does: its run is not held back for good", async ({
    onTestFinished,
  }) => {
    const t = await floodPlugin();
    const s = pluginSession(t, onTestFinished);
    // 40 × 64 KiB under "__proto__" is 2.5 window's worth: counted on one side only, the run stalled.
    const { runId } = s.agent.prompt(JSON.stringify({ tools: 40, size: SIZE, wait: true, proto: true }), actor);
    const end = await waitFor(() => runEnd(s.published, runId), 20_000, "the run to end");
    expect(end, JSON.stringify(end)).toMatchObject({ type: "chat.final", stopReason: "end_turn" });
    expect(s.published.filter((e) => e.type === "tool" && e.runId === runId)).toHaveLength(40);
  }, 60_000);

  it("a delta bigger than a frame is sent in pieces: the plugin stays up and every character arrives", async ({
    onTestFinished,
  }) => {
    // Building and sending 3 MiB took the plugin over FAST_LIMITS' 1 s of silence in a full run,
    // and the host's reading of it, ahead of the pong, over HEARTBEAT_TIMEOUT_MS.
    const t = await floodPlugin({ agentIdleTimeoutMs: 10_000, heartbeatTimeoutMs: 10_000 });
    const pid = t.host.get("flood").pid;
    const s = pluginSession(t, onTestFinished);
    const { runId } = s.agent.prompt(JSON.stringify({ big: 3 * DEFAULT_PLUGIN_LIMITS.frameBytes }), actor);
    const end = await waitFor(() => runEnd(s.published, runId), 20_000, "the run to end");
    const expected = bigText(3 * DEFAULT_PLUGIN_LIMITS.frameBytes);
    expect(end, JSON.stringify(end)).toMatchObject({ type: "chat.final", stopReason: "end_turn" });
    expect(deltas(s.published, runId) === expected).toBe(true);
    expect(end.type === "chat.final" && end.text === expected).toBe(true);
    expect(t.host.get("flood")).toMatchObject({ state: "running", pid, restarts: 0 });
  }, 60_000);

  /**
   * Prompts the flood fixture with each case in turn; each run ends with `answer` as its text
   * (what run.tool() said: see the fixture), `check` looks at what it published, and the plugin
   * is still the same process at the end.
   */
  async function expectAnswers(
    onTestFinished: (fn: () => Promise<void>) => void,
    cases: ReadonlyArray<readonly [prompt: object, answer: string | RegExp]>,
    check: (published: SessionEvent[], runId: string, answer: string | RegExp) => void = () => undefined,
  ): Promise<void> {
    const t = await floodPlugin();
    const pid = t.host.get("flood").pid;
    const s = pluginSession(t, onTestFinished);
    for (const [prompt, answer] of cases) {
      const { runId } = s.agent.prompt(JSON.stringify(prompt), actor);
      const end = await waitFor(
        () => runEnd(s.published, runId),
        20_000,
        `the run of ${JSON.stringify(prompt)} to end`,
      );
      const text = typeof answer === "string" ? answer : expect.stringMatching(answer);
      expect({ prompt, end }).toMatchObject({ prompt, end: { type: "chat.final", text } });
      check(s.published, runId, answer);
    }
    expect(t.host.get("flood")).toMatchObject({ state: "running", pid, restarts: 0 });
  }

  it("a tool event that is not an object, or too big for a frame, is refused in the plugin, which stays up", async ({
    onTestFinished,
  }) => {
    await expectAnswers(onTestFinished, [
      [{ badTool: "a string" }, "VALIDATION_FAILED"],
      [{ badTool: null }, "VALIDATION_FAILED"],
      [{ badTool: [1, 2] }, "VALIDATION_FAILED"],
      [{ badTool: null, pad: 2 * DEFAULT_PLUGIN_LIMITS.frameBytes }, "PAYLOAD_TOO_LARGE"],
      [{ badTool: null, pad: 1000 }, "taken"],
    ]);
  }, 60_000);

  // Review of 7527da4: the check looked at the value, not at its JSON — a Date, a String object or
  // an object whose toJSON answers undefined passed it and still killed the plugin on the host.
  it("a tool event whose JSON is not an object (a Date, a String object, toJSON undefined) is refused in the plugin, which stays up", async ({
    onTestFinished,
  }) => {
    await expectAnswers(
      onTestFinished,
      ["date", "boxed", "undefined"].map((oddTool) => [{ oddTool }, "VALIDATION_FAILED"] as const),
    );
  }, 60_000);

  // A tool event nested deeper than the host's frameDepth went out as it was, and the host ended
  // the whole plugin for the frame (a protocol violation): the runner did not count its depth.
  it("a tool event nested deeper than a frame may be is refused in the plugin, which stays up; one level less is taken", async ({
    onTestFinished,
  }) => {
    const most = DEFAULT_PLUGIN_LIMITS.frameDepth - 1; // the frame around the event is one level
    await expectAnswers(
      onTestFinished,
      [
        [{ deepTool: most + 1 }, "VALIDATION_FAILED"],
        [{ deepTool: 1000 }, "VALIDATION_FAILED"],
        [{ deepTool: most }, "taken"],
      ],
      (published, runId, answer) => {
        const tools = published.filter((e) => e.type === "tool" && e.runId === runId);
        expect(tools).toHaveLength(answer === "taken" ? 1 : 0);
      },
    );
  }, 60_000);

  // run.tool() threw synchronously for these while it otherwise returns a promise: a plugin that
  // handled it with .catch() failed its whole run instead.
  it("run.tool() rejects, never throws, for an event it refuses: .catch() sees the code and the run goes on", async ({
    onTestFinished,
  }) => {
    await expectAnswers(onTestFinished, [
      [{ badTool: "a string", chained: true }, /^VALIDATION_FAILED: run\.tool\(event\) takes an object/],
      [
        { badTool: null, pad: 2 * DEFAULT_PLUGIN_LIMITS.frameBytes, chained: true },
        /^PAYLOAD_TOO_LARGE: this tool event is larger than/,
      ],
      [
        { deepTool: DEFAULT_PLUGIN_LIMITS.frameDepth, chained: true },
        /^VALIDATION_FAILED: this tool event is nested deeper than the 64 levels .*\(limits\.frameDepth\)$/,
      ],
      [{ badTool: null, pad: 1000, chained: true }, /^taken$/],
    ]);
  }, 60_000);

  it("a plugin that writes delta frames past its window without waiting for acks is killed as a protocol violation", async () => {
    const t = await floodPlugin();
    const calls: string[] = [];
    // A log that has no room from the start: the host acks nothing.
    const sink: AgentRunSink = {
      delta: () => calls.push("delta"),
      tool: () => calls.push("tool"),
      final: () => calls.push("final"),
      error: (code, message) => calls.push(`${code}: ${message}`),
      room: () => new Promise<void>(() => {}),
    };
    const forged = Math.ceil((2 * DEFAULT_PLUGIN_LIMITS.agentDeltaWindowChars) / SIZE) + 8;
    const outcome = await Promise.race([
      t.host.runAgent(
        "flood",
        { runId: "forger", sessionId: "s1", text: JSON.stringify({ forge: forged, size: SIZE }) },
        sink,
        new AbortController().signal,
      ),
      sleep(10_000).then(() => "still running"),
    ]);
    expect(outcome).toBe("error");
    expect(calls.at(-1)).toMatch(
      /^AGENT_EXITED: plugin "flood" exited: protocol violation: run forger sent \d+ characters of deltas and tool events without an ack/,
    );
    expect(calls.filter((c) => c === "delta").length).toBeLessThan(forged);
  }, 30_000);
});
