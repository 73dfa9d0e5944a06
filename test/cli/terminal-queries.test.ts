import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_HELD_SEQUENCE_BYTES, QueryFilter } from "../../src/cli/terminal-queries.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** What vim and friends ask a terminal when they start (exploratory testing found these in replays). */
const QUERIES = [
  "\x1b[6n", // DSR: cursor position
  "\x1b[5n", // DSR: status
  "\x1b[?6n", // DECXCPR
  "\x1b[c", // DA1
  "\x1b[0c",
  "\x1b[>c", // DA2
  "\x1b[=c", // DA3
  "\x1bZ", // DECID
  "\x1b]10;?\x07", // foreground colour
  "\x1b]11;?\x1b\\", // background colour, ST-terminated
  "\x1b]4;1;?\x07", // palette
  "\x1b]52;c;?\x07", // clipboard read
  "\x1b[?12$p", // DECRQM
  "\x1b[4$p",
  "\x1b[>q", // XTVERSION
  "\x1b[>0q",
  "\x1bP$qm\x1b\\", // DECRQSS
  "\x1bP+q544e\x1b\\", // XTGETTCAP
  "\x1b[14t", // window size in pixels
  "\x1b[18t", // text area in characters
  "\x1b[?u", // kitty keyboard flags
  "\x1b[?4m", // XTQMODKEYS
  "\x05", // ENQ
];

/** Output that makes no answer and must come through as it is. */
const KEPT =
  "plain text é ✓\r\n\x1b[1;31mred\x1b[0m \x1b[?1049h\x1b[?25l\x1b[1;20r\x1b[H\x1b[2J\x1b(0q\x1b(B" +
  "\x1b]0;title?\x07\x1b]2;a;b\x1b\\\x1b[>4;2m\x1b[2 q\x1b[22;0t\x1b[8;30;100t\x1bP1$r0m\x1b\\\x1b=\x1b7\x1b8" +
  "\x1b[?1$h\x1b[>1u\x1b[?1;2c";

describe("QueryFilter", () => {
  it("removes every query and keeps everything else", () => {
    const filter = new QueryFilter();
    const input = `a${QUERIES.join("b")}c${KEPT}`;
    expect(text(filter.filter(bytes(input)))).toBe(`a${"b".repeat(QUERIES.length - 1)}c${KEPT}`);
  });

  it("finds queries however the output is split into chunks", () => {
    const input = bytes(`x${QUERIES.join("")}${KEPT}${QUERIES.join("-")}y`);
    const expected = `x${KEPT}${"-".repeat(QUERIES.length - 1)}y`;
    fc.assert(
      fc.property(fc.array(fc.nat(input.length), { maxLength: 12 }), (cuts) => {
        const filter = new QueryFilter();
        const parts: Uint8Array[] = [];
        let at = 0;
        for (const cut of [...cuts].sort((a, b) => a - b)) {
          parts.push(filter.filter(input.subarray(at, Math.max(at, cut))));
          at = Math.max(at, cut);
        }
        parts.push(filter.filter(input.subarray(at)));
        return Buffer.concat(parts).toString() === expected;
      }),
    );
  });

  it("passes live output on as it is, finishing a query the replay began", () => {
    const filter = new QueryFilter();
    expect(text(filter.filter(bytes("replayed\x1b[6"), true))).toBe("replayed");
    // The rest of the replay's query comes with live output: still the replay's, removed.
    expect(text(filter.filter(bytes("nlive\x1b[6n"), false))).toBe("live\x1b[6n");
    expect(text(filter.filter(bytes("\x1b[c"), false))).toBe("\x1b[c");
  });

  it("passes a long string (an OSC 52 copy) on without holding it all", () => {
    const filter = new QueryFilter();
    const payload = "A".repeat(MAX_HELD_SEQUENCE_BYTES * 4);
    const first = text(filter.filter(bytes(`\x1b]52;c;${payload}`)));
    expect(first).toBe(`\x1b]52;c;${payload}`);
    expect(text(filter.filter(bytes("\x07after\x1b[6n")))).toBe("\x07after");
  });

  it("keeps a sequence cut short by another", () => {
    const filter = new QueryFilter();
    expect(text(filter.filter(bytes("\x1b]0;ti\x1b[6n\x1b[31mx")))).toBe("\x1b]0;ti\x1b[31mx");
  });
});
