import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OutputEntry, outputDataJson, utf8Json } from "../../src/log/output-entry.js";

/** Text that stresses JSON escaping: controls, quotes, backslashes, DEL, Latin-1, CJK, emoji, U+2028. */
const tricky = fc.string({
  unit: fc.oneof(
    fc.constantFrom("\0", "\b", "\t", "\n", "\f", "\r", "\x1b", "\x1f", '"', "\\", "/", "\x7f", "\u2028", "\u2029"),
    fc.constantFrom("é", "ÿ", "\u0100", "─", "│", "✓", "漢", "😀", "\ud7ff", "\ue000", "\uffff"),
    fc.string({ unit: "grapheme", maxLength: 4 }),
    fc.string({ unit: "binary", maxLength: 4 }),
  ),
  maxLength: 200,
});

describe("output JSON built from the bytes", () => {
  it("is byte for byte the UTF-8 of JSON.stringify of the text", () => {
    fc.assert(
      fc.property(tricky, (text) => {
        const bytes = Buffer.from(text, "utf8");
        const built = Buffer.from(outputDataJson(bytes, false), "latin1");
        expect(built.equals(Buffer.from(JSON.stringify(text), "utf8"))).toBe(true);
        expect(JSON.parse(built.toString("utf8"))).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  it("is base64 in quotes for binary output", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const built = Buffer.from(outputDataJson(bytes, true), "latin1").toString("utf8");
        expect(JSON.parse(built)).toBe(Buffer.from(bytes).toString("base64"));
      }),
    );
  });

  it("frames an entry exactly as its JSON text would be, also around non-ASCII text", () => {
    fc.assert(
      fc.property(tricky, fc.boolean(), fc.string(), (text, binary, session) => {
        const bytes = binary ? Buffer.from(text, "utf16le") : Buffer.from(text, "utf8");
        const entry = new OutputEntry(7, 1_700_000_000_000, "stdout", 1234, bytes, binary);
        const before = `{"op":"event","session":${JSON.stringify(session)},"event":`;
        const frame = entry.jsonUtf8(before, "}");
        expect(frame.equals(Buffer.from(`${before}${entry.json}}`, "utf8"))).toBe(true);
        expect(JSON.parse(frame.toString("utf8"))).toEqual({ op: "event", session, event: entry.event() });
      }),
      { numRuns: 500 },
    );
  });

  it("puts text of any width around a byte string, writing the byte string as its bytes", () => {
    const frame = utf8Json("«", Buffer.from('"é"').toString("latin1"), "»");
    expect(frame.toString("utf8")).toBe('«"é"»');
    expect(frame.length).toBe(Buffer.byteLength('«"é"»'));
  });
});
