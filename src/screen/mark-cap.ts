/**
 * Combining marks one cell keeps after its base character. xterm.js appends every mark to its
 * cell's string, and REP copies that string per repetition: `e`, 1,000 marks and one clamped REP
 * at 80×24 made 82 million code points and ran the screen thread out of heap. X11 xterm keeps at
 * most 5 (`combiningChars`, default 2) and PuTTY 32; 16 keeps every stack a script needs. The
 * count is per cell, as terminals count it, whatever the input's split: a cell that takes
 * several runs of marks (REP, wide characters dropped at the last column without wraparound)
 * keeps its first ones (test/screen/mark-cap.test.ts, "Stacked cells";
 * test/screen/hostile-screen.test.ts).
 */
export const SCREEN_CELL_MARKS_MAX = 16;

/** Code points one cell's string holds at most: its base character and SCREEN_CELL_MARKS_MAX marks. */
export const SCREEN_CELL_CODE_POINTS_MAX = SCREEN_CELL_MARKS_MAX + 1;

/** A row of xterm's buffer: the cells' strings, and where a combined one is kept. */
interface XtermLine {
  length: number;
  getString(x: number): string;
  /** Three numbers a cell: content (code point, width, combined flag), foreground, background. */
  _data: Uint32Array;
  /** Combined strings by column (a cell whose content has the combined flag reads its string here). */
  _combined: Record<number, string>;
}

/** What of xterm's core {@link capMarks} uses: the print step, its Unicode properties and the cursor's row. */
export interface PrintingCore {
  _inputHandler: {
    print(data: Uint32Array, start: number, end: number): void;
    _parser: { precedingJoinState: number };
    _unicodeService: { charProperties(code: number, preceding: number): number };
    _activeBuffer: { x: number; y: number; ybase: number; lines: { get(index: number): XtermLine | undefined } };
  };
}

/** The bit of a character's Unicode properties saying it joins the cell before it (xterm's UnicodeService). */
const SHOULD_JOIN = 1;
/** U+0300, the first combining mark. */
const FIRST_MARK = 0x300;

/**
 * Keeps every cell within {@link SCREEN_CELL_CODE_POINTS_MAX} code points. Before a run is printed,
 * marks past {@link SCREEN_CELL_MARKS_MAX} on one base are dropped, counted with xterm's own
 * Unicode service and join state (any sequence resets it). Marks reach an earlier cell only next
 * to the cursor (a wide character dropped at the margin without wraparound), so after a run with
 * marks those cells are cut to the bound. `onPrint` is told before each run is printed.
 * test/screen/mark-cap.test.ts, test/screen/hostile-screen.test.ts.
 */
export function capMarks(core: PrintingCore, onPrint: () => void = () => undefined): void {
  const input = core._inputHandler;
  const print = input.print.bind(input);
  const unicode = input._unicodeService;
  /** Marks joined so far to the cell the next mark joins, while the join state carries on. */
  let marks = 0;
  input.print = (data, start, end) => {
    onPrint();
    // No character below U+0300 joins (those of width 0 there are C1 controls, never printed):
    // a run of them only starts new cells.
    let first = start;
    while (first < end && data[first]! < FIRST_MARK) first++;
    if (first === end) {
      if (end > start) marks = 0;
      return print(data, start, end);
    }
    let preceding = input._parser.precedingJoinState;
    if (preceding === 0) marks = 0;
    let kept: Uint32Array | undefined;
    let length = 0;
    let joined = false;
    for (let i = start; i < end; i++) {
      const code = data[i]!;
      const properties = unicode.charProperties(code, preceding);
      if ((properties & SHOULD_JOIN) === 0) marks = 0;
      else if (++marks > SCREEN_CELL_MARKS_MAX) {
        // Left out. The join state stays as it was: a joined mark keeps its base's width.
        if (kept === undefined) {
          kept = data.slice(start, end);
          length = i - start;
        }
        continue;
      } else joined = true;
      preceding = properties;
      if (kept !== undefined) kept[length++] = code;
    }
    if (kept === undefined) print(data, start, end);
    else print(kept, 0, length);
    if (joined) trimNearCursor(input._activeBuffer);
  };
}

/** Cells before the cursor that marks can reach from an earlier base: the one or two before it (a wide one's). */
const NEAR_CELLS = 3;

/** Cuts the cells next to the cursor and at the row's end to SCREEN_CELL_CODE_POINTS_MAX code points. */
function trimNearCursor(buffer: PrintingCore["_inputHandler"]["_activeBuffer"]): void {
  const line = buffer.lines.get(buffer.ybase + buffer.y);
  if (line === undefined) return;
  const cols = line.length;
  const near = Math.min(buffer.x, cols);
  for (let x = Math.max(0, near - NEAR_CELLS); x < near; x++) trimCell(line, x);
  for (let x = Math.max(near, cols - NEAR_CELLS); x < cols; x++) trimCell(line, x);
}

function trimCell(line: XtermLine, x: number): void {
  const chars = line._combined[x];
  // A string of at most the bound in UTF-16 units holds at most the bound in code points.
  if (chars === undefined || chars.length <= SCREEN_CELL_CODE_POINTS_MAX || line.getString(x) !== chars) return;
  let end = 0;
  for (let n = 0; n < SCREEN_CELL_CODE_POINTS_MAX && end < chars.length; n++) {
    end += chars.codePointAt(end)! > 0xffff ? 2 : 1;
  }
  if (end < chars.length) line._combined[x] = chars.slice(0, end);
}
