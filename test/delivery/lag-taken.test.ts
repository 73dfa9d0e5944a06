import { join } from "node:path";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { OUTPUT_COALESCE_MAX_BYTES } from "../../src/core/output-coalescer.js";
import { LAG_SCREEN_QUEUE_BYTES, LAG_TAKEN_EVERY_BYTES } from "../../src/protocol/index.js";
import { TerminalClient } from "../../src/client/terminal.js";
import { CATCHUP_BATCH_BYTES } from "../../src/server/ws/feed.js";
import { TEST_TOKEN, testGateway } from "../helpers/gateway.js";
import { sleep } from "../helpers/sleep.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";
import { RED_LINES, flood } from "../screen/lag-viewers.js";

/**
 * Most output sent past a `lag: "screen"` subscriber's last `taken`: the queue it may have, one
 * catch-up batch read while under it, and one event past that batch.
 */
const SENT_PAST_TAKEN_MAX = LAG_SCREEN_QUEUE_BYTES + CATCHUP_BATCH_BYTES + OUTPUT_COALESCE_MAX_BYTES;

/** A lag=screen viewer that reads at once and says `taken` only when told to. */
interface Viewed {
  ws: WebSocket;
  /** Where the output received so far ends (a screen moves it to its offset). */
  end: number;
  /** The most output sent past the last `taken` while it was the last. */
  pastTaken: number;
  taken: number | undefined;
  screens: Array<{ offset: number; skipped?: number }>;
  exited: boolean;
  tell(offset: number): void;
}

/**
 * A viewer on `path` that says `taken` as `takenFrame` writes it. `onFrame` reads each frame
 * with `output` (output bytes starting at a byte) and `screen` (a screen frame).
 */
