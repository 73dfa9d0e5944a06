import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_ESCAPE_BYTES,
  continuationBytes,
  decodeMarked,
  decodePage,
  escapeEnd,
  plainText,
} from "../../src/mcp/output-text.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

describe("decodePage", () => {
  it("leaves a character cut at the end of a page for the next page", () => {
    const euro = bytes("€"); // 3 bytes
    const page = concat(bytes("price: "), euro.subarray(0, 2));
    expect(decodePage(page, false)).toEqual({ text: "price: ", used: 7, invalid: 0 });
    // At the true end of the output nothing follows: the bytes are shown as they are.
    expect(decodePage(page, true)).toEqual({ text: "price: \\xe2\\x82", used: 9, invalid: 2 });
    expect(decodePage(concat(bytes("price: "), euro), false)).toEqual({ text: "price: €", used: 10, invalid: 0 });
  });

  // Regression (issue: binary output came back as U+FFFD replacement characters).
  it("shows bytes that are not UTF-8 as \\xNN and counts them", () => {
    expect(decodePage(Uint8Array.from([0x61, 0xff, 0x62]), false)).toEqual({ text: "a\\xffb", used: 3, invalid: 1 });
    // Overlong, surrogate, past U+10FFFF, a lone continuation: none is a character.
    for (const bad of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80]]) {
      const page = decodePage(Uint8Array.from([...bad, 0x21]), true);
      expect(page.invalid, bad.join(",")).toBe(bad.length);
      expect(page.text).toBe(bad.map((b) => `\\x${b.toString(16)}`).join("") + "!");
    }
    // A byte that starts no character is not held back for a next page that cannot complete it.
    expect(decodePage(Uint8Array.of(0x61, 0xff), false)).toEqual({ text: "a\\xff", used: 2, invalid: 1 });
    // A character that is well formed stays one, also U+FFFD itself.
    expect(decodePage(bytes("\ufffd 𝄞"), true)).toEqual({ text: "\ufffd 𝄞", used: 8, invalid: 0 });
  });

  it("cuts a page whose \\xNN would make it longer than its size, from the start or from the end", () => {
    const binary = Uint8Array.from({ length: 100 }, (_, i) => 0x80 + i);
    const first = decodePage(binary, true, { max: 64 });
    expect(first).toMatchObject({ used: 16, invalid: 16 });
    expect(first.text).toHaveLength(64);
    const last = decodeMarked(binary, { maxChars: 64, fromEnd: true });
    expect(last).toMatchObject({ used: 16, invalid: 16 });
    expect(last.text.startsWith("\\xd4")).toBe(true);
  });

  it("pages any bytes into text no longer than the page, that joins to the text of one read (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 4, max: 64 }), (input, size) => {
        const whole = decodeMarked(input, { maxChars: Infinity });
        let at = 0;
        let joined = "";
        while (at < input.length) {
          // As the tools page: decodePage cuts the bytes to the page on a character boundary first.
          const page = decodePage(input.subarray(at), true, { max: size });
          expect(page.text.length).toBeLessThanOrEqual(size);
          expect(page.used).toBeGreaterThan(0);
          joined += page.text;
          at += page.used;
        }
        expect(joined).toBe(whole.text);
        // Without backslashes of its own, the text gives back the bytes exactly.
        if (!input.includes(0x5c)) {
          const parts = whole.text.split(/(\\x[0-9a-f]{2})/);
          const back = parts.flatMap((part, i) =>
            i % 2 === 1 ? [parseInt(part.slice(2), 16)] : [...new TextEncoder().encode(part)],
          );
          expect(Uint8Array.from(back)).toEqual(input);
          expect(whole.invalid).toBe((parts.length - 1) / 2);
        }
      }),
    );
  });

  // Regression (exploratory test): a wait whose whole new output was "\x1b[3" took it as text
  // (next after it), and the next one showed "1mRED".
  it("leaves an unfinished character or escape sequence that is all the output so far for later", () => {
    expect(decodePage(bytes("\x1b[3"), false)).toEqual({ text: "", used: 0, invalid: 0 });
    expect(decodePage(bytes("\x1b]0;title"), false)).toEqual({ text: "", used: 0, invalid: 0 });
    expect(decodePage(bytes("€").subarray(0, 2), false)).toEqual({ text: "", used: 0, invalid: 0 });
    // The session ended: nothing will follow, the bytes are shown as they are.
    expect(decodePage(bytes("\x1b[3"), true)).toEqual({ text: "\x1b[3", used: 3, invalid: 0 });
    // More follows the page (a look-ahead): a page makes progress.
    expect(decodePage(bytes("\x1b[3".padEnd(80, ";") + "m"), false, { max: 64 }).used).toBe(64);
  });

  it("leaves an escape sequence cut at the end of a page for the next page", () => {
    expect(decodePage(bytes("ok\x1b[3"), false)).toEqual({ text: "ok", used: 2, invalid: 0 });
    expect(decodePage(bytes("ok\x1b]0;title"), false)).toEqual({ text: "ok", used: 2, invalid: 0 });
    expect(decodePage(bytes("ok\x1b[31m"), false)).toEqual({ text: "ok\x1b[31m", used: 7, invalid: 0 });
    expect(decodePage(bytes("ok\x1b]0;t\x07"), false).used).toBe(8);
  });

  // A page holds at least one whole character (read_output's pages are at least 64 bytes).
  it("rebuilds any text exactly when read in pages of 4 bytes or more", () => {
    const text = "héllo wörld €100 ✓ 𝄞 done\n".repeat(20);
    const all = bytes(text);
    for (const size of [4, 5, 7, 64]) {
      let at = 0;
      let out = "";
      while (at < all.length) {
        const page = all.subarray(at, at + size);
        const { text: part, used } = decodePage(page, at + page.length >= all.length);
        out += part;
        at += used;
      }
      expect(out).toBe(text);
    }
  });
});

