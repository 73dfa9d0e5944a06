/**
 * docs/architecture.md, guarantee 1 (the named cases): reconnect during replay, resume after a gateway
 * restart on the same data dir, SSE resume with Last-Event-ID, and a byte-offset resume
 * into output that retention already dropped.
 */
import WebSocket from "ws";
import { describe, expect, it, onTestFinished } from "vitest";
import type { SessionEvent } from "../../src/protocol/index.js";
import type { Gateway } from "../../src/server/gateway.js";
import {
  MuxClient,
  allEvents,
  appendOutput,
  authHeaders,
  closed,
  decodeData,
  endStream,
  opened,
  outputBytes,
  startTestGateway,
  tempDataDir,
  wsUrl,
} from "./helpers.js";
import type { Defer } from "./helpers.js";
import { createSession } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const defer: Defer = (fn) => onTestFinished(async () => void (await fn()));

/** A node one-liner that prints `bytes` of numbered text and exits. */
function printer(bytes: number): string[] {
  return [
    process.execPath,
    "-e",
    `let s = ""; for (let i = 0; s.length < ${bytes}; i++) s += "line " + i + " " + "x".repeat(i % 97) + "\\n"; process.stdout.write(s.slice(0, ${bytes}));`,
  ];
}

async function waitEnded(gw: Gateway, id: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${gw.url}/v1/sessions/${id}`, { headers: authHeaders(gw) });
    const info = (await res.json()) as { state: string };
    if (info.state !== "running") return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`session ${id} did not end`);
}

/** One /ws/session connection from `since`; `stopAfter` data frames it cuts the connection. */
async function terminalRead(
  gw: Gateway,
  id: string,
  since: number,
  stopAfter = Infinity,
): Promise<{ bytes: Buffer; position: number; frames: Array<Record<string, unknown>>; exited: boolean; cut: boolean }> {
  const ws = new WebSocket(wsUrl(gw, `/ws/session/${id}?since=${since}`), { headers: authHeaders(gw) });
  defer(() => ws.terminate());
  const chunks: Buffer[] = [];
  const frames: Array<Record<string, unknown>> = [];
  let position = since;
  let dataFrames = 0;
  let exited = false;
  let cut = false;
  ws.on("message", (raw) => {
    if (cut) return;
    const f = JSON.parse(raw.toString()) as Record<string, unknown>;
    frames.push(f);
    if (f["type"] === "replay" || f["type"] === "stdout" || f["type"] === "stderr") {
      const b = decodeData(f["data"] as string, f["enc"] as string | undefined);
      chunks.push(b);
      position += b.length;
      if (++dataFrames >= stopAfter) {
        cut = true;
        ws.terminate();
      }
    }
    if (f["type"] === "exit") exited = true;
  });
  await opened(ws);
  await closed(ws);
  return { bytes: Buffer.concat(chunks), position, frames, exited, cut };
}

describe("resume", () => {
  it("reconnecting during a /ws/session replay gives exactly the missing bytes", async () => {
    const gw = await startTestGateway(defer);
    const { id } = await createSession(gw, { command: printer(3_000_000) });
    await waitEnded(gw, id);
    const expected = await outputBytes(gw, id);
    expect(expected.length).toBe(3_000_000);

    // Cut after every first replay frame: each connection ends in the middle of its replay.
    let position = 0;
    const parts: Buffer[] = [];
    let connections = 0;
    for (;;) {
      connections++;
      const r = await terminalRead(gw, id, position, 1);
      parts.push(r.bytes);
      expect(r.frames[0]?.["type"]).toBe(r.position === expected.length && !r.cut ? "connected" : "replay");
      position = r.position;
      if (!r.cut) {
        expect(r.exited).toBe(true);
        break;
      }
      expect(connections).toBeLessThan(100);
    }
    expect(connections).toBeGreaterThan(3);
    expect(Buffer.concat(parts).equals(expected)).toBe(true);
  });

  it("reconnecting during a /v1/ws catch-up gives exactly the missing events", async () => {
    const gw = await startTestGateway(defer);
    const { id } = await createSession(gw, { kind: "stream" });
    for (let b = 0; b < 5; b++)
      await appendOutput(
        gw,
        id,
        Array.from({ length: 1000 }, (_, i) => `event ${b * 1000 + i} ${"z".repeat(200)}\n`),
      );
    await endStream(gw, id);
    const all = await allEvents(gw, id);

    const got: SessionEvent[] = [];
    let connections = 0;
    while (got[got.length - 1]?.type !== "exit") {
      connections++;
      const c = await MuxClient.open(gw, defer);
      c.subscribe(id, got.length);
      const firstBatch = await c.frame((f) => f.op === "events" || f.op === "event", 5000, "a catch-up batch");
      c.ws.terminate();
      got.push(...(firstBatch.events ?? [firstBatch.event!]));
      expect(c.errors).toEqual([]);
      expect(connections).toBeLessThan(100);
    }
    expect(connections).toBeGreaterThan(3);
    expect(got).toEqual(all);
  });

  it("resume after a gateway restart gives exactly the missing events and bytes", async () => {
    const dataDir = tempDataDir(defer);
    const first = await startTestGateway(defer, { dataDir });
    const stream = (await createSession(first, { kind: "stream" })).id;
    const pipe = (await createSession(first, { command: printer(200_000) })).id;
    const pty = (await createSession(first, { command: ["cat"], pty: true })).id;
    await waitEnded(first, pipe);
    await appendOutput(
      first,
      stream,
      Array.from({ length: 150 }, (_, i) => `before ${i}\n`),
    );

    // A client follows the stream session, then goes away.
    const c = await MuxClient.open(first, defer);
    c.subscribe(stream, 0);
    c.subscribe(pty, 0);
    await c.until(() => (c.state.get(stream)?.lastSeq ?? 0) >= 150, 5000, "150 events");
    const seenStream = c.state.get(stream)!.events.slice();
    const seenPty = c.state.get(pty)!.lastSeq;
    c.ws.terminate();
    // More happens while it is away, right before the close (queued, not yet group-committed).
    await appendOutput(
      first,
      stream,
      Array.from({ length: 150 }, (_, i) => `after ${i}\n`),
    );
    const pipeBytes = await outputBytes(first, pipe);
    await first.close();

    const second = await startTestGateway(defer, { dataDir });
    // The stream goes on on the new gateway (streams outlive restarts), then ends.
    await appendOutput(
      second,
      stream,
      Array.from({ length: 50 }, (_, i) => `restarted ${i}\n`),
    );
    await endStream(second, stream);
    const streamAll = await allEvents(second, stream);
    expect(streamAll.slice(0, seenStream.length)).toEqual(seenStream);
    expect(streamAll.length).toBe(351);

    const again = await MuxClient.open(second, defer);
    again.subscribe(stream, seenStream.length, c.state.get(stream)!.byteCount);
    again.subscribe(pty, seenPty);
    await again.until(() => again.state.get(stream)!.ended && again.state.get(pty)!.ended, 5000, "both sessions' ends");
    expect(again.errors).toEqual([]);
    expect(again.state.get(stream)!.events).toEqual(streamAll.slice(seenStream.length));
    const ptyAll = await allEvents(second, pty);
    expect(again.state.get(pty)!.events).toEqual(ptyAll.slice(seenPty));
    expect(["exit", "lost"]).toContain(ptyAll[ptyAll.length - 1]!.type);

    // The terminal endpoint resumes by byte offset in the restored output.
    const half = Math.floor(pipeBytes.length / 2) + 3;
    const r = await terminalRead(second, pipe, half);
    expect(r.frames.map((f) => f["type"]).filter((t, i, a) => t !== a[i - 1])).toEqual(["replay", "connected", "exit"]);
    expect(r.bytes.equals(pipeBytes.subarray(half))).toBe(true);
  });

  it("SSE resumes with Last-Event-ID with exactly the missing events", async () => {
    const gw = await startTestGateway(defer);
    const { id } = await createSession(gw, { kind: "stream" });
    await appendOutput(
      gw,
      id,
      Array.from({ length: 50 }, (_, i) => `a${i}\n`),
    );

    const firstPart = await readSse(gw, id, {}, (events) => events.length >= 20);
    expect(firstPart.map((e) => e.id)).toEqual(Array.from({ length: firstPart.length }, (_, i) => i + 1));
    const lastId = 20;

    await appendOutput(
      gw,
      id,
      Array.from({ length: 30 }, (_, i) => `b${i}\n`),
    );
    const ending = readSse(gw, id, { lastEventId: lastId }, () => false);
    await appendOutput(
      gw,
      id,
      Array.from({ length: 5 }, (_, i) => `c${i}\n`),
    );
    await endStream(gw, id);
    const rest = await ending; // the stream ends by itself after the exit event
    const all = await allEvents(gw, id);
    expect(rest.map((e) => e.event)).toEqual(all.slice(lastId));
    expect(rest.map((e) => e.id)).toEqual(all.slice(lastId).map((e) => e.seq));
  });

  it("a /ws/session resume into output dropped by retention says so, then continues from what is kept", async () => {
    const gw = await startTestGateway(defer, { config: { retention: { maxEvents: 20 } } });
    const { id } = await createSession(gw, { kind: "stream" });
    await appendOutput(
      gw,
      id,
      Array.from({ length: 100 }, (_, i) => `line ${String(i).padStart(3, "0")}\n`),
    );
    const info = await fetch(`${gw.url}/v1/sessions/${id}`, { headers: authHeaders(gw) }).then(
      (r) => r.json() as Promise<{ outputBytes: number; first: number }>,
    );
    const ws = new WebSocket(wsUrl(gw, `/ws/session/${id}?since=0`), { headers: authHeaders(gw) });
    defer(() => ws.terminate());
    const frames: Array<Record<string, unknown>> = [];
    ws.on("message", (raw) => frames.push(JSON.parse(raw.toString()) as Record<string, unknown>));
    const outcome = await new Promise<string>((resolve) => {
      ws.once("unexpected-response", (_req, res) => resolve(`http ${res.statusCode}`));
      ws.once("error", (e) => resolve(`error ${e.message}`));
      ws.once("open", () => resolve("open"));
    });
    expect(outcome).toBe("open");
    await waitFor(() => frames.some((f) => f["type"] === "connected"), 5000, "connected");
    expect(frames[0]).toMatchObject({ type: "error", code: "HISTORY_TRIMMED" });
    // The kept output follows, ending exactly at the end of the output.
    const replay = frames.filter((f) => f["type"] === "replay");
    const kept = 100 - 20 + 1; // the newest 20 events
    const keptText = Array.from(
      { length: 100 - kept + 1 },
      (_, i) => `line ${String(kept - 1 + i).padStart(3, "0")}\n`,
    ).join("");
    expect(replay.map((f) => f["data"]).join("")).toBe(keptText);
    expect(replay[replay.length - 1]?.["offset"]).toBe(info.outputBytes);
    // The error says which bytes were dropped: from what was asked to where the kept output starts.
    expect(frames[0]).toMatchObject({ from: 0, to: info.outputBytes - keptText.length });
    expect(frames.find((f) => f["type"] === "connected")?.["offset"]).toBe(info.outputBytes);
    // Still live afterwards.
    await appendOutput(gw, id, ["tail\n"]);
    await waitFor(() => frames.some((f) => f["type"] === "stdout" && f["data"] === "tail\n"), 5000, "live output");
    expect(gw.core.sessions.get(id)!.viewers).toBe(1);
  });
});

/** Reads an SSE stream until `enough` or the end; returns the events with their ids. */
async function readSse(
  gw: Gateway,
  id: string,
  options: { lastEventId?: number },
  enough: (events: Array<{ id: number; event: SessionEvent }>) => boolean,
): Promise<Array<{ id: number; event: SessionEvent }>> {
  const abort = new AbortController();
  defer(() => abort.abort());
  const res = await fetch(`${gw.url}/v1/sessions/${id}/stream`, {
    headers: {
      ...authHeaders(gw),
      ...(options.lastEventId !== undefined ? { "Last-Event-ID": String(options.lastEventId) } : {}),
    },
    signal: abort.signal,
  });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: Array<{ id: number; event: SessionEvent }> = [];
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return events;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = new Map<string, string>();
      for (const l of block.split("\n")) {
        const colon = l.indexOf(":");
        if (colon > 0) fields.set(l.slice(0, colon), l.slice(colon + 1).trimStart());
      }
      if (fields.has("data") && fields.has("id") && !fields.has("event")) {
        events.push({ id: Number(fields.get("id")), event: JSON.parse(fields.get("data")!) as SessionEvent });
        if (enough(events)) {
          abort.abort();
          return events;
        }
      }
    }
  }
}
