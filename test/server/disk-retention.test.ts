import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it, onTestFinished } from "vitest";
import { parseByteSize, parseDuration } from "../../src/core/units.js";
import { DEFAULT_ENDED_RETENTION, endedToRemove, resolveEndedRetention } from "../../src/log/ended-retention.js";
import type { EndedRetention } from "../../src/log/ended-retention.js";
import { api, testGateway } from "../helpers/gateway.js";
import { cliCommand } from "../helpers/compiled-cli.js";
import { waitFor } from "../helpers/wait-for.js";
import { endedPipe, listedIds } from "../helpers/ended-sessions.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";

/** The bytes of every file under `dir`, as `du --apparent-size -b` counts them. */
function treeBytes(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) bytes += treeBytes(path);
    else if (entry.isFile()) bytes += statSync(path).size;
  }
  return bytes;
}

describe("endedToRemove", () => {
  const entries = fc
    .array(fc.record({ age: fc.nat(1_000), bytes: fc.nat(1_000) }), { maxLength: 30 })
    .map((list) =>
      list.map((e, i) => ({ item: i, endedAt: 10_000 - e.age, bytes: e.bytes })).sort((a, b) => a.endedAt - b.endedAt),
    );
  const rule = fc.record({
    maxAgeMs: fc.option(fc.integer({ min: 1, max: 1_000 }), { nil: undefined }),
    maxCount: fc.option(fc.nat(30), { nil: undefined }),
    maxTotalBytes: fc.option(fc.integer({ min: 1, max: 10_000 }), { nil: undefined }),
  });

  it("keeps only sessions within every limit, and removes the oldest first", () => {
    fc.assert(
      fc.property(entries, rule, (ended, r: EndedRetention) => {
        const removed = new Set(endedToRemove(ended, r, 10_000));
        const kept = ended.filter((e) => !removed.has(e.item));
        if (r.maxCount !== undefined) expect(kept.length).toBeLessThanOrEqual(r.maxCount);
        if (r.maxAgeMs !== undefined) for (const e of kept) expect(10_000 - e.endedAt).toBeLessThan(r.maxAgeMs);
        if (r.maxTotalBytes !== undefined && kept.length > 1)
          expect(kept.reduce((sum, e) => sum + e.bytes, 0)).toBeLessThanOrEqual(r.maxTotalBytes);
        // What is removed for count or bytes is older than all that is kept: the kept ones are
        // the newest of those young enough.
        const young = ended.filter((e) => r.maxAgeMs === undefined || 10_000 - e.endedAt < r.maxAgeMs);
        expect(kept).toEqual(young.slice(young.length - kept.length));
        // Nothing is removed that every limit allows.
        if (r.maxAgeMs === undefined && r.maxCount === undefined && r.maxTotalBytes === undefined)
          expect(removed.size).toBe(0);
      }),
    );
  });

  it("keeps the newest session even when it alone takes more than maxTotalBytes", () => {
    const ended = [
      { item: "old", endedAt: 1, bytes: 10 },
      { item: "new", endedAt: 2, bytes: 500 },
    ];
    expect(endedToRemove(ended, { maxAgeMs: undefined, maxCount: undefined, maxTotalBytes: 100 }, 3)).toEqual(["old"]);
  });
});

describe("the ended-session rule's settings", () => {
  it("defaults to 30 days and 4 GiB; the command line wins over the config; null is no limit", () => {
    expect(resolveEndedRetention()).toEqual({
      maxAgeMs: 30 * 24 * 3_600_000,
      maxCount: undefined,
      maxTotalBytes: 4 * 1024 ** 3,
    });
    expect(resolveEndedRetention({ maxAgeMs: 1_000 }, { maxAgeMs: 5_000, maxCount: 3 })).toEqual({
      maxAgeMs: 1_000,
      maxCount: 3,
      maxTotalBytes: DEFAULT_ENDED_RETENTION.maxTotalBytes,
    });
    expect(resolveEndedRetention({ maxAgeMs: null }, { maxAgeMs: 5_000, maxTotalBytes: null })).toEqual({
      maxAgeMs: undefined,
      maxCount: undefined,
      maxTotalBytes: undefined,
    });
  });

  it("reads durations and sizes as an operator writes them, and nothing else", () => {
    expect(["30d", "12h", "90m", "45s", "500ms", "1.5h", "off", "never"].map(parseDuration)).toEqual([
      30 * 86_400_000,
      12 * 3_600_000,
      90 * 60_000,
      45_000,
      500,
      5_400_000,
      null,
      null,
    ]);
    expect(["4GiB", "512mib", "100MB", "1024", "2 KiB", "off"].map(parseByteSize)).toEqual([
      4 * 1024 ** 3,
      512 * 1024 ** 2,
      100e6,
      1024,
      2048,
      null,
    ]);
    for (const bad of ["", "soon", "-1d", "0", "0s", "12 parsecs", "1e3s", "5y"])
      expect(parseDuration(bad)).toBeUndefined();
    for (const bad of ["", "big", "-5MB", "0", "1.5.5GB", "9PiB"]) expect(parseByteSize(bad)).toBeUndefined();
  });
});

