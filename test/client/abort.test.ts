/**
 * Cancellation: every SDK call that does I/O or waits takes an AbortSignal, as fetch does.
 * Aborting rejects the call promptly with the signal's reason, an already-aborted signal sends
 * nothing, and nothing the call registered (abort listeners, timers, pending requests) stays
 * behind. Before this, a program could not give up on a call at all: a request queued while
 * the client reconnected (for ever, by default) waited for its 10 s timeout, an HTTP call for
 * 30 s, `connect` through a dead network for its connect timeout and retries.
 */
import { getEventListeners } from "node:events";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HttpClient, SwitchboardClient, SwitchboardError, TerminalClient, connect } from "../../src/client/node.js";
import type { SessionEvent } from "../../src/client/node.js";
import { FaultProxy, TEST_ENV, startTestGateway } from "./helpers.js";
import type { TestGateway } from "./helpers.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

const FAST_RECONNECT = { initialDelayMs: 10, maxDelayMs: 50 };
/** An aborted call must have settled within this long (the SDK's own timeouts are 10 s and more). */
const PROMPTLY_MS = 500;

let gw: TestGateway;
let admin: HttpClient;
const cleanup: Array<() => unknown> = [];
beforeAll(async () => {
  gw = await startTestGateway();
  admin = new HttpClient({ url: gw.url, token: gw.token });
});
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});
afterAll(async () => {
  await gw.close();
});

async function client(url = gw.url): Promise<SwitchboardClient> {
  const c = await connect({ url, token: gw.token, reconnect: FAST_RECONNECT });
  cleanup.push(() => c.close());
  return c;
}

async function proxy(): Promise<FaultProxy> {
  const p = await FaultProxy.start(gw.url);
  cleanup.push(() => p.close());
  return p;
}

/** A `cat` session: it echoes what it is sent, and runs until its input ends. */
async function catSession(): Promise<string> {
  const { id } = await admin.createSession({ command: ["cat"], env: TEST_ENV });
  cleanup.push(() => admin.removeSession(id, { force: true }));
  return id;
}

/** What `promise` rejected with; fails if it resolved, or had not settled within `ms`. */
async function rejectionOf(promise: Promise<unknown>, ms = PROMPTLY_MS): Promise<unknown> {
  const outcome = await Promise.race([
    promise.then(
      (value: unknown) => ({ resolved: value }),
      (error: unknown) => ({ rejected: error }),
    ),
    sleep(ms).then(() => ({ waiting: ms })),
  ]);
  if ("rejected" in outcome) return outcome.rejected;
  throw new Error(
    `expected a rejection, but the call ${"waiting" in outcome ? `was still waiting after ${ms} ms` : "resolved"}`,
  );
}

/** Timers that keep the process running: every request has one (its timeout) while it waits. */
function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

function abortListeners(signal: AbortSignal): number {
  return getEventListeners(signal, "abort").length;
}

/**
 * The client's requests: waiting for an answer or for the connection (`pending`), and sent
 * but abandoned, whose answers will be dropped (`ignored`). Private: read to prove that
 * aborted calls leave nothing behind.
 */
function requestsOf(c: SwitchboardClient): { pending: number; ignored: number } {
  const tracker = (c as unknown as { requests: { pending: Map<unknown, unknown>; ignored: { size: number } } })
    .requests;
  return { pending: tracker.pending.size, ignored: tracker.ignored.size };
}

async function outputText(id: string): Promise<string> {
  return new TextDecoder().decode((await admin.output(id)).bytes);
}

