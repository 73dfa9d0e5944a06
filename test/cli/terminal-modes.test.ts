import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TerminalModes } from "../../src/cli/terminal-modes.js";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("TerminalModes", () => {
  it("undoes exactly the modes left on, alternate screen first", () => {
    const modes = new TerminalModes();
    modes.feed(bytes("hello \x1b[?1049h\x1b[?25l\x1b[?1000;1006h\x1b[?2004h\x1b=text\x1b[?2004l"));
    expect(modes.resetSequence()).toBe("\x1b[?1049l\x1b[?1000l\x1b[?1006l\x1b>\x1b[?25h");
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
        const modes = new TerminalModes();
        const all = bytes(text);
        let at = 0;
        for (const cut of [...cuts].sort((a, b) => a - b)) {
          modes.feed(all.subarray(at, Math.max(at, cut)));
          at = Math.max(at, cut);
        }
        modes.feed(all.subarray(at));
        return modes.resetSequence() === "\x1b[?1049l\x1b[?1l\x1b[?2004l\x1b[?25h";
      }),
    );
  });
});
