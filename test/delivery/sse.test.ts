/**
 * Server-Sent Events as a client author meets them (docs/architecture.md, guarantees 1, 2 and 4): an
 * EventSource that is cut off at any point (in a producer's burst, in a replay) resumes with
 * Last-Event-ID and gets every event exactly once; a filtered stream of an ended session lets
 * it stop instead of reconnecting forever; a reader that stops reading costs only itself and
 * gets an explicit reset when retention overtakes it.
 */
import fc from "fast-check";
import { request } from "node:http";
import type { IncomingMessage } from "node:http";
import { describe, expect, it, onTestFinished } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { SSE_HEARTBEAT_MS } from "../../src/server/routes/stream.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { allEvents, api, appendOutput, authHeaders, endStream, startTestGateway } from "./helpers.js";
import type { Defer } from "./helpers.js";
import { SseParser, followSse } from "./sse-client.js";
import type { SseMessage } from "./sse-client.js";
import { createSession } from "../helpers/gateway.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

const defer: Defer = (fn) => onTestFinished(async () => void (await fn()));

const events = (messages: readonly SseMessage[]) =>
  messages.filter((m) => m.event === "message").map((m) => JSON.parse(m.data) as SessionEvent);

describe("SSE resume", () => {
  it("a filtered stream of an ended session moves Last-Event-ID to the end, so the reconnect is told to stop (204)", async () => {
    const gw = await startTestGateway(defer);
    const { id } = await createSession(gw, { kind: "stream" });
    await api(gw, "POST", `/v1/sessions/${id}/events`, [
      { type: "n", data: 1 },
      { type: "output", data: { data: "x\n" } },
      { type: "output", data: { data: "y\n" } },
    ]);
    await endStream(gw, id);
    // Only custom events: the last one (seq 1) is far from the end (the exit, seq 4).
    const run = await followSse(`${gw.url}/v1/sessions/${id}/stream?types=custom`, {
      headers: authHeaders(gw),
      maxConnections: 5,
    });
    expect(events(run.messages).map((e) => e.seq)).toEqual([1]);
    // One stream, then 204 (before: a 200 that ended at once, again and again, every 2 s forever).
    expect(run.statuses).toEqual([200, 204]);
    expect(run.ended).toBe(204);
  });

  it("a filtered stream that ends while followed live also lets the client stop", async () => {
    const gw = await startTestGateway(defer);
    const { id } = await createSession(gw, { kind: "stream" });
    const following = followSse(`${gw.url}/v1/sessions/${id}/stream?types=custom`, {
      headers: authHeaders(gw),
      maxConnections: 5,
    });
    await waitFor(() => gw.core.sessions.get(id)!.viewers === 1, 5000, "the viewer");
    await api(gw, "POST", `/v1/sessions/${id}/events`, [{ type: "n", data: 1 }]);
    await appendOutput(gw, id, ["a", "b"]);
    await endStream(gw, id);
    const run = await following;
    expect(events(run.messages).map((e) => e.seq)).toEqual([1]);
    expect(run.statuses).toEqual([200, 204]);
  });

  it("property: clients cut off anywhere, in bursts and replays, with or without a filter, get every event once", async () => {
    const gw = await startTestGateway(defer);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          bursts: fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 3, maxLength: 12 }),
          clients: fc.array(
            fc.record({
              filtered: fc.boolean(),
              startAfterBursts: fc.integer({ min: 0, max: 6 }),
              // After how many messages each connection is cut (then a reconnect).
              cuts: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 5 }),
            }),
            { minLength: 2, maxLength: 6 },
          ),
        }),
        async ({ bursts, clients }) => {
          const { id } = await createSession(gw, { kind: "stream" });
          const url = `${gw.url}/v1/sessions/${id}/stream`;
          const runs: Array<Promise<{ filtered: boolean; got: SessionEvent[]; statuses: number[] }>> = [];
          const start = (c: (typeof clients)[number]) => {
            const cuts = [...c.cuts];
            let sinceCut = 0;
            runs.push(
              followSse(c.filtered ? `${url}?types=custom` : url, {
                headers: authHeaders(gw),
                maxConnections: 50,
                onMessage: () => {
                  if (cuts.length > 0 && ++sinceCut >= cuts[0]!) {
                    cuts.shift();
                    sinceCut = 0;
                    return "cut";
                  }
                },
              }).then((run) => ({ filtered: c.filtered, got: events(run.messages), statuses: run.statuses })),
            );
          };
          for (let b = 0; b < bursts.length; b++) {
            for (const c of clients) if (c.startAfterBursts === b) start(c);
            // A burst: output and custom events interleaved, in one append.
            await api(
              gw,
              "POST",
              `/v1/sessions/${id}/events`,
              Array.from({ length: bursts[b]! }, (_, i) =>
                i % 3 === 0 ? { type: "tick", data: { b, i } } : { type: "output", data: { data: `${b}.${i}\n` } },
              ),
            );
            if (b % 2 === 0) await sleep(1);
          }
          for (const c of clients) if (c.startAfterBursts >= bursts.length) start(c);
          await endStream(gw, id);
          const log = await allEvents(gw, id);
          for (const r of await Promise.all(runs)) {
            const want = r.filtered ? log.filter((e) => e.type === "custom") : log;
            expect(r.got.map((e) => e.seq)).toEqual(want.map((e) => e.seq));
            expect(r.got).toEqual(want);
            // It stopped because the gateway said so, not because it gave up.
            expect(r.statuses.at(-1)).toBe(204);
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it("a filtered stream's heartbeat carries the position it passed, so a reconnect after retention moved on gets no reset", async () => {
    const clock = new ManualClock(Date.now());
    const gw = await startTestGateway(defer, { clock, config: { retention: { maxEvents: 10 } } });
    const { id } = await createSession(gw, { kind: "stream" });
    const url = `${gw.url}/v1/sessions/${id}/stream?types=custom`;
    const messages: SseMessage[] = [];
    const parser = new SseParser((m) => void messages.push(m));
    const first = await open(url, authHeaders(gw));
    defer(() => first.destroy());
    first.setEncoding("utf8");
    first.on("data", (chunk: string) => parser.feed(chunk));
    await waitFor(() => gw.core.sessions.get(id)!.viewers === 1, 5000, "the viewer");
    await api(gw, "POST", `/v1/sessions/${id}/events`, [{ type: "n", data: 1 }]);
    // Output the filter passes over, far more than retention keeps: seq 1 is gone.
    await appendOutput(
      gw,
      id,
      Array.from({ length: 30 }, (_, i) => `${i}\n`),
    );
    await waitFor(() => events(messages).length === 1, 5000, "the custom event");
    clock.advance(SSE_HEARTBEAT_MS);
    await waitFor(() => parser.lastEventId === "31", 5000, "the heartbeat's id");
    // The connection drops; the EventSource comes back with what it has.
    first.destroy();
    parser.reconnect();
    await api(gw, "POST", `/v1/sessions/${id}/events`, [{ type: "n", data: 2 }]);
    const again = await open(url, { ...authHeaders(gw), "Last-Event-ID": parser.lastEventId });
    defer(() => again.destroy());
    expect(again.statusCode).toBe(200);
    again.setEncoding("utf8");
    again.on("data", (chunk: string) => parser.feed(chunk));
    await waitFor(() => events(messages).length === 2, 5000, "the second custom event");
    // Nothing it wanted was dropped: no reset (before: reason "trimmed", since its last id was 1).
    expect(messages.filter((m) => m.event === "reset")).toEqual([]);
    expect(events(messages).map((e) => e.seq)).toEqual([1, 32]);
  });
});

