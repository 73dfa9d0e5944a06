/**
 * docs/architecture.md, guarantee 4: a client that stops reading costs only itself. The
 * others get everything in time, the gateway's queue for it stays within the per-connection
 * budget (it is fed from the log instead), and when it reads again it gets everything after
 * its position — or an explicit `reset` when retention dropped what it needed.
 */
import WebSocket from "ws";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Gateway } from "../../src/server/gateway.js";
import { DEFAULT_LIMITS } from "../../src/server/config/config.js";
import { CATCHUP_BATCH_BYTES } from "../../src/server/ws/feed.js";
import {
  MuxClient,
  appendOutput,
  authHeaders,
  decodeData,
  endStream,
  opened,
  probeOutboxes,
  rawSocket,
  startTestGateway,
  wsUrl,
} from "./helpers.js";
import type { Defer } from "./helpers.js";
import { createSession } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

/**
 * A stalled client fills its socket's buffers with the log's own bytes only uncompressed: deflated,
 * these repetitive pieces would fit whole and the client never trail (test/server/wire-compression.test.ts
 * covers compression).
 */
const UNCOMPRESSED = { compression: { websocket: false } };
const defer: Defer = (fn) => onTestFinished(async () => void (await fn()));

/** Each event carries 8 KiB; 14 appends of 100 events: about 11.5 MB, more than socket buffers and the budget hold. */
const EVENT_BYTES = 8 * 1024;
const PER_APPEND = 100;
const APPENDS = 14;
const TOTAL_EVENTS = PER_APPEND * APPENDS;
const BUDGET = DEFAULT_LIMITS.queueBytes;
/** A connection's queue may pass the budget by at most one catch-up batch and one event. */
const BUDGET_SLACK = CATCHUP_BATCH_BYTES + 2 * EVENT_BYTES;
/** Fast viewers must be done this soon after the producer's last append. */
const FAST_LAG_MS = 5_000;

/** Event k's text starts with k, so a viewer can check every event's content, not just its position. */
function payload(k: number): string {
  return String(k).padStart(8, "0") + ".".repeat(EVENT_BYTES - 9) + "\n";
}

function checkContent(client: MuxClient): void {
  client.onEvent = (_session, e) => {
    if (e.type === "output" && !e.data.startsWith(String(e.seq - 1).padStart(8, "0"))) {
      client.errors.push(`event ${e.seq} carries ${e.data.slice(0, 8)}`);
    }
  };
}

/** Appends the whole flood, then the end. */
async function produce(gw: Gateway, id: string): Promise<void> {
  for (let a = 0; a < APPENDS; a++) {
    await appendOutput(
      gw,
      id,
      Array.from({ length: PER_APPEND }, (_, i) => payload(a * PER_APPEND + i)),
    );
  }
  await endStream(gw, id);
}

async function catchUps(gw: Gateway): Promise<number> {
  return (await gw.core.metrics.catchUps.get()).values.reduce((n, v) => n + v.value, 0);
}

