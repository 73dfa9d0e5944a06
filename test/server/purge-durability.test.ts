import { mkdirSync, rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fillDisk, smallDisk } from "../helpers/disk.js";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";

describe("removing a session, then a crash", () => {
  it("a purge that was answered stays done after SIGKILL: the answer waits for its commit", async () => {
    const dataDir = tempDir();
    const first = await serveInChild({ dataDir });
    const http1 = api(first.url);
    // Rows enough that the purge's commit (it zeroes what it deletes) takes a while after the answer.
    const ids: string[] = [];
    for (let s = 0; s < 2; s++) {
      const id = (await http1.post("/v1/sessions", { kind: "stream" })).json.id as string;
      for (let i = 0; i < 12; i++) {
        const appended = await http1.post(
          `/v1/sessions/${id}/events`,
          Array.from({ length: 1000 }, (_, k) => ({ type: "note", data: { i, k, pad: "p".repeat(500) } })),
        );
        expect(appended.status).toBe(200);
      }
      expect((await http1.del(`/v1/sessions/${id}`)).status).toBe(200);
      ids.push(id);
    }

    const purged = await Promise.all(ids.map((id) => http1.del(`/v1/sessions/${id}?purge=true`)));
    // The moment the answers are in: nothing queued after them gets a chance to be committed.
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
    expect(purged.map((r) => r.status)).toEqual([200, 200]);

    const second = await serveInChild({ dataDir });
    const http2 = api(second.url);
    // Before the fix the purge was answered when it was queued: both came back whole (12,001 events each).
    for (const id of ids) expect((await http2.get(`/v1/sessions/${id}`)).status).toBe(404);
    expect((await http2.get("/v1/sessions")).json.sessions).toEqual([]);
  }, 60_000);
});

describe("removing a session on a full disk", () => {
  it("is refused with LOG_UNAVAILABLE and removes nothing, and works once space is freed", async () => {
    const disk = smallDisk("20m");
    const dataDir = `${disk}/data`;
    mkdirSync(dataDir);
    const gateway = await testGateway({ dataDir });
    const http = api(gateway.url);
    const ended = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;
    expect((await http.post(`/v1/sessions/${ended}/events`, { type: "note", data: 1 })).status).toBe(200);
    expect((await http.del(`/v1/sessions/${ended}`)).status).toBe(200);
    const other = (await http.post("/v1/sessions", { kind: "stream" })).json.id as string;

    fillDisk(`${disk}/filler`, 4096);
    // An append the disk refuses: from then on the log says it cannot write.
    void http.post(`/v1/sessions/${other}/events`, { type: "note", data: "x".repeat(100_000) });
    await waitFor(() => gateway.core.events.store.writeFailure !== undefined, 10_000, "a failed commit");

    // Before the fix this was answered 200 at once and the session was gone from the list, though
    // nothing was on disk; answering only once it is committed would leave the request hanging.
    const refused = await http.del(`/v1/sessions/${ended}?purge=true`);
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe("LOG_UNAVAILABLE");
    expect((await http.get(`/v1/sessions/${ended}`)).status).toBe(200);

    rmSync(`${disk}/filler`);
    await waitFor(() => gateway.core.events.store.writeFailure === undefined, 10_000, "the log writable again");
    expect((await http.del(`/v1/sessions/${ended}?purge=true`)).status).toBe(200);
    expect((await http.get(`/v1/sessions/${ended}`)).status).toBe(404);
  }, 60_000);
});
