import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import {
  ConnectionError,
  connect,
  HttpClient,
  outputBytes,
  SwitchboardClient,
  SwitchboardError,
  TerminalClient,
  WebSocket,
} from "../../src/client/node.js";
import type { ConnectionState, RouteResult, SessionEvent } from "../../src/client/node.js";
import type { MatchedBy } from "../../src/routing/index.js";
import { connect as pureConnect } from "../../src/client/index.js";
import { LIMITS } from "../../src/protocol/index.js";
import { FaultProxy, TEST_ENV, startTestGateway } from "./helpers.js";
import type { TestGateway } from "./helpers.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

const FAST_RECONNECT = { initialDelayMs: 10, maxDelayMs: 50 };
/** How long "nothing happens" is watched for. */
const QUIET_MS = 400;

let gw: TestGateway;
const cleanup: Array<() => unknown> = [];
beforeAll(async () => {
  gw = await startTestGateway();
});
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});
afterAll(async () => {
  await gw.close();
});

async function client(
  url = gw.url,
  extra: Partial<ConstructorParameters<typeof SwitchboardClient>[0]> = {},
): Promise<SwitchboardClient> {
  const c = await connect({ url, token: gw.token, reconnect: FAST_RECONNECT, ...extra });
  cleanup.push(() => c.close());
  return c;
}

async function proxy(): Promise<FaultProxy> {
  const p = await FaultProxy.start(gw.url);
  cleanup.push(() => p.close());
  return p;
}

async function expectCode(
  promise: Promise<unknown>,
  code: string,
  type: typeof SwitchboardError | typeof ConnectionError = SwitchboardError,
): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  expect((error as { code: string }).code).toBe(code);
}

