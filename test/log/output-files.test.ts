import { mkdirSync, readdirSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SqliteEventStore } from "../../src/log/index.js";
import type { StoredEntry } from "../../src/log/index.js";
import { OutputEntry } from "../../src/log/output-entry.js";
import {
  OUTPUT_FILE_MIN_ENTRY,
  SESSION_ID_FILE,
  fileName,
  listFiles,
  outputDirOf,
  sessionDirName,
} from "../../src/log/output-files.mjs";
import { tempDir } from "../helpers/tmp.js";

const KiB = 1024;
const MiB = 1024 * KiB;
/** Output files this small in these tests, so that a session's output spans several. */
const FILE_BYTES = 1 * MiB;

/** A log store with output files of {@link FILE_BYTES}, on `file`. */
const openStore = (file: string) => new SqliteEventStore(file, { outputFileBytes: FILE_BYTES });

/** Bytes that tell apart every entry and every position in it. */
function pattern(seq: number, n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = 0x21 + ((seq * 7 + i) % 90);
  return bytes;
}

/** A session's appends as the log would make them: seqs and output offsets in order, the bytes kept to compare. */
class Producer {
  seq = 0;
  end = 0;
  readonly outputs: Array<{ seq: number; start: number; bytes: Uint8Array }> = [];

  constructor(
    private readonly store: SqliteEventStore,
    readonly id: string,
  ) {}

  output(n: number): number {
    const bytes = pattern(++this.seq, n);
    this.store.enqueue(this.id, new OutputEntry(this.seq, 0, "stdout", this.end, bytes, false));
    this.outputs.push({ seq: this.seq, start: this.end, bytes });
    this.end += n;
    return this.seq;
  }

  event(): number {
    const json = JSON.stringify({ seq: ++this.seq, type: "custom", ts: 0 });
    this.store.enqueue(this.id, { seq: this.seq, type: "custom", json, size: json.length } as StoredEntry);
    return this.seq;
  }

  /** Every output byte from `from` on, as appended. */
  bytesFrom(from: number): Buffer {
    const kept = this.outputs.filter((o) => o.start + o.bytes.length > from);
    return Buffer.concat(kept.map((o) => o.bytes)).subarray(from - (kept[0]?.start ?? from));
  }
}

/** Where output files start, by the rule: at the first big piece, then at the first one a file's size past it. */
function fileStarts(outputs: Producer["outputs"]): number[] {
  const starts: number[] = [];
  for (const o of outputs) {
    if (o.bytes.length < OUTPUT_FILE_MIN_ENTRY) continue;
    const current = starts[starts.length - 1];
    if (current === undefined || o.start - current >= FILE_BYTES) starts.push(o.start);
  }
  return starts;
}

/** Every output byte `store` gives back from `from` on, read in pages as the log does. */
function readAll(store: SqliteEventStore, id: string, from: number): Buffer {
  const parts: Buffer[] = [];
  for (let at = from; ;) {
    const rows = store.readOutputFrom(id, at, 512 * KiB);
    if (rows.length === 0) break;
    for (const row of rows) {
      const bytes = Buffer.from((row as OutputEntry).bytes);
      parts.push(bytes.subarray(Math.max(0, at - row.outStart!)));
      at = row.outEnd!;
    }
  }
  return Buffer.concat(parts);
}

async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const sessionDir = (file: string, id: string) => join(outputDirOf(file), sessionDirName(id));
/** SQLite's files' size. The writer thread may still be removing the WAL after close(): gone, it counts 0 (CI once failed on it). */
const sqliteBytes = (file: string) =>
  readdirSync(join(file, ".."))
    .filter((f) => f.startsWith("log.db") && !f.endsWith("-output"))
    .reduce((n, f) => n + (statSync(join(file, "..", f), { throwIfNoEntry: false })?.size ?? 0), 0);

