import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { TEST_TOKEN } from "./gateway.js";
import { waitFor } from "./wait-for.js";

/*
 * What the holder chaos tests share (test/sessions/holder-chaos.test.ts, test/cluster/held-chaos.test.ts):
 * a seeded PRNG, so a failed run replays with its seed, a flood that tees what it writes, and an
 * ACP agent kept streaming.
 */

const SCRIPTED_AGENT = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));
/** One agent prompt (long enough to be in flight at most restarts): chunks of 60 characters, each sent once the one before is written. */
const AGENT_CHUNKS = 400;
const AGENT_CHUNK_CHARS = 60;

/** The config's `agents` with the scripted ACP agent as `scripted`. */
export const CHAOS_AGENTS = { scripted: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT] } };

/** mulberry32: a seeded PRNG in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A shell command: bursts of `lines` numbered lines (default 400) `pause` seconds apart (0.01)
 * until `stop` exists, each line also in `file`.
 */
export function flood(
  file: string,
  stop: string,
  tag: string,
  options: { lines?: number; pause?: number } = {},
): string {
  const lines = options.lines ?? 400;
  const burst = `awk 'BEGIN{for(i=0;i<${lines};i++) printf "${tag}-%d-%d-abcdefghijklmnopqrstuvwxyz0123456789\\n", n, i}' n=$n`;
  return `n=0; while [ ! -e ${stop} ]; do ${burst}; n=$((n+1)); sleep ${options.pause ?? 0.01}; done | tee ${file}`;
}

type Ev = { seq: number; type: string; runId?: string; text?: string; reason?: string; stopReason?: string };

/**
 * Keeps agent session `id` streaming through whichever gateway `url()` names now: a new prompt
 * whenever it is idle. `stop()` ends that and checks the promise: the agent is the process it
 * was, and every run but the one still going ended once, whole (`chat.final` with every chunk) or `chat.aborted` by a restart.
 */
