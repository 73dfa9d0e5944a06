import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { api } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { prng } from "../helpers/chaos.js";

// Seeded faults against one promise: a held agent's turn survives any number of gateway kills
// (-9) and stops (SIGTERM) at random points — during its words, a tool call, a permission wait,
// a file read or write through the gateway — and ends chat.final with exactly the script's text,
// every delta once, the permission answered once and each file request answered once.
// HELD_TURN_CHAOS_RUNS (`npm run fuzz`) runs more seeds; HELD_TURN_CHAOS_SEED replays one;
// HELD_TURN_CHAOS_DEBUG prints the gateways' warnings.

const SCRIPTED_AGENT = fileURLToPath(new URL("./fixtures/scripted-agent.mjs", import.meta.url));
const RUNS = Number(process.env.HELD_TURN_CHAOS_RUNS ?? 1);
const FAULTS = 3;
const WORDS = 12;
const WORD_MS = 15;
const CONTENT = "kept across restarts";

type Ev = { seq: number; type: string; runId?: string; text?: string; [k: string]: unknown };
type Api = ReturnType<typeof api>;

const words = (from: number, to: number): string =>
  Array.from({ length: to - from + 1 }, (_, i) => `w${from + i} `).join("");

const EXPECTED =
  words(1, WORDS) +
  "chose yes " +
  `read=${CONTENT} ` +
  words(WORDS + 1, 2 * WORDS) +
  "wrote " +
  words(2 * WORDS + 1, 3 * WORDS);

type Trigger = "words" | "tool" | "permission" | "read" | "write";
const TRIGGERS: Trigger[] = ["words", "tool", "permission", "read", "write"];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function events(http: Api, id: string): Promise<Ev[]> {
  const res = await http.get(`/v1/sessions/${id}/events`);
  return (res.json?.events ?? []) as Ev[];
}

async function stop(gateway: ChildGateway, signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise((resolve) => gateway.child.once("exit", resolve));
  gateway.child.kill(signal);
  await exited;
}

/** Whether `trigger`'s point of the turn has come, from the log. */
function reached(trigger: Trigger, log: Ev[], want: number): boolean {
  const text = log
    .filter((e) => e.type === "chat.delta")
    .map((e) => e.text)
    .join("");
  switch (trigger) {
    case "words":
      return (text.match(/w\d+ /g)?.length ?? 0) >= want;
    case "tool":
      return log.some((e) => e.type === "tool" && e.toolCallId === "j-1");
    case "permission":
      return log.some((e) => e.type === "permission.request");
    case "read":
      return log.some((e) => e.type === "permission.resolved");
    case "write":
      return text.includes(`w${2 * WORDS} `);
  }
}