describe("output files: big output is kept beside SQLite, written once", () => {
  it("keeps big output's bytes in files and small output in SQLite; every byte reads back, by offset and by seq, also after a restart", async () => {
    const file = join(tempDir(), "log.db");
    let store = openStore(file);
    const flood = new Producer(store, "flood");
    for (let i = 0; i < 64; i++) {
      flood.output(64 * KiB);
      if (i % 8 === 0) flood.output(100); // small: stays in SQLite
      if (i % 5 === 0) flood.event();
    }
    // A lone big piece from a quiet session is committed on this thread: into a file as well.
    const quiet = new Producer(store, "quiet");
    await new Promise((resolve) => setTimeout(resolve, 250));
    quiet.output(20 * KiB);
    store.flush();
    try {
      // 4 MiB of output in files of about 1 MiB; SQLite holds the rows and the small pieces.
      const starts = listFiles(sessionDir(file, "flood"));
      expect(starts).toHaveLength(4);
      expect(starts).toEqual(fileStarts(flood.outputs));
      expect(listFiles(sessionDir(file, "quiet"))).toEqual([0]);
      expect(statSync(join(sessionDir(file, "quiet"), fileName(0))).size).toBe(20 * KiB);
      expect(readAll(store, "flood", 0).equals(flood.bytesFrom(0))).toBe(true);
      expect(readAll(store, "flood", 1_234_567).equals(flood.bytesFrom(1_234_567))).toBe(true);
      expect(readAll(store, "quiet", 0).equals(quiet.bytesFrom(0))).toBe(true);
      const bySeq = store.readAfter("flood", 0, 1000).filter((e): e is OutputEntry => e instanceof OutputEntry);
      expect(Buffer.concat(bySeq.map((e) => e.bytes)).equals(flood.bytesFrom(0))).toBe(true);
      expect(store.loadLogState("flood")).toMatchObject({ head: flood.seq, outputBytes: flood.end });

      store.close();
      expect(sqliteBytes(file)).toBeLessThan(2 * MiB);
      store = openStore(file);
      expect(readAll(store, "flood", 0).equals(flood.bytesFrom(0))).toBe(true);
      // Appends after the restart go on in the last file, then on to new ones.
      const more = new Producer(store, "flood");
      Object.assign(more, { seq: flood.seq, end: flood.end, outputs: flood.outputs });
      for (let i = 0; i < 20; i++) more.output(64 * KiB);
      store.flush();
      expect(listFiles(sessionDir(file, "flood"))).toEqual(fileStarts(more.outputs));
      expect(listFiles(sessionDir(file, "flood"))).toHaveLength(6);
      expect(readAll(store, "flood", 0).equals(more.bytesFrom(0))).toBe(true);
    } finally {
      store.close();
    }
  });

  it("a trim removes the files that hold only trimmed output, once it is committed, and never the one output goes to", () => {
    const file = join(tempDir(), "log.db");
    const store = openStore(file);
    const p = new Producer(store, "s");
    try {
      for (let i = 0; i < 60; i++) p.output(64 * KiB); // files at 0, 1, 2, 3 MiB; the last one 3/4 full
      store.flush();
      const dir = sessionDir(file, "s");
      expect(listFiles(dir)).toEqual([0, 1, 2, 3].map((m) => m * MiB));

      // Keep from the middle of the third file: the first two go.
      const first = p.outputs.find((o) => o.start === 2 * MiB + 128 * KiB)!.seq;
      store.enqueueTrim("s", first);
      expect(listFiles(dir)).toHaveLength(4); // not before the commit
      store.flush();
      expect(listFiles(dir)).toEqual([2 * MiB, 3 * MiB]);
      expect(readAll(store, "s", 0).equals(p.bytesFrom(2 * MiB + 128 * KiB))).toBe(true);

      // Everything but an event after the output: the current file stays, and output goes on in it.
      p.event();
      store.enqueueTrim("s", p.seq);
      store.flush();
      expect(listFiles(dir)).toEqual([3 * MiB]);
      p.output(64 * KiB);
      store.flush();
      expect(listFiles(dir)).toEqual([3 * MiB]);
      expect(readAll(store, "s", 0).equals(p.bytesFrom(60 * 64 * KiB))).toBe(true);
    } finally {
      store.close();
    }
  });

  it("a purge removes the session's directory; one the log has no rows of is removed when the log opens", () => {
    const file = join(tempDir(), "log.db");
    let store = openStore(file);
    try {
      const gone = new Producer(store, "gone");
      const kept = new Producer(store, "kept");
      for (let i = 0; i < 20; i++) {
        gone.output(64 * KiB);
        kept.output(64 * KiB);
      }
      store.flush();
      store.deleteSession("gone");
      store.flush();
      expect(readdirSync(outputDirOf(file))).toEqual([sessionDirName("kept")]);

      // Left by a purge whose removal never happened, or by a session whose first commit never did.
      for (const id of ["orphan", "half"]) {
        mkdirSync(sessionDir(file, id));
        writeFileSync(join(sessionDir(file, id), fileName(0)), "x".repeat(100));
      }
      writeFileSync(join(sessionDir(file, "orphan"), SESSION_ID_FILE), "orphan");
      store.close();
      store = openStore(file);
      expect(readdirSync(outputDirOf(file))).toEqual([sessionDirName("kept")]);
      expect(readAll(store, "kept", 0).equals(kept.bytesFrom(0))).toBe(true);
    } finally {
      store.close();
    }
  });

  it("after an OS crash that cost the last file bytes its rows point at, those rows and the later ones are removed, with a warning; output goes on from there", () => {
    const file = join(tempDir(), "log.db");
    let store = openStore(file);
    const p = new Producer(store, "s");
    for (let i = 0; i < 24; i++) p.output(64 * KiB); // files at 0 (16 pieces) and 1 MiB (8)
    const last = p.event();
    store.flush();
    store.close();
    const lastFile = join(sessionDir(file, "s"), fileName(MiB));
    // The OS wrote the last file's first 3.5 pieces before it went down.
    truncateSync(lastFile, 3.5 * 64 * KiB);

    const warnings: string[] = [];
    store = new SqliteEventStore(file, { outputFileBytes: FILE_BYTES, onOutputLost: (w) => warnings.push(w) });
    try {
      const lostSeq = p.outputs[16 + 3]!.seq;
      expect(warnings).toEqual([expect.stringMatching(new RegExp(`from seq ${lostSeq} on are removed`))]);
      expect(warnings[0]).toContain(`from byte ${MiB + 3 * 64 * KiB}`);
      expect(store.loadLogState("s")).toMatchObject({ head: lostSeq - 1, outputBytes: MiB + 3 * 64 * KiB });
      expect(store.readAfter("s", lostSeq - 2, 10).map((e) => e.seq)).toEqual([lostSeq - 1]);
      expect(last).toBeGreaterThan(lostSeq);
      const kept = p.bytesFrom(0).subarray(0, MiB + 3 * 64 * KiB);
      expect(readAll(store, "s", 0).equals(kept)).toBe(true);

      // The log goes on from the lost seq and offset, over what the file held there.
      const q = new Producer(store, "s");
      Object.assign(q, { seq: lostSeq - 1, end: MiB + 3 * 64 * KiB, outputs: p.outputs.slice(0, 16 + 3) });
      for (let i = 0; i < 4; i++) q.output(64 * KiB);
      store.flush();
      expect(readAll(store, "s", 0).equals(q.bytesFrom(0))).toBe(true);
    } finally {
      store.close();
    }
  });

  it("a last file none of whose rows survived, or one a commit that never happened left, is removed: output goes on from the committed end", () => {
    const file = join(tempDir(), "log.db");
    let store = openStore(file);
    const p = new Producer(store, "s");
    for (let i = 0; i < 18; i++) p.output(64 * KiB); // files at 0 (16 pieces) and 1 MiB (2)
    store.flush();
    store.close();
    // Nothing of the second file reached the disk; and a file of a commit that never came.
    truncateSync(join(sessionDir(file, "s"), fileName(MiB)), 0);
    writeFileSync(join(sessionDir(file, "s"), fileName(5 * MiB)), "junk");

    const warnings: string[] = [];
    store = new SqliteEventStore(file, { outputFileBytes: FILE_BYTES, onOutputLost: (w) => warnings.push(w) });
    try {
      expect(warnings).toHaveLength(1);
      expect(listFiles(sessionDir(file, "s"))).toEqual([0]);
      expect(store.loadLogState("s")).toMatchObject({ head: 16, outputBytes: MiB });
      const q = new Producer(store, "s");
      Object.assign(q, { seq: 16, end: MiB, outputs: p.outputs.slice(0, 16) });
      for (let i = 0; i < 3; i++) q.output(64 * KiB);
      store.flush();
      expect(listFiles(sessionDir(file, "s"))).toEqual([0, MiB]);
      expect(readAll(store, "s", 0).equals(q.bytesFrom(0))).toBe(true);
    } finally {
      store.close();
    }
  });

  it("a new output file is made on the writer thread (its syncs never wait on the event loop); later pieces of a quiet session go into it from here", async () => {
    const file = join(tempDir(), "log.db");
    const store = openStore(file);
    const commits: number[] = [];
    store.onFlushed((durable) => commits.push(durable.get("s") ?? 0));
    const endOfTick = () => new Promise<void>((resolve) => queueMicrotask(resolve));
    const p = new Producer(store, "s");
    try {
      p.output(20 * KiB); // the session's first file
      await endOfTick();
      expect(commits).toEqual([]); // not here: posted to the writer thread
      await until(() => commits.length === 1);
      p.output(20 * KiB); // the same file: committed here, at the end of the tick
      await endOfTick();
      expect(commits).toEqual([1, 2]);
      expect(listFiles(sessionDir(file, "s"))).toEqual([0]);
      expect(readAll(store, "s", 0).equals(p.bytesFrom(0))).toBe(true);
    } finally {
      store.close();
    }
  });

  it("keeps output under OUTPUT_FILE_MIN_ENTRY bytes in SQLite", () => {
    const file = join(tempDir(), "log.db");
    const store = openStore(file);
    const p = new Producer(store, "s");
    try {
      for (let i = 0; i < 50; i++) p.output(OUTPUT_FILE_MIN_ENTRY - 1);
      store.flush();
      expect(listFiles(sessionDir(file, "s"))).toEqual([]);
      p.output(OUTPUT_FILE_MIN_ENTRY);
      store.flush();
      expect(listFiles(sessionDir(file, "s"))).toEqual([50 * (OUTPUT_FILE_MIN_ENTRY - 1)]);
      expect(readAll(store, "s", 0).equals(p.bytesFrom(0))).toBe(true);
    } finally {
      store.close();
    }
  });
});
