/**
 * Reconnection under real network faults (not only clean cuts): a black-holed connection —
 * both sockets open, nothing forwarded, as after a laptop lid closes or a phone changes
 * networks — must be noticed by the client's heartbeat in bounded time, replaced with
 * backoff, and resumed with exactly the log's bytes and events: no gap, no duplicate.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HttpClient, OutputView, SwitchboardClient, TerminalClient, connect } from "../../src/client/node.js";
import type { ConnectionState, SessionEvent } from "../../src/client/node.js";
import { sleep } from "../helpers/sleep.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";
import { FaultProxy, countingText, startTestGateway } from "./helpers.js";
import type { TestGateway } from "./helpers.js";

/** A short heartbeat, so that a silent connection is noticed within about a second. */
const HEARTBEAT = { pingIntervalMs: 250, pongTimeoutMs: 250 };
const FAST_RECONNECT = { initialDelayMs: 20, maxDelayMs: 200 };
const LINES = 3_000;

/**
 * Counts to LINES in three parts, the second and the third each once the test types a line
 * (`next`): the second comes while the connection is black-holed, the third after it healed,
 * however loaded the machine.
 */
const STEPPED = ["sh", "-c", `seq 1 1000; read a; seq 1001 2000; read b; seq 2001 ${LINES}`];

let gw: TestGateway;
const cleanups: Array<() => unknown> = [];
beforeAll(async () => {
  gw = await startTestGateway();
});
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});
afterAll(async () => {
  await gw.close();
});

async function proxy(): Promise<FaultProxy> {
  const p = await FaultProxy.start(gw.url);
  cleanups.push(() => p.close());
  return p;
}

/** Lets a STEPPED session print its next part (typed straight to the gateway, not through the proxy). */
async function next(session: string): Promise<void> {
  await new HttpClient({ url: gw.url, token: gw.token }).input(session, "next\n");
}

async function outputOf(session: string): Promise<string> {
  const res = await fetch(`${gw.url}/v1/sessions/${session}/output?since=0`, {
    headers: { Authorization: `Bearer ${gw.token}` },
  });
  return await res.text();
}

