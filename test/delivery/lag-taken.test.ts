import { join } from "node:path";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { OUTPUT_COALESCE_MAX_BYTES } from "../../src/core/output-coalescer.js";
import { LAG_SCREEN_QUEUE_BYTES, LAG_TAKEN_EVERY_BYTES } from "../../src/protocol/index.js";
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

interface Mux {
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

/** A `/v1/ws` client subscribed with `lag: "screen"` that reads at once and says `taken` only when told to. */
function muxViewer(url: string, id: string): Promise<Mux> {
  const ws = new WebSocket(`${url.replace("http", "ws")}/v1/ws`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  const m: Mux = {
    ws,
    end: 0,
    pastTaken: 0,
    taken: undefined,
    screens: [],
    exited: false,
    tell(offset) {
      m.taken = offset;
      ws.send(JSON.stringify({ op: "taken", session: id, offset }));
    },
  };
  ws.on("message", (raw: Buffer) => {
    const frame = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    if (frame["op"] === "screen") {
      m.screens.push(frame as { offset: number; skipped?: number });
      m.end = frame["offset"] as number;
    } else if (frame["op"] === "error" || frame["op"] === "reset") throw new Error(JSON.stringify(frame));
    const events =
      frame["op"] === "event" ? [frame["event"]] : frame["op"] === "events" ? (frame["events"] as unknown[]) : [];
    for (const e of events as Array<Record<string, unknown>>) {
      if (e["type"] === "exit") m.exited = true;
      if (e["type"] !== "output") continue;
      const bytes = Buffer.from(e["data"] as string, e["enc"] === "base64" ? "base64" : "utf8");
      const at = e["offset"] as number;
      // Contiguous: after a screen the first event may begin before its offset.
      if (at > m.end || at + bytes.length <= m.end)
        throw new Error(`output at ${at}+${bytes.length}, expected ${m.end}`);
      m.end = at + bytes.length;
      if (m.taken !== undefined) m.pastTaken = Math.max(m.pastTaken, m.end - m.taken);
    }
  });
  return new Promise((resolve, reject) => {
    ws.on("open", () => {
      ws.send(JSON.stringify({ op: "subscribe", session: id, since: 0, lag: "screen", ref: 1 }));
      resolve(m);
    });
    ws.on("error", reject);
  });
}

describe("/v1/ws `taken`: what a lag=screen subscriber took", () => {
  it("bounds the output sent past it, socket buffers included; told more, the subscriber jumps to the screen", async () => {
    const gw = await testGateway();
    const { id, session } = await flood(gw, join(tempDir(), "text"), RED_LINES);
    const m = await muxViewer(gw.url, id);
    await waitFor(() => m.end > 0, 10_000, "the first output");
    m.tell(0);
    // Told nothing more for a while, though it read everything at once: the kernel's socket
    // buffers alone would hold megabytes of it.
    await waitFor(() => session.log.outputBytes > 4 * 1024 * 1024, 60_000, "4 MB of the flood");
    await sleep(500);
    expect(m.pastTaken).toBeGreaterThan(LAG_TAKEN_EVERY_BYTES);
    expect(m.pastTaken).toBeLessThanOrEqual(SENT_PAST_TAKEN_MAX);
    expect(m.end).toBeLessThan(session.log.outputBytes - 1024 * 1024);
    // Told it took everything: far behind the log now, it is sent the screen, then follows.
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
  }, 90_000);
});
