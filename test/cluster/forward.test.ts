import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { afterFile, configuredNodes, listedEverywhere, threeNodes } from "./ws-forward-helpers.js";
import { waitFor } from "../helpers/wait-for.js";

const CLUSTER_TEST_MS = 150_000;
/** The forward timeout the NODE_UNAVAILABLE test runs with (`cluster.requestTimeoutMs`; the default is 5 s). */
const REQUEST_TIMEOUT_MS = 1_500;

/** The status and body of the same request sent to each node in turn, once all agree. */
async function sameOn(
  nodes: ChildGateway[],
  request: (client: ReturnType<typeof api>) => Promise<{ status: number; json: unknown }>,
): Promise<[number, unknown]> {
  const answers: Array<[number, unknown]> = [];
  for (const node of nodes) {
    const res = await request(api(node.url));
    answers.push([res.status, res.json]);
  }
  for (const answer of answers) expect(answer).toEqual(answers[0]);
  return answers[0]!;
}

async function outputOf(node: ChildGateway, id: string): Promise<string> {
  return (await api(node.url).get(`/v1/sessions/${id}/output`)).text;
}

describe("a session's changes sent to any node are carried to the node that runs it", () => {
  // One cluster for the tests that neither stop nor kill a node: each works on a session of its own.
  let nodes: [ChildGateway, ChildGateway, ChildGateway];
  beforeAll(async () => {
    nodes = await threeNodes(afterFile);
  });

  it(
    "appends events posted on B and C to a stream session A owns, in order per poster, seq contiguous, the same on every node",
    async () => {
      const [a, b, c] = nodes;
      const id = (await api(a.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      await listedEverywhere(nodes, id);
      const post = async (node: ChildGateway, tag: string, count: number) => {
        const answers = [];
        for (let i = 0; i < count; i++) {
          const batch =
            i % 3 === 0
              ? [
                  { type: `${tag}.x`, data: { i } },
                  { type: `${tag}.y`, data: { i } },
                ]
              : { type: `${tag}.x`, data: { i } };
          const res = await api(node.url).post(`/v1/sessions/${id}/events`, batch);
          expect(res.status).toBe(200);
          answers.push(res.json as { appended: number; first: number; last: number; head: number });
          // Read-your-writes on the node posted to, as on the owner.
          expect((await api(node.url).get(`/v1/sessions/${id}`)).json.head).toBeGreaterThanOrEqual(res.json.last);
        }
        return answers;
      };
      const [fromB, fromC] = await Promise.all([post(b, "b", 30), post(c, "c", 30)]);
      for (const answers of [fromB, fromC]) {
        for (const [i, answer] of answers.entries()) {
          expect(answer.appended).toBe(i % 3 === 0 ? 2 : 1);
          expect(answer.last - answer.first + 1).toBe(answer.appended);
          expect(answer.head).toBeGreaterThanOrEqual(answer.last);
          if (i > 0) expect(answer.first).toBeGreaterThan(answers[i - 1]!.last);
        }
      }
      const total = 2 * (30 + 10);
      const read = async (node: ChildGateway) => {
        const res = await api(node.url).get(`/v1/sessions/${id}/events?since=${total}&limit=1`);
        expect(res.status).toBe(200);
        return (await api(node.url).get(`/v1/sessions/${id}/events?limit=1000`)).json.events as Array<{
          seq: number;
          type: string;
          name: string;
          data: { i: number };
        }>;
      };
      const onA = await read(a);
      expect(onA.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      for (const tag of ["b", "c"]) {
        const mine = onA.filter((e) => e.name.startsWith(`${tag}.`));
        expect(mine.map((e) => `${e.name}:${e.data.i}`)).toEqual(
          Array.from({ length: 30 }, (_, i) =>
            i % 3 === 0 ? [`${tag}.x:${i}`, `${tag}.y:${i}`] : [`${tag}.x:${i}`],
          ).flat(),
        );
        // Each answer's seqs are where that poster's events are in the log.
        const answers = tag === "b" ? fromB : fromC;
        expect(answers.flatMap((r) => Array.from({ length: r.appended }, (_, k) => r.first + k))).toEqual(
          mine.map((e) => e.seq),
        );
      }
      expect(await read(b)).toEqual(onA);
      expect(await read(c)).toEqual(onA);
    },
    CLUSTER_TEST_MS,
  );

  it(
    "switches the mode and model of an ACP agent A runs from B, whose answer holds the new state; a refusal is the owner's",
    async () => {
      const [a, b] = nodes;
      const agent = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));
      const created = await api(a.url).post("/v1/sessions", {
        kind: "agent",
        agent: { adapter: "acp", command: [process.execPath, agent, "--state"] },
      });
      const id = created.json.id as string;
      await listedEverywhere(nodes, id);
      const mode = await api(b.url).post(`/v1/sessions/${id}/mode`, { modeId: "code" });
      expect(mode.status, mode.text).toBe(200);
      expect(mode.json.agentState.modes.currentModeId).toBe("code");
      const model = await api(b.url).post(`/v1/sessions/${id}/config`, { configId: "model", value: "fast-1" });
      expect(model.json.agentState.model).toBe("fast-1");
      // B's copy has the state with the owner's record, which follows its events (agent-state-copy.test.ts).
      await waitFor(async () => {
        const state = (await api(b.url).get(`/v1/sessions/${id}`)).json.agentState;
        return state?.modes?.currentModeId === "code" && state?.model === "fast-1";
      });
      expect(await sameOn([a, b], (client) => client.post(`/v1/sessions/${id}/mode`, { modeId: "plan" }))).toEqual([
        400,
        { error: expect.objectContaining({ code: "INVALID_OPTION", message: expect.stringContaining("ask, code") }) },
      ]);
      await api(a.url).del(`/v1/sessions/${id}`);
    },
    CLUSTER_TEST_MS,
  );

  it(
    "answers a forwarded append with the owner's codes and bodies: validation, limits, an ended session",
    async () => {
      const [a, b] = nodes;
      const id = (await api(a.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      await listedEverywhere(nodes, id);
      const path = `/v1/sessions/${id}/events`;
      const refusals: unknown[] = [
        [],
        { type: "output", data: { stream: "stdin", data: "x" } },
        [{ type: "exit", data: { exitCode: 0, signal: null } }, { type: "note" }],
        Array.from({ length: 1_001 }, () => ({ type: "note" })),
        { type: "1bad" },
        "{not json",
      ];
      for (const body of refusals) {
        expect((await sameOn([a, b], (client) => client.post(path, body)))[0]).toBeGreaterThanOrEqual(400);
      }
      expect((await sameOn([a, b], (client) => client.post(`/v1/sessions/nope/events`, { type: "x" })))[0]).toBe(404);
      // Ended from B: A records the exit, and both refuse more the same way.
      const exit = await api(b.url).post(path, { type: "exit", data: { exitCode: 4, signal: null } });
      expect(exit.status).toBe(200);
      await waitFor(async () => (await api(b.url).get(`/v1/sessions/${id}`)).json.state === "exited");
      expect(await sameOn([a, b], (client) => client.post(path, { type: "late" }))).toEqual([
        409,
        { error: expect.objectContaining({ code: "SESSION_NOT_RUNNING" }) },
      ]);
    },
    CLUSTER_TEST_MS,
  );

  it(
    "types into a PTY on A from B and sees the echo through B; resize, control and a bad body answer as on A; a signal from C ends it",
    async () => {
      const [a, b, c] = nodes;
      const created = await api(a.url).post("/v1/sessions", { kind: "terminal", command: ["cat"], pty: true });
      expect(created.status).toBe(201);
      const id = created.json.id as string;
      await listedEverywhere(nodes, id);
      const typed = await api(b.url).post(`/v1/sessions/${id}/input`, { data: "hello from b\n" });
      expect(typed).toMatchObject({ status: 200, json: { ok: true, bytes: 13 } });
      await waitFor(async () => (await outputOf(b, id)).includes("hello from b"), 15_000);
      expect(await outputOf(a, id)).toContain("hello from b");

      expect(
        await sameOn([a, b], (client) => client.post(`/v1/sessions/${id}/resize`, { cols: 100, rows: 30 })),
      ).toEqual([200, { ok: true, cols: 100, rows: 30 }]);
      expect((await sameOn([a, b], (client) => client.post(`/v1/sessions/${id}/input`, { data: 7 })))[0]).toBe(400);
      // Control taken through B is held on A, where it counts, and every node shows it.
      const taken = await api(b.url).post(`/v1/sessions/${id}/control`, { action: "acquire" });
      expect(taken.json).toEqual({ ok: true, controller: expect.any(String) });
      expect((await api(a.url).get(`/v1/sessions/${id}`)).json.controller).toBe(taken.json.controller);
      expect(
        await sameOn([b, a], (client) => client.post(`/v1/sessions/${id}/control`, { action: "release" })),
      ).toEqual([200, { ok: true, controller: null }]);

      const signalled = await api(c.url).post(`/v1/sessions/${id}/signal`, { signal: "SIGTERM" });
      expect(signalled).toMatchObject({ status: 200, json: { ok: true, signal: "TERM" } });
      for (const node of nodes)
        await waitFor(async () => (await api(node.url).get(`/v1/sessions/${id}`)).json.state !== "running", 15_000);
      expect(await sameOn([a, b], (client) => client.post(`/v1/sessions/${id}/input`, { data: "x" }))).toEqual([
        409,
        { error: expect.objectContaining({ code: "SESSION_NOT_RUNNING" }) },
      ]);
    },
    CLUSTER_TEST_MS,
  );

  it(
    "ends a session A runs on DELETE from B, answering the session as A does",
    async () => {
      const [a, b] = nodes;
      const id = (await api(a.url).post("/v1/sessions", { kind: "terminal", command: ["sleep", "1000"] })).json
        .id as string;
      await listedEverywhere(nodes, id);
      const deleted = await api(b.url).del(`/v1/sessions/${id}`);
      expect(deleted.status).toBe(200);
      expect(deleted.json).toMatchObject({ id, state: expect.not.stringMatching(/^running$/) });
      expect((await sameOn([a, b], (client) => client.del(`/v1/sessions/${id}`)))[0]).toBe(200);
      const purged = await api(b.url).del(`/v1/sessions/${id}?purge=1`);
      expect(purged).toMatchObject({ status: 200, json: { removed: [expect.objectContaining({ id })] } });
      expect((await api(a.url).get(`/v1/sessions/${id}`)).status).toBe(404);
    },
    CLUSTER_TEST_MS,
  );

  it(
    "answers NODE_UNAVAILABLE naming the owner within the timeout while the owner is stopped, and the owner does not act on it later",
    async () => {
      // Its own two nodes: the owner is stopped, and the forward timeout is short.
      const { nodes: pair } = await configuredNodes(
        ["gw-a", "gw-b"],
        { cluster: { requestTimeoutMs: REQUEST_TIMEOUT_MS } },
        { redis: {} },
      );
      const [a, b] = pair as [ChildGateway, ChildGateway];
      const id = (await api(a.url).post("/v1/sessions", { kind: "terminal", command: ["cat"], pty: true })).json
        .id as string;
      await listedEverywhere(pair, id);
      a.child.kill("SIGSTOP");
      try {
        const started = performance.now();
        const res = await api(b.url).post(`/v1/sessions/${id}/input`, { data: "while stopped\n" });
        const took = performance.now() - started;
        expect(res.status).toBe(503);
        expect(res.json.error).toMatchObject({ code: "NODE_UNAVAILABLE", node: "gw-a" });
        expect(res.json.error.message).toContain("gw-a");
        expect(took).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
        expect(took).toBeLessThan(REQUEST_TIMEOUT_MS + 3_000);
        // Past the timeout, so that the owner reads it too late.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      } finally {
        a.child.kill("SIGCONT");
      }
      const after = await api(b.url).post(`/v1/sessions/${id}/input`, { data: "after\n" });
      expect(after.status).toBe(200);
      await waitFor(async () => (await outputOf(b, id)).includes("after"), 15_000);
      expect(await outputOf(a, id)).not.toContain("while stopped");
    },
    CLUSTER_TEST_MS,
  );
});
