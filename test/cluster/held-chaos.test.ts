import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFailed, onTestFinished } from "vitest";
import { connect } from "../../src/client/node.js";
import type { SessionEvent } from "../../src/client/node.js";
import {
  CHAOS_AGENTS,
  expectLogsEqualFiles,
  expectTypedOnce,
  expectViewerSawLog,
  flood,
  prng,
  streamingAgent,
} from "../helpers/chaos.js";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { startRedis } from "../helpers/redis.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

/*
 * test/sessions/holder-chaos.test.ts on one node of three: node A, whose held sessions (PTY and
 * pipe floods, a shell typed into, an ACP agent streaming) are watched from A and from B, is
 * killed (SIGKILL) and stopped (SIGTERM) at seeded random moments and started again within its
 * lease TTL. The logs equal the files the programs tee, seqs are contiguous, the agent is the
 * same process throughout, nobody takes A's sessions over, and both viewers get every event once.
 * CHAOS_SEED replays a run; CHAOS_KILLS and CHAOS_STOPS scale it.
 */
const SEED = Number(process.env["CHAOS_SEED"] ?? Math.floor(Math.random() * 2 ** 31));
const KILLS = Number(process.env["CHAOS_KILLS"] ?? 3);
const STOPS = Number(process.env["CHAOS_STOPS"] ?? 1);
/** A's lease outlives every restart of it; B's and C's are short, so they would take A's sessions over soon. */
const A_TTL_MS = 30_000;
const OTHERS_TTL_MS = 1_000;
/** Floods of about 100 KB/s each: every byte goes through Redis (AOF always) and a restart copies what it missed. */
const FLOOD = { lines: 100, pause: 0.05 };

function config(dir: string, name: string, redisUrl: string, ttlMs: number): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ cluster: { redis: redisUrl, nodeTtlMs: ttlMs }, agents: CHAOS_AGENTS }));
  return file;
}

