// Output that costs a terminal emulator dearly, as a hostile client writes it to its own PTY (a
// raw `cat` echoes it back as the session's output, which the screen thread then emulates).
// Pure: from a seeded Rng, chunks of text each small enough for one input frame.
import type { Rng } from "../../cluster/nemesis/workload.js";

export const ESCAPE_KINDS = [
  /** Auto-wrap off, a wide character at the right margin, then combining marks without end. */
  "combining-at-margin",
  /** REP with a repeat count of nearly a billion, of plain, wide and heavily marked characters. */
  "huge-repeat",
  /** Both at once: the marked cell at the margin, then REP of it (62 bytes took a screen thread to GBs). */
  "marks-then-repeat",
  /** An SGR with tens of thousands of parameters. */
  "giant-sgr",
  /** OSC title, hyperlink and clipboard strings of hundreds of KiB, some never terminated. */
  "long-osc",
  /** Scroll regions set, inverted, past the screen and scrolled through. */
  "scroll-regions",
  /** A sixel-like DCS string that goes on and on. */
  "long-dcs",
] as const;
export type EscapeKind = (typeof ESCAPE_KINDS)[number];

/** Characters of one chunk: a stdin frame stays under LIMITS.INPUT_BYTES in UTF-8 (3 bytes a char at most). */
export const ESCAPE_CHUNK_CHARS = 16 * 1024;

/** Auto-wrap off (DECAWM reset), the cursor to the first row's last column (CUP clamps). */
const MARGIN = "\x1b[?7l\x1b[1;9999H";

/** A REP whose count is far past any screen. */
function repeat(rng: Rng): string {
  return `\x1b[${rng.pick([999_999_999, 65_535, 2 ** 31 - 1])}b`;
}

function fill(unit: string, chars: number): string {
  return unit.repeat(Math.max(1, Math.floor(chars / unit.length)));
}

/** One chunk of `kind`; `first` says whether it opens the sequence (later ones continue it). */
export function escapeChunk(kind: EscapeKind, rng: Rng, first: boolean): string {
  const n = ESCAPE_CHUNK_CHARS - 64;
  switch (kind) {
    case "combining-at-margin":
      // The second wide character does not fit and is dropped: its marks join the cell before.
      // Every later chunk adds more marks to the same cell.
      return (first ? `${MARGIN}\u6f22\u6f22` : "") + fill(rng.pick(["\u0301", "\u0308\u0323", "\u20dd"]), n / 2);
    case "huge-repeat":
      return fill(`${rng.pick(["x", "\u4e2d", `e${"\u0301".repeat(rng.int(1, 2_000))}`])}${repeat(rng)}`, n);
    case "marks-then-repeat":
      return fill(`${MARGIN}\u6f22\u6f22${"\u0301".repeat(rng.int(16, 4_000))}${repeat(rng)}`, n);
    case "giant-sgr":
      return `\x1b[${fill(rng.pick(["38;2;255;0;127;", "1;", "48;5;196;", "4:3;"]), n)}mSGR`;
    case "long-osc": {
      const opener = rng.pick(["\x1b]0;", "\x1b]8;;http://x/", "\x1b]52;c;", "\x1b]4;1;rgb:"]);
      // Now and then the string ends; mostly it just goes on into the next chunk.
      return (first ? opener : "") + fill("QUJD", n) + (rng.int(0, 3) === 0 ? "\x07" : "");
    }
    case "scroll-regions":
      return fill(
        rng.pick([
          "\x1b[2;3r",
          "\x1b[5;2r",
          `\x1b[1;${rng.int(1, 999_999)}r`,
          "\x1b[r",
          "y\n",
          "\x1bM",
          "\x1b[999S",
          "\x1b[999T",
        ]) + "z\n",
        n,
      );
    case "long-dcs":
      return (first ? "\x1bPq" : "") + fill("#0;2;0;0;0#1~~@@vv", n) + (rng.int(0, 4) === 0 ? "\x1b\\" : "");
  }
}