describe("the ended-session sweep", () => {
  it("removes the oldest ended sessions while their logs take more than maxTotalBytes", async () => {
    const gw = await testGateway({
      config: { retention: { endedSessions: { maxTotalBytes: 100_000 } } },
      pruneIntervalMs: 50,
    });
    const http = api(gw.url);
    // About 48 KiB of output each: two fit in 100,000 bytes, three do not.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(await endedPipe(http, `head -c 49152 /dev/zero | tr '\\0' ${i}`));
      await new Promise((r) => setTimeout(r, 20)); // distinct end times
    }
    await waitFor(async () => !(await listedIds(http)).includes(ids[0]!), 5_000, "the oldest to go");
    await new Promise((r) => setTimeout(r, 300)); // a few more passes
    expect((await listedIds(http)).sort()).toEqual([ids[1]!, ids[2]!].sort());
    expect((await http.get(`/v1/sessions/${ids[0]}`)).status).toBe(404);
  });

  it("applies --ended-max-age from the command line, and refuses a value that is no duration", async () => {
    const dataDir = tempDir();
    const gw = await serveInChild({ dataDir, args: ["--ended-max-age", "1s"] });
    const http = api(gw.url);
    const id = await endedPipe(http, "echo brief");
    const disk = await http.get("/v1/admin/disk");
    expect(disk.json.retention).toEqual({ maxAgeMs: 1_000, maxCount: null, maxTotalBytes: 4 * 1024 ** 3 });
    await waitFor(async () => !(await listedIds(http)).includes(id), 10_000, "the ended session to go");

    const [node, ...cli] = cliCommand();
    const child = spawn(node!, [...cli, "serve", "--port", "0"], {
      env: { ...process.env, SWITCHBOARD_DATA_DIR: tempDir(), SWITCHBOARD_ENDED_MAX_BYTES: "lots" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    onTestFinished(() => void child.kill("SIGKILL"));
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(2);
    expect(stderr).toContain(
      'SWITCHBOARD_ENDED_MAX_BYTES must be a size such as 4GiB, 500MB or 1048576, or off; not "lots"',
    );
  }, 60_000);
});

describe("GET /v1/admin/disk", () => {
  it("tells admins the data directory's size and the rule in force, and nobody else", async () => {
    const VIEWER = "viewer-token-0123456789abcdef";
    const gw = await testGateway({
      config: { auth: { tokens: [{ name: "vera", token: VIEWER, role: "viewer", sessions: ["*"] }] } },
    });
    const http = api(gw.url);
    await endedPipe(http, "seq 1 5000");
    const r = await http.get("/v1/admin/disk");
    expect(r.status).toBe(200);
    expect(r.json.retention).toEqual({ maxAgeMs: 30 * 86_400_000, maxCount: null, maxTotalBytes: 4 * 1024 ** 3 });
    expect(r.json.endedSessions.count).toBe(1);
    expect(r.json.endedSessions.bytes).toBeGreaterThan(23_893); // seq 1 5000 writes 23,894 bytes
    expect(r.json.dataDir.partial).toBe(false);
    // Measured as a walk of the directory finds it (the WAL moves on meanwhile: within 1 MiB).
    expect(Math.abs(r.json.dataDir.bytes - treeBytes(gw.dataDir))).toBeLessThan(1024 * 1024);
    expect(r.json.dataDir.bytes).toBeGreaterThan(0);
    const viewer = await api(gw.url, VIEWER).get("/v1/admin/disk");
    expect([viewer.status, viewer.json.error.code]).toEqual([403, "FORBIDDEN"]);
    expect((await api(gw.url, "").get("/v1/admin/disk")).status).toBe(401);
  });
});
