import { writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import WebSocket from "ws";
import { SPAWN_FDS } from "../../src/system/fd-usage.js";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";

/** The gateway's file descriptor limit in this test: about 40 are open at start, a PTY session takes 2. */
const FD_LIMIT = 128;

type LogLine = {
  level: number;
  msg: string;
  open?: number;
  limit?: number;
  failed?: string;
  fdLimit?: number;
};

/**
 * `switchboard serve` in a child process whose file descriptors are limited to `limit` (soft and
 * hard: Node raises soft to hard), with `config` as its config file when given.
 */
async function serveLimited(limit: number, config?: object): Promise<{ url: string; log: LogLine[] }> {
  const dataDir = tempDir("switchboard-fds-");
  let configFile: string | undefined;
  if (config !== undefined) {
    configFile = join(tempDir("switchboard-fds-config-"), "config.json");
    writeFileSync(configFile, JSON.stringify(config));
  }
  const { url, log } = await serveInChild({
    dataDir,
    wrapper: ["prlimit", `--nofile=${limit}`],
    ...(configFile !== undefined ? { config: configFile } : {}),
  });
  return { url, log: log as LogLine[] };
}

/**
 * HTTP over one kept-alive connection: at the limit the gateway cannot accept another, but
 * answers on the one it has.
 */
function oneConnection(base: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  onTestFinished(() => agent.destroy());
  return (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; json: any; text: string }>((resolve, reject) => {
      const req = request(
        base + path,
        {
          method,
          agent,
          headers: {
            authorization: `Bearer ${TEST_TOKEN}`,
            "content-type": "application/json",
          },
        },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () =>
            resolve({
              status: res.statusCode!,
              text,
              json: text.startsWith("{") ? JSON.parse(text) : undefined,
            }),
          );
        },
      );
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
}

/**
 * A new WebSocket on /v1/ws: "answered" (kept open, holding a descriptor of the gateway) or
 * "dropped". Not an idle HTTP keep-alive connection: the gateway closes those after 5 s, which
 * in a slow run freed descriptors in the middle of the test (a plugin then started when it had
 * to be refused). The ws client answers the gateway's pings, so nothing ends these.
 */
function probe(base: string, held: WebSocket[]): Promise<"answered" | "dropped"> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`${base.replace(/^http/, "ws")}/v1/ws`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    held.push(socket);
    socket.once("open", () => resolve("answered"));
    socket.once("close", () => resolve("dropped"));
    socket.on("error", () => undefined); // ECONNRESET or EOF: the gateway closed it unanswered.
  });
}

/**
 * Opens connections (each answered one holds a descriptor of the gateway) until the gateway
 * closes one unanswered: then it has none left, not even the few a spawn needs. `release` closes
 * them and waits until the gateway has counted them gone (it closes its ends when it reads EOF).
 */
