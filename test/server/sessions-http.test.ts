import { chmodSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import Database from "better-sqlite3";
import WebSocket from "ws";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { cliCommand } from "../helpers/compiled-cli.js";
import { waitFor } from "../helpers/wait-for.js";
import { tempDir } from "../helpers/tmp.js";
import { alive, foregroundJob } from "../sessions/process-helpers.js";

type Ev = { seq: number; type: string; [k: string]: unknown };

async function events(http: ReturnType<typeof api>, id: string, query = ""): Promise<Ev[]> {
  const r = await http.get(`/v1/sessions/${id}/events${query}`);
  expect(r.status).toBe(200);
  return r.json.events as Ev[];
}

async function untilExit(http: ReturnType<typeof api>, id: string): Promise<Ev[]> {
  return waitFor(
    async () => {
      const evs = await events(http, id);
      return evs.some((e) => e.type === "exit") ? evs : undefined;
    },
    15_000,
    `exit of ${id}`,
  );
}

function outputOf(evs: Ev[], stream?: string): string {
  return evs
    .filter((e) => e.type === "output" && (stream === undefined || e["stream"] === stream))
    .map((e) => (e["enc"] === "base64" ? Buffer.from(e["data"] as string, "base64").toString() : (e["data"] as string)))
    .join("");
}

/**
 * One gateway for the tests that use only sessions of their own and read no gateway-wide state
 * (the session list, metrics, limits, the slowdown after failed tokens): a start and a stop cost
 * about 0.3-0.5 s of CPU each. Tests that do read such state start a gateway of their own.
 */
let shared: Awaited<ReturnType<typeof testGateway>>;
beforeAll(async () => {
  shared = await testGateway();
});

describe("terminal sessions over HTTP", () => {
  it("runs a pipe command with stdout and stderr kept apart and ends with exit", async () => {
    const gw = shared;
    const http = api(gw.url);
    const created = await http.post("/v1/sessions", {
      command: ["bash", "-c", "echo out1; echo err1 >&2; echo out2; exit 3"],
      name: "pipes",
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      kind: "terminal",
      name: "pipes",
      state: "running",
      pty: false,
      owner: "admin",
    });
    expect(created.json.id).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    const evs = await untilExit(http, created.json.id);
    expect(outputOf(evs, "stdout")).toBe("out1\nout2\n");
    expect(outputOf(evs, "stderr")).toBe("err1\n");
    expect(evs.at(-1)).toMatchObject({ type: "exit", exitCode: 3, signal: null });
    expect(evs.map((e) => e.seq)).toEqual(evs.map((_, i) => i + 1));
    const info = await http.get(`/v1/sessions/${created.json.id}`);
    expect(info.json).toMatchObject({ state: "exited", exitCode: 3, head: evs.length });
  });

  it("assigns contiguous byte offsets and serves raw output from a byte offset", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json } = await http.post("/v1/sessions", {
      command: ["bash", "-c", "printf 'héllo wörld'; printf '\\377\\376'"],
    });
    const evs = await untilExit(http, json.id);
    let offset = 0;
    for (const e of evs.filter((x) => x.type === "output")) {
      expect(e["offset"]).toBe(offset);
      offset +=
        e["enc"] === "base64"
          ? Buffer.from(e["data"] as string, "base64").length
          : Buffer.byteLength(e["data"] as string);
    }
    const all = await fetch(`${gw.url}/v1/sessions/${json.id}/output`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    const bytes = Buffer.from(await all.arrayBuffer());
    expect(bytes).toEqual(Buffer.concat([Buffer.from("héllo wörld"), Buffer.from([0xff, 0xfe])]));
    const tail = await fetch(`${gw.url}/v1/sessions/${json.id}/output?since=7`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(bytes.subarray(7));
    expect(tail.headers.get("x-switchboard-next-offset")).toBe(String(bytes.length));
  });

  it("runs a PTY whose size follows resize, as stty size sees it", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json } = await http.post("/v1/sessions", {
      command: ["bash", "--norc", "--noprofile", "-i"],
      pty: true,
      cols: 100,
      rows: 30,
    });
    expect(json).toMatchObject({ pty: true, cols: 100, rows: 30 });
    const r = await http.post(`/v1/sessions/${json.id}/resize`, { cols: 132, rows: 43 });
    expect(r.status).toBe(200);
    await http.post(`/v1/sessions/${json.id}/input`, { data: "stty size; exit\n" });
    const evs = await untilExit(http, json.id);
    expect(outputOf(evs)).toContain("43 132");
    const resizes = evs.filter((e) => e.type === "resize");
    expect(resizes).toMatchObject([
      { cols: 100, rows: 30, by: { name: "admin" } },
      { cols: 132, rows: 43, by: { name: "admin" } },
    ]);
    expect(resizes[0]!.seq).toBe(1);
    expect((await http.get(`/v1/sessions/${json.id}`)).json).toMatchObject({ cols: 132, rows: 43 });
  });

  it("delivers each signal to the process group", async () => {
    const gw = shared;
    const http = api(gw.url);
    const script = `for s in HUP USR1 USR2 QUIT INT; do trap "echo got-$s" $s; done; echo ready; while true; do sleep 0.05; done`;
    const { json } = await http.post("/v1/sessions", { command: ["bash", "-c", script] });
    await waitFor(async () => outputOf(await events(http, json.id)).includes("ready"), 10_000, "ready");
    for (const sig of ["HUP", "USR1", "SIGUSR2", "quit", "INT"]) {
      const r = await http.post(`/v1/sessions/${json.id}/signal`, { signal: sig });
      expect(r.status).toBe(200);
      const want = `got-${sig.toUpperCase().replace(/^SIG/, "")}`;
      await waitFor(async () => outputOf(await events(http, json.id)).includes(want), 10_000, want);
    }
    await http.post(`/v1/sessions/${json.id}/signal`, { signal: "TERM" });
    const evs = await untilExit(http, json.id);
    expect(evs.at(-1)).toMatchObject({ type: "exit", signal: "SIGTERM" });
    expect(evs.filter((e) => e.type === "signal").map((e) => e["signal"])).toEqual([
      "HUP",
      "USR1",
      "USR2",
      "QUIT",
      "INT",
      "TERM",
    ]);
  });

  it("terminates on DELETE with TERM then KILL, and keeps the log", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json } = await http.post("/v1/sessions", {
      command: ["bash", "-c", "trap '' TERM; echo started; sleep 60"],
    });
    await waitFor(async () => outputOf(await events(http, json.id)).includes("started"), 10_000, "start");
    const started = Date.now();
    const del = await http.del(`/v1/sessions/${json.id}`);
    expect(del.status).toBe(200);
    expect(del.json).toMatchObject({ state: "exited", signal: "SIGKILL" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
    const logged = await events(http, json.id);
    expect(outputOf(logged)).toBe("started\n");
    // Who stopped it is in the log, as for every steering action (DELETE is not under the lease).
    expect(
      logged
        .filter((e) => e.type !== "output")
        .map((e) => [e.type, (e.by as { name?: string } | undefined)?.name, e.signal]),
    ).toEqual([
      ["signal", "admin", "TERM"],
      ["exit", undefined, "SIGKILL"],
    ]);
  });

  it("steers a shell in a PTY as a terminal would: INT reaches its foreground job, DELETE hangs up its jobs", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json } = await http.post("/v1/sessions", {
      command: ["bash", "--norc", "--noprofile", "-i"],
      pty: true,
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", PS1: "READY> " },
    });
    const output = async (): Promise<string> => outputOf(await events(http, json.id));
    await waitFor(async () => (await output()).endsWith("READY> "), 10_000, "prompt");
    // A background job, and a foreground one: each in a process group of its own (job control).
    await http.post(`/v1/sessions/${json.id}/input`, { data: "sleep 304 & echo bg:$!\r" });
    const bg = Number(await waitFor(async () => /\r\nbg:(\d+)/.exec(await output())?.[1], 10_000, "bg pid"));
    await http.post(`/v1/sessions/${json.id}/input`, { data: "sleep 305\r" });
    const fg = await waitFor(() => foregroundJob(json.pid, "sleep 305"), 10_000, "foreground job");
    expect((await http.post(`/v1/sessions/${json.id}/signal`, { signal: "INT" })).status).toBe(200);
    await waitFor(() => !alive(fg), 10_000, "foreground job interrupted");
    await waitFor(async () => (await output()).endsWith("READY> "), 10_000, "the prompt again");
    const started = Date.now();
    const del = await http.del(`/v1/sessions/${json.id}`);
    expect(del.json).toMatchObject({ state: "exited", signal: "SIGHUP" });
    expect(Date.now() - started).toBeLessThan(2_000); // not TERM (ignored by the shell), grace, KILL
    await waitFor(async () => !alive(bg), 5_000, "background job gone");
  });

  it("refuses commands that cannot start with SPAWN_FAILED and the reason", async () => {
    const gw = await testGateway();
    const notExecutable = join(tempDir(), "script.sh");
    writeFileSync(notExecutable, "echo hi\n", { mode: 0o644 });
    const http = api(gw.url);
    const cases: Array<[unknown, RegExp]> = [
      [{ command: ["definitely-not-a-command-xyz"] }, /not found/],
      [{ command: ["ls"], cwd: "/nonexistent/dir" }, /does not exist/],
      [{ command: ["ls"], cwd: "/etc/hostname" }, /not a directory/],
      [{ command: [notExecutable] }, /permission|not executable/i],
    ];
    for (const [body, reason] of cases) {
      const r = await http.post("/v1/sessions", body);
      expect(r.status, JSON.stringify(body)).toBe(422);
      expect(r.json.error.code).toBe("SPAWN_FAILED");
      expect(r.json.error.message).toMatch(reason);
    }
    expect((await http.get("/v1/sessions")).json.sessions).toEqual([]);
  });

  it("refuses a JSON body that is not UTF-8 with INVALID_JSON instead of typing U+FFFD (exploratory test: input was rewritten)", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { command: ["cat"] });
    const send = (bytes: Buffer) =>
      fetch(`${gw.url}/v1/sessions/${s.id as string}/input`, {
        method: "POST",
        headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
        body: new Uint8Array(bytes),
      });
    const bad = await send(Buffer.concat([Buffer.from('{"data":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: "INVALID_JSON",
      message: expect.stringContaining("not valid UTF-8") as unknown,
    });
    // Text that is UTF-8 goes through as it is.
    const good = await send(Buffer.from('{"data":"é\\n"}'));
    expect(good.status).toBe(200);
    await waitFor(
      async () => (await http.get(`/v1/sessions/${s.id as string}`)).json.outputBytes === 3,
      5_000,
      "the echo",
    );
    expect((await http.get(`/v1/sessions/${s.id as string}/output`)).text).toBe("é\n");
  });

  it("answers bad input on every route with a stable code and changes nothing", async () => {
    const gw = await testGateway({ config: { limits: { bodyBytes: 2048 } } });
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { command: ["cat"] });
    const id = s.id as string;
    const bad: Array<[string, string, unknown, number, string]> = [
      ["POST", "/v1/sessions", "{not json", 400, "INVALID_JSON"],
      ["POST", "/v1/sessions", { command: [] }, 400, "VALIDATION_FAILED"],
      ["POST", "/v1/sessions", { command: "ls" }, 400, "VALIDATION_FAILED"],
      ["POST", "/v1/sessions", { command: ["ls"], env: { "1BAD": "x" } }, 400, "VALIDATION_FAILED"],
      ["POST", "/v1/sessions", { command: ["ls"], cols: 0, pty: true }, 400, "VALIDATION_FAILED"],
      ["POST", "/v1/sessions", { command: ["ls"], extra: 1 }, 400, "VALIDATION_FAILED"],
      ["POST", "/v1/sessions", { kind: "nope" }, 400, "VALIDATION_FAILED"],
      ["POST", "/v1/sessions", { command: ["x".repeat(4000)] }, 413, "PAYLOAD_TOO_LARGE"],
      ["POST", `/v1/sessions/${id}/input`, { data: 5 }, 400, "VALIDATION_FAILED"],
      ["POST", `/v1/sessions/${id}/signal`, { signal: "BOGUS" }, 400, "VALIDATION_FAILED"],
      ["POST", `/v1/sessions/${id}/resize`, { cols: 80, rows: 24 }, 409, "WRONG_SESSION_KIND"],
      ["POST", `/v1/sessions/${id}/resize`, { cols: -1, rows: 24 }, 400, "VALIDATION_FAILED"],
      ["POST", `/v1/sessions/${id}/events`, { type: "output", data: { data: "x" } }, 409, "WRONG_SESSION_KIND"],
      ["POST", `/v1/sessions/${id}/events`, { type: "bad type!" }, 400, "VALIDATION_FAILED"],
      ["POST", `/v1/sessions/${id}/prompt`, { text: "hi" }, 409, "WRONG_SESSION_KIND"],
      ["POST", "/v1/sessions/nope/input", { data: "x" }, 404, "SESSION_NOT_FOUND"],
      ["GET", "/v1/sessions/nope", undefined, 404, "SESSION_NOT_FOUND"],
      ["GET", `/v1/sessions/${id}/events?since=abc`, undefined, 400, "BAD_REQUEST"],
      ["GET", `/v1/sessions/${id}/events?since=999`, undefined, 400, "BAD_REQUEST"],
      ["GET", `/v1/sessions/${id}/events?limit=0`, undefined, 400, "BAD_REQUEST"],
      ["GET", `/v1/sessions/${id}/output?since=99999`, undefined, 400, "BAD_REQUEST"],
      ["GET", "/v1/nothing-here", undefined, 404, "NOT_FOUND"],
      ["PUT", "/v1/sessions", { x: 1 }, 405, "METHOD_NOT_ALLOWED"],
    ];
    for (const [method, path, body, status, code] of bad) {
      const r = await http.call(method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(status);
      expect(r.json?.error?.code, `${method} ${path}`).toBe(code);
      expect(typeof r.json.error.message).toBe("string");
    }
    const wrongType = await fetch(`${gw.url}/v1/sessions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "text/plain" },
      body: "{}",
    });
    expect(wrongType.status).toBe(415);
    const list = (await http.get("/v1/sessions")).json.sessions;
    expect(list).toHaveLength(1);
    expect((await http.get(`/v1/sessions/${id}/events`)).json.events).toEqual([]);
    const named = await http.post("/v1/sessions", { command: ["ls"], cols: "wide", pty: true });
    expect(named.json.error.message).toMatch(/^cols:/);
  });

  it("requires a valid bearer token on every /v1 route and /metrics", async () => {
    const gw = await testGateway();
    for (const [method, path] of [
      ["GET", "/v1/sessions"],
      ["POST", "/v1/sessions"],
      ["GET", "/v1/sessions/x/events"],
      ["GET", "/metrics"],
    ] as const) {
      for (const auth of [undefined, "Bearer wrong-token-wrong-token"]) {
        const r = await fetch(gw.url + path, { method, headers: auth ? { authorization: auth } : {} });
        expect(r.status, `${method} ${path} ${auth}`).toBe(401);
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
      }
    }
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });

  it("slows down an address after repeated authentication failures", async () => {
    const gw = await testGateway();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      statuses.push(
        (await fetch(`${gw.url}/v1/sessions`, { headers: { authorization: "Bearer nope-nope-nope-nope" } })).status,
      );
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual([429, 429]);
    // The right token still gets in: everyone on 127.0.0.1 shares the address, and one local
    // user's bad tokens must not lock the others out.
    expect((await api(gw.url).get("/v1/sessions")).status).toBe(200);
    // No credentials is no guess: a browser's first visit gets 401 (the sign-in page), not 429,
    // and does not count toward the slowdown.
    const fresh = await testGateway();
    for (let i = 0; i < 12; i++) expect((await fetch(`${fresh.url}/v1/whoami`)).status).toBe(401);
    const wrong = await fetch(`${fresh.url}/v1/whoami`, { headers: { authorization: "Bearer nope-nope-nope-nope" } });
    expect(wrong.status).toBe(401);
  });

  it("refuses a foreign Host header (DNS rebinding)", async () => {
    const gw = shared;
    const { request } = await import("node:http");
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${gw.url}/v1/sessions`,
        { headers: { host: "evil.example:7317", authorization: `Bearer ${TEST_TOKEN}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(421);
  });

  it("sets security headers and exposes Prometheus metrics", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const r = await http.get("/v1/sessions");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(r.headers.get("x-frame-options")).toBe("DENY");
    await http.post("/v1/sessions", { kind: "stream" });
    await new Promise((res) => setTimeout(res, 30));
    const m = await http.get("/metrics");
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/switchboard_sessions\{kind="stream",state="running"\} 1/);
    expect(m.text).toMatch(/switchboard_append_batch_seconds_bucket/);
    // Counted in batches, flushed by the scrape: every commit so far is in it.
    const appended = () => Number(/switchboard_events_appended_total (\d+)/.exec(m.text)?.[1]);
    const commits = (text: string) => Number(/switchboard_append_batch_seconds_count (\d+)/.exec(text)?.[1]);
    expect(appended()).toBeGreaterThan(0);
    expect(commits(m.text)).toBeGreaterThan(0);
    const stream = (await http.post("/v1/sessions", { kind: "stream" })).json as { id: string };
    for (let i = 0; i < 3; i++)
      expect((await http.post(`/v1/sessions/${stream.id}/events`, { type: "note", data: i })).status).toBe(200);
    const again = await http.get("/metrics");
    expect(Number(/switchboard_events_appended_total (\d+)/.exec(again.text)?.[1])).toBeGreaterThanOrEqual(
      appended() + 3,
    );
    expect(commits(again.text)).toBeGreaterThanOrEqual(commits(m.text) + 3);
    expect(m.text).toMatch(/switchboard_sse_clients 0/);
    // Failure counters are there at 0 before the first failure, so that increase() sees it.
    for (const operation of ["session", "agent", "plugin", "accept"])
      expect(m.text).toContain(`switchboard_fd_exhaustion_total{operation="${operation}"} 0\n`);
    for (const endpoint of ["multiplex", "terminal"])
      expect(m.text).toContain(`switchboard_ws_reads_paused_total{endpoint="${endpoint}"} 0\n`);
    for (const reason of ["purge", "retention"])
      expect(m.text).toContain(`switchboard_sessions_removed_total{reason="${reason}"} 0\n`);
    expect(m.text).toContain(`switchboard_connections_refused_total{reason="anonymous_per_address"} 0\n`);
  });
});

describe("stream sessions and external producers", () => {
  it("appends one event or an array, validated and ordered, and ends on exit", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream", name: "tool-output" });
    expect(s).toMatchObject({ kind: "stream", state: "running", name: "tool-output", command: null });
    const one = await http.post(`/v1/sessions/${s.id}/events`, { type: "output", data: { data: "line 1\n" } });
    expect(one.json).toEqual({ appended: 1, first: 1, last: 1, head: 1 });
    const many = await http.post(`/v1/sessions/${s.id}/events`, [
      { type: "output", data: { stream: "stderr", data: "oops\n" } },
      { type: "tool.progress", data: { pct: 50 } },
      { type: "exit", data: { exitCode: 0 } },
    ]);
    expect(many.json).toEqual({ appended: 3, first: 2, last: 4, head: 4 });
    const evs = await events(http, s.id);
    expect(evs).toMatchObject([
      { seq: 1, type: "output", stream: "stdout", offset: 0, data: "line 1\n" },
      { seq: 2, type: "output", stream: "stderr", offset: 7, data: "oops\n" },
      { seq: 3, type: "custom", name: "tool.progress", data: { pct: 50 } },
      { seq: 4, type: "exit", exitCode: 0, signal: null },
    ]);
    const after = await http.post(`/v1/sessions/${s.id}/events`, { type: "note" });
    expect(after.json.error.code).toBe("SESSION_NOT_RUNNING");
  });

  it("refuses batches over the limit and exit in the middle of a batch, appending nothing", async () => {
    const gw = await testGateway({ config: { limits: { eventsPerAppend: 3 } } });
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    const tooMany = await http.post(
      `/v1/sessions/${s.id}/events`,
      Array.from({ length: 4 }, () => ({ type: "x" })),
    );
    expect(tooMany.status).toBe(413);
    const midExit = await http.post(`/v1/sessions/${s.id}/events`, [{ type: "exit", data: {} }, { type: "x" }]);
    expect(midExit.json.error.code).toBe("VALIDATION_FAILED");
    expect(await events(http, s.id)).toEqual([]);
  });

  it("names the field of a mistake in an output's or exit's data, and keeps exit codes to 0-255 (regression: every such mistake blamed `type`)", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    const refused = async (body: unknown) => {
      const r = await http.post(`/v1/sessions/${s.id}/events`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error.code).toBe("VALIDATION_FAILED");
      return r.json.error.message as string;
    };
    expect(await refused({ type: "output", data: { data: "x", stream: "pty" } })).toMatch(/^data\.stream: /);
    expect(await refused({ type: "output", data: "x" })).toMatch(/^data: /);
    expect(await refused({ type: "exit", data: { exitCode: "1" } })).toMatch(/^data\.exitCode: /);
    expect(await refused({ type: "exit", data: { exitCode: 256 } })).toBe("data.exitCode: is 0 to 255");
    expect(await refused({ type: "exit", data: { exitCode: -1 } })).toBe("data.exitCode: is 0 to 255");
    // In a batch, the event's index comes first.
    expect(await refused([{ type: "note" }, { type: "output", data: { data: "x", enc: "hex" } }])).toMatch(
      /^1\.data\.enc: /,
    );
    expect(await refused({ type: "bad type!" })).toMatch(/^type: /);
    expect(await refused([])).toBe("(root): send an event, or an array of them");
    expect(await events(http, s.id)).toEqual([]);
    const ok = await http.post(`/v1/sessions/${s.id}/events`, { type: "exit", data: { exitCode: 255 } });
    expect(ok.status).toBe(200);
  });
});

describe("reading", () => {
  it("pages events with since, limit and types", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    await http.post(
      `/v1/sessions/${s.id}/events`,
      Array.from({ length: 10 }, (_, i) => ({ type: i % 2 ? "odd" : "even", data: i })),
    );
    const page = await http.get(`/v1/sessions/${s.id}/events?since=2&limit=3`);
    expect(page.json.events.map((e: Ev) => e.seq)).toEqual([3, 4, 5]);
    expect(page.json).toMatchObject({ head: 10, next: 5 });
    const customs = await http.get(`/v1/sessions/${s.id}/events?types=custom&since=8`);
    expect(customs.json.events.map((e: Ev) => e.seq)).toEqual([9, 10]);
  });

  it("streams Server-Sent Events and resumes from Last-Event-ID with exactly the missing events", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    await http.post(
      `/v1/sessions/${s.id}/events`,
      Array.from({ length: 5 }, (_, i) => ({ type: "n", data: i })),
    );
    const read = async (headers: Record<string, string>, query = "") => {
      const res = await fetch(`${gw.url}/v1/sessions/${s.id}/stream${query}`, {
        headers: { authorization: `Bearer ${TEST_TOKEN}`, ...headers },
      });
      expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
      return res;
    };
    // Ends after exit: the body completes.
    await http.post(`/v1/sessions/${s.id}/events`, [
      { type: "n", data: 5 },
      { type: "exit", data: {} },
    ]);
    const body = await (await read({ "Last-Event-ID": "3" })).text();
    expect(body.startsWith("retry: 2000\n\n")).toBe(true);
    const ids = [...body.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids).toEqual([4, 5, 6, 7]);
    const datas = [...body.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as Ev);
    expect(datas.map((d) => d.seq)).toEqual([4, 5, 6, 7]);
    const viaQuery = await (await read({}, "?since=6")).text();
    expect([...viaQuery.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual([7]);
  });

  it("ends a process's input with eof: a pipe's stdin is closed, a PTY gets ^D", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json: sort } = await http.post("/v1/sessions", { command: ["sort"] });
    await http.post(`/v1/sessions/${sort.id}/input`, { data: "pear\napple\n" });
    expect((await http.post(`/v1/sessions/${sort.id}/input`, { data: "fig\n", eof: true })).json).toEqual({
      ok: true,
      bytes: 4,
      eof: true,
    });
    const evs = await untilExit(http, sort.id);
    expect(outputOf(evs)).toBe("apple\nfig\npear\n");
    expect(evs.filter((e) => e.type === "input").map((e) => [e["bytes"], e["eof"]])).toEqual([
      [11, undefined],
      [4, true],
    ]);
    expect(evs.at(-1)).toMatchObject({ type: "exit", exitCode: 0 });

    // Over /ws/session, with no bytes; a PTY's cat ends on ^D at the start of a line.
    const { json: cat } = await http.post("/v1/sessions", { command: ["cat"], pty: true });
    const ws = new WebSocket(`${gw.url.replace("http", "ws")}/ws/session/${cat.id}`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    await new Promise((r) => ws.once("open", r));
    ws.send(JSON.stringify({ type: "stdin", data: "hi\r" }));
    // cat's copy of the line first: otherwise it may come after the echo of what follows.
    await waitFor(async () => outputOf(await events(http, cat.id)) === "hi\r\nhi\r\n", 5000, "the line back");
    ws.send(JSON.stringify({ type: "stdin", data: "no newline", eof: true }));
    const catEvents = await untilExit(http, cat.id);
    // The unfinished line is handed over first (^D), then the input ends (a second ^D).
    expect(outputOf(catEvents)).toBe("hi\r\nhi\r\nno newlineno newline");
    ws.close();

    // After eof a pipe session that still runs takes no more input, and says why.
    const { json: after } = await http.post("/v1/sessions", { command: ["sh", "-c", "cat; echo closed; sleep 30"] });
    await http.post(`/v1/sessions/${after.id}/input`, { eof: true });
    await waitFor(async () => (await http.get(`/v1/sessions/${after.id}/output`)).text === "closed\n", 5000, "eof");
    for (const body of [{ data: "kiwi\n" }, { eof: true }]) {
      const late = await http.post(`/v1/sessions/${after.id}/input`, body);
      expect(late.json.error).toMatchObject({ code: "INPUT_CLOSED" });
    }
    await http.del(`/v1/sessions/${after.id}`);

    const empty = await http.post(`/v1/sessions/${sort.id}/input`, {});
    expect(empty.json.error).toMatchObject({
      code: "VALIDATION_FAILED",
      message: "data: is empty: send bytes, or eof: true to end the input",
    });
  });

  it("refuses unknown event types in filters, out-of-range limits and names with control characters", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream", name: "ok" });
    for (const path of [`/v1/sessions/${s.id}/events?types=output,bogus`, `/v1/sessions/${s.id}/stream?types=bogus`]) {
      const r = await http.get(path);
      expect(r.status, path).toBe(400);
      // A query parameter: BAD_REQUEST, as on every route (the same filter in a /v1/ws frame is VALIDATION_FAILED).
      expect(r.json.error.code).toBe("BAD_REQUEST");
      // The wording of /v1/ws's subscribe: one schema checks both.
      expect(r.json.error.message).toMatch(/^types\.\d: unknown event type "bogus"; the types are output, exit, /);
    }
    for (const limit of [0, 10_001]) {
      const r = await http.get(`/v1/sessions/${s.id}/events?limit=${limit}`);
      expect(r.json.error).toMatchObject({ code: "BAD_REQUEST", message: "limit must be an integer from 1 to 10000" });
    }
    for (const [name, what] of [
      ["evil\u001b]0;pwned\u0007", "U+001B ESCAPE, a control character, at character 5"],
      ["two\nlines", "U+000A LINE FEED, a control character, at character 4"],
      ["c1\u009b", "U+009B, a control character, at character 3"],
    ] as const) {
      const r = await http.post("/v1/sessions", { kind: "stream", name });
      expect(r.json.error, JSON.stringify(name)).toMatchObject({
        code: "VALIDATION_FAILED",
        message: `name: contains ${what}: terminals act on control characters (a new line, a new title, a cleared screen); remove it`,
      });
    }
    expect((await http.get("/v1/sessions")).json.sessions).toHaveLength(1);
  });

  it("refuses input and output that say base64 but are not, and empty input, changing nothing", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json: cat } = await http.post("/v1/sessions", { command: ["cat"] });
    const { json: stream } = await http.post("/v1/sessions", { kind: "stream" });
    const refusals = [
      await http.post(`/v1/sessions/${cat.id}/input`, { data: "@@@", enc: "base64" }),
      await http.post(`/v1/sessions/${cat.id}/input`, { data: "aGk", enc: "base64" }),
      await http.post(`/v1/sessions/${cat.id}/input`, { data: "" }),
      await http.post(`/v1/sessions/${stream.id}/events`, { type: "output", data: { data: "@@", enc: "base64" } }),
    ];
    for (const r of refusals) {
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe("VALIDATION_FAILED");
    }
    expect(refusals[0]!.json.error.message).toContain("data: is not valid base64");
    expect(await events(http, cat.id)).toEqual([]);
    expect(await events(http, stream.id)).toEqual([]);
    expect((await http.post(`/v1/sessions/${cat.id}/input`, { data: "aGkK", enc: "base64" })).json).toEqual({
      ok: true,
      bytes: 3,
    });
    await waitFor(async () => (await http.get(`/v1/sessions/${cat.id}/output`)).text === "hi\n", 5000, "echo");
    await http.del(`/v1/sessions/${cat.id}`);
  });

  it("reads from the start of what is retained with since=0 or none, once retention has trimmed the front", async () => {
    const gw = await testGateway({ config: { retention: { maxEvents: 10 } } });
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    for (let i = 1; i <= 40; i++) {
      await http.post(`/v1/sessions/${s.id}/events`, { type: "output", data: { data: `line${i}\n` } });
    }
    for (const query of ["", "?since=0"]) {
      const page = await http.get(`/v1/sessions/${s.id}/events${query}`);
      expect(page.status, query).toBe(200);
      expect(page.json).toMatchObject({ first: 31, head: 40, next: 40 });
      expect((page.json.events as Ev[]).map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 31 + i));
      const out = await http.get(`/v1/sessions/${s.id}/output${query}`);
      expect(out.status, query).toBe(200);
      expect(out.text).toBe(Array.from({ length: 10 }, (_, i) => `line${31 + i}\n`).join(""));
      expect(out.headers.get("x-switchboard-next-offset")).toBe(out.headers.get("x-switchboard-output-bytes"));
    }
    // A page of the output: at most max bytes, and where to go on.
    const page = await http.get(`/v1/sessions/${s.id}/output?since=0&max=9`);
    expect(page.text).toBe("line31\nli");
    expect(page.headers.get("x-switchboard-next-offset")).toBe(
      String(Number(page.headers.get("x-switchboard-output-bytes")) - 70 + 9),
    );
    // A position inside what was dropped is still refused, with where to go on.
    const trimmed = await http.get(`/v1/sessions/${s.id}/events?since=5`);
    expect(trimmed.status).toBe(410);
    expect(trimmed.json.error).toMatchObject({ code: "HISTORY_TRIMMED", first: 31, head: 40 });
    expect((await http.get(`/v1/sessions/${s.id}/output?since=3`)).status).toBe(410);
  });

  it("ends an SSE stream filtered by type once the session has ended, delivered or not", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    const open = (query: string) =>
      fetch(`${gw.url}/v1/sessions/${s.id}/stream${query}`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    // Following live when the session ends (the exit passes the filter by), and one far behind.
    const live = await open("?types=custom");
    await waitFor(async () => (await http.get(`/v1/sessions/${s.id}`)).json.viewers === 1, 5000, "viewer");
    await http.post(`/v1/sessions/${s.id}/events`, [
      { type: "n", data: 1 },
      { type: "output", data: { data: "x\n" } },
      { type: "exit", data: {} },
    ]);
    const ids = (body: string) => [...body.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    // Event 1, then an `id:` without data for the events the filter passed over: the client's
    // Last-Event-ID is the end, and its reconnect is answered 204 (test/delivery/sse.test.ts).
    const liveBody = await live.text();
    expect(ids(liveBody)).toEqual([1, 3]);
    expect(liveBody.endsWith("\n\nid: 3\n\n")).toBe(true);
    // Connecting after the end, from the start and from the head.
    expect(ids(await (await open("?types=custom")).text())).toEqual([1, 3]);
    // From the head of an ended session: nothing to send, 204, so an EventSource stops
    // reconnecting (regression: a 200 that ended at once made it reconnect every 2 s, forever).
    const atHead = await open("?types=custom&since=3");
    expect(atHead.status).toBe(204);
    expect(await atHead.text()).toBe("");
    const byLastEventId = await fetch(`${gw.url}/v1/sessions/${s.id}/stream`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "last-event-id": "3" },
    });
    expect(byLastEventId.status).toBe(204);
  });

  it("delivers live SSE events as they are appended", async () => {
    const gw = shared;
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    const res = await fetch(`${gw.url}/v1/sessions/${s.id}/stream`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    const reader = res.body!.getReader();
    let text = "";
    const readUntil = async (pred: () => boolean) => {
      while (!pred()) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
    };
    await waitFor(async () => (await http.get(`/v1/sessions/${s.id}`)).json.viewers === 1, 5000, "viewer");
    await http.post(`/v1/sessions/${s.id}/events`, { type: "hello", data: 1 });
    await readUntil(() => text.includes("id: 1\n"));
    await http.post(`/v1/sessions/${s.id}/events`, { type: "exit", data: {} });
    await readUntil(() => false);
    expect([...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual([1, 2]);
  });
});

describe("durability", () => {
  it("keeps the session list and every byte across a graceful restart", async () => {
    const dataDir = tempDir();
    const first = await testGateway({ dataDir });
    let http = api(first.url);
    const { json: done } = await http.post("/v1/sessions", { command: ["bash", "-c", "seq 1 2000"] });
    const { json: running } = await http.post("/v1/sessions", { command: ["sleep", "60"], name: "sleeper" });
    const { json: stream } = await http.post("/v1/sessions", { kind: "stream" });
    await http.post(`/v1/sessions/${stream.id}/events`, { type: "output", data: { data: "kept\n" } });
    const before = await untilExit(http, done.id);
    await first.close();

    const second = await testGateway({ dataDir });
    http = api(second.url);
    const list = (await http.get("/v1/sessions")).json.sessions as Array<{ id: string; state: string }>;
    // Shutdown terminated the process (TERM); the stream has no process and stays open.
    expect(new Map(list.map((s) => [s.id, s.state]))).toEqual(
      new Map([
        [done.id, "exited"],
        [running.id, "exited"],
        [stream.id, "running"],
      ]),
    );
    expect((await events(http, running.id)).at(-1)).toMatchObject({ type: "exit", signal: "SIGTERM" });
    expect(await events(http, done.id)).toEqual(before);
    const seqText = (await http.get(`/v1/sessions/${done.id}/output`)).text;
    expect(seqText).toBe(Array.from({ length: 2000 }, (_, i) => `${i + 1}\n`).join(""));
    // The stream session continues where it was, offsets included.
    const more = await http.post(`/v1/sessions/${stream.id}/events`, { type: "output", data: { data: "more\n" } });
    expect(more.json.first).toBe(2);
    expect((await events(http, stream.id))[1]).toMatchObject({ offset: 5, data: "more\n" });
  });

  it("brings sessions that were running when the gateway died back as lost", async () => {
    const dataDir = tempDir();
    const [node, ...cli] = cliCommand();
    const child = spawn(
      node!,
      // Without holders, as the gateway below: with them (serve's default) the session would run on.
      [...cli, "serve", "--port", "0", "--data-dir", dataDir, "--token", TEST_TOKEN, "--holders", "off"],
      {
        stdio: ["ignore", "pipe", "ignore"],
      },
    );
    onTestFinished(() => {
      child.kill("SIGKILL");
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /switchboard listening on (\S+)\n/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once("exit", () => reject(new Error(`gateway exited early: ${out}`)));
    });
    let http = api(url);
    const { json: sleeper } = await http.post("/v1/sessions", { command: ["bash", "-c", "echo up; sleep 60"] });
    await waitFor(async () => outputOf(await events(http, sleeper.id)).includes("up"), 10_000, "output");
    // Wait until the group commit has reached the file (a crash loses at most what was not).
    const db = new Database(join(dataDir, "switchboard.db"), { readonly: true });
    const durableOutputs = db.prepare("SELECT count(*) AS n FROM events WHERE session_id = ? AND type = 'output'");
    await waitFor(() => (durableOutputs.get(sleeper.id) as { n: number }).n > 0, 10_000, "the output to be durable");
    db.close();
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    // A pipe child that does not write outlives the gateway: nobody can watch or stop it now.
    expect(alive(sleeper.pid)).toBe(true);

    const second = await testGateway({ dataDir });
    http = api(second.url);
    const info = (await http.get(`/v1/sessions/${sleeper.id}`)).json;
    expect(info).toMatchObject({ state: "lost" });
    const evs = await events(http, sleeper.id);
    expect(outputOf(evs)).toBe("up\n");
    expect(evs.at(-1)).toMatchObject({
      type: "lost",
      reason: expect.stringMatching(/gateway stopped.*its process was still running and was terminated/),
    });
    await waitFor(() => !alive(sleeper.pid), 5_000, "the orphaned process to be terminated");
  });

  it("applies retention and answers HISTORY_TRIMMED for a position before the retained range", async () => {
    const gw = await testGateway({ config: { retention: { maxEvents: 5 } } });
    const http = api(gw.url);
    const { json: s } = await http.post("/v1/sessions", { kind: "stream" });
    await http.post(
      `/v1/sessions/${s.id}/events`,
      Array.from({ length: 12 }, (_, i) => ({ type: "n", data: i })),
    );
    const info = (await http.get(`/v1/sessions/${s.id}`)).json;
    expect(info).toMatchObject({ head: 12, first: 8 });
    const trimmed = await http.get(`/v1/sessions/${s.id}/events?since=2`);
    expect(trimmed.status).toBe(410);
    expect(trimmed.json.error).toMatchObject({ code: "HISTORY_TRIMMED", first: 8, head: 12 });
    const kept = await http.get(`/v1/sessions/${s.id}/events?since=7`);
    expect(kept.json.events.map((e: Ev) => e.seq)).toEqual([8, 9, 10, 11, 12]);
  });

  it("generates a token once into DATA_DIR/token with mode 0600", async () => {
    const dataDir = tempDir();
    const gw = await testGateway({ dataDir, token: "" });
    expect(gw.tokenGenerated).toBe(true);
    const file = join(dataDir, "token");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const token = gw.token;
    expect(token.length).toBeGreaterThanOrEqual(43);
    await gw.close();
    const again = await testGateway({ dataDir, token: "" });
    expect(again.token).toBe(token);
    expect((await api(again.url, token).get("/v1/sessions")).status).toBe(200);
  });

  // Regression (exploratory testing): the database and its -wal were created 0644, readable by
  // every user when the data dir already existed with a wider mode.
  it("keeps the log's database files readable by the gateway's user only (0600), also ones left wider", async () => {
    const dataDir = tempDir();
    chmodSync(dataDir, 0o755);
    const gw = await testGateway({ dataDir });
    const http = api(gw.url);
    await http.post("/v1/sessions", { command: ["echo", "secret"] });
    const files = () => readdirSync(dataDir).filter((f) => f.startsWith("switchboard.db") && !f.endsWith("-output"));
    expect(files()).toEqual(expect.arrayContaining(["switchboard.db", "switchboard.db-wal", "switchboard.db-shm"]));
    for (const f of files()) expect(statSync(join(dataDir, f)).mode & 0o777, f).toBe(0o600);
    await gw.close();
    chmodSync(join(dataDir, "switchboard.db"), 0o644);
    await testGateway({ dataDir });
    expect(statSync(join(dataDir, "switchboard.db")).mode & 0o777).toBe(0o600);
  });
});

describe("browser login", () => {
  it("exchanges the token for an HttpOnly SameSite=Strict cookie, Secure when configured", async () => {
    for (const secureCookies of [false, true]) {
      const gw = await testGateway({ config: { secureCookies } });
      const login = await fetch(`${gw.url}/v1/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: TEST_TOKEN }),
      });
      expect(login.status).toBe(200);
      const cookie = login.headers.get("set-cookie")!;
      expect(cookie).toMatch(/^sb_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+/);
      expect(cookie.includes("; Secure")).toBe(secureCookies);
      const { cookieKey } = (await login.json()) as { cookieKey: string };
      expect(cookieKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const whoami = (headers: Record<string, string>) => fetch(`${gw.url}/v1/whoami`, { headers });
      const who = await whoami({ cookie: cookie.split(";")[0]!, "x-switchboard-cookie-key": cookieKey });
      expect(await who.json()).toEqual({ name: "admin", role: "admin", id: "token:admin" });
      const wrong = await fetch(`${gw.url}/v1/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: "not-the-token-at-all" }),
      });
      expect(wrong.status).toBe(401);
    }
  });
});
