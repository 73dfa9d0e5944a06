/**
 * Flood pacing: a `yes` flood must not become a million tiny frames. Output is coalesced
 * into events of up to 64 KiB, and while a connection's socket is busy its events are held
 * and sent together, so the number of frames stays far below the number of lines (or events).
 */
import WebSocket from "ws";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Gateway } from "../../src/server/gateway.js";
import {
  MuxClient,
  appendOutput,
  authHeaders,
  decodeData,
  endStream,
  opened,
  rawSocket,
  startTestGateway,
  wsUrl,
} from "./helpers.js";
import type { Defer } from "./helpers.js";
import { createSession } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const defer: Defer = (fn) => onTestFinished(async () => void (await fn()));

/** Bytes of the flood each client reads before the test stops it. */
const FLOOD_BYTES = 8 * 1024 * 1024;
/** `yes` writes a line per 2 bytes (3 in a PTY). Frames must carry at least this many bytes on average. */
const MIN_BYTES_PER_FRAME = 4096;

/** True when `text`, found at byte `offset` of the output, is what `yes` prints there (`line` is "y\n" or, in a PTY, "y\r\n"). */
function isYes(text: string, offset: number, line: string): boolean {
  const start = offset % line.length;
  const pattern = line.repeat(Math.ceil(text.length / line.length) + 1);
  return pattern.slice(start, start + text.length) === text;
}

async function flood(gw: Gateway, pty: boolean): Promise<string> {
  const { id } = await createSession(gw, { command: ["yes"], pty });
  return id;
}

describe("flood pacing", () => {
  for (const pty of [false, true]) {
    it(`a ${pty ? "PTY" : "pipe"} yes flood reaches /v1/ws and /ws/session as large frames`, async () => {
      const gw = await startTestGateway(defer);
      const id = await flood(gw, pty);
      const line = pty ? "y\r\n" : "y\n";
      const mux = await MuxClient.open(gw, defer, { keep: false });
      mux.onEvent = (_s, e) => {
        if (e.type === "output" && !isYes(decodeData(e.data, e.enc).toString("latin1"), e.offset, line))
          mux.errors.push(`not yes output at ${e.offset}`);
      };
      mux.subscribe(id, 0);

      const term = new WebSocket(wsUrl(gw, `/ws/session/${id}?since=0`), { headers: authHeaders(gw) });
      defer(() => term.terminate());
      let termFrames = 0;
      let termBytes = 0;
      const termErrors: string[] = [];
      term.on("message", (raw) => {
        const f = JSON.parse(raw.toString()) as { type: string; data?: string; enc?: string; offset?: number };
        if (f.type !== "replay" && f.type !== "stdout") return;
        const bytes = decodeData(f.data!, f.enc);
        const start = f.type === "replay" ? f.offset! - bytes.length : f.offset!;
        if (start !== termBytes) termErrors.push(`${f.type} at ${start} with ${termBytes} bytes`);
        if (!isYes(bytes.toString("latin1"), start, line)) termErrors.push(`not yes output at ${start}`);
        termFrames++;
        termBytes += bytes.length;
      });
      await opened(term);

      await mux.until(
        () => (mux.state.get(id)?.byteCount ?? 0) >= FLOOD_BYTES,
        30_000,
        `${FLOOD_BYTES} bytes over /v1/ws`,
      );
      await waitFor(() => termBytes >= FLOOD_BYTES, 30_000, `${FLOOD_BYTES} bytes over /ws/session`);
      const muxBytes = mux.state.get(id)!.byteCount;
      expect(mux.errors).toEqual([]);
      expect(termErrors).toEqual([]);
      // 8 MiB of "y\\n" is 4 million lines; it must arrive in at most a couple of thousand frames.
      expect(muxBytes / mux.dataFrames).toBeGreaterThan(MIN_BYTES_PER_FRAME);
      expect(termBytes / termFrames).toBeGreaterThan(MIN_BYTES_PER_FRAME);
    });
  }

  it("holds events while a socket is busy and sends them together", async () => {
    const gw = await startTestGateway(defer);
    const { id } = await createSession(gw, { kind: "stream" });
    const mux = await MuxClient.open(gw, defer, { keep: false });
    let events = 0;
    mux.onEvent = () => events++;
    mux.subscribe(id, 0);
    await mux.frame((f) => f.op === "subscribed");
    // The client stops reading while 3,000 small events (12 MB) are appended one request at a
    // time: its socket fills up, and what follows is held and sent in batches.
    rawSocket(mux.ws).pause();
    for (let a = 0; a < 30; a++) {
      await appendOutput(
        gw,
        id,
        Array.from({ length: 100 }, (_, i) => `${a * 100 + i}:${"e".repeat(4000)}\n`),
      );
    }
    await endStream(gw, id);
    rawSocket(mux.ws).resume();
    await mux.until(() => mux.state.get(id)!.ended, 20_000, "the end");
    expect(mux.errors).toEqual([]);
    expect(events).toBe(3001);
    // Far fewer frames than events: they travelled together in `events` frames.
    expect(mux.dataFrames).toBeLessThan(events / 4);
  });
});