describe("session holders on one node of three, killed and restarted", () => {
  it(
    `keeps every byte, process and event of node A's sessions across ${KILLS} kill -9 and ${STOPS} SIGTERM restarts`,
    async () => {
      let phase = "start";
      const started = Date.now();
      const at = (what: string) => (phase = `${what} at ${((Date.now() - started) / 1000).toFixed(1)} s`);
      onTestFailed(() => console.error(`cluster holder chaos: replay with CHAOS_SEED=${SEED} (last step: ${phase})`));
      const random = prng(SEED);
      const dir = tempDir("switchboard-cluster-chaos-");
      const stop = join(dir, "stop");
      const file = (name: string) => join(dir, name);
      const redis = await startRedis({ appendfsync: "always" });
      const serve = (name: string, dataDir: string, ttlMs: number, port?: number) =>
        serveInChild({
          dataDir,
          config: config(dir, name, redis.url, ttlMs),
          holders: true,
          args: ["--redis", redis.url, "--node-id", name],
          ...(port !== undefined ? { port } : {}),
        });
      const aDir = join(dir, "a");
      const [first, b] = await Promise.all([
        serve("gw-a", aDir, A_TTL_MS),
        serve("gw-b", join(dir, "b"), OTHERS_TTL_MS),
        serve("gw-c", join(dir, "c"), OTHERS_TTL_MS),
      ]);
      let a: ChildGateway = first;
      const port = Number(new URL(a.url).port);
      const http = () => api(a.url);
      const create = async (body: Record<string, unknown>) => {
        const res = await http().post("/v1/sessions", body);
        expect(res.status).toBe(201);
        return res.json.id as string;
      };
      const ptyFlood = await create({
        command: ["sh", "-c", `stty -opost -echo; ${flood(file("pty-flood"), stop, "pty", FLOOD)}`],
        pty: true,
      });
      const pipeFlood = await create({ command: ["sh", "-c", flood(file("pipe-flood"), stop, "pipe", FLOOD)] });
      const typed = await create({
        command: ["sh", "-c", `stty -opost -echo; while read line; do echo "got:$line"; done | tee ${file("typed")}`],
        pty: true,
      });
      const agent = await create({ kind: "agent", agent: "scripted" });
      const ids = [ptyFlood, pipeFlood, typed, agent];

      // A viewer on A (reconnecting by itself across its restarts) and one on B (copies).
      const viewers = await Promise.all(
        [a, b].map((node) =>
          connect({ url: node.url, token: TEST_TOKEN, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } }),
        ),
      );
      onTestFinished(() => viewers.forEach((v) => v.close()));
      const seen = viewers.map((viewer) => {
        const byId = new Map<string, SessionEvent[]>(ids.map((id) => [id, []]));
        for (const id of ids) viewer.subscribe(id, { since: 0 }, (e) => byId.get(id)!.push(e));
        return byId;
      });

      const post = (path: string, body: unknown) =>
        fetch(`${a.url}${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        }).then(
          (r) => r.status,
          () => 0,
        );
      const confirmed: string[] = [];
      const attempted: string[] = [];
      let working = true;
      const typer = (async () => {
        for (let k = 0; working; k++) {
          const line = `line-${k}`;
          attempted.push(line);
          if ((await post(`/v1/sessions/${typed}/input`, { data: `${line}\r` })) === 200) confirmed.push(line);
          await new Promise((r) => setTimeout(r, 40));
        }
      })();
      const streaming = await streamingAgent(() => a.url, agent);

      const plan = [...Array<"kill">(KILLS).fill("kill"), ...Array<"stop">(STOPS).fill("stop")].sort(
        () => random() - 0.5,
      );
      for (const how of plan) {
        await new Promise((r) => setTimeout(r, 300 + Math.floor(random() * 1200)));
        const exited = new Promise((r) => a.child.once("exit", r));
        a.child.kill(how === "kill" ? "SIGKILL" : "SIGTERM");
        await exited;
        await new Promise((r) => setTimeout(r, Math.floor(random() * 500)));
        at(`${how} done, starting again`);
        a = await serve("gw-a", aDir, A_TTL_MS, port);
        at(`restarted after a ${how}`);
      }
      working = false;
      await typer;
      writeFileSync(stop, "");
      at("floods told to stop");

      const stateOf = async (id: string) => (await http().get(`/v1/sessions/${id}`)).json as Record<string, unknown>;
      for (const id of [ptyFlood, pipeFlood]) {
        await waitFor(async () => (await stateOf(id))["state"] === "exited", 30_000);
        expect(await stateOf(id)).toMatchObject({ exitCode: 0 });
      }
      for (const id of [typed, agent]) expect((await stateOf(id))["state"]).toBe("running");
      await expect
        .poll(
          () => existsSync(file("typed")) && readFileSync(file("typed"), "utf8").includes(`got:${confirmed.at(-1)}\n`),
          { timeout: 10_000 },
        )
        .toBe(true);

      at("comparing logs and files");
      const output = async (id: string) => {
        let bytes = Buffer.alloc(0);
        for (;;) {
          const res = await fetch(`${a.url}/v1/sessions/${id}/output?since=${bytes.length}`, {
            headers: { authorization: `Bearer ${TEST_TOKEN}` },
          });
          const page = Buffer.from(await res.arrayBuffer());
          if (page.length === 0) return bytes;
          bytes = Buffer.concat([bytes, page]);
        }
      };
      await expectLogsEqualFiles(
        [
          [ptyFlood, "pty-flood"],
          [pipeFlood, "pipe-flood"],
          [typed, "typed"],
        ],
        output,
        file,
      );
      expectTypedOnce(file("typed"), confirmed, attempted);

      at("checking the agent");
      await streaming.stop();

      at("checking viewers and owners");
      for (const byId of seen)
        for (const id of ids) {
          const head = (await stateOf(id))["head"] as number;
          await waitFor(() => (byId.get(id)!.at(-1)?.seq ?? 0) >= head, 15_000);
          await expectViewerSawLog(byId.get(id)!, id === agent ? undefined : () => output(id));
        }
      const nodes = (await api(b.url).get("/v1/nodes")).json.nodes as Array<{ id: string; sessions: string[] }>;
      for (const id of ids) expect(nodes.filter((n) => n.sessions.includes(id)).map((n) => n.id)).toEqual(["gw-a"]);
      for (const id of [typed, agent]) await http().del(`/v1/sessions/${id}`);
    },
    30_000 + (KILLS + STOPS) * 30_000,
  );
});