async function chaosRun(seed: number): Promise<void> {
  const random = prng(seed);
  const dataDir = mkdtempSync(join(tmpdir(), "switchboard-held-chaos-"));
  onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
  const cwd = join(dataDir, "work");
  mkdirSync(cwd);
  writeFileSync(join(cwd, "in.txt"), CONTENT);
  const record = join(dataDir, "agent-read.jsonl");
  const config = join(dataDir, "config.json");
  writeFileSync(
    config,
    JSON.stringify({
      agents: { scripted: { adapter: "acp", cwd, command: [process.execPath, SCRIPTED_AGENT, `--record=${record}`] } },
    }),
  );
  let gateway = await serveInChild({ dataDir, config, holders: true });
  let http = api(gateway.url);
  const id = (await http.post("/v1/sessions", { kind: "agent", agent: "scripted" })).json.id as string;
  const script = { op: "journey", n: WORDS, ms: WORD_MS, read: "in.txt", write: "out.txt", content: CONTENT };
  const runId = (await http.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify(script) })).json.runId as string;
  const faults: string[] = [];
  const all = [gateway];

  /** Polls the log until `done` says so, answering an open permission request on the way (unless `hold`). */
  const until = async (done: (log: Ev[]) => boolean, hold: boolean, ms: number): Promise<Ev[]> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const log = await events(http, id);
      if (done(log)) return log;
      const open = log.find(
        (e) =>
          e.type === "permission.request" &&
          !log.some((r) => r.type === "permission.resolved" && r.requestId === e.requestId),
      );
      if (open !== undefined && !hold) {
        await http.post(`/v1/sessions/${id}/permission`, { requestId: open.requestId, optionId: "yes" });
      }
      if (Date.now() > deadline) {
        const last = log.slice(-6).map((e) => `${e.seq} ${e.type}`);
        throw new Error(
          `seed ${seed}: timed out after faults [${faults.join(", ")}]; last events: ${last.join(" | ")}`,
        );
      }
      await sleep(25);
    }
  };
  const ended = (log: Ev[]): boolean =>
    log.some(
      (e) => e.runId === runId && e.type.startsWith("chat.") && e.type !== "chat.delta" && e.type !== "chat.thought",
    );

  for (let f = 0; f < FAULTS; f++) {
    const trigger = TRIGGERS[Math.floor(random() * TRIGGERS.length)]!;
    const want = 1 + Math.floor(random() * WORDS);
    const delay = Math.floor(random() * 40);
    const signal: NodeJS.Signals = random() < 0.5 ? "SIGKILL" : "SIGTERM";
    const log = await until((l) => ended(l) || reached(trigger, l, want), trigger === "permission", 20_000);
    if (ended(log)) break;
    await sleep(delay);
    faults.push(`${signal}@${trigger}+${delay}ms`);
    await stop(gateway, signal);
    gateway = await serveInChild({ dataDir, config, holders: true });
    all.push(gateway);
    http = api(gateway.url);
  }

  const log = await until(ended, false, 30_000);
  // The gateways' warnings and adoptions, to read a failing seed by.
  if (process.env.HELD_TURN_CHAOS_DEBUG !== undefined) {
    for (const g of all)
      console.log(JSON.stringify(g.log.filter((l) => Number(l.level) >= 40 || /turn|adopt/.test(String(l.msg)))));
  }
  const context = `seed ${seed}, faults [${faults.join(", ")}]`;
  const end = log.find((e) => e.runId === runId && ["chat.final", "chat.error", "chat.aborted"].includes(e.type))!;
  expect(end.type, `${context}: ${JSON.stringify(end)}`).toBe("chat.final");
  expect(end.text, context).toBe(EXPECTED);
  const deltas = log.filter((e) => e.type === "chat.delta" && e.runId === runId).map((e) => e.text);
  expect(deltas.join(""), context).toBe(EXPECTED);
  expect(
    log.filter((e) => e.type === "permission.request"),
    context,
  ).toHaveLength(1);
  expect(
    log.filter((e) => e.type === "permission.resolved").map((e) => e.outcome),
    context,
  ).toEqual(["selected"]);
  expect(
    log.filter((e) => e.runId === runId && ["chat.final", "chat.error", "chat.aborted"].includes(e.type)),
  ).toHaveLength(1);
  // What the agent read: one prompt, no cancel, one answer to each of its requests.
  const read = readFileSync(record, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(
    read.filter((m) => m.method === "session/prompt"),
    context,
  ).toHaveLength(1);
  expect(
    read.filter((m) => m.method === "session/cancel"),
    context,
  ).toEqual([]);
  const answers = read.filter((m) => m.method === undefined && ("result" in m || "error" in m));
  const ids = answers.map((m) => JSON.stringify(m.id));
  expect(new Set(ids).size, `${context}: answers ${ids.join(",")}`).toBe(ids.length);
  expect(readFileSync(join(cwd, "out.txt"), "utf8"), context).toBe(CONTENT);
}

describe("a held agent's turn under seeded gateway kills and stops", () => {
  const base =
    process.env.HELD_TURN_CHAOS_SEED !== undefined ? Number(process.env.HELD_TURN_CHAOS_SEED) : Date.now() % 1_000_000;
  for (let i = 0; i < RUNS; i++) {
    const seed = base + i;
    it(`keeps its promise (seed ${seed})`, async () => {
      await chaosRun(seed);
    }, 120_000);
  }
});