describe("a black-holed connection", () => {
  it.each(["binary", "json"] as const)(
    "TerminalClient (%s) notices it by its heartbeat, reconnects and resumes at the next byte",
    async (output) => {
      const p = await proxy();
      const created = await fetch(`${gw.url}/v1/sessions`, {
        method: "POST",
        headers: { Authorization: `Bearer ${gw.token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ command: STEPPED }),
      });
      const { id } = (await created.json()) as { id: string };
      const term = new TerminalClient({
        url: p.url,
        token: gw.token,
        session: id,
        since: 0,
        output,
        reconnect: FAST_RECONNECT,
        ...HEARTBEAT,
      });
      cleanups.push(() => term.close());
      const chunks: Buffer[] = [];
      const states: ConnectionState[] = [];
      term.on("data", ({ bytes }) => chunks.push(Buffer.from(bytes)));
      term.on("state", ({ state }) => states.push(state));
      await waitFor(() => Buffer.concat(chunks).toString("utf8").endsWith("\n1000\n"), 10_000, "the first part");

      p.blackhole();
      const holeAt = Date.now();
      await next(id);
      await waitFor(() => states.includes("reconnecting"), 5_000, "the client to notice the silence");
      const noticedAfter = Date.now() - holeAt;
      // Silence for the interval plus the timeout, checked once per interval.
      expect(noticedAfter).toBeLessThan(2 * HEARTBEAT.pingIntervalMs + HEARTBEAT.pongTimeoutMs + 1_000);
      p.heal();
      await next(id);

      await expect(term.done).resolves.toEqual({ exitCode: 0, signal: null, state: "exited" });
      const got = Buffer.concat(chunks).toString("utf8");
      expect(got).toBe(countingText(LINES));
      expect(got).toBe(await outputOf(id));
      expect(p.upgrades).toBeGreaterThanOrEqual(2);
    },
  );

  it("the SDK Client notices it, reconnects and resumes every event exactly once", async () => {
    const p = await proxy();
    const client: SwitchboardClient = await connect({
      url: p.url,
      token: gw.token,
      reconnect: FAST_RECONNECT,
      ...HEARTBEAT,
    });
    cleanups.push(() => client.close());
    const states: ConnectionState[] = [];
    client.on("state", ({ state }) => states.push(state));
    const session = await client.createSession({ command: STEPPED });
    const events: SessionEvent[] = [];
    const view = new OutputView();
    const sub = client.subscribe(session.id, { since: 0 }, (e) => {
      events.push(e);
      view.push(e);
    });
    await waitFor(() => view.text().endsWith("\n1000\n"), 10_000, "the first part");

    p.blackhole();
    await next(session.id);
    await waitFor(() => states.includes("reconnecting"), 5_000, "the client to notice the silence");
    p.heal();
    await next(session.id);

    const end = await sub.done;
    expect(end?.type).toBe("exit");
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(view.text()).toBe(countingText(LINES));
    const logged: SessionEvent[] = [];
    for await (const e of client.http.allEvents(session.id, { since: 0 })) logged.push(e);
    expect(events).toEqual(logged);
  });
});

// Found by a reliability pass through a proxy that stalled: the upgrade got no answer, the HTTP
// probe after it did, and the SDK said the gateway "refused the WebSocket upgrade".
describe("an upgrade that gets no answer while HTTP does", () => {
  it("is a TIMEOUT that says so, on both clients, not a refusal", async () => {
    const held: Socket[] = [];
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: "s", name: "admin", role: "admin", kind: "terminal", state: "running" }));
    });
    server.on("upgrade", (_req, socket: Socket) => held.push(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => {
      for (const socket of held) socket.destroy();
      // (The probes' keep-alive connections would hold close() for seconds.)
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new SwitchboardClient({
      url,
      token: gw.token,
      connectTimeoutMs: 200,
      reconnect: { initialDelayMs: 5_000 },
    });
    cleanups.push(() => client.close());
    const errors: Error[] = [];
    client.on("state", ({ error }) => void (error && errors.push(error)));
    client.subscribe("s", {}, () => {});
    await waitFor(() => errors.length > 0, 5_000, "the client's diagnosis");
    expect(errors.at(-1)).toMatchObject({
      code: "TIMEOUT",
      message:
        "cannot open /v1/ws: no hello from the gateway within 200 ms, though the gateway answers HTTP (a stalled or slow network, or a proxy that holds WebSocket upgrades)",
    });

    const term = new TerminalClient({
      url,
      token: gw.token,
      session: "s",
      connectTimeoutMs: 200,
      reconnect: { initialDelayMs: 5_000 },
    });
    cleanups.push(() => term.close());
    const termErrors: Error[] = [];
    term.on("state", ({ error }) => void (error && termErrors.push(error)));
    await waitFor(
      () => termErrors.some((e) => (e as { code?: string }).code === "TIMEOUT"),
      5_000,
      "the terminal's diagnosis",
    );
    expect(termErrors.find((e) => (e as { code?: string }).code === "TIMEOUT")?.message).toBe(
      "cannot open /ws/session/s: no frame within 200 ms, though the gateway answers HTTP (a stalled or slow network, or a proxy that holds WebSocket upgrades)",
    );
  }, 20_000);
});

/**
 * A Node program that opens a client to `url` (a SwitchboardClient following `session`, or a
 * TerminalClient), closes it when the parent says so on stdin, and must then exit by itself:
 * nothing of the client may keep it running.
 */
const CLOSING_PROGRAM = `
import { SwitchboardClient, TerminalClient } from ${JSON.stringify(pathToFileURL(resolve(import.meta.dirname, "../../src/client/node.ts")).href)};
const [url, token, session, kind] = process.argv.slice(2);
const target = { url, token, connectTimeoutMs: 200 };
const client = kind === "terminal" ? new TerminalClient({ ...target, session, since: 0 }) : new SwitchboardClient(target);
if (kind === "terminal") client.done.catch(() => undefined);
else client.subscribe(session, () => undefined);
client.on("state", ({ state }) => console.log(state));
process.stdin.once("data", () => {
  process.stdin.destroy();
  client.close();
  console.log("closed");
});
`;

describe("close() while the gateway does not answer", () => {
  // Regression (exploratory testing): a client closed while the network was black-holed kept
  // its Node program running for 30 s: when connected, `ws` waited that long for the answer to
  // its close frame; while connecting, the HTTP probe of a failed upgrade went on.
  it.each([
    ["client", "open"],
    ["terminal", "open"],
    ["client", "connecting"],
    ["terminal", "connecting"],
  ] as const)("lets the program exit at once: %s, %s", async (kind, state) => {
    const p = await proxy();
    const created = await fetch(`${gw.url}/v1/sessions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${gw.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ command: ["sleep", "60"] }),
    });
    const { id } = (await created.json()) as { id: string };
    cleanups.push(() =>
      fetch(`${gw.url}/v1/sessions/${id}`, { method: "DELETE", headers: { Authorization: `Bearer ${gw.token}` } }),
    );
    const file = join(tempDir(), "closing.mts");
    writeFileSync(file, CLOSING_PROGRAM);
    if (state === "connecting") p.blackhole();
    const child = spawn(process.execPath, ["--import", "tsx", file, p.url, gw.token, id, kind], {
      cwd: resolve(import.meta.dirname, "../.."),
      stdio: ["pipe", "pipe", "inherit"],
    });
    cleanups.push(() => child.kill("SIGKILL"));
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
    if (state === "open") {
      await waitFor(() => out.includes("open") && p.openSockets === 1, 20_000, "the client to connect");
      p.blackhole();
    } else {
      // The upgrade timed out (connectTimeoutMs) and an HTTP request asks the gateway why.
      await waitFor(() => p.connections >= 2, 20_000, "the probe of the failed upgrade");
    }
    child.stdin.write("close\n");
    await waitFor(() => out.includes("closed"), 5_000, "close()");
    const outcome = await Promise.race([exited, sleep(5_000).then(() => "still running 5 s after close()")]);
    expect(outcome).toBe(0);
  });
});

