/**
 * Review of 2f4feee: a type-filtered feed that examines a long log goes on by setImmediate
 * (SessionFeed.pumpSoon). An SSE stream's feed is closed only when its response emits "close",
 * which comes after the gateway has closed the log at shutdown: the pending step then read a
 * closed database (uncaught "The database connection is not open").
 */
import { describe, expect, it, onTestFinished } from "vitest";
import { FILTERED_SCAN_EVENTS } from "../../src/log/log-reader.js";
import { api, authHeaders, startTestGateway } from "./helpers.js";
import type { Defer } from "./helpers.js";
import { createSession } from "../helpers/gateway.js";

const defer: Defer = (fn) => onTestFinished(async () => void (await fn()));

describe("SSE at shutdown", () => {
  it("a gateway that stops while a type-filtered stream scans a long log stops without an uncaught error", async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    onTestFinished(() => void process.off("uncaughtException", onUncaught));
    const gw = await startTestGateway(defer, { config: { limits: { eventsPerAppend: 10_000 } } });
    const { id } = await createSession(gw, { kind: "stream" });
    // Many stretches of FILTERED_SCAN_EVENTS without an exit: the feed scans them one step at a time.
    const batch = Array.from({ length: 10_000 }, (_, i) => ({ type: "n", data: i }));
    for (let n = 0; n < 30 * FILTERED_SCAN_EVENTS; n += batch.length)
      await api(gw, "POST", `/v1/sessions/${id}/events`, batch);
    const controller = new AbortController();
    const res = await fetch(`${gw.url}/v1/sessions/${id}/stream?types=exit`, {
      headers: authHeaders(gw),
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    await gw.close();
    // The steps that were pending when the log closed.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    expect(uncaught.map(String)).toEqual([]);
  }, 60_000);
});
