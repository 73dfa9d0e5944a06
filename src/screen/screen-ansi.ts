import type { IBuffer, IBufferCell, IBufferLine, IModes } from "@xterm/headless";
import { sgrOf } from "./screen-view.js";

/**
 * ANSI that, written from the top-left of a fresh terminal `cols` wide, gives back `buffer`'s
 * lines from `from` on: characters, styles, empty cells that have a background, and which lines
 * continue the one above (wrapped), so that a later resize reflows them as the original would.
 * Lines past the fresh terminal's height scroll into its scrollback, as they did here. The
 * property tests in test/screen/screen-emulator.test.ts compare every cell, both ways.
 */
export function linesAnsi(buffer: IBuffer, from: number, cols: number): string {
  const writer = new LineWriter(buffer.getNullCell(), cols);
  for (let y = from; y < buffer.length; y++) {
    const line = buffer.getLine(y);
    if (line === undefined) break;
    let start = 0;
    if (y > from) start = line.isWrapped ? writer.wrapInto(buffer.getLine(y - 1)!, line) : writer.newLine();
    writer.cells(line, start);
  }
  return writer.out;
}

/**
 * A private OSC that ends a checkpoint taken right after a printed character: a combining mark
 * that comes next must join it, and any escape sequence (the cursor placement too) makes xterm
 * forget it. Terminals ignore the OSC; `restore` reads it and sets the parser's join state back.
 */
export const JOIN_OSC = 5379;
export const JOIN_MARK = new RegExp(`\x1b\\]${JOIN_OSC};(\\d+)\x07$`);

/**
 * The `whole` ANSI view of a checkpoint: on a cleared terminal, without the private join mark
 * (it only restores this parser's state). Pure, so that a stored checkpoint is served as is.
 */
export function wholeScreenOf(checkpoint: string): string {
  return `\x1b[0m\x1b[H\x1b[2J${checkpoint.replace(JOIN_MARK, "")}`;
}

/** Where the writer's cursor is when a printed cell filled the line (the next character wraps). */
const PENDING = -1;

class LineWriter {
  out = "";
  /** The pen last set, as SGR parameters. */
  private sgr = "0";
  /** The cursor's column, or PENDING. */
  private x = 0;

  constructor(
    private readonly cell: IBufferCell,
    private readonly cols: number,
  ) {}

  /** At the bottom a line feed scrolls in a line erased with the pen's background: unstyled here. */
  newLine(): number {
    this.pen("0");
    this.out += "\r\n";
    this.x = 0;
    return 0;
  }

  /** Cells `start` on. Unstyled empty cells are never written: a fresh line has them already. */
  cells(line: IBufferLine, start: number): void {
    const cell = this.cell;
    const end = Math.min(line.length, this.cols);
    for (let x = start; x < end; x++) {
      line.getCell(x, cell);
      const width = cell.getWidth();
      if (width === 0) continue; // the second half of a wide character
      const chars = cell.getChars();
      const style = sgrOf(cell);
      if (chars === "" && style === "0") continue;
      this.moveTo(x);
      this.pen(style);
      if (chars === "" && !erasable(cell)) {
        x = this.blankInStyle(line, x, end, style);
      } else if (chars === "") {
        // An erased cell keeps the background it was erased with; ECH makes such cells.
        let run = 1;
        while (x + run < end && sameEmpty(line, x + run, style, cell)) run++;
        this.out += `\x1b[${run}X`;
        x += run - 1;
      } else if (width === 2 && x === this.cols - 2 && widthAt(line, x + 1, cell) !== 0) {
        // With wraparound off, xterm skips a wide character that no longer fits and turns the
        // second half of the one before it into a blank cell. Printing two in a row does the
        // same, and the last cell's character must come in that same print (a new print would
        // blank the first one).
        line.getCell(x + 1, cell);
        const last = cell.getChars();
        this.out += `\x1b[?7l${chars}${chars}${last}\x1b[?7h`;
        this.x = last === "" ? x + 1 : PENDING;
        x++;
      } else {
        this.out += chars;
        this.x = x + width >= this.cols ? PENDING : x + width;
      }
    }
  }

  /**
   * An empty cell with more style than a background: what is left of a wide character another
   * one overwrote half of, in the style of the one that did. Made the same way, by printing a
   * wide character over it and then its neighbour, when that neighbour has the same style (else
   * only its background is kept). Returns the last column written.
   */
  private blankInStyle(line: IBufferLine, x: number, end: number, style: string): number {
    const cell = this.cell;
    if (x + 1 < end && line.getCell(x + 1, cell) && cell.getChars() !== "" && sgrOf(cell) === style) {
      // Printing on a wide character's second half blanks its first half.
      this.out += `${WIDE}\x1b[${x + 2}G${cell.getChars()}`;
      const after = x + 1 + cell.getWidth();
      this.x = after >= this.cols ? PENDING : after;
      return after - 1;
    }
    if (
      x > 0 &&
      line.getCell(x - 1, cell) &&
      cell.getChars() !== "" &&
      cell.getWidth() === 1 &&
      sgrOf(cell) === style
    ) {
      // A print that ends on a wide character's second half blanks it.
      this.out += `\x1b[${x}G${WIDE}\x1b[${x}G${cell.getChars()}`;
      this.x = x;
      return x;
    }
    this.out += "\x1b[X";
    return x;
  }