describe("TerminalClient with control: force, across a dropped connection", () => {
  // Regression (SDK pass): every reconnect forced the lease again, taking it from whoever had
  // taken it while this client was away.
  it("takes control over once, and after a reconnect asks for it back without force", async () => {
    const p = await proxy();
    const http = await fetch(`${gw.url}/v1/sessions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${gw.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ command: ["cat"] }),
    });
    const { id } = (await http.json()) as { id: string };
    const rival = await connect({ url: gw.url, token: gw.token });
    cleanups.push(() => rival.close());
    await rival.control(id, "acquire");
    const term = new TerminalClient({
      url: p.url,
      token: gw.token,
      session: id,
      control: "force",
      reconnect: FAST_RECONNECT,
    });
    cleanups.push(() => term.close());
    const errors: string[] = [];
    term.on("error", (e) => errors.push(e.code));
    const lost: string[] = [];
    rival.on("control-lost", (e) => lost.push(e.code));
    // The first connection takes control over from the rival.
    await waitFor(() => lost.length === 1, 5_000, "the rival to lose control");
    // Away: the gateway ends the lease with the connection, and the rival takes it back.
    p.down = true;
    p.cut();
    await waitFor(() => term.state === "reconnecting", 5_000, "the client to notice");
    await rival.control(id, "acquire");
    p.down = false;
    await waitFor(() => errors.includes("CONTROL_HELD"), 5_000, "the reconnect's refusal");
    expect(term.state).toBe("open");
    // The rival still steers; the client watches.
    expect(lost).toHaveLength(1);
    const control = await fetch(`${gw.url}/v1/sessions/${id}/events?types=control`, {
      headers: { Authorization: `Bearer ${gw.token}` },
    });
    const events = ((await control.json()) as { events: Array<{ action?: string }> }).events;
    expect(events.map((e) => e.action)).toEqual(["acquired", "taken-over", "disconnected", "acquired"]);
  });
});