function viewer(
  url: string,
  path: string,
  takenFrame: (offset: number) => object,
  onFrame: (frame: Record<string, unknown>, v: Viewed, output: (at: number, bytes: Buffer) => void) => void,
): Promise<Viewed> {
  const ws = new WebSocket(`${url.replace("http", "ws")}${path}`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  const v: Viewed = {
    ws,
    end: 0,
    pastTaken: 0,
    taken: undefined,
    screens: [],
    exited: false,
    tell(offset) {
      v.taken = offset;
      ws.send(JSON.stringify(takenFrame(offset)));
    },
  };
  const output = (at: number, bytes: Buffer) => {
    // Contiguous: after a screen the first piece may begin before its offset.
    if (at > v.end || at + bytes.length <= v.end) throw new Error(`output at ${at}+${bytes.length}, expected ${v.end}`);
    v.end = at + bytes.length;
    if (v.taken !== undefined) v.pastTaken = Math.max(v.pastTaken, v.end - v.taken);
  };
  ws.on("message", (raw: Buffer) => {
    const frame = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    if (frame["op"] === "screen" || frame["type"] === "screen") {
      v.screens.push(frame as { offset: number; skipped?: number });
      v.end = frame["offset"] as number;
    }
    onFrame(frame, v, output);
  });
  return new Promise((resolve, reject) => {
    ws.on("open", () => resolve(v));
    ws.on("error", reject);
  });
}

const dataOf = (frame: Record<string, unknown>) =>
  Buffer.from(frame["data"] as string, frame["enc"] === "base64" ? "base64" : "utf8");

/** A `/v1/ws` client subscribed with `lag: "screen"`. */
async function muxViewer(url: string, id: string): Promise<Viewed> {
  const v = await viewer(
    url,
    "/v1/ws",
    (offset) => ({ op: "taken", session: id, offset }),
    (frame, v, output) => {
      if (frame["op"] === "error" || frame["op"] === "reset") throw new Error(JSON.stringify(frame));
      const events =
        frame["op"] === "event" ? [frame["event"]] : frame["op"] === "events" ? (frame["events"] as unknown[]) : [];
      for (const e of events as Array<Record<string, unknown>>) {
        if (e["type"] === "exit") v.exited = true;
        if (e["type"] === "output") output(e["offset"] as number, dataOf(e));
      }
    },
  );
  v.ws.send(JSON.stringify({ op: "subscribe", session: id, since: 0, lag: "screen", ref: 1 }));
  return v;
}

/** A `/ws/session?lag=screen` viewer (text frames). */
function terminalViewer(url: string, id: string): Promise<Viewed> {
  return viewer(
    url,
    `/ws/session/${id}?since=0&lag=screen`,
    (offset) => ({ type: "taken", offset }),
    (frame, v, output) => {
      const type = frame["type"];
      if (type === "exit") v.exited = true;
      else if (type === "error") throw new Error(JSON.stringify(frame));
      if (type !== "stdout" && type !== "replay") return;
      const bytes = dataOf(frame);
      // A replay frame's offset is where it ends; a live one's where it starts.
      output(type === "replay" ? (frame["offset"] as number) - bytes.length : (frame["offset"] as number), bytes);
    },
  );
}

/**
 * What a viewer not told `taken` is sent, the kernel's socket buffers holding megabytes of it;
 * then, told it took everything, that it is sent the screen and follows to the exit.
 */
async function boundedThenJumps(
  gw: Awaited<ReturnType<typeof testGateway>>,
  m: Viewed,
  session: { log: { outputBytes: number } },
) {
  await waitFor(() => m.end > 0, 10_000, "the first output");
  m.tell(0);
  await waitFor(() => session.log.outputBytes > 4 * 1024 * 1024, 60_000, "4 MB of the flood");
  await sleep(500);
  expect(m.pastTaken).toBeGreaterThan(LAG_TAKEN_EVERY_BYTES);
  expect(m.pastTaken).toBeLessThanOrEqual(SENT_PAST_TAKEN_MAX);
  expect(m.end).toBeLessThan(session.log.outputBytes - 1024 * 1024);
  m.tell(m.end);
  await waitFor(() => m.screens.length > 0, 20_000, "a screen");
  expect(m.screens[0]!.skipped).toBeGreaterThan(0);
  const told = setInterval(() => m.tell(m.end), 20);
  try {
    await waitFor(() => m.exited, 60_000, "the exit");
  } finally {
    clearInterval(told);
  }
  expect(m.end).toBe(session.log.outputBytes);
  m.ws.close();
  await gw.close();
}

describe("/v1/ws `taken`: what a lag=screen subscriber took", () => {
  it("bounds the output sent past it, socket buffers included; told more, the subscriber jumps to the screen", async () => {
    const gw = await testGateway();
    const { id, session } = await flood(gw, join(tempDir(), "text"), RED_LINES);
    await boundedThenJumps(gw, await muxViewer(gw.url, id), session);
  }, 90_000);
});

describe("/ws/session `taken`: what a lag=screen viewer took", () => {
  it("bounds the output sent past it, socket buffers included; told more, the viewer jumps to the screen", async () => {
    const gw = await testGateway();
    const { id, session } = await flood(gw, join(tempDir(), "text"), RED_LINES);
    await boundedThenJumps(gw, await terminalViewer(gw.url, id), session);
  }, 90_000);

  it("is said by the SDK's TerminalClient with lag: from `connected` on, then every LAG_TAKEN_EVERY_BYTES and at each screen", async () => {
    const gw = await testGateway();
    const { id, session } = await flood(gw, join(tempDir(), "text"), RED_LINES);
    const sent: Array<{ type: string; offset?: number }> = [];
    /** ws's WebSocket, recording the text frames the client sends. */
    class Recording extends WebSocket {
      override send(data: unknown, ...rest: unknown[]): void {
        if (typeof data === "string") sent.push(JSON.parse(data) as { type: string; offset?: number });
        (super.send as (...args: unknown[]) => void)(data, ...rest);
      }
    }
    const client = new TerminalClient({
      url: gw.url,
      token: TEST_TOKEN,
      session: id,
      since: 0,
      lag: "screen",
      WebSocket: Recording as unknown as typeof WebSocket,
    });
    const screens: number[] = [];
    client.on("screen", (screen) => screens.push(screen.offset));
    await client.done;
    const taken = sent.filter((f) => f.type === "taken").map((f) => f.offset!);
    expect(taken.length).toBeGreaterThan(1);
    // Each one at a screen's offset, or at least LAG_TAKEN_EVERY_BYTES past the one before.
    for (let i = 1; i < taken.length; i++)
      expect(screens.includes(taken[i]!) || taken[i]! - taken[i - 1]! >= LAG_TAKEN_EVERY_BYTES).toBe(true);
    expect(taken.at(-1)!).toBeLessThanOrEqual(session.log.outputBytes);
    expect(session.log.outputBytes - taken.at(-1)!).toBeLessThan(LAG_TAKEN_EVERY_BYTES + OUTPUT_COALESCE_MAX_BYTES);
    await gw.close();
  }, 90_000);
});