describe("SSE to a slow reader", () => {
  it("a reader that stops while retention passes it gets an explicit reset, then every kept event once, and the end", async () => {
    const gw = await startTestGateway(defer, {
      config: { retention: { maxEvents: 50 }, limits: { queueBytes: 64 * 1024 } },
    });
    const { id } = await createSession(gw, { kind: "stream" });
    const session = gw.core.sessions.get(id)!;
    const res = await open(`${gw.url}/v1/sessions/${id}/stream`, authHeaders(gw));
    defer(() => res.destroy());
    res.pause();
    res.socket.pause();
    await waitFor(() => session.viewers === 1, 5000, "the viewer");
    const chunk = "z".repeat(8 * 1024);
    // Far more than the queue budget and the socket buffers, and than retention keeps.
    for (let i = 0; i < 100; i++)
      await appendOutput(
        gw,
        id,
        Array.from({ length: 20 }, () => chunk),
      );
    await endStream(gw, id);
    const messages: SseMessage[] = [];
    const parser = new SseParser((m) => void messages.push(m));
    res.setEncoding("utf8");
    res.on("data", (c: string) => parser.feed(c));
    const done = new Promise((r) => res.on("end", r));
    res.socket.resume();
    res.resume();
    await done;
    const resets = messages
      .filter((m) => m.event === "reset")
      .map((m) => JSON.parse(m.data) as { reason: string; first: number });
    expect(resets.length).toBeGreaterThan(0);
    expect(resets.every((r) => r.reason === "trimmed")).toBe(true);
    // After each reset, contiguous seqs from its first; at the end, the exit (2001).
    const got = events(messages);
    let expected: number | undefined;
    let resetAt = 0;
    for (const m of messages) {
      if (m.event === "reset") {
        expected = (JSON.parse(m.data) as { first: number }).first;
        resetAt++;
        continue;
      }
      const e = JSON.parse(m.data) as SessionEvent;
      if (expected !== undefined) expect(e.seq, `after reset ${resetAt}`).toBe(expected);
      expected = e.seq + 1;
    }
    expect(got.at(-1)).toMatchObject({ seq: 2001, type: "exit" });
    expect(session.viewers).toBe(0);
  });
});

function open(url: string, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, resolve);
    req.on("error", reject);
    req.end();
  });
}
