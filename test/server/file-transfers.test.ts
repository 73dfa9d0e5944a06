// The owner's side of file transfers forwarded from other nodes (src/server/routes/file-transfers.ts):
// bounded in number, bound to the session and caller that opened them, and ended when no call
// comes for FILE_TRANSFER_IDLE_MS, an upload's temporary file then removed. A ManualClock drives the idle time.
import { readdirSync } from "node:fs";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { ConfinedFs } from "../../src/agents/confined-fs.js";
import { ManualClock } from "../../src/core/clock.js";
import { FILE_TRANSFERS_MAX, FILE_TRANSFER_IDLE_MS, FileTransfers } from "../../src/server/routes/file-transfers.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

function upload(dir: string) {
  const pipe = new PassThrough();
  const written = new ConfinedFs(dir).writeStream("a.bin", pipe, { maxBytes: 1024 });
  written.catch(() => undefined);
  return { way: "put" as const, pipe, written, path: "a.bin", sessionId: "s1", principal: "token:admin" };
}

describe("forwarded file transfers", () => {
  it("ends an upload nobody continues after FILE_TRANSFER_IDLE_MS, leaving no temporary file", async () => {
    const clock = new ManualClock();
    const transfers = new FileTransfers(clock);
    const dir = tempDir();
    const t = upload(dir);
    const id = transfers.add(t);
    t.pipe.write(Buffer.from("half"));
    await waitFor(() => readdirSync(dir).some((name) => name.endsWith(".upload")), 5_000, "the temporary file");
    clock.advance(FILE_TRANSFER_IDLE_MS - 1);
    expect(() => transfers.take(id, "s1", "token:admin")).not.toThrow();
    clock.advance(FILE_TRANSFER_IDLE_MS);
    await expect(t.written).rejects.toThrow();
    expect(readdirSync(dir)).toEqual([]);
    expect(() => transfers.take(id, "s1", "token:admin")).toThrow(/no file transfer/);
  });

  it("gives a transfer only to its session and caller, and refuses one past FILE_TRANSFERS_MAX", () => {
    const transfers = new FileTransfers(new ManualClock());
    const dir = tempDir();
    const first = transfers.add(upload(dir));
    expect(() => transfers.take(first, "s2", "token:admin")).toThrow(/no file transfer/);
    expect(() => transfers.take(first, "s1", "token:opal")).toThrow(/no file transfer/);
    for (let i = 1; i < FILE_TRANSFERS_MAX; i++) transfers.add(upload(dir));
    expect(() => transfers.add(upload(dir))).toThrow(expect.objectContaining({ code: "RESOURCE_EXHAUSTED" }));
    transfers.close();
  });
});
