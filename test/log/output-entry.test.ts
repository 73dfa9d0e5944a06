import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import {
  jsonFrame,
  jsonTextFrame,
  jsonTextFrameJs,
  jsonTextNative,
  useNativeJsonText,
} from "../../src/log/json-text.js";
import type { FramePiece } from "../../src/log/json-text.js";
import { OutputEntry } from "../../src/log/output-entry.js";

/** Text that stresses JSON escaping: controls, quotes, backslashes, DEL, Latin-1, CJK, emoji, U+2028. */
const trickyUnit = fc.oneof(
  fc.constantFrom("\0", "\b", "\t", "\n", "\f", "\r", "\x1b", "\x1f", '"', "\\", "/", "\x7f", "\u2028", "\u2029"),
  fc.constantFrom("é", "ÿ", "\u0100", "─", "│", "✓", "漢", "😀", "\ud7ff", "\ue000", "\uffff"),
  fc.string({ unit: "grapheme", maxLength: 4 }),
  fc.string({ unit: "binary", maxLength: 4 }),
);
const tricky = fc.string({ unit: trickyUnit, maxLength: 200 });
/** Longer runs: plain stretches (the addon copies 8 bytes at a time) broken by escapes, up to the end. */
const long = fc
  .array(fc.tuple(fc.nat({ max: 40 }), trickyUnit), { maxLength: 60 })
  .map((runs) => runs.map(([plain, odd]) => "x".repeat(plain) + odd).join(""));

afterEach(() => useNativeJsonText(true));

describe("JSON text frames built from the bytes", () => {
  it("the addon is built and used", () => {
    // npm ci builds native/json_text.c (scripts/build-native.mjs); a failed build would only warn.
    expect(jsonTextNative()).toBe(true);
  });

  for (const [route, frame] of [
    ["the addon", jsonTextFrame],
    ["JS", jsonTextFrameJs],
  ] as const) {
    it(`(${route}) are byte for byte the UTF-8 of head + JSON.stringify(text) + tail`, () => {
      fc.assert(
        fc.property(fc.oneof(tricky, long), fc.string(), fc.string(), (text, head, tail) => {
          const built = frame(head, Buffer.from(text, "utf8"), tail);
          expect(built.equals(Buffer.from(`${head}${JSON.stringify(text)}${tail}`, "utf8"))).toBe(true);
        }),
        { numRuns: 3000 },
      );
    });
  }

  for (const [route, on] of [
    ["the addon", true],
    ["JS", false],
  ] as const) {
    it(`(${route}) are the same from the text in pieces, cut anywhere, even inside a character`, () => {
      useNativeJsonText(on);
      fc.assert(
        fc.property(fc.oneof(tricky, long), fc.array(fc.nat(), { maxLength: 6 }), (text, cuts) => {
          const bytes = Buffer.from(text, "utf8");
          const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const pieces = [0, ...at].map((from, i) => bytes.subarray(from, at[i] ?? bytes.length));
          const built = jsonTextFrame("{", pieces, "}");
          expect(built.equals(Buffer.from(`{${JSON.stringify(text)}}`, "utf8"))).toBe(true);
        }),
        { numRuns: 1000 },
      );
    });
  }

  for (const [route, on] of [
    ["the addon", true],
    ["JS", false],
  ] as const) {
    it(`(${route}) write a batch of pieces, text as it is and bytes as string literals, in order`, () => {
      useNativeJsonText(on);
      const piece = fc.oneof(
        fc.string().map((t) => ({ expected: t, piece: t as FramePiece })),
        fc.oneof(tricky, long).map((t) => ({ expected: JSON.stringify(t), piece: { text: Buffer.from(t) } })),
      );
      fc.assert(
        fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
          const built = jsonFrame(pieces.map((p) => p.piece));
          expect(built.equals(Buffer.from(pieces.map((p) => p.expected).join(""), "utf8"))).toBe(true);
        }),
        { numRuns: 1000 },
      );
    });
  }

  it("(the addon) read the bytes they are given, also from a view into a bigger buffer", () => {
    const whole = Buffer.from('0123456789"\n\u00e9abcdefgh\\tail');
    const view = new Uint8Array(whole.buffer, whole.byteOffset + 10, 15);
    const text = Buffer.from(view).toString("utf8");
    expect(jsonTextFrame("[", view, "]").toString("utf8")).toBe(`[${JSON.stringify(text)}]`);
    expect(jsonTextFrame("", new Uint8Array(0), "").toString("utf8")).toBe('""');
    // 64 KiB of a flood, as the bench sends it, and of a terminal's lines.
    const flood = Buffer.alloc(65536, "a");
    expect(jsonTextFrame("", flood, "").equals(Buffer.from(JSON.stringify(flood.toString())))).toBe(true);
    const lines = Buffer.from("\x1b[01;34mnode_modules\x1b[0m  package.json\r\n".repeat(1600));
    expect(jsonTextFrame("", lines, "").equals(Buffer.from(JSON.stringify(lines.toString())))).toBe(true);
  });

  it("(the addon) refuse what is not bytes with a TypeError", () => {
    expect(() => jsonTextFrame("", "text" as unknown as Uint8Array, "")).toThrow(TypeError);
    expect(() => jsonTextFrame("", new Uint16Array(4) as unknown as Uint8Array, "")).toThrow(TypeError);
  });
});

describe("output entries as JSON", () => {
  for (const nativeRoute of [true, false]) {
    it(`frame an entry exactly as its JSON text would be, also around non-ASCII text (${nativeRoute ? "addon" : "JS"})`, () => {
      useNativeJsonText(nativeRoute);
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
  }
});