async function takeEveryDescriptor(
  base: string,
  http: ReturnType<typeof oneConnection>,
): Promise<{ release(): Promise<void> }> {
  const held: WebSocket[] = [];
  const close = () => held.forEach((s) => s.terminate());
  onTestFinished(close);
  // The test's own connection first: at the limit a new one would be closed unanswered.
  expect((await http("GET", "/healthz")).status).toBe(200);
  // Three refusals in a row: a descriptor the gateway held for a moment (its /proc reads count
  // them, /metrics reads its own) refused one connection and was free again once that ended,
  // and a plugin then started where the test needed it refused.
  for (let refusedInARow = 0; refusedInARow < 3;) {
    if ((await probe(base, held)) === "answered") refusedInARow = 0;
    else {
      refusedInARow++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(held.length).toBeLessThan(FD_LIMIT + 10);
  }
  return {
    async release() {
      close();
      const open = async () => Number(/^process_open_fds (\d+)$/m.exec((await http("GET", "/metrics")).text)?.[1]);
      await waitFor(async () => (await open()) < FD_LIMIT - 2 * SPAWN_FDS, 5_000, "the gateway's descriptors free");
    },
  };
}

/** Polls the session's events until its run `runId` has ended; resolves with the event that ended it. */
function runEnd(http: ReturnType<typeof oneConnection>, sessionId: string, runId: string): Promise<any> {
  const ends = ["chat.final", "chat.error", "chat.aborted"];
  return waitFor(
    async () =>
      (await http("GET", `/v1/sessions/${sessionId}/events`)).json.events.find(
        (e: any) => e.runId === runId && ends.includes(e.type),
      ),
    10_000,
    `the end of run ${runId}`,
  );
}

const SLEEP = ["sleep", "600"];
const SCRIPTED_ACP_AGENT = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));
/** A plugin that runs the commands its HTTP hook is asked to run. */
const COMMANDS_PLUGIN_CONFIG = {
  plugins: {
    entries: {
      commands: {
        path: fileURLToPath(new URL("../plugins/fixtures/commands", import.meta.url)),
        permissions: { runCommandWithTimeout: true },
      },
    },
  },
};
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** The message of RESOURCE_EXHAUSTED for `program` at this test's limit. */
const outOfFds = (program: string) =>
  new RegExp(
    `^cannot start ${escapeRegExp(program)}: the gateway is out of file descriptors \\(limit ${FD_LIMIT}, \\d+ open\\): .*\`ulimit -n\`.*LimitNOFILE`,
  );