  /**
   * Writes `next`'s first cell so that it wraps from `prev`, which makes xterm mark `next` as
   * wrapped. Only printing past the last column does that, so an empty cell at either end is
   * printed as a blank and erased again. Returns the column the rest of `next` starts at.
   */
  wrapInto(prev: IBufferLine, next: IBufferLine): number {
    const cell = this.cell;
    const last = this.cols - 1;
    let prevStyle: string | undefined;
    if (this.x !== PENDING) {
      prev.getCell(last, cell);
      prevStyle = sgrOf(cell);
      next.getCell(0, cell);
      if (cell.getWidth() === 2 && sgrOf(cell) === prevStyle) {
        // A wide character that did not fit: xterm wrapped it and blanked the last cell in its style.
        this.moveTo(last);
        this.pen(prevStyle);
        this.out += cell.getChars();
        this.x = 2;
        return 1;
      }
      this.moveTo(last);
      this.pen(prevStyle);
      this.out += " ";
    }
    next.getCell(0, cell);
    const chars = cell.getChars();
    const style = sgrOf(cell);
    this.pen(style);
    this.out += chars === "" ? " " : chars;
    if (!cell.isBgDefault()) {
      // A wrap at the bottom scrolls in a line erased with the pen's background: erase it again.
      this.pen("0");
      this.out += "\x1b[K";
    }
    if (chars === "") {
      this.pen(style);
      this.out += "\b\x1b[X";
    }
    this.x = chars === "" ? 0 : cell.getWidth();
    if (prevStyle !== undefined) {
      this.pen(prevStyle);
      this.out += `\x1b[A\x1b[${this.cols}G\x1b[X\x1b[B`;
      this.x = last;
    }
    return 1;
  }

  private moveTo(x: number): void {
    if (this.x === x) return;
    this.out += `\x1b[${x + 1}G`;
    this.x = x;
  }

  private pen(style: string): void {
    if (style === this.sgr) return;
    this.out += `\x1b[${style}m`;
    this.sgr = style;
  }
}

/** Any character xterm prints two cells wide. */
const WIDE = "\u4e00";

/** Whether ECH (which keeps only the pen's background) makes this empty cell. */
function erasable(cell: IBufferCell): boolean {
  const flags =
    cell.isBold() |
    cell.isDim() |
    cell.isItalic() |
    cell.isUnderline() |
    cell.isBlink() |
    cell.isInverse() |
    cell.isInvisible() |
    cell.isStrikethrough() |
    cell.isOverline();
  return flags === 0 && cell.isFgDefault();
}

function widthAt(line: IBufferLine, x: number, cell: IBufferCell): number {
  return line.getCell(x, cell)?.getWidth() ?? 1;
}

function sameEmpty(line: IBufferLine, x: number, style: string, cell: IBufferCell): boolean {
  line.getCell(x, cell);
  return cell.getChars() === "" && cell.getWidth() === 1 && sgrOf(cell) === style;
}

/**
 * The modes that change what the terminal sends (keys, paste, mouse, focus) or how it prints
 * (insert, reverse wrap, no wrap), set as the program set them. Origin mode is left to the caller:
 * setting it homes the cursor and makes later cursor moves relative to the scroll region.
 */
export function modesAnsi(modes: IModes, mouseEncoding: string): string {
  let out = "";
  if (modes.applicationCursorKeysMode) out += "\x1b[?1h";
  if (modes.applicationKeypadMode) out += "\x1b[?66h";
  if (modes.bracketedPasteMode) out += "\x1b[?2004h";
  if (modes.insertMode) out += "\x1b[4h";
  if (modes.reverseWraparoundMode) out += "\x1b[?45h";
  if (modes.sendFocusMode) out += "\x1b[?1004h";
  if (!modes.wraparoundMode) out += "\x1b[?7l";
  out += MOUSE_TRACKING[modes.mouseTrackingMode] ?? "";
  out += MOUSE_ENCODING[mouseEncoding] ?? "";
  return out;
}

const MOUSE_TRACKING: Record<string, string> = {
  x10: "\x1b[?9h",
  vt200: "\x1b[?1000h",
  drag: "\x1b[?1002h",
  any: "\x1b[?1003h",
};

const MOUSE_ENCODING: Record<string, string> = { SGR: "\x1b[?1006h", SGR_PIXELS: "\x1b[?1016h" };