describe("cancellation with AbortSignal", () => {
  it("an already-aborted signal rejects every kind of call at once with its reason, and sends nothing", async () => {
    const c = await client();
    const p = await proxy();
    const id = await catSession();
    let fetches = 0;
    const http = new HttpClient({
      url: gw.url,
      token: gw.token,
      fetch: (input, init) => {
        fetches++;
        return fetch(input, init);
      },
    });
    const aborted = new AbortController();
    aborted.abort();
    const { signal } = aborted;
    // abort() without a reason: an AbortError DOMException, as fetch rejects with.
    expect(signal.reason).toBeInstanceOf(DOMException);
    expect((signal.reason as DOMException).name).toBe("AbortError");

    expect(await rejectionOf(http.createSession({ kind: "stream", name: "never-created" }, { signal }))).toBe(
      signal.reason,
    );
    expect(await rejectionOf(http.input(id, "http\n", { signal }))).toBe(signal.reason);
    expect(await rejectionOf(c.createSession({ kind: "stream", name: "never-created" }, { signal }))).toBe(
      signal.reason,
    );
    expect(fetches).toBe(0);

    expect(await rejectionOf(c.input(id, "ws\n", { signal }))).toBe(signal.reason);
    expect(await rejectionOf(c.control(id, "acquire", { signal }))).toBe(signal.reason);
    expect(await rejectionOf(c.ping({ signal }))).toBe(signal.reason);
    const delivered: SessionEvent[] = [];
    const sub = c.subscribe(id, { since: 0, signal }, (e) => delivered.push(e));
    expect(await rejectionOf(sub.ready)).toBe(signal.reason);
    expect(await rejectionOf(sub.done)).toBe(signal.reason);
    expect(sub.live).toBe(false);

    // Nothing even connects.
    const connectionsBefore = p.connections;
    const term = new TerminalClient({ url: p.url, token: gw.token, session: id, since: 0, signal });
    expect(await rejectionOf(term.done)).toBe(signal.reason);
    expect(term.state).toBe("closed");
    expect(await rejectionOf(connect({ url: p.url, token: gw.token, signal }))).toBe(signal.reason);
    await sleep(50);
    expect(p.connections).toBe(connectionsBefore);

    // The gateway got none of it: only what comes after reaches cat.
    await c.input(id, "after\n", { eof: true });
    await waitFor(async () => (await admin.getSession(id)).state === "exited", 5_000, "cat to exit");
    expect(await outputText(id)).toBe("after\n");
    expect(delivered).toEqual([]);
    expect((await admin.getSession(id)).controller).toBeNull();
    expect((await admin.listSessions()).some((s) => s.name === "never-created")).toBe(false);
  });

  it("aborting an HTTP call while it waits for the answer rejects at once with the reason, but does not undo a POST that reached the gateway", async () => {
    const p = await proxy();
    const http = new HttpClient({ url: p.url, token: gw.token });
    // Requests reach the gateway; its answers are held.
    p.blackhole("down");
    const controller = new AbortController();
    const creating = http.createSession({ kind: "stream", name: "made-anyway" }, { signal: controller.signal });
    await waitFor(
      async () => (await admin.listSessions()).some((s) => s.name === "made-anyway"),
      5_000,
      "the request to reach the gateway",
    );
    expect(abortListeners(controller.signal)).toBe(1);

    const reason = new Error("the user navigated away");
    const abortedAt = Date.now();
    controller.abort(reason);
    expect(await rejectionOf(creating)).toBe(reason);
    expect(Date.now() - abortedAt).toBeLessThan(PROMPTLY_MS);
    expect(abortListeners(controller.signal)).toBe(0);
    // Aborting gave up the waiting, not the request: the session exists.
    const made = (await admin.listSessions()).filter((s) => s.name === "made-anyway");
    expect(made).toHaveLength(1);
    await admin.removeSession(made[0]!.id, { force: true });
  });

  it("AbortSignal.timeout rejects with its TimeoutError (not the SDK's own TIMEOUT), for HTTP, requests, connect and TerminalClient", async () => {
    const id = await catSession();
    const p = await proxy();
    const c = await client(p.url);
    // Nothing comes back any more: not to HTTP calls, not on the open connection, not on new ones.
    p.blackhole("down");
    const isTimeout = (error: unknown) => error instanceof DOMException && error.name === "TimeoutError";

    const http = new HttpClient({ url: p.url, token: gw.token });
    expect(isTimeout(await rejectionOf(http.getSession(id, { signal: AbortSignal.timeout(100) })))).toBe(true);
    expect(isTimeout(await rejectionOf(c.input(id, "held\n", { signal: AbortSignal.timeout(100) })))).toBe(true);
    expect(isTimeout(await rejectionOf(c.ping({ signal: AbortSignal.timeout(100) })))).toBe(true);
    expect(requestsOf(c).pending).toBe(0);

    const sockets = p.openSockets;
    const upgrades = p.upgrades;
    const connecting = connect({ url: p.url, token: gw.token, signal: AbortSignal.timeout(100) });
    expect(isTimeout(await rejectionOf(connecting))).toBe(true);
    const term = new TerminalClient({ url: p.url, token: gw.token, session: id, signal: AbortSignal.timeout(100) });
    expect(isTimeout(await rejectionOf(term.done))).toBe(true);
    // Both closed the sockets they had opened.
    expect(p.upgrades).toBe(upgrades + 2);
    await waitFor(() => p.openSockets === sockets, 2_000, "the given-up sockets to close");
  });

  it("aborting a request while the client reconnects takes it out of the queue: it is never sent", async () => {
    const p = await proxy();
    const c = await client(p.url);
    const id = await catSession();
    // A subscription keeps the client reconnecting.
    const sub = c.subscribe(id, () => undefined);
    await sub.ready;
    p.down = true;
    p.cut();
    await waitFor(() => c.state === "reconnecting", 2_000, "reconnecting");

    const controller = new AbortController();
    const queued = c.input(id, "never\n", { signal: controller.signal });
    expect(requestsOf(c).pending).toBe(1);
    controller.abort();
    expect(await rejectionOf(queued)).toBe(controller.signal.reason);
    expect(requestsOf(c).pending).toBe(0);
    expect(abortListeners(controller.signal)).toBe(0);

    p.down = false;
    await waitFor(() => c.state === "open", 5_000, "the connection to come back");
    await c.input(id, "after\n", { eof: true });
    expect(await sub.done).toMatchObject({ type: "exit" });
    expect(await outputText(id)).toBe("after\n");
  });

  it("aborting connect while it cannot get through gives up at once and closes the client's socket", async () => {
    const p = await proxy();
    // The upgrade gets no answer: without a signal, connect waits out its 10 s connect timeout, then retries.
    p.blackhole("down");
    const controller = new AbortController();
    const connecting = connect({ url: p.url, token: gw.token, signal: controller.signal });
    await waitFor(() => p.openSockets === 1, 2_000, "the upgrade to be under way");
    controller.abort();
    expect(await rejectionOf(connecting)).toBe(controller.signal.reason);
    await waitFor(() => p.openSockets === 0, 2_000, "the socket to close");
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("aborting a subscription stops delivery, rejects done with the reason (onError is not called) and unsubscribes at the gateway", async () => {
    const c = await client();
    const { id } = await admin.createSession({ kind: "stream" });
    cleanup.push(() => admin.removeSession(id, { force: true }));
    const controller = new AbortController();
    const delivered: string[] = [];
    const errors: Error[] = [];
    const sub = c.subscribe(id, { signal: controller.signal, onError: (e) => errors.push(e) }, (e) => {
      if (e.type === "output") delivered.push(e.data);
    });
    await sub.ready;
    await admin.appendEvents(id, { type: "output", data: { data: "one" } });
    await waitFor(() => delivered.length === 1, 2_000, "the first event");
    expect((await admin.getSession(id)).viewers).toBe(1);

    const reason = new Error("done with it");
    controller.abort(reason);
    expect(await rejectionOf(sub.done)).toBe(reason);
    expect(sub.live).toBe(false);
    await waitFor(async () => (await admin.getSession(id)).viewers === 0, 2_000, "the gateway to drop the viewer");
    await admin.appendEvents(id, { type: "output", data: { data: "two" } });
    await sleep(100);
    expect(delivered).toEqual(["one"]);
    expect(errors).toEqual([]);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("aborting the allEvents iterator ends it with the reason at its next read", async () => {
    const { id } = await admin.createSession({ kind: "stream" });
    cleanup.push(() => admin.removeSession(id, { force: true }));
    // Two pages: 1000 events (the gateway's default page), then 500 more.
    const batch = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ type: "output" as const, data: { data: `${i}` } }));
    await admin.appendEvents(id, batch(1000));
    await admin.appendEvents(id, batch(500));

    const controller = new AbortController();
    let seen = 0;
    const reading = (async () => {
      for await (const _event of admin.allEvents(id, { signal: controller.signal })) {
        seen++;
        if (seen === 10) controller.abort();
      }
    })();
    expect(await rejectionOf(reading)).toBe(controller.signal.reason);
    // The first page was in hand; the second was never read.
    expect(seen).toBe(1000);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("aborting a TerminalClient stops following, with any reason, Error or not, for done", async () => {
    const id = await catSession();
    const controller = new AbortController();
    const term = new TerminalClient({ url: gw.url, token: gw.token, session: id, signal: controller.signal });
    await new Promise<void>((connected) => term.on("connected", () => connected()));
    expect((await admin.getSession(id)).viewers).toBe(1);
    controller.abort("the user pressed Ctrl-C");
    expect(await rejectionOf(term.done)).toBe("the user pressed Ctrl-C");
    expect(term.state).toBe("closed");
    expect(abortListeners(controller.signal)).toBe(0);
    await waitFor(async () => (await admin.getSession(id)).viewers === 0, 2_000, "the gateway to drop the viewer");
  });

  it("an acquire aborted after it was sent, and granted, is held as if the call had waited (taken back after a reconnect)", async () => {
    const id = await catSession();
    const p = await proxy();
    const c = await client(p.url);
    const other = await client();
    p.blackhole("down");
    const controller = new AbortController();
    const acquiring = c.control(id, "acquire", { signal: controller.signal });
    await waitFor(async () => (await admin.getSession(id)).controller !== null, 5_000, "the lease to be granted");
    controller.abort();
    expect(await rejectionOf(acquiring)).toBe(controller.signal.reason);
    p.heal();

    // Once the late grant has reached the client's books (the abandoned request's answer came; a fixed
    // 100 ms was not always enough on a loaded machine), after a dropped connection it asks for the lease again.
    await waitFor(() => requestsOf(c).ignored === 0, 5_000, "the late grant");
    p.down = true;
    p.cut();
    await waitFor(async () => (await admin.getSession(id)).controller === null, 5_000, "the gateway to release it");
    p.down = false;
    await waitFor(async () => (await admin.getSession(id)).controller !== null, 5_000, "the client to take it back");
    const refused = await other.input(id, "x\n").then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(SwitchboardError);
    expect((refused as SwitchboardError).code).toBe("CONTROL_HELD");
    await c.control(id, "release");
  });

  it("leaves no listener, timer or pending request behind, after completed calls and after many aborted ones", async () => {
    const p = await proxy();
    const c = await client(p.url);
    const id = await catSession();
    const errors: Error[] = [];
    c.on("error", (e) => errors.push(e));
    const follower = c.subscribe(id, () => undefined);
    await follower.ready;

    // One long-lived signal for many calls that complete: none leaves its listener on it.
    const app = new AbortController();
    const signal = app.signal;
    for (let i = 0; i < 20; i++) {
      await c.input(id, `${i}\n`, { signal });
      await c.getSession(id, { signal });
      await c.ping({ signal });
      const sub = c.subscribe(id, { since: 0, signal }, () => undefined);
      await sub.ready;
      sub.unsubscribe();
    }
    await c.control(id, "acquire", { signal });
    await c.control(id, "release", { signal });
    expect(abortListeners(signal)).toBe(0);

    // Queued while reconnecting, then aborted: the queue empties.
    p.down = true;
    p.cut();
    await waitFor(() => c.state === "reconnecting", 2_000, "reconnecting");
    const timersBefore = activeTimers();
    const queued = Array.from({ length: 200 }, () => new AbortController());
    const queuedCalls = queued.map((a, i) => c.input(id, `queued ${i}\n`, { signal: a.signal }));
    expect(requestsOf(c).pending).toBe(200);
    expect(activeTimers()).toBeGreaterThanOrEqual(timersBefore + 200);
    for (const a of queued) a.abort();
    const queuedOutcomes = await Promise.allSettled(queuedCalls);
    expect(queuedOutcomes.every((o) => o.status === "rejected" && o.reason instanceof DOMException)).toBe(true);
    expect(requestsOf(c)).toEqual({ pending: 0, ignored: 0 });
    expect(queued.every((a) => abortListeners(a.signal) === 0)).toBe(true);
    // Their timeouts went with them (a few timers of the client's own come and go meanwhile).
    expect(activeTimers()).toBeLessThan(timersBefore + 10);

    // Sent, then aborted before the answers came: forgotten at once, and the late answers dropped.
    p.down = false;
    await waitFor(() => c.state === "open", 5_000, "the connection to come back");
    p.blackhole("down");
    const sent = Array.from({ length: 100 }, () => new AbortController());
    const sentCalls = sent.map((a, i) => c.input(id, `sent ${i}\n`, { signal: a.signal }));
    expect(requestsOf(c).pending).toBe(100);
    for (const a of sent) a.abort();
    await Promise.allSettled(sentCalls);
    expect(requestsOf(c)).toEqual({ pending: 0, ignored: 100 });
    expect(activeTimers()).toBeLessThan(timersBefore + 10);
    p.heal();
    await waitFor(() => requestsOf(c).ignored === 0, 5_000, "the late answers");
    expect(requestsOf(c).pending).toBe(0);
    expect(errors).toEqual([]);
    expect(sent.every((a) => abortListeners(a.signal) === 0)).toBe(true);
  });
});

/** Whether the client's heartbeat interval is running. Private: read to prove a closed client stopped it (it is unref'd, so no resource count shows it). */
function heartbeatRunning(c: SwitchboardClient): boolean {
  const connection = (c as unknown as { connection: { heartbeat: { timer: unknown } } }).connection;
  return connection.heartbeat.timer !== undefined;
}

describe("closing from a listener", () => {
  // Regression: a client closed by its own `hello` or `state` ("open") listener started its
  // heartbeat anyway, after the close, and that interval was never cleared.
  it("a client closed as its connection opens leaves no heartbeat running", async () => {
    const closedOnHello = new SwitchboardClient({ url: gw.url, token: gw.token });
    closedOnHello.on("hello", () => closedOnHello.close());
    const closedOnOpen = new SwitchboardClient({ url: gw.url, token: gw.token });
    closedOnOpen.on("state", ({ state }) => state === "open" && closedOnOpen.close());
    await waitFor(() => closedOnHello.state === "closed" && closedOnOpen.state === "closed", 5_000, "closed");
    expect(heartbeatRunning(closedOnHello)).toBe(false);
    expect(heartbeatRunning(closedOnOpen)).toBe(false);
    // A client that stays open has one: what the check above looks at is the heartbeat.
    const open = await client();
    expect(heartbeatRunning(open)).toBe(true);
  });
});