describe("SwitchboardClient", () => {
  it("streams a session's events in order and resolves done with its exit", async () => {
    const c = await client();
    const session = await c.createSession({ command: ["sh", "-c", "echo one; echo two >&2; exit 7"], env: TEST_ENV });
    const events: SessionEvent[] = [];
    const sub = c.subscribe(session.id, (e) => events.push(e));
    await expect(sub.ready).resolves.toMatchObject({ from: 1 });
    const end = await sub.done;
    expect(end).toMatchObject({ type: "exit", exitCode: 7 });
    expect(sub.ended).toBe(true);
    expect(sub.lastSeq).toBe(end!.seq);
    const text = events.flatMap((e) => (e.type === "output" ? [`${e.stream}:${e.data}`] : [])).sort();
    expect(text).toEqual(["stderr:two\n", "stdout:one\n"]);
  });

  it("ends a subscription resumed at the end of an ended session (a saved position) instead of waiting forever", async () => {
    const c = await client();
    const session = await c.createSession({ command: ["sh", "-c", "echo bye; exit 4"], env: TEST_ENV });
    const end = await c.subscribe(session.id, () => undefined).done;
    expect(end).toMatchObject({ type: "exit", exitCode: 4 });
    // A program that saved the exit's seq as its position and comes back later.
    const events: SessionEvent[] = [];
    const resumed = c.subscribe(session.id, { since: end!.seq }, (e) => events.push(e));
    const settled = await Promise.race([resumed.done, sleep(5_000).then(() => "still waiting")]);
    expect(settled).toEqual(end);
    expect(events).toEqual([]);
    expect(resumed.ended).toBe(true);
  });

  it("resolves done with the exit also when the exit's own callback unsubscribes or closes the client (exploratory test: undefined)", async () => {
    for (const how of ["unsubscribe", "close"] as const) {
      const c = await client();
      const session = await c.createSession({ command: ["sh", "-c", "echo bye; exit 5"], env: TEST_ENV });
      const seen: string[] = [];
      const sub = c.subscribe(session.id, (e) => {
        seen.push(e.type);
        if (e.type !== "exit") return;
        if (how === "unsubscribe") sub.unsubscribe();
        else c.close();
      });
      expect(await sub.done, how).toMatchObject({ type: "exit", exitCode: 5 });
      expect(seen.at(-1), how).toBe("exit");
      expect(sub.ended, how).toBe(true);
    }
  });

  it("refuses a second subscription to a followed session whose since is past the head, as it refuses a first one (exploratory test: it waited forever)", async () => {
    const c = await client();
    const stream = await c.createSession({ kind: "stream" });
    await c.appendEvents(stream.id, { type: "output", data: { data: "1\n" } });
    const first = c.subscribe(stream.id, () => undefined);
    await first.ready;
    const alone = await client();
    const refusals = [
      alone.subscribe(stream.id, { since: 100 }, () => undefined),
      c.subscribe(stream.id, { since: 100 }, () => undefined),
    ];
    for (const sub of refusals) {
      await expect(sub.ready).rejects.toMatchObject({
        code: "BAD_REQUEST",
        message: "since=100 is past the head (1) of this session",
      });
      await expect(sub.done).rejects.toMatchObject({ code: "BAD_REQUEST" });
    }
    // The first one goes on, to the end.
    await c.appendEvents(stream.id, { type: "exit", data: { exitCode: 0 } });
    expect(await first.done).toMatchObject({ type: "exit", seq: 2 });
  });

  it("gives the exact bytes of output that is not UTF-8 (outputBytes), where event.data is base64", async () => {
    const c = await client();
    const session = await c.createSession({ command: ["sh", "-c", "printf 'caf\\351 ok\\n'"], env: TEST_ENV });
    const chunks: Uint8Array[] = [];
    const sub = c.subscribe(session.id, { types: ["output"] }, (e) => {
      if (e.type === "output") chunks.push(outputBytes(e));
    });
    await sub.done;
    expect(Buffer.concat(chunks)).toEqual(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x6f, 0x6b, 0x0a]));
  });

  it("handles batched `events` frames during catch-up", async () => {
    const c = await client();
    const stream = await c.createSession({ kind: "stream", name: "batch" });
    const batch = Array.from({ length: 1000 }, (_, i) => ({ type: "tick", data: { i } }));
    for (let k = 0; k < 3; k++) await c.appendEvents(stream.id, batch);
    await c.appendEvents(stream.id, { type: "exit", data: { exitCode: 0 } });
    const seqs: number[] = [];
    const sub = c.subscribe(stream.id, { since: 0, types: ["custom"] }, (e) => seqs.push(e.seq));
    await sub.done;
    expect(seqs).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
  });

  it("a second subscription joining later from an earlier seq gets every event, and the first no duplicate", async () => {
    // Regression (found by the resume property test): frames still in flight from the
    // gateway's previous position were taken by the newcomer, which then dropped the replay.
    const c = await client();
    const stream = await c.createSession({ kind: "stream" });
    const batch = Array.from({ length: 1000 }, (_, i) => ({ type: "tick", data: { i, pad: "x".repeat(200) } }));
    for (let k = 0; k < 10; k++) await c.appendEvents(stream.id, batch);
    await c.appendEvents(stream.id, { type: "exit", data: { exitCode: 0 } });
    const first: number[] = [];
    const second: number[] = [];
    let joined: Promise<unknown> | undefined;
    const subA = c.subscribe(stream.id, { since: 0 }, (e) => {
      first.push(e.seq);
      if (first.length === 50) joined = c.subscribe(stream.id, { since: 0 }, (x) => second.push(x.seq)).done;
    });
    await subA.done;
    await joined;
    const all = Array.from({ length: 10_001 }, (_, i) => i + 1);
    expect(first).toEqual(all);
    expect(second).toEqual(all);
  });

  it("resumes from a given seq and reports retention gaps with reset", async () => {
    const small = await startTestGateway({ config: { retention: { maxEvents: 100 } } });
    cleanup.push(() => small.close());
    const c = await connect({ url: small.url, token: small.token });
    cleanup.push(() => c.close());
    const stream = await c.createSession({ kind: "stream" });
    const batch = Array.from({ length: 500 }, (_, i) => ({ type: "tick", data: { i } }));
    await c.appendEvents(stream.id, batch);
    await c.appendEvents(stream.id, { type: "exit", data: { exitCode: 0 } });
    const resets: Array<{ first: number; lastSeq: number }> = [];
    const seqs: number[] = [];
    const sub = c.subscribe(
      stream.id,
      { since: 10, onReset: (r) => resets.push({ first: r.first, lastSeq: r.lastSeq }) },
      (e) => seqs.push(e.seq),
    );
    await sub.done;
    expect(resets).toHaveLength(1);
    expect(resets[0]!.lastSeq).toBe(10);
    expect(seqs[0]).toBe(resets[0]!.first);
    expect(seqs.at(-1)).toBe(501);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => resets[0]!.first + i));
  });

  it("says each time the gateway confirms a subscription, after a reconnect too, with the head: what came before it was missed", async () => {
    const p = await proxy();
    const c = await client(p.url);
    const s = await c.createSession({ kind: "stream" });
    await c.http.appendEvents(s.id, [{ type: "note", data: 1 }]);
    const heads: number[] = [];
    const seen: number[] = [];
    const sub = c.subscribe(s.id, { onSubscribed: (info) => heads.push(info.head) }, (e) => seen.push(e.seq));
    await sub.ready;
    p.down = true;
    p.cut();
    await new HttpClient({ url: gw.url, token: gw.token }).appendEvents(s.id, [
      { type: "note", data: 2 },
      { type: "note", data: 3 },
    ]);
    p.down = false;
    await waitFor(() => seen.length === 3, 10_000, "the missed events");
    expect(heads).toEqual([1, 3]);
    expect(seen).toEqual([1, 2, 3]);
  });

  it("reports connection states for UIs: connecting, open, reconnecting, open, closed", async () => {
    const p = await proxy();
    const states: ConnectionState[] = [];
    const c = new SwitchboardClient({
      url: p.url,
      token: gw.token,
      WebSocket,
      auth: "header",
      reconnect: FAST_RECONNECT,
    });
    states.push(c.state);
    c.on("state", (s) => states.push(s.state));
    await c.opened();
    const session = await c.createSession({ command: ["sleep", "5"], env: TEST_ENV });
    cleanup.push(() => c.deleteSession(session.id));
    const sub = c.subscribe(session.id, () => undefined);
    await sub.ready;
    p.cut();
    await waitFor(() => states.filter((s) => s === "open").length === 2, 5_000, "reopen");
    c.close();
    c.close();
    expect(states[0]).toBe("connecting");
    expect(states).toContain("reconnecting");
    expect(states.slice(1)).toEqual(["open", "reconnecting", "open", "closed"]);
  });

  it("stops reconnecting once everything it follows has ended, and not before", async () => {
    const p = await proxy();
    const c = await client(p.url);
    const short = await c.createSession({ command: ["sh", "-c", "echo short"], env: TEST_ENV });
    const long = await c.createSession({ command: ["sh", "-c", "read line; echo got $line"], env: TEST_ENV });
    const shortSub = c.subscribe(short.id, () => undefined);
    const longOut: string[] = [];
    const longSub = c.subscribe(long.id, (e) => {
      if (e.type === "output") longOut.push(e.data);
    });
    await shortSub.done;
    await longSub.ready;

    // One session still runs: a cut is followed by a reconnect that resubscribes only it.
    p.cut();
    await waitFor(() => c.state === "open" && p.upgrades === 2, 5_000, "reconnect");
    await waitFor(() => p.openSockets === 1, 5_000, "one connection");
    expect((await c.getSession(short.id)).viewers).toBe(0);
    await waitFor(() => c.state === "open", 5_000, "open");

    await c.input(long.id, "hello\n");
    const end = await longSub.done;
    expect(end?.type).toBe("exit");
    expect(longOut.join("")).toBe("got hello\n");

    // Everything ended: a cut leaves the client idle, with no reconnect loop.
    const before = p.upgrades;
    p.cut();
    await sleep(QUIET_MS);
    expect(c.state).toBe("idle");
    expect(p.upgrades).toBe(before);

    // The next request brings the connection back on demand.
    const session = await c.getSession(long.id);
    expect(session.state).toBe("exited");
    await expectCode(c.input(long.id, "x"), "SESSION_NOT_RUNNING");
    expect(p.upgrades).toBe(before + 1);
  });

  it("forgets a control lease when its session ends: no reconnect for it, no control-lost after one", async () => {
    const p = await proxy();
    const c = await client(p.url);
    const lost: string[] = [];
    c.on("control-lost", ({ code }) => lost.push(code));
    const session = await c.createSession({ command: ["sh", "-c", "read line; echo got $line"], env: TEST_ENV });
    const sub = c.subscribe(session.id, () => undefined);
    await c.control(session.id, "acquire");
    await c.input(session.id, "hi\n");
    expect(await sub.done).toMatchObject({ type: "exit", exitCode: 0 });

    // The lease ended with the session: nothing needs the connection, so a cut leaves the client idle.
    const before = p.upgrades;
    p.cut();
    await sleep(QUIET_MS);
    expect(c.state).toBe("idle");
    expect(p.upgrades).toBe(before);
    // Coming back on demand does not ask for the ended session's lease again.
    expect((await c.getSession(session.id)).state).toBe("exited");
    await expectCode(c.input(session.id, "x"), "SESSION_NOT_RUNNING");
    expect(p.upgrades).toBe(before + 1);
    await sleep(QUIET_MS);
    expect(lost).toEqual([]);
  });

  // Regression (exploratory testing): when the session ended while the client was cut off, the
  // lease it asked for again on reconnecting was refused (SESSION_NOT_RUNNING) and reported as
  // control-lost, which a session that ended while connected never is.
  it("forgets a control lease whose session ended or was removed while disconnected, without control-lost", async () => {
    const p = await proxy();
    const c = await client(p.url);
    const lost: string[] = [];
    c.on("control-lost", ({ code }) => lost.push(code));
    const ended = await c.createSession({ command: ["sh", "-c", "read line; echo got $line"], env: TEST_ENV });
    const removed = await c.createSession({ command: ["sleep", "30"], env: TEST_ENV });
    const held = await c.createSession({ command: ["sleep", "30"], env: TEST_ENV });
    cleanup.push(() => c.http.removeSession(held.id, { force: true }));
    const subs = [ended, removed, held].map((s) => c.subscribe(s.id, () => undefined));
    await Promise.all(subs.map((sub) => sub.ready));
    for (const s of [ended, removed, held]) await c.control(s.id, "acquire");

    p.down = true;
    p.cut();
    await waitFor(() => c.state === "reconnecting", 2_000, "reconnecting");
    // Meanwhile one session ends, one is removed, and someone else takes the third.
    const other = new HttpClient({ url: gw.url, token: gw.token });
    await other.input(ended.id, "bye\n");
    await waitFor(async () => (await other.getSession(ended.id)).state === "exited");
    await other.removeSession(removed.id, { force: true });
    const rival = await client();
    await rival.control(held.id, "acquire");
    p.down = false;

    expect(await subs[0]!.done).toMatchObject({ type: "exit", exitCode: 0 });
    await expectCode(subs[1]!.done, "SESSION_NOT_FOUND");
    await waitFor(() => lost.length > 0, 5_000, "control-lost");
    await sleep(QUIET_MS);
    // Only the lease someone else holds now was lost.
    expect(lost).toEqual(["CONTROL_HELD"]);
  });

  it("keeps retrying while the gateway is down, then ends the loop once the session's end is delivered", async () => {
    const p = await proxy();
    const c = await client(p.url);
    const session = await c.createSession({ command: ["sh", "-c", "read line; echo bye"], env: TEST_ENV });
    const sub = c.subscribe(session.id, () => undefined);
    await sub.ready;
    p.down = true;
    p.cut();
    await waitFor(() => p.connections >= 4, 5_000, "several refused attempts");
    expect(c.state).toBe("reconnecting");
    // The session ends while the client cannot see it.
    await fetch(`${gw.url}/v1/sessions/${session.id}/input`, {
      method: "POST",
      headers: { Authorization: `Bearer ${gw.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ data: "x\n" }),
    });
    await sleep(100);
    p.down = false;
    await expect(sub.done).resolves.toMatchObject({ type: "exit", exitCode: 0 });
    const before = p.upgrades;
    p.cut();
    await sleep(QUIET_MS);
    expect(p.upgrades).toBe(before);
    expect(c.state).toBe("idle");
  });

  it("queues requests made while reconnecting and sends them once the connection is back", async () => {
    const p = await proxy();
    const c = await client(p.url, { reconnect: { initialDelayMs: 150, maxDelayMs: 150 } });
    const session = await c.createSession({ command: ["sh", "-c", "read a; echo got:$a"], env: TEST_ENV });
    let out = "";
    const sub = c.subscribe(session.id, (e) => {
      if (e.type === "output") out += e.data;
    });
    await sub.ready;
    p.cut();
    await waitFor(() => c.state === "reconnecting", 2_000, "reconnecting");
    await c.input(session.id, "queued\n");
    await sub.done;
    expect(out).toBe("got:queued\n");
  });

  // Exploratory test (UI): after a gateway restart the page waited out its backoff (~8 s) though
  // its own HTTP poll already got through; reconnectNow lets an app say "it is back".
  it("reconnects at once on reconnectNow, instead of after the rest of its backoff", async () => {
    const p = await proxy();
    const c = await client(p.url, { reconnect: { initialDelayMs: 30_000, maxDelayMs: 30_000, random: () => 0.5 } });
    expect(c.reconnectNow()).toBe(false); // open: nothing waits
    // Following a running session: the client wants its connection back.
    const session = await c.createSession({ command: ["cat"], env: TEST_ENV });
    cleanup.push(() => c.deleteSession(session.id));
    await c.subscribe(session.id, { since: 0 }, () => undefined).ready;
    p.down = true;
    p.cut();
    await waitFor(() => c.state === "reconnecting", 5_000, "reconnecting");
    p.down = false;
    const asked = Date.now();
    expect(c.reconnectNow()).toBe(true);
    await waitFor(() => c.state === "open", 5_000, "open again");
    expect(Date.now() - asked).toBeLessThan(5_000);
  });

  it("surfaces gateway refusals as typed SwitchboardErrors", async () => {
    const c = await client();
    const missing = c.subscribe("no-such-session", () => undefined);
    await expectCode(missing.ready, "SESSION_NOT_FOUND");
    await expectCode(missing.done, "SESSION_NOT_FOUND");
    await expectCode(c.input("no-such-session", "x"), "SESSION_NOT_FOUND");
    await expectCode(c.getSession("no-such-session"), "SESSION_NOT_FOUND");
    // "." and ".." are dot segments to a URL: GET /v1/sessions/. was the list of sessions.
    await expectCode(c.getSession("."), "SESSION_NOT_FOUND");
    await expectCode(c.getSession(".."), "SESSION_NOT_FOUND");
    await expectCode(c.deleteSession(".."), "SESSION_NOT_FOUND");
    await expectCode(c.events(".", { since: 0 }), "SESSION_NOT_FOUND");
    await expectCode(c.resize("no-such-session", { cols: 0, rows: 10 }), "VALIDATION_FAILED");
    await expectCode(c.signal("no-such-session", "NOPE"), "VALIDATION_FAILED");
    const pipe = await c.createSession({ command: ["sleep", "5"], env: TEST_ENV });
    cleanup.push(() => c.deleteSession(pipe.id));
    await expectCode(c.resize(pipe.id, { cols: 80, rows: 24 }), "WRONG_SESSION_KIND");
    await expectCode(c.prompt(pipe.id, "hi"), "WRONG_SESSION_KIND");
    await expectCode(c.createSession({ command: ["/definitely/not/here"] }), "SPAWN_FAILED");
  });

  // Regression (exploratory testing): input over 64 KiB was PAYLOAD_TOO_LARGE up to 128 Ki
  // characters (of base64, for bytes) and VALIDATION_FAILED about "131072 characters" beyond.
  it("refuses input over the limit with PAYLOAD_TOO_LARGE whatever its size, text or bytes, WebSocket or HTTP", async () => {
    const c = await client();
    const cat = await c.createSession({ command: ["cat"], env: TEST_ENV });
    cleanup.push(() => c.deleteSession(cat.id));
    const max = LIMITS.INPUT_BYTES;
    for (const size of [max + 1, 100_000, 300_000, 2 * 1024 * 1024]) {
      for (const send of [
        () => c.input(cat.id, "x".repeat(size)),
        () => c.input(cat.id, new Uint8Array(size)),
        () => c.http.input(cat.id, "x".repeat(size)),
        () => c.http.input(cat.id, new Uint8Array(size)),
      ]) {
        await expect(send()).rejects.toMatchObject({
          code: "PAYLOAD_TOO_LARGE",
          message: `input is ${size} bytes; at most ${max} per message`,
        });
      }
    }
    await c.input(cat.id, new Uint8Array(max));
    await c.http.input(cat.id, "é".repeat(max / 2));
    expect(c.state).toBe("open");
    await waitFor(async () => (await c.getSession(cat.id)).outputBytes === 2 * max);
  });

  it("refuses input that is neither text nor bytes (plain JS) with VALIDATION_FAILED, as a rejection (exploratory test: 'input is undefined bytes')", async () => {
    const c = await client();
    const cat = await c.createSession({ command: ["cat"], env: TEST_ENV });
    cleanup.push(() => c.deleteSession(cat.id));
    for (const [data, what] of [
      [42, "number"],
      [{ text: "hi" }, "object"],
      [null, "null"],
      [undefined, "undefined"],
    ] as const) {
      const message = `input: a string or bytes (a Uint8Array), not ${what}`;
      const bad = data as unknown as string;
      await expect(c.input(cat.id, bad)).rejects.toMatchObject({ code: "VALIDATION_FAILED", message });
      await expect(c.http.input(cat.id, bad)).rejects.toMatchObject({ code: "VALIDATION_FAILED", message });
    }
    expect((await c.getSession(cat.id)).state).toBe("running");
  });

  it("rejects a bad token with UNAUTHORIZED and an unreachable gateway with UNREACHABLE", async () => {
    const other = await startTestGateway();
    await expectCode(connect({ url: other.url, token: "wrong-token-0123456789" }), "UNAUTHORIZED");
    await expectCode(connect({ url: other.url, token: "wrong-token-0123456789", auth: "subprotocol" }), "UNAUTHORIZED");
    const url = other.url;
    await other.close();
    await expectCode(connect({ url, token: gw.token }), "UNREACHABLE", ConnectionError);
    await expectCode(new TerminalClient({ url, token: gw.token, session: "x" }).done, "UNREACHABLE", ConnectionError);
  });

  it("names the gateway's own reason when it refuses the upgrade (a connection limit), not a proxy", async () => {
    const limited = await startTestGateway({ config: { limits: { connectionsPerToken: 1 } } });
    const first = await connect({ url: limited.url, token: limited.token });
    try {
      await expectCode(connect({ url: limited.url, token: limited.token }), "LIMIT_EXCEEDED");
    } finally {
      first.close();
      await limited.close();
    }
  });

  it("enforces control: CONTROL_HELD for others, force takes over, the loser hears control-lost", async () => {
    const a = await client();
    const b = await client();
    const session = await a.createSession({ command: ["cat"], env: TEST_ENV });
    cleanup.push(() => a.deleteSession(session.id));
    await expect(a.control(session.id, "acquire")).resolves.toEqual({ controller: "admin" });
    await a.input(session.id, "mine\n");
    await expectCode(b.input(session.id, "theirs\n"), "CONTROL_HELD");
    await expectCode(b.control(session.id, "acquire"), "CONTROL_HELD");
    const lost = new Promise<{ code: string }>((resolve) => a.on("control-lost", resolve));
    await b.control(session.id, "acquire", { force: true });
    await expect(lost).resolves.toMatchObject({
      code: "CONTROL_LOST",
      session: session.id,
      reason: "taken-over",
      holder: "admin",
    });
    await expectCode(a.input(session.id, "again\n"), "CONTROL_HELD");
    await b.input(session.id, "now b\n");
  });

  it("takes control back after a reconnect", async () => {
    const p = await proxy();
    const a = await client(p.url);
    const b = await client();
    const session = await a.createSession({ command: ["cat"], env: TEST_ENV });
    cleanup.push(() => b.deleteSession(session.id));
    await a.control(session.id, "acquire");
    p.cut();
    await waitFor(() => a.state === "open" && p.upgrades === 2, 5_000, "reconnect");
    await waitFor(() => p.openSockets === 1, 2_000, "settled");
    // The old connection's lease was released on disconnect and re-acquired by the new one.
    await waitFor(async () => (await b.getSession(session.id)).controller === "admin", 2_000);
    await expectCode(b.input(session.id, "x"), "CONTROL_HELD");
    await a.input(session.id, "y\n");
  });

  it("prompts an agent session and follows the run to its final answer", async () => {
    const c = await client();
    const agent = await c.createSession({ kind: "agent", agent: { adapter: "echo" } });
    cleanup.push(() => c.deleteSession(agent.id));
    const events: SessionEvent[] = [];
    let final!: () => void;
    const finished = new Promise<void>((resolve) => (final = resolve));
    c.subscribe(agent.id, { types: ["run.started", "chat.delta", "chat.final"] }, (e) => {
      events.push(e);
      if (e.type === "chat.final") final();
    });
    const { runId } = await c.prompt(agent.id, "hello there");
    expect(runId).toMatch(/\S/);
    await finished;
    expect(events[0]).toMatchObject({ type: "run.started", runId });
    expect(events.at(-1)).toMatchObject({ type: "chat.final", runId });
    await expectCode(c.abort(agent.id), "RUN_NOT_ACTIVE");
  });

  it("aborts a run and its queue, and says how many queued runs it cleared", async () => {
    const c = await client();
    const agent = await c.createSession({ kind: "agent", agent: { adapter: "echo" } });
    cleanup.push(() => c.deleteSession(agent.id));
    const ends: SessionEvent[] = [];
    c.subscribe(agent.id, { types: ["chat.final", "chat.aborted"] }, (e) => ends.push(e));
    const first = await c.prompt(agent.id, "a long answer ".repeat(50));
    const queued = [await c.prompt(agent.id, "second"), await c.prompt(agent.id, "third")];
    const result = await c.abort(agent.id, { all: true });
    const cleared: number = result.cleared;
    expect(result).toEqual({ runId: first.runId, cleared: 2 });
    expect(cleared).toBe(2);
    await waitFor(() => ends.length === 3, 5_000, "three chat.aborted");
    expect(ends.map((e) => e.type === "chat.aborted" && e.runId)).toEqual([first.runId, ...queued.map((q) => q.runId)]);
    const http = await c.http.abort(agent.id, { all: true }).catch((e: unknown) => e);
    expect(http).toMatchObject({ code: "RUN_NOT_ACTIVE" });
  });

  it("measures latency with ping/pong", async () => {
    const c = await client();
    expect(c.latency()).toBeUndefined();
    const ms = await c.ping();
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(ms).toBeLessThan(1_000);
    expect(c.latency()).toBe(ms);
  });

  it("rejects pending work with CLOSED after close(), and close() is idempotent", async () => {
    const c = await client();
    const session = await c.createSession({ command: ["sleep", "5"], env: TEST_ENV });
    cleanup.push(() =>
      fetch(`${gw.url}/v1/sessions/${session.id}`, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${gw.token}` },
      }),
    );
    const sub = c.subscribe(session.id, () => undefined);
    await sub.ready;
    c.close();
    c.close();
    await expect(sub.done).resolves.toBeUndefined();
    expect(c.state).toBe("closed");
    await expectCode(c.input(session.id, "x"), "CLOSED", ConnectionError);
    expect(() => c.subscribe(session.id, () => undefined)).toThrow(ConnectionError);
  });

  // Regression (exploratory testing): `ready` rejected with a plain Error without a code.
  it("rejects a subscription's ready with CLOSED when it ends before the gateway confirmed it", async () => {
    const c = await client();
    const stream = await c.createSession({ kind: "stream" });
    const unsubscribed = c.subscribe(stream.id, () => undefined);
    unsubscribed.unsubscribe();
    await expectCode(unsubscribed.ready, "CLOSED", ConnectionError);
    await expect(unsubscribed.done).resolves.toBeUndefined();
    const closed = c.subscribe(stream.id, () => undefined);
    c.close();
    await expectCode(closed.ready, "CLOSED", ConnectionError);
    await expect(closed.ready).rejects.toThrow("the client was closed");
    await expect(closed.done).resolves.toBeUndefined();
  });

  it("works with the bearer subprotocol (what browsers use) through the pure entry", async () => {
    const c = await pureConnect({ url: gw.url, token: gw.token, WebSocket });
    cleanup.push(() => c.close());
    const session = await c.createSession({ command: ["sh", "-c", "echo pure"], env: TEST_ENV });
    let out = "";
    await c.subscribe(session.id, (e) => {
      if (e.type === "output") out += e.data;
    }).done;
    expect(out).toBe("pure\n");
  });
});

