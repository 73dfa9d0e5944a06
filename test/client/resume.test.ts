import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, OutputView, TerminalClient } from "../../src/client/node.js";
import type { SessionEvent } from "../../src/client/node.js";
import { FaultProxy, countingCommand, countingText, startTestGateway } from "./helpers.js";
import type { TestGateway } from "./helpers.js";
import { sleep } from "../helpers/sleep.js";

/** Lines the producer prints, and over how long: cuts land while output flows. */
const LINES = 2_000;
const PRODUCE_MS = 1_000;
const RUNS = 4;
const FAST_RECONNECT = { initialDelayMs: 10, maxDelayMs: 100 };

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw.close();
});

/** Cut times in ms from the start of output, sorted. */
const cutTimes = fc
  .array(fc.integer({ min: 0, max: PRODUCE_MS - 100 }), { minLength: 1, maxLength: 5 })
  .map((a) => [...a].sort((x, y) => x - y));

async function cutAt(proxy: FaultProxy, times: readonly number[]): Promise<void> {
  let elapsed = 0;
  for (const t of times) {
    await sleep(t - elapsed);
    elapsed = t;
    proxy.cut();
  }
}

describe("resume after dropped connections", () => {
  it("delivers every event exactly once, in order, whenever the socket is cut (/v1/ws)", async () => {
    await fc.assert(
      fc.asyncProperty(cutTimes, async (times) => {
        const proxy = await FaultProxy.start(gw.url);
        const client = await connect({ url: proxy.url, token: gw.token, reconnect: FAST_RECONNECT });
        try {
          const session = await client.createSession({ command: countingCommand(LINES, PRODUCE_MS) });
          const all: SessionEvent[] = [];
          const view = new OutputView();
          const outputs: SessionEvent[] = [];
          const sub = client.subscribe(session.id, { since: 0 }, (e) => all.push(e));
          await sleep(times[0]! / 2);
          // A second subscription to the same session joins later from seq 0: it shares the
          // server-side subscription, which moves back, so the first one sees replays it must drop.
          const outputSub = client.subscribe(session.id, { since: 0, types: ["output"] }, (e) => {
            outputs.push(e);
            view.push(e);
          });
          await cutAt(
            proxy,
            times.map((t) => t - times[0]! / 2),
          );
          const end = await sub.done;
          await outputSub.done;

          expect(end?.type).toBe("exit");
          expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
          const text = all.map((e) => (e.type === "output" ? e.data : "")).join("");
          expect(text).toBe(countingText(LINES));
          expect(outputs.every((e) => e.type === "output")).toBe(true);
          expect(view.text()).toBe(countingText(LINES));
          expect(view.gaps).toBe(0);
          // The cuts really forced reconnects (each cut before the end costs one connection).
          expect(proxy.upgrades).toBeGreaterThan(1);
        } finally {
          client.close();
          await proxy.close();
        }
      }),
      { numRuns: RUNS },
    );
  }, 60_000);

  it("delivers every output byte exactly once whenever the socket is cut (/ws/session)", async () => {
    await fc.assert(
      fc.asyncProperty(cutTimes, async (times) => {
        const proxy = await FaultProxy.start(gw.url);
        const session = (await (
          await fetch(`${gw.url}/v1/sessions`, {
            method: "POST",
            headers: { Authorization: `Bearer ${gw.token}`, "Content-Type": "application/json" },
            body: JSON.stringify({ command: countingCommand(LINES, PRODUCE_MS) }),
          })
        ).json()) as { id: string };
        const term = new TerminalClient({
          url: proxy.url,
          token: gw.token,
          session: session.id,
          since: 0,
          reconnect: FAST_RECONNECT,
        });
        const chunks: Buffer[] = [];
        let expectedOffset = 0;
        let misplaced = 0;
        term.on("data", ({ bytes, offset }) => {
          if (offset !== expectedOffset) misplaced++;
          expectedOffset = offset + bytes.length;
          chunks.push(Buffer.from(bytes));
        });
        try {
          await cutAt(proxy, times);
          const exit = await term.done;
          expect(exit).toEqual({ exitCode: 0, signal: null, state: "exited" });
          expect(misplaced).toBe(0);
          expect(Buffer.concat(chunks).toString("utf8")).toBe(countingText(LINES));
        } finally {
          term.close();
          await proxy.close();
        }
      }),
      { numRuns: RUNS },
    );
  }, 60_000);
});
