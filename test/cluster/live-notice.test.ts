import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeNotice } from "../../src/cluster/live-notice.js";
import { entryArgs } from "../../src/cluster/redis-log.js";
import { OutputEntry } from "../../src/log/output-entry.js";
import type { StoredEntry } from "../../src/log/store.js";
import { jsonSize } from "../../src/log/types.js";

/** A notice as the APPEND script writes it: `<head> <first> <epoch> <r|-> [<from>\n<len>:<arg>...]`. */
function encode(
  n: { head: number; first: number; epoch: number; record: boolean; from?: number },
  entries: StoredEntry[],
): Buffer {
  const header = `${n.head} ${n.first} ${n.epoch} ${n.record ? "r" : "-"}`;
  if (entries.length === 0) return Buffer.from(header);
  const parts = entries.flatMap(entryArgs).map((arg) => {
    const bytes = Buffer.from(arg);
    return Buffer.concat([Buffer.from(`${bytes.length}:`), bytes]);
  });
  return Buffer.concat([Buffer.from(`${header} ${n.from ?? entries[0]!.seq}\n`), ...parts]);
}

const custom = (seq: number, json: string): StoredEntry => ({ seq, type: "custom", json, size: jsonSize(json) });

/** An entry at `seq`: a custom event (any text, separators included) or output (any bytes). */
const entryAt = (seq: number): fc.Arbitrary<StoredEntry> =>
  fc.oneof(
    fc.string({ unit: "binary", maxLength: 40 }).map((text) => custom(seq, JSON.stringify({ type: "custom", text }))),
    fc
      .record({
        ts: fc.integer({ min: 0, max: 2 ** 45 }),
        stream: fc.constantFrom("stdout" as const, "stderr" as const),
        offset: fc.integer({ min: 0, max: 2 ** 40 }),
        bytes: fc.uint8Array({ maxLength: 40 }),
        binary: fc.boolean(),
      })
      .map((o) => new OutputEntry(seq, o.ts, o.stream, o.offset, Buffer.from(o.bytes), o.binary)),
  );

const batch = fc
  .record({ from: fc.integer({ min: 1, max: 2 ** 40 }), count: fc.integer({ min: 1, max: 5 }) })
  .chain(({ from, count }) =>
    fc.tuple(...Array.from({ length: count }, (_, i) => entryAt(from + i))).map((entries) => ({ from, entries })),
  );

/** What a test compares: an output entry's fields, its bytes as a plain array. */
function plain(entries: StoredEntry[]): unknown[] {
  return entries.map((e) =>
    e instanceof OutputEntry
      ? { seq: e.seq, ts: e.ts, stream: e.stream, outStart: e.outStart, bytes: [...e.bytes], binary: e.binary }
      : { ...e },
  );
}

describe("a live notice", () => {
  it("reads back every header field and entry the append script writes (property)", () => {
    fc.assert(
      fc.property(
        batch,
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.nat(2 ** 31),
        fc.boolean(),
        ({ from, entries }, first, epoch, record) => {
          const head = from + entries.length - 1;
          const notice = decodeNotice(encode({ head, first, epoch, record }, entries));
          expect(notice).toBeDefined();
          expect([notice!.head, notice!.first, notice!.epoch, notice!.recordChanged]).toEqual([
            head,
            first,
            epoch,
            record,
          ]);
          expect(plain(notice!.entries)).toEqual(plain(entries));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("carries no entries when they do not run from `from` to the head (property)", () => {
    fc.assert(
      fc.property(
        batch,
        fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0),
        fc.boolean(),
        ({ from, entries }, shift, atHead) => {
          const head = from + entries.length - 1;
          // Either the from the header names or the head is off by `shift`.
          const notice = decodeNotice(
            encode(
              {
                head: atHead ? head + Math.abs(shift) : head,
                first: 1,
                epoch: 1,
                record: false,
                from: atHead ? from : from + shift,
              },
              entries,
            ),
          );
          expect(notice).toBeDefined();
          expect(notice!.entries).toEqual([]);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("is read without entries when it has none, and not at all in an older node's form", () => {
    expect(decodeNotice(Buffer.from("12 3 4 r"))).toEqual({
      head: 12,
      first: 3,
      epoch: 4,
      recordChanged: true,
      entries: [],
    });
    expect(decodeNotice(Buffer.from("12 3"))).toBeUndefined();
    expect(decodeNotice(Buffer.from("12 x 4 -"))).toBeUndefined();
    expect(decodeNotice(Buffer.from("1 1 1 - 1\n1:1"))).toBeUndefined(); // a field short of an entry
    expect(decodeNotice(Buffer.from("1 1 1 - 1\n9:1"))).toBeUndefined(); // a field longer than the notice
  });

  it("never throws on a damaged notice: it is refused or read (property)", () => {
    fc.assert(
      fc.property(
        batch,
        fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { maxLength: 4 }),
        fc.nat(),
        ({ from, entries }, flips, cut) => {
          const bytes = encode({ head: from + entries.length - 1, first: 1, epoch: 7, record: false }, entries);
          for (const { at, byte } of flips) bytes[at % bytes.length] = byte;
          const notice = decodeNotice(bytes.subarray(0, bytes.length - (cut % (bytes.length + 1))));
          // What is read is whole: entries only from `from` to the head it names.
          if (notice !== undefined && notice.entries.length > 0) {
            expect(notice.entries.map((e) => e.seq)).toEqual(
              Array.from({ length: notice.entries.length }, (_, i) => notice.head - notice.entries.length + 1 + i),
            );
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
