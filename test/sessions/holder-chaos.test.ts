import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFailed, onTestFinished } from "vitest";
import { TerminalClient, connect } from "../../src/client/node.js";
import type { SessionEvent } from "../../src/client/node.js";
import {
  CHAOS_AGENTS,
  expectLogsEqualFiles,
  expectInputRecorded,
  expectTypedOnce,
  expectViewerSawLog,
  flood,
  prng,
  streamingAgent,
} from "../helpers/chaos.js";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

/*
 * The promise of session holders, checked by adversary: sessions that flood, are typed into,
 * stream an ACP agent's answers and idle while their gateway is killed (SIGKILL) and stopped (SIGTERM) at seeded random moments and
 * started again. Each program tees its output to a file; the log must equal the file byte for
 * byte, seqs stay contiguous, no session is lost, and a viewer that reconnects by itself gets
 * every event once. CHAOS_SEED replays a run; CHAOS_KILLS and CHAOS_STOPS scale it (the issue's
 * acceptance: CHAOS_KILLS=20 CHAOS_STOPS=5, a few minutes; the default keeps CI near a minute).
 */
const SEED = Number(process.env["CHAOS_SEED"] ?? Math.floor(Math.random() * 2 ** 31));
const KILLS = Number(process.env["CHAOS_KILLS"] ?? 4);
const STOPS = Number(process.env["CHAOS_STOPS"] ?? 2);
/** About 18 s a restart under load, and start-up: 110 s for the CI default, 6 min for 20 and 5. */
const CHAOS_TEST_MS = 2_000 + (KILLS + STOPS) * 18_000;

