import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OUTPUT_FILE_BYTES, outputDirOf, sessionDirName } from "../../src/log/output-files.mjs";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";

const LINES = 5_000_000;
/** `seq 1 LINES`: 38.9 MB, past two output files of 16 MiB. */
const SEQ = Buffer.from(Array.from({ length: LINES }, (_, i) => `${i + 1}\n`).join(""));
const RETAINED = 4 * 1024 * 1024;

/** Every output byte the gateway gives from the start of what it retained, paged as a client reads it. */
async function retainedOutput(base: string, id: string): Promise<{ first: number; bytes: Buffer }> {
  const parts: Buffer[] = [];
  let first: number | undefined;
  for (let since = 0; ;) {
    const res = await fetch(`${base}/v1/sessions/${id}/output?since=${since}`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const page = Buffer.from(await res.arrayBuffer());
    if (page.length === 0) break;
    const next = Number(res.headers.get("x-switchboard-next-offset"));
    const start = Number(res.headers.get("x-switchboard-output-start"));
    expect(start).toBe(next - page.length);
    first ??= start;
    parts.push(page);
    since = next;
  }
  return { first: first ?? 0, bytes: Buffer.concat(parts) };
}

describe("output files under retention, through a gateway", () => {
  it("a long flood keeps only the files retention still needs; what is retained reads back exactly, also after a restart", async () => {
    expect(SEQ.length).toBeGreaterThan(2 * OUTPUT_FILE_BYTES + RETAINED);
    const gw = await testGateway({ config: { retention: { maxBytes: RETAINED } } });
    const http = api(gw.url);
    const { json } = await http.post("/v1/sessions", { command: ["seq", "1", String(LINES)] });
    const id = json.id as string;
    await gw.core.sessions.get(id)!.ended();
    expect(gw.core.sessions.get(id)!.log.outputBytes).toBe(SEQ.length);

    const read = await retainedOutput(gw.url, id);
    expect(read.bytes.length).toBeGreaterThan(RETAINED / 2);
    expect(read.bytes.length).toBeLessThanOrEqual(RETAINED);
    expect(read.first + read.bytes.length).toBe(SEQ.length);
    expect(read.bytes.equals(SEQ.subarray(read.first))).toBe(true);

    // The files before the one holding the retained output are gone (removed after their trims' commits).
    const dir = join(outputDirOf(join(gw.dataDir, "switchboard.db")), sessionDirName(id));
    gw.core.events.flush();
    const files = () => readdirSync(dir).filter((f) => f.endsWith(".out"));
    const onDisk = () => files().reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    // The output files start at the first piece at or past each 16 MiB: ~0, ~16.8 and ~33.6 MB; the
    // retained 4 MiB (from ~34.7 MB) are all in the last one.
    expect(read.first).toBeGreaterThan(2 * OUTPUT_FILE_BYTES);
    expect(files()).toHaveLength(1);
    const start = Number(files()[0]!.slice(0, 16));
    expect(start).toBeGreaterThanOrEqual(2 * OUTPUT_FILE_BYTES);
    expect(start).toBeLessThanOrEqual(read.first);
    // (Pieces under 8 KiB stay in SQLite, so the file may hold a little less than its range.)
    expect(onDisk()).toBeLessThanOrEqual(SEQ.length - start);
    expect(onDisk()).toBeGreaterThan(SEQ.length - start - 1024 * 1024);

    // After a restart: the same bytes, from the same files.
    const dataDir = gw.dataDir;
    await gw.close();
    const again = await testGateway({ dataDir, config: { retention: { maxBytes: RETAINED } } });
    const reread = await retainedOutput(again.url, id);
    expect(reread.first).toBe(read.first);
    expect(reread.bytes.equals(read.bytes)).toBe(true);
  }, 60_000);
});
