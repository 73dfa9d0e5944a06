import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { SqliteEventStore } from "../../src/log/index.js";
import { OutputEntry } from "../../src/log/output-entry.js";
import { SESSION_ID_FILE, listFiles, outputDirOf, sessionDirName } from "../../src/log/output-files.mjs";
import { tempDir } from "../helpers/tmp.js";
import { fillDisk, smallDisk } from "../helpers/disk.js";

async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("output files on a full disk", () => {
  it("a session's first output file, started while the disk was full, is still the session's after space is freed and the log reopens", async () => {
    const disk = smallDisk("4m");
    const file = join(disk, "log.db");
    let store = new SqliteEventStore(file, { retryMs: 20 });
    // Something committed first, so that SQLite's own pages exist.
    const json = JSON.stringify({ seq: 1, type: "custom", ts: 0 });
    store.enqueue("s", { seq: 1, type: "custom", json, size: json.length });
    store.flush();
    fillDisk(join(disk, "fill"), 4096);
    const bytes = Buffer.alloc(64 * 1024, 0x61);
    store.enqueue("s", new OutputEntry(2, 0, "stdout", 0, bytes, false));
    await until(() => store.writeFailure !== undefined);
    unlinkSync(join(disk, "fill"));
    await until(() => store.writeFailure === undefined && store.unwrittenOps === 0);
    expect(readFileSync(join(outputDirOf(file), sessionDirName("s"), SESSION_ID_FILE), "utf8")).toBe("s");
    store.close();

    store = new SqliteEventStore(file);
    const rows = store.readOutputFrom("s", 0, 1 << 20);
    expect(rows.map((r) => [r.seq, r.outStart, r.outEnd])).toEqual([[2, 0, bytes.length]]);
    expect(Buffer.from((rows[0] as OutputEntry).bytes).equals(bytes)).toBe(true);
    store.close();
  });
});

describe("output files whose directory lost its id file", () => {
  it("are kept for a session on record (and the id file is written again), not removed with all of its output", () => {
    const file = join(tempDir(), "log.db");
    let store = new SqliteEventStore(file);
    store.enqueueSession({ id: "s", kind: "terminal", state: "exited", createdAt: 1, meta: {} });
    const bytes = Buffer.alloc(64 * 1024, 0x62);
    store.enqueue("s", new OutputEntry(1, 0, "stdout", 0, bytes, false));
    store.flush();
    store.close();
    // What a full disk left with a version that wrote the id file in place: an empty one.
    const idFile = join(outputDirOf(file), sessionDirName("s"), SESSION_ID_FILE);
    writeFileSync(idFile, "");

    store = new SqliteEventStore(file);
    const rows = store.readOutputFrom("s", 0, 1 << 20);
    expect(Buffer.from((rows[0] as OutputEntry).bytes).equals(bytes)).toBe(true);
    expect(readFileSync(idFile, "utf8")).toBe("s");
    store.close();
  });
});

describe("output files a trim freed when the gateway crashed before removing them", () => {
  it("are removed when the log opens (a session that appends no more would keep them for good)", () => {
    const file = join(tempDir(), "log.db");
    let store = new SqliteEventStore(file, { outputFileBytes: 256 * 1024 });
    store.enqueueSession({ id: "s", kind: "terminal", state: "exited", createdAt: 1, meta: {} });
    const piece = 64 * 1024;
    for (let i = 0; i < 16; i++)
      store.enqueue("s", new OutputEntry(i + 1, 0, "stdout", i * piece, Buffer.alloc(piece, 0x61 + i), false));
    store.flush();
    store.close();
    const dir = join(outputDirOf(file), sessionDirName("s"));
    expect(listFiles(dir)).toEqual([0, 1, 2, 3].map((n) => n * 256 * 1024));
    // A trim to seq 10 (bytes from 9 × 64 KiB) committed; the crash came before its files went.
    const db = new Database(file);
    db.prepare("DELETE FROM events WHERE session_id = 's' AND seq < 10").run();
    db.prepare("DELETE FROM output_marks WHERE session_id = 's' AND seq < 10").run();
    db.close();

    store = new SqliteEventStore(file, { outputFileBytes: 256 * 1024 });
    expect(listFiles(dir)).toEqual([2, 3].map((n) => n * 256 * 1024));
    const rows = store.readOutputFrom("s", 9 * piece, 1 << 20);
    expect(rows.map((r) => r.seq)).toEqual([10, 11, 12, 13, 14, 15, 16]);
    expect(Buffer.from((rows[0] as OutputEntry).bytes).equals(Buffer.alloc(piece, 0x61 + 9))).toBe(true);
    store.close();
  });
});
