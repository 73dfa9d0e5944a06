import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_OSC_BYTES, TerminalModes } from "../../src/cli/terminal-modes.js";

const bytes = (s: string) => new TextEncoder().encode(s);

/** A tracker fed `text` cut at `cuts` (in any order), as output arrives in chunks. */
function fedInPieces(text: string, cuts: number[]): TerminalModes {
  const modes = new TerminalModes();
  const all = bytes(text);
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    modes.feed(all.subarray(at, Math.max(at, cut)));
    at = Math.max(at, cut);
  }
  modes.feed(all.subarray(at));
  return modes;
}

describe("TerminalModes", () => {
  it("undoes exactly the modes left on, alternate screen first", () => {
    const modes = new TerminalModes();
    modes.feed(bytes("hello \x1b[?1049h\x1b[?25l\x1b[?1000;1006h\x1b[?2004h\x1b=text\x1b[?2004l"));
    expect(modes.resetSequence()).toBe("\x1b[?1049l\x1b[?1000l\x1b[?1006l\x1b>\x1b[?25h");
  });

  // Found by a re-check: a detach in the middle of a synchronized frame (mode 2026) could hold
  // the terminal's drawing; reverse wrap, the numeric keypad mode and side margins stayed too.
  it("undoes synchronized output, reverse wrap, the keypad mode and side margins", () => {
    const modes = new TerminalModes();
    modes.feed(bytes("\x1b[?45h\x1b[?66h\x1b[?69h\x1b[?2026hhalf a frame"));
    expect(modes.resetSequence()).toBe("\x1b[?45l\x1b[?66l\x1b[?69l\x1b[?2026l");
  });

  it("has nothing to undo for plain output or modes already turned off", () => {
    const modes = new TerminalModes();
    modes.feed(bytes("\x1b[1;31mred\x1b[0m \x1b[?1049h\x1b[?1049l \x1b[?25l\x1b[?25h \x1b[2J"));
    expect(modes.resetSequence()).toBe("");
  });

  it("finds sequences however the output is split into chunks", () => {
    const text = "a\x1b[?1049hb\x1b[?25l\x1b[?1;2004hc";
    fc.assert(
      fc.property(fc.array(fc.nat(text.length), { maxLength: 6 }), (cuts) => {
        return fedInPieces(text, cuts).resetSequence() === "\x1b[?1049l\x1b[?1l\x1b[?2004l\x1b[?25h";
      }),
    );
  });

  // Regression (exploratory testing): detaching mid-vim left vim's scroll region, so `seq 1 45`
  // scrolled 20 of 30 rows; nor were autowrap, character sets or modifyOtherKeys put back.
  it("undoes a scroll region, origin, autowrap, insert mode, character sets, key encodings and the cursor's shape", () => {
    const text = "\x1b[?1049h\x1b[1;20r\x1b[?6h\x1b[?7l\x1b[4h\x1b(0\x0e\x1b[>4;2m\x1b[>1u\x1b[2 q\x1b[?25l";
    const expected = "\x1b[?1049l\x1b[?6l\x1b7\x1b[r\x1b8\x1b(B\x0f\x1b[?7h\x1b[4l\x1b[>4m\x1b[<1u\x1b[0 q\x1b[?25h";
    fc.assert(
      fc.property(fc.array(fc.nat(text.length), { maxLength: 6 }), (cuts) => {
        return fedInPieces(text, cuts).resetSequence() === expected;
      }),
    );
    expect(new TerminalModes().resetSequence()).toBe("");
  });

  it("has nothing to undo once the program put them back itself, or reset the terminal", () => {
    const modes = new TerminalModes();
    modes.feed(
      bytes("\x1b[1;20r\x1b[r\x1b[?7l\x1b[?7h\x1b(0\x1b(B\x0e\x0f\x1b[>4;2m\x1b[>4m\x1b[>1u\x1b[<u\x1b[4h\x1b[4l"),
    );
    expect(modes.resetSequence()).toBe("");
    modes.feed(bytes("\x1b[?1049h\x1b[5;9r\x1b[?7l\x1bc"));
    expect(modes.resetSequence()).toBe("");
    expect(modes.scrollRegion).toBe(false);
  });

  // Carried from exploratory testing: a theme set through OSC (palette entries, the default
  // background) stayed in the user's terminal after a detach.
  it("puts back the palette entries and dynamic colours a program set through OSC, and only those", () => {
    const text =
      "\x1b]4;1;rgb:ff/00/00\x07a\x1b]4;9;#ff0000;12;?\x1b\\b\x1b]11;#000000\x07\x1b]10;?\x07\x1b]12;red\x1b\\c";
    const expected = "\x1b]104;1;9\x1b\\\x1b]111\x1b\\\x1b]112\x1b\\";
    fc.assert(
      fc.property(fc.array(fc.nat(text.length), { maxLength: 6 }), (cuts) => {
        return fedInPieces(text, cuts).resetSequence() === expected;
      }),
    );
    // `OSC 10 ; fg ; bg` sets both.
    const both = new TerminalModes();
    both.feed(bytes("\x1b]10;white;black\x07"));
    expect(both.resetSequence()).toBe("\x1b]110\x1b\\\x1b]111\x1b\\");
  });

  it("has no colour to put back after queries, titles, or the program's own resets", () => {
    const modes = new TerminalModes();
    modes.feed(bytes("\x1b]11;?\x07\x1b]4;1;?\x1b\\\x1b]0;my title\x07\x1b]8;;https://x.example\x07link\x1b]8;;\x07"));
    expect(modes.resetSequence()).toBe("");
    modes.feed(bytes("\x1b]4;1;red;2;blue\x07\x1b]104;1\x07\x1b]104;2\x07\x1b]11;#000\x07\x1b]111\x07"));
    expect(modes.resetSequence()).toBe("");
    modes.feed(bytes("\x1b]4;3;red;200;blue\x07\x1b]104\x07"));
    expect(modes.resetSequence()).toBe("");
    modes.feed(bytes("\x1b]4;3;red\x07\x1b]12;red\x07\x1bc"));
    expect(modes.resetSequence()).toBe("");
  });

  it("reads the sequences after an OSC string, and resets the whole palette after one too long to read", () => {
    const modes = new TerminalModes();
    modes.feed(bytes("\x1b]2;title\x1b\\\x1b[?1049h\x1b]0;x\x07\x1b[?25l"));
    expect(modes.resetSequence()).toBe("\x1b[?1049l\x1b[?25h");
    const long = new TerminalModes();
    let palette = "\x1b]4";
    for (let i = 0; palette.length <= MAX_OSC_BYTES + 10; i++) palette += `;${i};rgb:10/20/30`;
    long.feed(bytes(`${palette}\x07\x1b[?2004h`));
    expect(long.resetSequence()).toBe("\x1b[?2004l\x1b]104\x1b\\");
  });
});