describe("a gateway at its file descriptor limit", () => {
  it("refuses PTY and pipe sessions with RESOURCE_EXHAUSTED saying what to do, shows it in one warning line and the metrics, and works again once sessions end", async () => {
    const { url, log } = await serveLimited(FD_LIMIT);
    const http = oneConnection(url);

    // Fill the descriptors with PTY sessions (2 each) until one cannot start.
    const ids: string[] = [];
    let refused: { status: number; json: any } | undefined;
    while (refused === undefined && ids.length < 100) {
      const r = await http("POST", "/v1/sessions", {
        command: SLEEP,
        pty: true,
      });
      if (r.status === 201) ids.push(r.json.id as string);
      else refused = r;
    }
    expect(ids.length).toBeGreaterThan(10);
    expect(refused).toMatchObject({
      status: 503,
      json: { error: { code: "RESOURCE_EXHAUSTED" } },
    });
    expect(refused!.json.error.message).toMatch(outOfFds("sleep"));
    // A pipe session takes more (three socket pairs): refused the same way.
    const pipe = await http("POST", "/v1/sessions", {
      command: SLEEP,
      pty: false,
    });
    expect(pipe).toMatchObject({
      status: 503,
      json: { error: { code: "RESOURCE_EXHAUSTED" } },
    });
    expect(pipe.json.error.message).toMatch(outOfFds("sleep"));
    // Refused sessions leave nothing behind.
    expect((await http("GET", "/v1/sessions")).json.sessions).toHaveLength(ids.length);

    // New connections: the last free descriptors (if any) take one each, then they are closed unanswered.
    const held: WebSocket[] = [];
    onTestFinished(() => held.forEach((s) => s.terminate()));
    // A refused PTY session may leave a few descriptors free (it needs more than one), and one the
    // refusal held for a moment may be free again now (a clean-clone run: two probes answered).
    const probes: string[] = [];
    while (probes.at(-1) !== "dropped" && probes.length < 8) probes.push(await probe(url, held));
    expect(probes).toContain("dropped");

    const metrics = (await http("GET", "/metrics")).text;
    expect(metrics).toMatch(/^switchboard_fds_near_limit 1$/m);
    expect(metrics).toMatch(/^switchboard_fd_exhaustion_total\{operation="session"\} 2$/m);
    expect(metrics).toMatch(new RegExp(`^process_max_fds ${FD_LIMIT}$`, "m"));
    const open = Number(/^process_open_fds (\d+)$/m.exec(metrics)?.[1]);
    // Near the limit, as the warning line's count below: a refused spawn's descriptors and a
    // dropped probe's close asynchronously (128 here; 124 of 128 in a clean-clone run).
    expect(open).toBeGreaterThanOrEqual(FD_LIMIT - SPAWN_FDS);

    const nearLimit = (l: LogLine) => l.level === 40 && /file descriptor limit/.test(l.msg);
    await waitFor(() => log.some(nearLimit), 5_000, "the warning line");
    expect(log.filter(nearLimit)).toMatchObject([
      {
        limit: FD_LIMIT,
        failed: "session",
        msg: expect.stringMatching(/RESOURCE_EXHAUSTED.*`ulimit -n`/),
      },
    ]);
    expect(log.find(nearLimit)!.open).toBeGreaterThanOrEqual(FD_LIMIT - SPAWN_FDS);
    expect(log.find((l) => l.msg === "gateway listening")).toMatchObject({
      fdLimit: FD_LIMIT,
    });

    // Sessions end: their descriptors are free again, and so is the gateway.
    held.forEach((s) => s.terminate());
    for (const id of ids) expect((await http("DELETE", `/v1/sessions/${id}`)).status).toBe(200);
    for (const pty of [true, false]) {
      const r = await http("POST", "/v1/sessions", {
        command: ["echo", "again"],
        pty,
      });
      expect(r).toMatchObject({ status: 201, json: { state: "running" } });
    }
    // The next checks find it well under the limit: one line says so, and no more warnings came.
    const backUnder = (l: LogLine) => l.level === 30 && /file descriptors back under/.test(l.msg);
    await waitFor(() => log.some(backUnder), 15_000, "the line saying it is over");
    expect(log.filter(backUnder)).toHaveLength(1);
    expect(log.filter(nearLimit)).toHaveLength(1);
    expect((await http("GET", "/metrics")).text).toMatch(/^switchboard_fds_near_limit 0$/m);
  }, 60_000);

  it("fails an agent's run with chat.error RESOURCE_EXHAUSTED saying what to do when its process cannot start (command and ACP agents), counts it, and runs again once descriptors are free", async () => {
    const { url, log } = await serveLimited(FD_LIMIT);
    const http = oneConnection(url);
    const descriptors = await takeEveryDescriptor(url, http);
    // Agents start with their first prompt, not with their session: creating one works at the limit.
    const create = (agent: object) => http("POST", "/v1/sessions", { kind: "agent", agent });
    const command = await create({ adapter: "command", command: ["cat"] });
    const acp = await create({
      adapter: "acp",
      command: [process.execPath, SCRIPTED_ACP_AGENT],
    });
    expect([command.status, acp.status]).toEqual([201, 201]);
    const prompt = async (id: string, text: string) => {
      const r = await http("POST", `/v1/sessions/${id}/prompt`, { text });
      expect(r.status).toBe(202);
      return runEnd(http, id, r.json.runId as string);
    };

    const refused = [await prompt(command.json.id, "hello"), await prompt(acp.json.id, '{"op":"pid"}')];
    expect(refused).toMatchObject([
      {
        type: "chat.error",
        code: "RESOURCE_EXHAUSTED",
        message: expect.stringMatching(outOfFds("cat")),
      },
      {
        type: "chat.error",
        code: "RESOURCE_EXHAUSTED",
        message: expect.stringMatching(outOfFds(process.execPath)),
      },
    ]);
    const metrics = (await http("GET", "/metrics")).text;
    expect(metrics).toMatch(/^switchboard_fd_exhaustion_total\{operation="agent"\} 2$/m);
    expect(metrics).toMatch(/^switchboard_fds_near_limit 1$/m);
    await waitFor(() => log.find((l) => l.level === 40 && l.failed === "agent"), 5_000, "the warning line");

    await descriptors.release();
    expect(await prompt(command.json.id, "again")).toMatchObject({
      type: "chat.final",
      text: "again",
    });
    expect(await prompt(acp.json.id, '{"op":"say","chunks":["again"]}')).toMatchObject({
      type: "chat.final",
      text: "again",
    });
  }, 30_000);

  it("refuses an ACP agent's terminal/create with RESOURCE_EXHAUSTED, counted as a session, and starts its terminals again once descriptors are free", async () => {
    const { url, log } = await serveLimited(FD_LIMIT);
    const http = oneConnection(url);
    const acp = await http("POST", "/v1/sessions", {
      kind: "agent",
      agent: { adapter: "acp", command: [process.execPath, SCRIPTED_ACP_AGENT] },
    });
    expect(acp.status).toBe(201);
    const prompt = async (text: string) => {
      const r = await http("POST", `/v1/sessions/${acp.json.id}/prompt`, { text });
      expect(r.status).toBe(202);
      return runEnd(http, acp.json.id, r.json.runId as string);
    };
    // The agent's own process starts while descriptors are free; its terminal is asked for at the limit.
    expect(await prompt('{"op":"say","chunks":["up"]}')).toMatchObject({ type: "chat.final", text: "up" });
    const descriptors = await takeEveryDescriptor(url, http);
    const terminal = '{"op":"terminal","command":"echo","args":["from the child"],"catch":true}';
    const refused = await prompt(terminal);
    expect(refused).toMatchObject({ type: "chat.final" });
    expect(refused.text).toMatch(/^ERR .*cannot start echo: the gateway is out of file descriptors/);
    const metrics = (await http("GET", "/metrics")).text;
    expect(metrics).toMatch(/^switchboard_fd_exhaustion_total\{operation="session"\} 1$/m);
    await waitFor(() => log.find((l) => l.level === 40 && l.failed === "session"), 5_000, "the warning line");

    await descriptors.release();
    expect((await prompt(terminal)).text).toContain("from the child");
  }, 30_000);

  it("refuses a plugin's runCommandWithTimeout with RESOURCE_EXHAUSTED saying what to do, counts it, and runs commands again once descriptors are free", async () => {
    const { url } = await serveLimited(FD_LIMIT, COMMANDS_PLUGIN_CONFIG);
    const http = oneConnection(url);
    const run = async (argv: string[]) => (await http("POST", "/v1/plugins/commands/http/", { argv })).json;
    expect(await run(["echo", "hi"])).toMatchObject({
      ok: true,
      result: { exitCode: 0, stdout: "hi\n" },
    });

    const descriptors = await takeEveryDescriptor(url, http);
    expect(await run(["echo", "hi"])).toEqual({
      ok: false,
      code: "RESOURCE_EXHAUSTED",
      message: expect.stringMatching(outOfFds("echo")),
    });
    expect((await http("GET", "/metrics")).text).toMatch(/^switchboard_fd_exhaustion_total\{operation="plugin"\} 1$/m);
    expect(await http("GET", "/v1/plugins/commands")).toMatchObject({
      json: { state: "running" },
    });

    await descriptors.release();
    expect(await run(["echo", "hi"])).toMatchObject({
      ok: true,
      result: { exitCode: 0, stdout: "hi\n" },
    });
  }, 30_000);

  it("a plugin process that cannot start for lack of descriptors is restarting with what to do as its lastError, is counted, and starts once descriptors are free", async () => {
    const { url } = await serveLimited(FD_LIMIT, COMMANDS_PLUGIN_CONFIG);
    const http = oneConnection(url);
    expect(await http("GET", "/v1/plugins/commands")).toMatchObject({
      json: { state: "running" },
    });

    const descriptors = await takeEveryDescriptor(url, http);
    // Stopping the plugin frees its three pipes; starting it again takes more than that.
    const restarted = await http("POST", "/v1/plugins/commands/restart");
    expect(restarted).toMatchObject({
      status: 200,
      json: { state: "restarting" },
    });
    expect(restarted.json.lastError).toMatch(outOfFds('plugin "commands"'));
    // Counted once for each start: the host tries again after a backoff while it is refused.
    const counted = /^switchboard_fd_exhaustion_total\{operation="plugin"\} (\d+)$/m.exec(
      (await http("GET", "/metrics")).text,
    );
    expect(Number(counted?.[1])).toBeGreaterThanOrEqual(1);

    await descriptors.release();
    expect(await http("POST", "/v1/plugins/commands/restart")).toMatchObject({
      status: 200,
      json: { state: "running", lastError: null },
    });
  }, 30_000);
});
