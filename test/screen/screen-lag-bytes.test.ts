import { join } from "node:path";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { DEFAULT_LIMITS } from "../../src/server/config/config.js";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";
import { RED_LINES, flood, slowMuxViewer, slowViewer, wholeOutput } from "./lag-viewers.js";

// What a viewer that falls behind gets as bytes: none of these waits for the screen thread, so
// they run in the pool; what a screen shows is test/screen/screen-lag.test.ts (alone).

/**
 * The gateway's screen thread held up, as a starved one (it runs at nice 10) is on a loaded
 * machine: no screen ever comes. Returns how many were asked for.
 */
function holdScreens(gw: Awaited<ReturnType<typeof testGateway>>): { asked: number } {
  const count = { asked: 0 };
  gw.core.screens.screen = () => {
    count.asked++;
    return new Promise(() => undefined);
  };
  return count;
}

describe("/ws/session/:id?lag=screen", () => {
  it.each([
    [
      "/ws/session",
      (url: string, id: string, resume: Promise<unknown>) => slowViewer(url, id, "lag=screen&output=binary", resume),
    ],
    ["/v1/ws", slowMuxViewer],
  ])(
    `on %s, a viewer whose screen does not come gets every byte again after ${DEFAULT_LIMITS.lagScreenWaitMs} ms, to the exit (regression: viewers hung under load)`,
    async (_endpoint, watch) => {
      const gw = await testGateway();
      const held = holdScreens(gw);
      const { id, session, resume } = await flood(gw, join(tempDir(), "text"), RED_LINES);
      const w = await watch(gw.url, id, resume);
      // One screen asked for, and none sent: the viewer went on with bytes from where it stopped,
      // every one from where it joined (/ws/session without `since`: the flood's end by then).
      expect(held.asked).toBe(1);
      expect(w.screens).toEqual([]);
      expect({ joined: w.start, end: w.start + w.output.length }).toEqual({
        joined: w.start,
        end: session.log.outputBytes,
      });
      expect(w.output.equals(wholeOutput(session).subarray(w.start))).toBe(true);
      await gw.close();
    },
    60_000,
  );

  it("without lag=screen, a viewer that falls behind the same flood gets every byte", async () => {
    const gw = await testGateway();
    const { id, session, resume } = await flood(gw, join(tempDir(), "text"), RED_LINES);
    const w = await slowViewer(gw.url, id, "since=0", resume);
    expect(w.screens).toEqual([]);
    expect(w.output.length).toBe(session.log.outputBytes);
    expect(w.output.equals(wholeOutput(session))).toBe(true);
    await gw.close();
  }, 200_000);

  it("refuses a lag other than screen before the upgrade", async () => {
    const gw = await testGateway();
    const { json } = await api(gw.url).post("/v1/sessions", { command: ["sleep", "5"], pty: true });
    const ws = new WebSocket(`${gw.url.replace("http", "ws")}/ws/session/${json.id}?lag=bytes`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    const refusal = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
      ws.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      });
      ws.on("open", () => reject(new Error("upgraded")));
    });
    expect(refusal.status).toBe(400);
    expect(JSON.parse(refusal.body)).toMatchObject({ error: { code: "BAD_REQUEST", message: "lag must be screen" } });
    await gw.close();
  });
});
