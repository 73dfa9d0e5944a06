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
});