describe("plainText", () => {
  it("removes colours, titles and cursor moves, and turns CRLF into LF", () => {
    expect(plainText("\x1b]0;my title\x07\x1b[1;32mPASS\x1b[0m src/a.test.ts\r\n\x1b[2K\x1b[1Gnext\r\n")).toBe(
      "PASS src/a.test.ts\nnext\n",
    );
  });

  it("keeps what a line rewritten with carriage returns shows last", () => {
    expect(plainText("10%\r50%\r100%\r\ndone\n")).toBe("100%\ndone\n");
    expect(plainText("working...\r")).toBe("working...");
  });

  it("removes other control characters but keeps tabs", () => {
    expect(plainText("a\tb\x07c\x00d\n")).toBe("a\tbcd\n");
  });
});

describe("escapeEnd", () => {
  // Regression (exploratory test): wait_for_output's latest max_bytes began inside "\x1b[33m"
  // and showed "[33mcolour".
  it("moves the start of a page that would start inside an escape sequence to after it", () => {
    const all = bytes("abc\x1b[33mcolour\x1b]0;title\x07end");
    for (let at = 4; at <= 8; at++) expect(escapeEnd(all, at), `at ${at}`).toBe(8);
    expect(escapeEnd(all, 3)).toBe(3);
    expect(escapeEnd(all, 9)).toBe(9);
    const title = all.indexOf(0x5d); // "]"
    expect(escapeEnd(all, title + 3)).toBe(all.indexOf(0x07) + 1);
    expect(escapeEnd(all, all.length - 3)).toBe(all.length - 3);
  });
});

describe("continuationBytes", () => {
  it("counts the bytes of a character cut at the start", () => {
    expect(continuationBytes(bytes("€x").subarray(1))).toBe(2);
    expect(continuationBytes(bytes("x€"))).toBe(0);
  });
});

describe("decodePage with a look-ahead", () => {
  /** Reads `all` page by page as read_output does (pages of `max`, the look-ahead after them) and returns the plain text. */
  function plainPages(all: Uint8Array, max: number): string {
    let at = 0;
    let out = "";
    while (at < all.length) {
      const chunk = all.subarray(at, at + max + MAX_ESCAPE_BYTES);
      const { text, used } = decodePage(chunk, at + chunk.length >= all.length, { max, wholeEscapes: true });
      expect(used).toBeGreaterThan(0);
      out += plainText(text);
      at += used;
    }
    return out;
  }

  // Regression (exploratory test): only 256 bytes were looked back, so a page cut a longer OSC
  // hyperlink and the next page began with the rest of it ("pppp…") as text.
  it("gives the same plain text as one read when pages would cut an OSC hyperlink", () => {
    const all = bytes(
      `${"f".repeat(5000)}\x1b]8;;https://example.com/${"p".repeat(1000)}\x1b\\link\x1b]8;;\x1b\\ rest\n`,
    );
    const whole = plainText(decodePage(all, true).text);
    expect(whole).toBe(`${"f".repeat(5000)}link rest\n`);
    for (const max of [64, 100, 1000, 4096, 5100]) expect(plainPages(all, max), `pages of ${max}`).toBe(whole);
  });

  it("ends a page before a sequence it would cut, and takes a longer one whole when the page starts with it", () => {
    const osc = `\x1b]0;${"t".repeat(500)}\x07`;
    const all = bytes(`ok${osc}after`);
    expect(decodePage(all, false, { max: 64 })).toMatchObject({ text: "ok", used: 2 });
    const rest = all.subarray(2);
    expect(decodePage(rest, false, { max: 64, wholeEscapes: true })).toMatchObject({ used: osc.length });
    // As the process wrote it (raw), a page holds at most max bytes.
    expect(decodePage(rest, false, { max: 64 }).used).toBe(64);
  });

  it("treats an OSC longer than MAX_ESCAPE_BYTES as text, and always makes progress", () => {
    const all = bytes(`ab\x1b]0;${"t".repeat(MAX_ESCAPE_BYTES + 10)}\x07`);
    const page = decodePage(all, false, { max: MAX_ESCAPE_BYTES + 9, wholeEscapes: true });
    expect(page.used).toBe(MAX_ESCAPE_BYTES + 9);
  });
});
