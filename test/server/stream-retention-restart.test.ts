import { readdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { api, testGateway } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";

describe("a stream session across a restart, with retention", () => {
  it("continues its output at the byte after the last one, even when retention dropped every output event (offsets are never reused)", async () => {
    const dataDir = tempDir();
    const config = { retention: { maxEvents: 5 } };
    const gw = await testGateway({ dataDir, config });
    const http = api(gw.url);
    const id = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;
    expect(
      (await http.post(`/v1/sessions/${id}/events`, { type: "output", data: { stream: "stdout", data: "hello\n" } }))
        .status,
    ).toBe(200);
    // Producers go on with other events: retention keeps only the newest 5, none of them output.
    for (let i = 0; i < 10; i++) await http.post(`/v1/sessions/${id}/events`, { type: "progress", data: i });
    expect((await http.get(`/v1/sessions/${id}`)).json.outputBytes).toBe(6);
    await gw.close();

    const again = await testGateway({ dataDir, config });
    const http2 = api(again.url);
    const info = (await http2.get(`/v1/sessions/${id}`)).json;
    expect(info.state).toBe("running");
    expect(info.outputBytes).toBe(6);
    await http2.post(`/v1/sessions/${id}/events`, { type: "output", data: { stream: "stdout", data: "world\n" } });
    const events = (await http2.get(`/v1/sessions/${id}/events?types=output`)).json.events as Array<{ offset: number }>;
    expect(events.at(-1)!.offset).toBe(6);
    const out = await http2.get(`/v1/sessions/${id}/output?since=6`);
    expect(out.text).toBe("world\n");
  });

  // Its record was written when it started and not again: every later start read all its events
  // to find where its log was (EventLog.load), however often the gateway had stopped cleanly.
  it("a stream session still running at a clean stop notes where its log is in its record", async () => {
    const dataDir = tempDir();
    const gw = await testGateway({ dataDir });
    const http = api(gw.url);
    const id = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;
    const events = Array.from({ length: 50 }, (_, i) => ({ type: "progress", data: i }));
    expect((await http.post(`/v1/sessions/${id}/events`, events)).json).toMatchObject({ last: 50 });
    await gw.close();

    const file = readdirSync(dataDir).find((f) => f === "switchboard.db")!;
    const db = new Database(join(dataDir, file), { readonly: true });
    const meta = JSON.parse(
      (db.prepare("SELECT meta FROM sessions WHERE id = ?").get(id) as { meta: string }).meta,
    ) as Record<string, unknown>;
    db.close();
    expect(meta["logState"]).toMatchObject({ head: 50, first: 1 });
  });
});
