import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { incompleteTail } from "../../src/core/sequence-tail.js";

/** Whole pieces of terminal output, each cut anywhere inside held back: ASCII, UTF-8 characters of each length, escape sequences of each kind. */
const PIECES = [
  "a",
  "\r",
  "\n",
  "é",
  "漢",
  "😀",
  "\x1b[31m",
  "\x1b[?1049h",
  "\x1b[38;2;10;20;30m",
  "\x1b]2;a title\x07",
  "\x1b]0;other\x1b\\",
  "\x1b7",
  "\x1b(0",
  "\x1bP1$r0m\x1b\\",
];

describe("incompleteTail", () => {
  it("property: output cut anywhere gives back the part of the piece the cut falls in", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 20 }), fc.nat(), (pieces, at) => {
        const encoded = pieces.map((p) => Buffer.from(p));
        const all = Buffer.concat(encoded);
        const cut = at % (all.length + 1);
        // The start of the piece `cut` falls inside (or `cut` itself, between pieces).
        let start = 0;
        for (const piece of encoded) {
          if (start + piece.length > cut) break;
          start += piece.length;
        }
        expect(incompleteTail(all.subarray(0, cut))).toBe(cut - start);
      }),
      { numRuns: 2000 },
    );
  });

  it("sees no cut in whole output or plain text", () => {
    expect(incompleteTail(Buffer.from("hello \x1b[0m漢"))).toBe(0);
    expect(incompleteTail(Buffer.alloc(0))).toBe(0);
    expect(incompleteTail(Buffer.from("\x1b[3"))).toBe(3);
    expect(incompleteTail(Buffer.from([0x61, 0x62, 0xe6, 0xbc]))).toBe(2);
  });
});