// Found by a bridge author: the SDK had no way to route or deliver a chat message (sdk.md sent
// them to `client.http`, which had no method for either).
describe("routing through the SDK", () => {
  it("asks where a message goes (route) and delivers it to its agent session (deliver)", async () => {
    const routed = await startTestGateway({
      config: { bindings: [{ agentId: "echo", match: { channel: "discord", guildId: "g-1" } }] },
    });
    cleanup.push(() => routed.close());
    const c = await connect({ url: routed.url, token: routed.token });
    cleanup.push(() => c.close());
    const message = {
      channel: "Discord",
      guildId: "g-1",
      peer: { kind: "channel" as const, id: "dev" },
      text: "hello there",
    };
    const route = await c.http.route(message);
    expect(route).toEqual({
      agentId: "echo",
      matchedBy: "guild",
      bindingIndex: 0,
      sessionKey: "agent:echo:peer:discord:default:channel:dev",
    });
    const delivered = await c.http.deliver(message);
    expect(delivered).toMatchObject({ ...route, sessionId: expect.any(String), runId: expect.any(String) });
    let answer = "";
    const sub = c.subscribe(delivered.sessionId, { since: 0 }, (e) => {
      if (e.type === "chat.final") answer = (e as { text?: string }).text ?? "";
    });
    await waitFor(() => answer !== "", 10_000, "the echo agent's answer");
    expect(answer).toContain("hello there");
    sub.unsubscribe();
    await expectCode(c.http.route({ channel: "slack", text: "x" }), "NO_ROUTE");
    expectTypeOf<RouteResult["matchedBy"]>().toEqualTypeOf<MatchedBy>();
  });
});
