import headless from "@xterm/headless";
import type { Terminal as HeadlessTerminal } from "@xterm/headless";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { capMarks } from "../../src/screen/mark-cap.js";
import type { PrintingCore } from "../../src/screen/mark-cap.js";
import { SCREEN_REPEAT_CODE_POINTS_MAX, boundRepeat } from "../../src/screen/repeat-bound.js";
import { ScreenEmulator } from "../../src/screen/screen-emulator.js";
import { chunked } from "../helpers/chunks.js";

const { Terminal } = headless;

/** Output with REPs among wide and combined characters, moves, modes and margins. */
const part = fc.oneof(
  fc.constantFrom("x", "漢", "e\u0301", "e\u0301\u0308", "😀", "─", "ab", " "),
  fc.integer({ min: 0, max: 60 }).map((n) => `\x1b[${n}b`),
  // Past one chunk (SCREEN_REPEAT_CHUNK_CODE_POINTS) of one or two code points a repetition.
  fc.constantFrom(9_000, 20_000, 40_000).map((n) => `\x1b[${n}b`),
  fc.constantFrom(
    "\x1b[?7l",
    "\x1b[?7h",
    "\x1b[4h",
    "\x1b[4l",
    "\r\n",
    "\b",
    "\x1b[999C",
    "\x1b[1D",
    "\x1b[2;2r",
    "\x1b[H",
  ),
);

/** Every cell of both buffers (characters and width) and the cursor, after `chunks`, REP run by xterm or by boundRepeat. */
async function cellsAfter(cols: number, rows: number, chunks: Buffer[], bounded: boolean) {
  const term: HeadlessTerminal = new Terminal({ cols, rows, scrollback: 4, allowProposedApi: true, logLevel: "off" });
  capMarks((term as unknown as { _core: PrintingCore })._core);
  if (bounded) boundRepeat(term, () => undefined);
  for (const chunk of chunks) await new Promise<void>((resolve) => term.write(chunk, resolve));
  const cell = term.buffer.active.getNullCell();
  const cells: string[] = [];
  for (const buffer of [term.buffer.normal, term.buffer.alternate]) {
    for (let y = 0; y < buffer.length; y++) {
      const line = buffer.getLine(y)!;
      for (let x = 0; x < cols; x++) cells.push(`${line.getCell(x, cell)!.getChars()}/${cell.getWidth()}`);
    }
  }
  const { cursorX, cursorY } = term.buffer.active;
  term.dispose();
  return { cells, cursorX, cursorY };
}

describe("boundRepeat", () => {
  it("property: REP within the bound leaves the screen xterm's own REP leaves, in one chunk or many, cut anywhere", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          cols: fc.integer({ min: 2, max: 10 }),
          rows: fc.integer({ min: 1, max: 4 }),
          parts: fc.array(part, { minLength: 1, maxLength: 16 }),
          cuts: fc.array(fc.nat(), { maxLength: 4 }),
        }),
        async ({ cols, rows, parts, cuts }) => {
          const chunks = chunked(Buffer.from(parts.join("")), cuts);
          expect(await cellsAfter(cols, rows, chunks, true)).toEqual(await cellsAfter(cols, rows, chunks, false));
        },
      ),
      { numRuns: 300, interruptAfterTimeLimit: 5_000, seed: 7 },
    );
  });

  it(`prints at most ${SCREEN_REPEAT_CODE_POINTS_MAX} code points, in pieces, for a REP of a cell with 16 marks (regression: RangeError)`, async () => {
    const emulator = new ScreenEmulator(80, 24);
    const marks = "\u0301".repeat(16);
    const started = performance.now();
    // Wraparound on: every repetition prints a cell of its own, 17 code points each.
    emulator.write(Buffer.from(`e${marks}\x1b[999999999b`));
    await emulator.settled();
    const took = performance.now() - started;
    const lines = emulator.checkpoint().split(`e${marks}`).length - 1;
    // Past the bound the REP stops: 61,680 cells, not the 82,080 the count clamp allows.
    expect(lines).toBe(Math.floor(SCREEN_REPEAT_CODE_POINTS_MAX / 17) + 1);
    expect(took).toBeLessThan(5_000);
    emulator.dispose();
  });
});
