import { describe, expect, it } from "vitest";
import { isTerminalReport } from "../../src/core/terminal-reports.js";

describe("terminal reports", () => {
  it("knows what a terminal answers by itself", () => {
    for (const report of [
      "\x1b[24;80R", // cursor position
      "\x1b[?1;2c", // DA1
      "\x1b[>0;276;0c", // DA2 (xterm.js)
      "\x1b[0n", // status
      "\x1b[?12;2$y", // DECRPM
      "\x1b[8;24;80t", // window size
      "\x1b[?0u", // kitty keyboard flags
      "\x1b[I", // focus in
      "\x1b]11;rgb:0c0c/0f0f/1515\x1b\\", // background colour (ST)
      "\x1b]10;rgb:d9d9/dede/e8e8\x07", // foreground colour (BEL)
      "\x1bP1$r0m\x1b\\", // DECRQSS
      "\x1b[3;3R\x1b[?1;2c\x1b]11;rgb:0c0c/0f0f/1515\x1b\\", // several at once
    ]) {
      expect(isTerminalReport(report), JSON.stringify(report)).toBe(true);
    }
  });

  it("takes nothing typed for one: text, arrows, function keys, Escape, a report with a key after it", () => {
    for (const keys of [
      "",
      "ls\r",
      "\x1b",
      "\x1b[A",
      "\x1bOA",
      "\x1b[15~",
      "\x1b[1;5C",
      "\x03",
      "\x1b[3;3Rx",
      "y\x1b[3;3R",
      "\x1b[200~pasted\x1b[201~",
    ]) {
      expect(isTerminalReport(keys), JSON.stringify(keys)).toBe(false);
    }
  });
});
