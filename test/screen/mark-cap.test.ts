import headless from "@xterm/headless";
import type { Terminal as HeadlessTerminal } from "@xterm/headless";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SCREEN_CELL_MARKS_MAX, capMarks } from "../../src/screen/mark-cap.js";
import type { PrintingCore } from "../../src/screen/mark-cap.js";
import { ScreenEmulator } from "../../src/screen/screen-emulator.js";
import { chunked } from "../helpers/chunks.js";

const { Terminal } = headless;
const CAP = SCREEN_CELL_MARKS_MAX;
const MARKS = ["\u0301", "\u0308", "\u0327", "\u20d7", "\u05b4"];

/**
 * A base character and `n` marks, as printed and as a terminal keeping at most CAP shows it. Of
 * every length up to the most (`size: "max"`), so that clusters of CAP and CAP + 1 marks come
 * up: fast-check's default size seldom reaches them.
 */
const cluster = (maxMarks: number) =>
  fc
    .tuple(
      fc.constantFrom("e", "a", "漢", "─"),
      fc.array(fc.constantFrom(...MARKS), { maxLength: maxMarks, size: "max" }),
    )
    .map(([base, marks]) => [base + marks.join(""), base + marks.slice(0, CAP).join("")] as const);

/** Output around the clusters: moves, wraps, styles, REP, charsets, and marks a sequence leaves standing alone. */
const other = fc
  .oneof(
    fc.stringMatching(/^[a-z ]{1,6}$/),
    fc.constantFrom("\r\n", "\b", "\t", "\x1b[31m", "\x1b[0m", "\x1b[H", "\x1b[2;3H", "\x1b[3b", "\x1b[4h", "\x1b[4l"),
    fc.constantFrom("\x1b(0q\x1b(B", "\x1b[?7l", "\x1b[?7h", "\x1b[1P", "\x1b[2@"),
    fc.array(fc.constantFrom(...MARKS), { minLength: 1, maxLength: 3 * CAP }).map((marks) => "\x1b[m" + marks.join("")),
  )
  .map((text) => [text, text] as const);

/*
 * Stacked cells: a cell can take more marks than any one printed cluster held. REP prints the
 * preceding cell's marks again, and at the last column without wraparound the marks of successive
 * wide characters can land on one cell. The cap then keeps the cell's first CAP marks, which is
 * not what cutting each cluster gives: the properties leave that output out. That no cell ever
 * holds more than CAP is held by test/screen/hostile-screen.test.ts and "Stacked cells" below.
 */

function scenario(maxMarks: number) {
  return fc.record({
    cols: fc.integer({ min: 2, max: 10 }),
    rows: fc.integer({ min: 1, max: 4 }),
    parts: fc.array(fc.oneof(cluster(maxMarks), other), { minLength: 1, maxLength: 16 }),
    cuts: fc.array(fc.nat(), { maxLength: 6 }),
  });
}

/**
 * Every cell of both buffers (characters and width), the cursor and which buffer shows, and the
 * most marks a cell holds (the characters after its first).
 */
async function cellsAfter(cols: number, rows: number, chunks: Buffer[], capped: boolean) {
  const term: HeadlessTerminal = new Terminal({ cols, rows, scrollback: 5, allowProposedApi: true, logLevel: "off" });
  if (capped) capMarks((term as unknown as { _core: PrintingCore })._core);
  for (const chunk of chunks) await new Promise<void>((resolve) => term.write(chunk, resolve));
  const cell = term.buffer.active.getNullCell();
  const cells: string[] = [];
  let mostMarks = 0;
  for (const buffer of [term.buffer.normal, term.buffer.alternate]) {
    for (let y = 0; y < buffer.length; y++) {
      const line = buffer.getLine(y)!;
      for (let x = 0; x < cols; x++) {
        const chars = line.getCell(x, cell)!.getChars();
        mostMarks = Math.max(mostMarks, [...chars].length - 1);
        cells.push(`${chars}/${cell.getWidth()}`);
      }
    }
  }
  const { cursorX, cursorY, type } = term.buffer.active;
  term.dispose();
  return { view: { cells, cursorX, cursorY, type }, mostMarks };
}

describe("capMarks", () => {
  it(`property: output whose cells hold at most ${CAP} marks shows in xterm.js exactly as without the cap, cut anywhere`, async () => {
    await fc.assert(
      fc.asyncProperty(scenario(CAP), async ({ cols, rows, parts, cuts }) => {
        const chunks = chunked(Buffer.from(parts.map((p) => p[0]).join("")), cuts);
        const plain = await cellsAfter(cols, rows, chunks, false);
        // Output that stacks more than CAP marks on one cell is left out here and below: the cap
        // counts a run of joining marks, and a cell can take several ("Stacked cells" above).
        fc.pre(plain.mostMarks <= CAP);
        expect((await cellsAfter(cols, rows, chunks, true)).view).toEqual(plain.view);
      }),
      { numRuns: 300, interruptAfterTimeLimit: 15_000 },
    );
  });

  it(`property: past ${CAP} marks on a cell, the cell shows the first ${CAP}, and nothing else changes`, async () => {
    await fc.assert(
      fc.asyncProperty(scenario(3 * CAP), async ({ cols, rows, parts, cuts }) => {
        // Cut alike: the cuts fall in each at the same place of the same part.
        const cutsOf = (texts: string[]) => {
          const ends = texts.map((_, i) => Buffer.byteLength(texts.slice(0, i + 1).join("")));
          return cuts.map((c) => ends[c % ends.length]!);
        };
        const printed = parts.map((p) => p[0]);
        const reference = parts.map((p) => p[1]);
        const capped = await cellsAfter(cols, rows, chunked(Buffer.from(printed.join("")), cutsOf(printed)), true);
        const shown = await cellsAfter(cols, rows, chunked(Buffer.from(reference.join("")), cutsOf(reference)), false);
        fc.pre(shown.mostMarks <= CAP);
        expect(capped.view).toEqual(shown.view);
      }),
      { numRuns: 300, interruptAfterTimeLimit: 15_000 },
    );
  });

  it("Stacked cells: a cell keeps its first marks, however many runs of marks reach it (regression: 1.3 million code points in a cell)", async () => {
    const emulator = new ScreenEmulator(10, 2);
    const marks = "\u0301".repeat(CAP);
    // Without wraparound a wide character does not fit at the last column: it is dropped and its
    // marks join the cell before (the first 漢, at columns 8–9). REP prints it and its marks 20
    // times more: each copy's 漢 is dropped and its marks join that cell again.
    emulator.write(Buffer.from(`\x1b[?7l\x1b[1;8H漢漢${marks}\x1b[20b`));
    await emulator.settled();
    // Seven blanks and that cell: its base and its first CAP marks.
    expect(emulator.view({ format: "text" }).screen).toBe(`${" ".repeat(7)}漢${marks}`);
    emulator.dispose();
  });

  it("keeps 'e', 1,000 marks and a huge REP small and quick (regression: the screen thread ran out of heap)", async () => {
    const emulator = new ScreenEmulator(80, 24);
    const started = performance.now();
    emulator.write(Buffer.from("e" + "\u0301".repeat(1000) + "\x1b[999999999b"));
    await emulator.settled();
    expect(performance.now() - started).toBeLessThan(10_000);
    const row = emulator.view({ format: "text" }).screen.split("\n")[0]!;
    // Every cell: the base and CAP marks.
    expect(row).toBe(("e" + "\u0301".repeat(CAP)).repeat(80));
    emulator.dispose();
  });
});