export async function streamingAgent(url: () => string, id: string): Promise<{ stop(): Promise<void> }> {
  const call = (path: string, body?: unknown) =>
    fetch(`${url()}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    }).then(
      async (r) => ({ status: r.status, json: (await r.json().catch(() => ({}))) as Record<string, unknown> }),
      () => ({ status: 0, json: {} as Record<string, unknown> }),
    );
  const info = async () => (await call(`/v1/sessions/${id}`)).json;
  const script = JSON.stringify({ op: "flood", chunks: AGENT_CHUNKS, size: AGENT_CHUNK_CHARS });
  expect((await call(`/v1/sessions/${id}/prompt`, { text: script })).status).toBe(202);
  await waitFor(async () => ((await info())["pid"] as number) > 0, 15_000, "the pid");
  // A held agent whose conversation had not opened when its gateway stopped is ended, not adopted
  // (docs/agents.md, "Agents across gateway restarts"): the same process is promised from the
  // first streamed chunk on, which the log publishes after the record that keeps the conversation.
  await waitFor(
    async () =>
      ((await call(`/v1/sessions/${id}/events?since=0&limit=1000`)).json["events"] as Ev[] | undefined)?.some(
        (e) => e.type === "chat.delta",
      ) === true,
    15_000,
    "the conversation to open",
  );
  const pid = (await info())["pid"];
  let working = true;
  const prompter = (async () => {
    while (working) {
      const run = (await info())["run"] as { active: string | null; queued: number } | undefined;
      if (run !== undefined && run.active === null && run.queued === 0)
        await call(`/v1/sessions/${id}/prompt`, { text: script });
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    async stop() {
      working = false;
      await prompter;
      expect((await info())["pid"]).toBe(pid);
      const log = (await call(`/v1/sessions/${id}/events?since=0&limit=1000`)).json["events"] as Ev[];
      const expected = Array.from(
        { length: AGENT_CHUNKS },
        (_, i) => `${String(i).padStart(8, "0")}${".".repeat(AGENT_CHUNK_CHARS - 9)}\n`,
      ).join("");
      let finals = 0;
      const queued = log.filter((e) => e.type === "run.queued");
      for (const run of queued) {
        const ends = log.filter(
          (e) => e.runId === run.runId && ["chat.final", "chat.error", "chat.aborted"].includes(e.type),
        );
        // The last prompt may still run (one at a time: no other can).
        if (run === queued.at(-1) && ends.length === 0) continue;
        expect(ends, `run ${run.runId}: one end`).toHaveLength(1);
        const end = ends[0]!;
        if (end.type === "chat.final") finals++;
        if (end.type === "chat.final") {
          // A final once had no text in a full run (seed 1150862786): say its stop reason and the run's events.
          const story = log.filter((e) => e.runId === run.runId).map((e) => `${e.seq} ${e.type}`);
          const why = `run ${run.runId} ended ${JSON.stringify(end.stopReason)}; its events: ${story.slice(0, 8).join(", ")} … ${story.slice(-8).join(", ")}`;
          expect(end.text, why).toBe(expected);
        } else
          expect(end, `run ${run.runId}`).toMatchObject({
            type: "chat.aborted",
            reason: expect.stringMatching(/gateway restarted during this run/),
          });
      }
      expect(finals).toBeGreaterThan(0);
    },
  };
}

/** Each program's log equals what it tee'd to its file, byte for byte: `[session id, file name]` pairs. */
export async function expectLogsEqualFiles(
  sessions: ReadonlyArray<readonly [string, string]>,
  output: (id: string) => Promise<Buffer>,
  file: (name: string) => string,
): Promise<void> {
  for (const [id, name] of sessions) {
    const logged = await output(id);
    const teed = readFileSync(file(name));
    expect(logged.length, `${name}: bytes in the log and the file`).toBe(teed.length);
    expect(logged.equals(teed), `${name}: the log equals the file`).toBe(true);
  }
}

/**
 * The typed shell's file (`got:LINE` per line it read): every line a gateway confirmed reached
 * it once, in order; no line twice; none that was never sent.
 */
export function expectTypedOnce(path: string, confirmed: readonly string[], attempted: readonly string[]): void {
  const got = readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("got:"))
    .map((l) => l.slice(4));
  expect(new Set(got).size).toBe(got.length);
  expect(got.filter((l) => confirmed.includes(l))).toEqual(confirmed);
  for (const l of got) expect(attempted).toContain(l);
}

/**
 * Input is delivered and recorded, or neither, whatever the crashes: the `input` events of a
 * session typed one line per request (`line\r`) are the lines its program wrote to `path` as
 * `got:line`, each once (their lengths: an event records who sent how many bytes, not the
 * bytes). Compared as multisets: input a holder wrote before a crash is recorded by the next
 * gateway when its holder reports it, after input that gateway took before that report
 * (docs/architecture.md, "Session holders").
 */
export function expectInputRecorded(
  events: ReadonlyArray<{ type: string; bytes?: unknown; by?: unknown }>,
  path: string,
): void {
  const got = readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("got:"))
    .map((l) => l.length - "got:".length + 1);
  const inputs = events.filter((e) => e.type === "input");
  const sorted = (sizes: unknown[]) => [...sizes].sort();
  expect(
    sorted(inputs.map((e) => e.bytes)),
    "the input events' sizes are the lines the program got, each once",
  ).toEqual(sorted(got));
  for (const e of inputs) expect((e.by as { name?: string }).name).not.toBe("unknown");
}

/**
 * What one viewer got of a session: every seq once, in order from 1, no `lost`; and, for a
 * session whose output is its whole story (`logged` given), that output equal to the log's.
 */
export async function expectViewerSawLog(
  events: ReadonlyArray<{ seq: number; type: string; data?: unknown }>,
  logged: (() => Promise<Buffer>) | undefined,
): Promise<void> {
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  expect(events.some((e) => e.type === "lost")).toBe(false);
  if (logged === undefined) return;
  const viewed = events
    .filter((e) => e.type === "output")
    .map((e) => e.data)
    .join("");
  expect(viewed === (await logged()).toString(), "the viewer's output equals the log").toBe(true);
}