describe("slow clients", () => {
  it("one client that stops reading among 20 costs only itself, then gets everything after its position", async () => {
    const probe = probeOutboxes(defer);
    const gw = await startTestGateway(defer, { config: UNCOMPRESSED });
    const { id } = await createSession(gw, { kind: "stream" });
    const clients = await Promise.all(Array.from({ length: 20 }, () => MuxClient.open(gw, defer, { keep: false })));
    for (const c of clients) {
      checkContent(c);
      c.subscribe(id, 0);
    }
    await Promise.all(clients.map((c) => c.frame((f) => f.op === "subscribed")));
    const [slow, ...fast] = clients as [MuxClient, ...MuxClient[]];
    rawSocket(slow.ws).pause();

    // The producer finishing at all while one viewer reads nothing shows it never waits on viewers.
    await produce(gw, id);
    const producedAt = performance.now();
    await Promise.all(fast.map((c) => c.until(() => c.state.get(id)!.ended, FAST_LAG_MS, "a fast client's end")));
    const lag = performance.now() - producedAt;
    for (const c of fast) {
      expect(c.errors).toEqual([]);
      expect(c.state.get(id)!.lastSeq).toBe(TOTAL_EVENTS + 1);
    }
    expect(lag).toBeLessThan(FAST_LAG_MS);

    // The stalled one was taken off live delivery; what the gateway holds for it stayed within the budget.
    expect(slow.state.get(id)!.ended).toBe(false);
    expect(await catchUps(gw)).toBeGreaterThanOrEqual(1);
    expect(probe.count()).toBe(20);
    expect(probe.maxQueued()).toBeLessThanOrEqual(BUDGET + BUDGET_SLACK);
    expect(probe.maxBuffered()).toBeLessThanOrEqual(BUDGET + BUDGET_SLACK);

    // Reading again, it gets everything after its position, in order, from the log.
    rawSocket(slow.ws).resume();
    await slow.until(() => slow.state.get(id)!.ended, 20_000, "the slow client's end");
    expect(slow.errors).toEqual([]);
    expect(slow.state.get(id)!.resets).toBe(0);
    expect(slow.state.get(id)!.byteCount).toBe(TOTAL_EVENTS * EVENT_BYTES);
    expect(probe.maxQueued()).toBeLessThanOrEqual(BUDGET + BUDGET_SLACK);
  }, 60_000);

  it("a slow client whose position retention dropped gets reset, then everything from what is kept", async () => {
    const gw = await startTestGateway(defer, { config: { ...UNCOMPRESSED, retention: { maxEvents: 200 } } });
    const { id } = await createSession(gw, { kind: "stream" });
    const slow = await MuxClient.open(gw, defer, { keep: false });
    checkContent(slow);
    slow.subscribe(id, 0);
    await slow.frame((f) => f.op === "subscribed");
    rawSocket(slow.ws).pause();
    await produce(gw, id);
    rawSocket(slow.ws).resume();
    await slow.until(() => slow.state.get(id)!.ended, 20_000, "the slow client's end");

    // Before the reset: a gap-free prefix; the reset names where it goes on; after it: gap-free to the end.
    expect(slow.errors).toEqual([]);
    const reset = slow.frames.find((f) => f.op === "reset");
    expect(reset).toMatchObject({ op: "reset", session: id, reason: "trimmed" });
    expect(reset!.first).toBeGreaterThan(1);
    expect(slow.state.get(id)!.lastSeq).toBe(TOTAL_EVENTS + 1);
    const info = (await fetch(`${gw.url}/v1/sessions/${id}`, { headers: authHeaders(gw) }).then((r) => r.json())) as {
      first: number;
    };
    expect(reset!.first).toBeLessThanOrEqual(info.first);
  }, 60_000);

  it("a /ws/session viewer that stops reading is fed from the log within the budget, replay included", async () => {
    const probe = probeOutboxes(defer);
    const gw = await startTestGateway(defer, { config: UNCOMPRESSED });
    const { id } = await createSession(gw, { kind: "stream" });
    // Half the flood before it connects (replayed), half after (live, then caught up).
    let a = 0;
    const appendSome = async (n: number) => {
      for (const end = a + n; a < end; a++) {
        await appendOutput(
          gw,
          id,
          Array.from({ length: PER_APPEND }, (_, i) => payload(a * PER_APPEND + i)),
        );
      }
    };
    await appendSome(APPENDS / 2);

    const ws = new WebSocket(wsUrl(gw, `/ws/session/${id}?since=0`), { headers: authHeaders(gw) });
    defer(() => ws.terminate());
    let position = 0;
    let connectedAt: number | undefined;
    let exited = false;
    const errors: string[] = [];
    ws.on("message", (raw) => {
      const f = JSON.parse(raw.toString()) as { type: string; data?: string; enc?: string; offset?: number };
      if (f.type === "replay" || f.type === "stdout") {
        const bytes = decodeData(f.data!, f.enc);
        const start = f.type === "replay" ? f.offset! - bytes.length : f.offset!;
        if (start !== position) errors.push(`${f.type} at ${start} with ${position} bytes`);
        position += bytes.length;
      } else if (f.type === "connected") {
        connectedAt = f.offset!;
        if (connectedAt !== position) errors.push(`connected at ${connectedAt} with ${position} bytes`);
      } else if (f.type === "exit") {
        exited = true;
      } else {
        errors.push(`unexpected ${raw.toString().slice(0, 200)}`);
      }
    });
    // Stop reading as soon as the connection is up: the replay must not all be queued at once.
    ws.once("upgrade", (res) => res.socket.pause());
    await opened(ws);
    await appendSome(APPENDS / 2);
    await endStream(gw, id);
    expect(probe.maxQueued()).toBeLessThanOrEqual(BUDGET + BUDGET_SLACK);
    expect(probe.maxBuffered()).toBeLessThanOrEqual(BUDGET + BUDGET_SLACK);

    rawSocket(ws).resume();
    await waitFor(() => exited, 20_000, "exit");
    expect(errors).toEqual([]);
    expect(position).toBe(TOTAL_EVENTS * EVENT_BYTES);
    expect(connectedAt).toBeDefined();
    expect(probe.maxQueued()).toBeLessThanOrEqual(BUDGET + BUDGET_SLACK);
  }, 60_000);

  it("events larger than the whole budget still flow, live and in catch-up", async () => {
    const gw = await startTestGateway(defer, { config: { ...UNCOMPRESSED, limits: { queueBytes: 4096 } } });
    const { id } = await createSession(gw, { kind: "stream" });
    const mux = await MuxClient.open(gw, defer);
    mux.subscribe(id, 0);
    await mux.frame((f) => f.op === "subscribed");
    const big = (k: number) => `${k}:${"b".repeat(10_000)}\n`;
    // One at a time, with an idle connection in between: each is bigger than the budget.
    for (let k = 0; k < 5; k++) {
      await appendOutput(gw, id, [big(k)]);
      await mux.until(() => mux.state.get(id)!.lastSeq === k + 1, 5000, `event ${k + 1}`);
    }
    await endStream(gw, id);
    await mux.until(() => mux.state.get(id)!.ended, 5000, "the end");
    expect(mux.errors).toEqual([]);
    expect(mux.bytes(id).toString()).toBe([0, 1, 2, 3, 4].map(big).join(""));
  });

  it("closing the gateway while a stalled viewer is being caught up reads nothing from the closed log", async () => {
    // Regression: write callbacks that fired after shutdown pumped the feed, which read the
    // closed SQLite store and threw an uncaught "The database connection is not open".
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    defer(() => process.off("uncaughtException", onUncaught));
    // A small budget: the viewers fall behind early, so they are caught up from SQLite, not the hot ring.
    const gw = await startTestGateway(defer, { config: { ...UNCOMPRESSED, limits: { queueBytes: 256 * 1024 } } });
    const { id } = await createSession(gw, { kind: "stream" });
    const mux = await MuxClient.open(gw, defer, { keep: false });
    mux.subscribe(id, 0);
    const term = new WebSocket(wsUrl(gw, `/ws/session/${id}?since=0`), { headers: authHeaders(gw) });
    defer(() => term.terminate());
    await opened(term);
    await mux.frame((f) => f.op === "subscribed");
    rawSocket(mux.ws).pause();
    rawSocket(term).pause();
    await produce(gw, id);
    expect(await catchUps(gw)).toBeGreaterThanOrEqual(2);
    await gw.close();
    // Now the sockets drain: their write callbacks run after the log is closed.
    rawSocket(mux.ws).resume();
    rawSocket(term).resume();
    await waitFor(
      () => mux.ws.readyState === WebSocket.CLOSED && term.readyState === WebSocket.CLOSED,
      10_000,
      "both closed",
    );
    expect(uncaught).toEqual([]);
  }, 60_000);
});
