import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HOLDER_KEEPS_MAX_BYTES } from "../../src/sessions/terminal-session.js";
import {
  H,
  HOLDER_PROTOCOL_MINOR,
  HOLDER_RECORDS_MAX,
  HOLDER_RECORD_ACTOR_MAX_BYTES,
  HolderFrameReader,
  frame,
} from "../../src/sessions/holder-protocol.js";
import type { HolderFrame } from "../../src/sessions/holder-protocol.js";

/** An OUTPUT frame as the holder writes it (native/holder.c, `fill_output`). */
function outputFrame(stream: number, offset: number, bytes: Uint8Array): Buffer {
  const p = Buffer.alloc(9 + bytes.length);
  p[0] = stream;
  p.writeBigUInt64LE(BigInt(offset), 1);
  p.set(bytes, 9);
  return frame(H.OUTPUT, p);
}

function inputTaken(n: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeBigUInt64LE(BigInt(n));
  return frame(H.INPUT_TAKEN, p);
}

describe("the holder's frames", () => {
  it("decodes any stream of frames the same however it is cut into reads (property)", () => {
    const item = fc.oneof(
      fc.record({
        kind: fc.constant("output" as const),
        stream: fc.integer({ min: 0, max: 1 }),
        bytes: fc.uint8Array({ maxLength: 300 }),
      }),
      fc.record({ kind: fc.constant("taken" as const), n: fc.integer({ min: 0, max: 2 ** 40 }) }),
      fc.record({ kind: fc.constant("end" as const) }),
      fc.record({ kind: fc.constant("unknown" as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
    );
    fc.assert(
      fc.property(
        fc.array(item, { maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1 }),
        (items, cuts) => {
          let offset = 0;
          const wire: Buffer[] = [];
          const expected: Array<{ stream: string; offset: number; bytes: number[] } | string> = [];
          for (const it of items) {
            if (it.kind === "output") {
              wire.push(outputFrame(it.stream, offset, it.bytes));
              if (it.bytes.length > 0)
                expected.push({ stream: it.stream === 1 ? "stderr" : "stdout", offset, bytes: [...it.bytes] });
              offset += it.bytes.length;
            } else if (it.kind === "taken") {
              wire.push(inputTaken(it.n));
              expected.push(`taken:${it.n}`);
            } else if (it.kind === "end") {
              wire.push(frame(H.END));
              expected.push("end");
            } else {
              wire.push(frame(0x30, it.bytes));
              expected.push("unknown:48");
            }
          }
          const all = Buffer.concat(wire);
          const got: Array<{ stream: string; offset: number; bytes: number[] } | string> = [];
          const reader = new HolderFrameReader((f: HolderFrame) => {
            if (f.type === "output") {
              // Pieces of one frame join up: their offsets follow each other.
              const last = got.at(-1);
              if (typeof last === "object" && last.stream === f.stream && last.offset + last.bytes.length === f.offset)
                last.bytes.push(...f.bytes);
              else got.push({ stream: f.stream, offset: f.offset, bytes: [...f.bytes] });
            } else if (f.type === "inputTaken") got.push(`taken:${f.bytes}`);
            else if (f.type === "unknown") got.push(`unknown:${f.frameType}`);
            else got.push(f.type);
          });
          for (let at = 0, i = 0; at < all.length; i++) {
            const n = cuts[i % cuts.length]!;
            reader.push(all.subarray(at, at + n));
            at += n;
          }
          // Adjacent outputs of one stream may join in `got` as they would in the log.
          const joined: typeof expected = [];
          for (const e of expected) {
            const last = joined.at(-1);
            if (typeof e === "object" && typeof last === "object" && last.stream === e.stream)
              last.bytes.push(...e.bytes);
            else joined.push(typeof e === "object" ? { ...e, bytes: [...e.bytes] } : e);
          }
          expect(got).toEqual(joined);
        },
      ),
    );
  });

  it("refuses a frame too big for anything but output", () => {
    const reader = new HolderFrameReader(() => undefined);
    const header = Buffer.alloc(5);
    header[0] = H.ERROR;
    header.writeUInt32LE(10 * 1024 * 1024, 1);
    expect(() => reader.push(header)).toThrow(/frame of 10485760 bytes/);
  });

  it("bounds a viewer's resume past the durable output by what the holder keeps (native/holder.c)", () => {
    const source = readFileSync(new URL("../../native/holder.c", import.meta.url), "utf8");
    // `#define NAME (8 * 1024 * 1024)`: the product of its factors.
    const bytes = (name: string) =>
      new RegExp(`#define ${name} \\(([\\d *]+)\\)`)
        .exec(source)![1]!
        .split("*")
        .reduce((product, factor) => product * Number(factor), 1);
    // Kept unacknowledged: HOLD_MAX_BYTES, HOLD_TAIL_BYTES after the exit, and one read.
    expect(HOLDER_KEEPS_MAX_BYTES).toBe(bytes("HOLD_MAX_BYTES") + bytes("HOLD_TAIL_BYTES") + bytes("READ_BYTES"));
  });
  it("keeps as many input records as the holder, and speaks its version (native/holder.c)", () => {
    const source = readFileSync(new URL("../../native/holder.c", import.meta.url), "utf8");
    const define = (name: string) => Number(new RegExp(`#define ${name} (\\d+)`).exec(source)![1]);
    // More than the holder keeps would be refused by it (the connection then lost).
    expect([HOLDER_RECORDS_MAX, HOLDER_RECORD_ACTOR_MAX_BYTES, HOLDER_PROTOCOL_MINOR]).toEqual([
      define("RECORDS_MAX"),
      define("RECORD_ACTOR_MAX"),
      define("PROTO_MINOR"),
    ]);
  });

  it("decodes the records a 1.2 holder reports at HELLO, an unplaced one as Infinity", () => {
    const p = Buffer.alloc(36 + 2 * 14 + 3 + 2);
    p.writeUInt16LE(1, 0);
    p.writeUInt16LE(2, 2);
    p.writeUInt32LE(2, 32);
    p.writeBigUInt64LE(7n, 36);
    p.writeUInt32LE(5, 44);
    p.writeUInt16LE(3, 48);
    p.write("abc", 50);
    p.writeBigUInt64LE(0xffff_ffff_ffff_ffffn, 53);
    p.writeUInt32LE(9, 61);
    p.writeUInt16LE(2, 65);
    p.write("de", 67);
    const got: HolderFrame[] = [];
    new HolderFrameReader((f) => got.push(f)).push(frame(H.HELLO, p));
    const hello = got[0]!.type === "hello" ? got[0]!.hello : undefined;
    expect(hello?.records.map((r) => [r.mark, r.bytes, Buffer.from(r.by).toString()])).toEqual([
      [7, 5, "abc"],
      [Infinity, 9, "de"],
    ]);
    // A count past the frame's end breaks the protocol rather than reading past it.
    p.writeUInt32LE(3, 32);
    expect(() => new HolderFrameReader(() => undefined).push(frame(H.HELLO, p))).toThrow(/short HELLO record/);
  });
});
