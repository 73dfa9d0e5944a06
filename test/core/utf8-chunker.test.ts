import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeBase64,
  decodeOutputData,
  encodeBase64,
  Utf8Chunker,
  UTF8_MIN_TEXT_RUN_BYTES,
} from "../../src/core/utf8-chunker.js";
import type { OutputPiece } from "../../src/core/utf8-chunker.js";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Splits `bytes` at the given cut points (any numbers; taken modulo the length, sorted). */
function chunk(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.subarray(prev, p));
    prev = p;
  }
  return chunks;
}

function run(chunks: Uint8Array[]): OutputPiece[] {
  const chunker = new Utf8Chunker();
  return [...chunks.flatMap((c) => chunker.push(c)), ...chunker.end()];
}

const rebuild = (pieces: OutputPiece[]): Uint8Array => concatBytes(pieces.map((p) => decodeOutputData(p.data, p.enc)));

/** Bytes biased towards UTF-8 edge cases: lead bytes, continuations, 4-byte chars, garbage. */
const edgyBytes = fc
  .array(
    fc.oneof(
      fc.uint8Array({ maxLength: 8 }),
      fc.string({ unit: "binary", maxLength: 8 }).map(utf8),
      fc.constantFrom(
        utf8("😀"),
        utf8("€"),
        utf8("é"),
        utf8("\ufeff"),
        Uint8Array.of(0xf0, 0x9f),
        Uint8Array.of(0xe2, 0x82),
        Uint8Array.of(0xed, 0xa0, 0x80), // an encoded surrogate: invalid
        Uint8Array.of(0xc0, 0xaf), // overlong: invalid
        Uint8Array.of(0xe0, 0x9f, 0xbf), // overlong 3-byte: invalid
        Uint8Array.of(0xf0, 0x8f, 0xbf, 0xbf), // overlong 4-byte: invalid
        Uint8Array.of(0xf4, 0x90, 0x80, 0x80), // above U+10FFFF: invalid
        Uint8Array.of(0x80),
        Uint8Array.of(0xff),
      ),
    ),
    { maxLength: 40 },
  )
  .map(concatBytes);

describe("Utf8Chunker", () => {
  it("rebuilds exactly the input bytes for any bytes and any chunking", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 300 }), edgyBytes),
        fc.array(fc.nat(), { maxLength: 20 }),
        (bytes, cuts) => {
          const pieces = run(chunk(bytes, cuts));
          expect(rebuild(pieces)).toEqual(bytes);
          expect(pieces.reduce((n, p) => n + p.byteLength, 0)).toBe(bytes.length);
          for (const p of pieces) {
            expect(decodeOutputData(p.data, p.enc).length).toBe(p.byteLength);
            expect(p.byteLength).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("splits into byte pieces exactly where it decodes, given the chunks or owning them (split ≡ push)", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 300 }), edgyBytes),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.boolean(),
        (bytes, cuts, owned) => {
          const chunks = chunk(bytes, cuts);
          const decoding = new Utf8Chunker();
          const expected = [...chunks.flatMap((c) => decoding.push(c)), ...decoding.end()];
          const splitting = new Utf8Chunker();
          const got = [...chunks.flatMap((c) => splitting.split(Buffer.from(c), owned)), ...splitting.finish()];
          expect(
            got.map((p) =>
              p.binary
                ? { data: Buffer.from(p.bytes).toString("base64"), enc: "base64", byteLength: p.bytes.length }
                : { data: new TextDecoder("utf-8", { ignoreBOM: true }).decode(p.bytes), byteLength: p.bytes.length },
            ),
          ).toEqual(expected);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("turns valid UTF-8 into text only, whatever the chunking (no character is ever split)", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (text, cuts) => {
          const pieces = run(chunk(utf8(text), cuts));
          expect(pieces.every((p) => p.enc === undefined)).toBe(true);
          expect(pieces.map((p) => p.data).join("")).toBe(text);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("holds a 4-byte character split across chunks until it is complete", () => {
    const chunker = new Utf8Chunker();
    const smile = utf8("😀");
    expect(chunker.push(Uint8Array.of(0x61, smile[0]!))).toEqual([{ data: "a", byteLength: 1 }]);
    expect(chunker.heldBytes).toBe(1);
    expect(chunker.push(smile.subarray(1, 3))).toEqual([]);
    expect(chunker.heldBytes).toBe(3);
    expect(chunker.push(smile.subarray(3))).toEqual([{ data: "😀", byteLength: 4 }]);
    expect(chunker.end()).toEqual([]);
  });

  it("sends invalid bytes as base64 between text pieces", () => {
    const before = "x".repeat(UTF8_MIN_TEXT_RUN_BYTES);
    const after = "é".repeat(UTF8_MIN_TEXT_RUN_BYTES / 2);
    const pieces = run([concatBytes([utf8(before), Uint8Array.of(0xff, 0xfe), utf8(after)])]);
    expect(pieces).toEqual([
      { data: before, byteLength: UTF8_MIN_TEXT_RUN_BYTES },
      { data: "//4=", enc: "base64", byteLength: 2 },
      { data: after, byteLength: UTF8_MIN_TEXT_RUN_BYTES },
    ]);
  });

  it("keeps short valid runs among invalid bytes inside one base64 piece (binary output)", () => {
    const bytes = Uint8Array.of(0x68, 0x69, 0xff, 0xfe, 0x6f, 0x6b, 0x80);
    expect(run([bytes])).toEqual([{ data: Buffer.from(bytes).toString("base64"), enc: "base64", byteLength: 7 }]);
    // Random bytes: a handful of pieces, not one per few bytes.
    const random = Uint8Array.from({ length: 64 * 1024 }, (_, i) => (i * 2654435761) >>> 24);
    expect(run([random]).length).toBeLessThan(10);
  });

  it("flushes an unfinished character at the end as base64", () => {
    expect(run([Uint8Array.of(0x61, 0xe2, 0x82)])).toEqual([
      { data: "a", byteLength: 1 },
      { data: "4oI=", enc: "base64", byteLength: 2 },
    ]);
  });

  it("does not hold back a tail that can no longer become valid", () => {
    const chunker = new Utf8Chunker();
    // 0xE0 0x80 is an overlong start: invalid at once, so nothing waits for more bytes.
    expect(chunker.push(Uint8Array.of(0xe0, 0x80))).toEqual([{ data: "4IA=", enc: "base64", byteLength: 2 }]);
    expect(chunker.heldBytes).toBe(0);
  });

  it("keeps a byte order mark instead of dropping it", () => {
    const bytes = utf8("\ufeffx");
    const pieces = run([bytes]);
    expect(pieces).toEqual([{ data: "\ufeffx", byteLength: 4 }]);
    expect(rebuild(pieces)).toEqual(bytes);
  });
});

describe("base64", () => {
  it("matches Node's encoder and round-trips", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const text = encodeBase64(bytes);
        expect(text).toBe(Buffer.from(bytes).toString("base64"));
        expect(decodeBase64(text)).toEqual(bytes);
      }),
    );
  });

  it("rejects characters outside the alphabet", () => {
    expect(() => decodeBase64("ab$d")).toThrow(/invalid base64/);
  });
});