describe("session holders under a gateway that is killed and restarted", () => {
  it(
    `loses no byte, process or event of PTY, pipe and ACP agent sessions across ${KILLS} kill -9 and ${STOPS} SIGTERM restarts`,
    async () => {
      let phase = "start";
      const started = Date.now();
      const at = (what: string) => (phase = `${what} at ${((Date.now() - started) / 1000).toFixed(1)} s`);
      onTestFailed(() => console.error(`holder chaos: replay with CHAOS_SEED=${SEED} (last step: ${phase})`));
      const random = prng(SEED);
      const dir = tempDir("switchboard-chaos-");
      const dataDir = join(dir, "data");
      const stop = join(dir, "stop");
      const file = (name: string) => join(dir, name);
      const config = file("config.json");
      writeFileSync(config, JSON.stringify({ agents: CHAOS_AGENTS }));
      let gateway: ChildGateway = await serveInChild({ dataDir, config, holders: true });
      const port = Number(new URL(gateway.url).port);
      const http = () => api(gateway.url);
      const create = async (body: Record<string, unknown>) => {
        const res = await http().post("/v1/sessions", body);
        expect(res.status).toBe(201);
        return res.json.id as string;
      };
      // -opost -echo: the terminal neither turns \n into \r\n nor echoes, so the log is the file.
      const ptyFlood = await create({
        command: ["sh", "-c", `stty -opost -echo; ${flood(file("pty-flood"), stop, "pty")}`],
        pty: true,
      });
      const pipeFlood = await create({ command: ["sh", "-c", flood(file("pipe-flood"), stop, "pipe")] });
      const typed = await create({
        command: ["sh", "-c", `stty -opost -echo; while read line; do echo "got:$line"; done | tee ${file("typed")}`],
        pty: true,
      });
      const idle = await create({ command: ["bash", "--norc", "--noprofile", "-i"], pty: true });
      const agent = await create({ kind: "agent", agent: "scripted" });
      const ids = [ptyFlood, pipeFlood, typed, idle, agent];

      // One viewer per session through the SDK, reconnecting by itself across every restart.
      const client = await connect({
        url: gateway.url,
        token: TEST_TOKEN,
        reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      });
      onTestFinished(() => client.close());
      const seen = new Map<string, SessionEvent[]>(ids.map((id) => [id, []]));
      for (const id of ids) client.subscribe(id, { since: 0 }, (e) => seen.get(id)!.push(e));
      // And one /ws/session viewer per terminal, by byte offset: it is shown output before its
      // commit (a holder keeps it), so a byte it saw must be the byte the log ends up with.
      const terminals = [ptyFlood, pipeFlood, typed].map((id) => {
        const viewer = {
          id,
          bytes: [] as Buffer[],
          length: 0,
          gaps: [] as unknown[],
          failed: undefined as unknown,
          connected: false,
        };
        const term = new TerminalClient({
          url: gateway.url,
          token: TEST_TOKEN,
          session: id,
          since: 0,
          reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
        });
        term.on("data", (d) => {
          viewer.bytes.push(Buffer.from(d.bytes));
          viewer.length += d.bytes.length;
        });
        term.on("gap", (gap) => viewer.gaps.push(gap));
        term.on("connected", () => (viewer.connected = true));
        term.done.catch((error: unknown) => (viewer.failed = error));
        onTestFinished(() => term.close());
        return viewer;
      });

      // Connected before the first fault: a client that never reached its gateway gives up on an
      // unreachable one (ReconnectLoop.givesUp), which a slow first connection under load met.
      await waitFor(() => terminals.every((v) => v.connected || v.failed !== undefined), 15_000, "the viewers");
      // Lines typed into the reading shell; `confirmed` were answered 200 by a gateway.
      const confirmed: string[] = [];
      const attempted: string[] = [];
      const streaming = await streamingAgent(() => gateway.url, agent);
      let typing = true;
      const typer = (async () => {
        for (let k = 0; typing; k++) {
          const line = `line-${k}`;
          attempted.push(line);
          const ok = await fetch(`${gateway.url}/v1/sessions/${typed}/input`, {
            method: "POST",
            headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
            body: JSON.stringify({ data: `${line}\r` }),
          }).then(
            (r) => r.status === 200,
            () => false,
          );
          if (ok) confirmed.push(line);
          await new Promise((r) => setTimeout(r, 40));
        }
      })();

      const plan = [...Array<"kill">(KILLS).fill("kill"), ...Array<"stop">(STOPS).fill("stop")].sort(
        () => random() - 0.5,
      );
      for (const how of plan) {
        await new Promise((r) => setTimeout(r, 200 + Math.floor(random() * 1200)));
        const exited = new Promise((r) => gateway.child.once("exit", r));
        gateway.child.kill(how === "kill" ? "SIGKILL" : "SIGTERM");
        await exited;
        // Down for a while: the holders keep (or hold back) what the programs write meanwhile.
        await new Promise((r) => setTimeout(r, Math.floor(random() * 500)));
        at(`${how} done, starting again`);
        gateway = await serveInChild({ dataDir, config, port, holders: true });
        at(`restarted after a ${how}`);
      }
      typing = false;
      await typer;
      writeFileSync(stop, "");
      at("floods told to stop");

      // The floods end by themselves; the typed shell and the idle one still run.
      const stateOf = async (id: string) => (await http().get(`/v1/sessions/${id}`)).json as Record<string, unknown>;
      for (const id of [ptyFlood, pipeFlood]) {
        await waitFor(async () => (await stateOf(id))["state"] === "exited", 30_000);
        expect(await stateOf(id)).toMatchObject({ exitCode: 0 });
      }
      for (const id of [typed, idle, agent]) expect((await stateOf(id))["state"]).toBe("running");
      await waitFor(
        () =>
          (existsSync(file("typed")) && readFileSync(file("typed"), "utf8").includes(`got:${confirmed.at(-1)}\n`)) ===
          true,
        10_000,
      );

      at("comparing logs and files");
      const output = async (id: string) => {
        let bytes = Buffer.alloc(0);
        for (;;) {
          const res = await fetch(`${gateway.url}/v1/sessions/${id}/output?since=${bytes.length}`, {
            headers: { authorization: `Bearer ${TEST_TOKEN}` },
          });
          const page = Buffer.from(await res.arrayBuffer());
          if (page.length === 0) return bytes;
          bytes = Buffer.concat([bytes, page]);
        }
      };
      // The log is the file, byte for byte.
      at("checking the agent");
      await streaming.stop();
      await expectLogsEqualFiles(
        [
          [ptyFlood, "pty-flood"],
          [pipeFlood, "pipe-flood"],
          [typed, "typed"],
        ],
        output,
        file,
      );
      // Every line a gateway confirmed reached the shell once, in order; no line twice.
      expectTypedOnce(file("typed"), confirmed, attempted);

      at("checking viewers");
      // Each terminal viewer has the log's bytes: nothing missing, nothing it saw taken back.
      for (const viewer of terminals) {
        const log = await output(viewer.id);
        await waitFor(() => viewer.length >= log.length || viewer.failed !== undefined, 15_000);
        expect({ failed: viewer.failed, gaps: viewer.gaps }).toEqual({ failed: undefined, gaps: [] });
        expect(Buffer.concat(viewer.bytes).equals(log), `the /ws/session viewer of ${viewer.id}`).toBe(true);
      }
      // Each viewer got every event once, in order, up to the end of the log.
      for (const id of ids) {
        const head = (await stateOf(id))["head"] as number;
        await waitFor(() => (seen.get(id)!.at(-1)?.seq ?? 0) >= head, 15_000);
        await expectViewerSawLog(seen.get(id)!, id === agent ? undefined : () => output(id));
      }
      // Every line the shell got has its one `input` event, and no event names a line it did not get.
      expectInputRecorded(seen.get(typed)!, file("typed"));
      for (const id of [typed, idle, agent]) await http().del(`/v1/sessions/${id}`);
    },
    CHAOS_TEST_MS,
  );
});
