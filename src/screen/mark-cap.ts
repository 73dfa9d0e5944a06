/**
 * Combining marks one cell keeps after its base character. xterm.js appends every mark to its
 * cell's string, and REP copies that string per repetition: `e`, 1,000 marks and one clamped REP
 * at 80×24 made 82 million code points and ran the screen thread out of heap. X11 xterm keeps at
 * most 5 (`combiningChars`, default 2) and PuTTY 32; 16 keeps every stack a script needs. The
 * count is per run of marks joining one cell: a cell that takes several runs (REP, wide
 * characters at the last column without wraparound) can hold more, each run bounded
 * (test/screen/mark-cap.test.ts, "Stacked cells").
 */
export const SCREEN_CELL_MARKS_MAX = 16;

/** What of xterm's core {@link capMarks} uses: the print step and its Unicode properties. */
export interface PrintingCore {
  _inputHandler: {
    print(data: Uint32Array, start: number, end: number): void;
    _parser: { precedingJoinState: number };
    _unicodeService: { charProperties(code: number, preceding: number): number };
  };
}

/** The bit of a character's Unicode properties saying it joins the cell before it (xterm's UnicodeService). */
const SHOULD_JOIN = 1;
/** U+0300, the first combining mark. */
const FIRST_MARK = 0x300;

/**
 * Drops, from every run of printed characters, the marks past {@link SCREEN_CELL_MARKS_MAX} that
 * would join one cell: each character's properties come from the terminal's own Unicode service
 * with the join state the parser carries, so a mark counts exactly where xterm would join it. Any
 * sequence resets that state (xterm prints a mark after one on a cell of its own), and only a run
 * the state carries on from continues the count. `onPrint` is told before each run is printed.
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
      }
      preceding = properties;
      if (kept !== undefined) kept[length++] = code;
    }
    if (kept === undefined) print(data, start, end);
    else print(kept, 0, length);
  };
}
