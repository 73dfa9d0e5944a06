import { describe, expect, it } from "vitest";
import {
  BatchBuffers,
  LOG_BATCH_BUFFER_BYTES,
  LOG_BATCH_BUFFER_MAX,
  LOG_BATCH_BUFFERS,
} from "../../src/log/batch-buffers.js";
import type { CommitOp } from "../../src/log/sqlite-commit.mjs";

const entry = (seq: number, data: Uint8Array | null): CommitOp => ({
  kind: "entry",
  sessionId: "s",
  seq,
  type: data ? "output" : "custom",
  outStart: null,
  outEnd: null,
  json: "{}",
  data,
  mark: false,
  file: null,
  syncFile: null,
});

describe("batch buffers: a batch's bytes cross to the writer thread in one reused buffer", () => {
  it("packs every entry's bytes into one buffer, each entry pointing at its range; ops without bytes go as they are", () => {
    const buffers = new BatchBuffers();
    const a = new Uint8Array([1, 2, 3]);
    const b = Buffer.from("hello");
    const trim: CommitOp = { kind: "trim", sessionId: "s", first: 2, unlink: [] };
    const { ops, buffer } = buffers.pack([entry(1, a), trim, entry(2, null), entry(3, b)]);
    expect(buffer!.byteLength).toBe(LOG_BATCH_BUFFER_BYTES);
    expect(ops[1]).toBe(trim);
    expect(ops[2]).toMatchObject({ seq: 2, data: null });
    expect(ops[2]).not.toHaveProperty("packed");
    const bytesOf = (op: CommitOp) => {
      const [at, length] = (op as { packed: [number, number] }).packed;
      return Buffer.from(buffer!, at, length).toString("hex");
    };
    expect(bytesOf(ops[0]!)).toBe("010203");
    expect(bytesOf(ops[3]!)).toBe(Buffer.from("hello").toString("hex"));
    expect(ops[0]).toMatchObject({ data: null });
    expect(buffers.pack([entry(1, null)]).buffer).toBeUndefined();
  });

  it("reuses a buffer handed back that is big enough, keeps at most LOG_BATCH_BUFFERS and none past LOG_BATCH_BUFFER_MAX", () => {
    const buffers = new BatchBuffers();
    const first = buffers.pack([entry(1, new Uint8Array(10))]).buffer!;
    buffers.recycle(first);
    expect(buffers.pack([entry(2, new Uint8Array(10))]).buffer).toBe(first);
    // Too small for this batch: a new one, big enough.
    buffers.recycle(first);
    const big = buffers.pack([entry(3, new Uint8Array(LOG_BATCH_BUFFER_BYTES + 1))]).buffer!;
    expect(big).not.toBe(first);
    expect(big.byteLength).toBe(LOG_BATCH_BUFFER_BYTES + 1);
    // Past the largest kept: not kept.
    buffers.recycle(new ArrayBuffer(LOG_BATCH_BUFFER_MAX + 1));
    const kept = Array.from({ length: LOG_BATCH_BUFFERS + 2 }, () => new ArrayBuffer(LOG_BATCH_BUFFER_BYTES));
    for (const b of kept) buffers.recycle(b);
    const reused = new Set(
      Array.from({ length: LOG_BATCH_BUFFERS + 2 }, () => buffers.pack([entry(4, new Uint8Array(1))]).buffer),
    );
    expect([...reused].filter((b) => b === first || kept.includes(b!))).toHaveLength(LOG_BATCH_BUFFERS);
  });
});
