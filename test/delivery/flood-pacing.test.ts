/**
 * Issue 3, scope 7: a `yes` flood must not become a million tiny frames. Output is coalesced
 * into events of up to 64 KiB, and while a connection's socket is busy its events are held
 * and sent together, so the number of frames stays far below the number of lines.
 */
import WebSocket from "ws";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Gateway } from "../../src/server/gateway.js";
import {
  MuxClient,
  authHeaders,
  createSession,
  decodeData,
  eventually,
  opened,
  rawSocket,
  sleep,
  startTestGateway,
  wsUrl,
} from "./helpers.js";
import type { Defer } from "./helpers.js";

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
      await eventually(() => termBytes >= FLOOD_BYTES, 30_000, `${FLOOD_BYTES} bytes over /ws/session`);
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
    const id = await flood(gw, false);
    const mux = await MuxClient.open(gw, defer, { keep: false });
    let events = 0;
    mux.onEvent = () => events++;
    mux.subscribe(id, 0);
    await mux.until(() => events > 0, 5000, "the first event");
    // A client that reads in fits: its socket is busy most of the time.
    for (let i = 0; i < 5; i++) {
      rawSocket(mux.ws).pause();
      await sleep(60);
      rawSocket(mux.ws).resume();
      await sleep(20);
    }
    expect(mux.errors).toEqual([]);
    // More events than frames: several events travelled in one `events` frame.
    expect(events).toBeGreaterThan(mux.dataFrames * 1.5);
  });
});
