import type { IBufferCell, IBufferLine } from "@xterm/headless";

/** Where a viewer's window sits on the PTY's screen: its top-left cell. */
export interface ScreenWindow {
  top: number;
  left: number;
}

/**
 * The part of a `pty`-sized screen a `view`-sized viewer sees, as tmux shows a pane to a smaller
 * client: anchored at the top-left and moved just enough to keep the cursor in view. A larger
 * viewer sees the whole screen, padded (rows and columns past the PTY's are blank).
 */
export function windowOf(
  pty: { cols: number; rows: number; cursorX: number; cursorY: number },
  view: { cols: number; rows: number },
): ScreenWindow {
  const top = view.rows >= pty.rows ? 0 : Math.max(0, Math.min(pty.cursorY - view.rows + 1, pty.rows - view.rows));
  const left = view.cols >= pty.cols ? 0 : Math.max(0, Math.min(pty.cursorX - view.cols + 1, pty.cols - view.cols));
  return { top, left };
}

/**
 * Cells `left` to `left + width` of a line as ANSI: characters with the SGR that styles them,
 * starting from default attributes. A wide character cut by the right edge shows as a blank.
 */
export function rowAnsi(line: IBufferLine, cell: IBufferCell, left: number, width: number): string {
  let out = "";
  let sgr = "0";
  // Unstyled empty cells are skipped over (CUF), not written as spaces: they stay empty.
  let skipped = 0;
  const end = Math.min(left + width, line.length);
  for (let x = left; x < end; x++) {
    line.getCell(x, cell);
    const w = cell.getWidth();
    if (w === 0) continue;
    const next = sgrOf(cell);
    if (cell.getChars() === "" && next === "0") {
      skipped++;
      continue;
    }
    if (skipped > 0) {
      out += `\x1b[${skipped}C`;
      skipped = 0;
    }
    if (next !== sgr) {
      out += `\x1b[${next}m`;
      sgr = next;
    }
    out += w === 2 && x + 1 >= left + width ? " " : cell.getChars() || " ";
  }
  return sgr === "0" ? out : `${out}\x1b[0m`;
}

/** The SGR parameters that give a cell its attributes and colours ("0": none). */
export function sgrOf(cell: IBufferCell): string {
  const p = ["0"];
  if (cell.isBold()) p.push("1");
  if (cell.isDim()) p.push("2");
  if (cell.isItalic()) p.push("3");
  if (cell.isUnderline()) p.push("4");
  if (cell.isBlink()) p.push("5");
  if (cell.isInverse()) p.push("7");
  if (cell.isInvisible()) p.push("8");
  if (cell.isStrikethrough()) p.push("9");
  if (cell.isOverline()) p.push("53");
  colour(p, cell.isFgRGB(), cell.isFgPalette(), cell.getFgColor(), 30, 38);
  colour(p, cell.isBgRGB(), cell.isBgPalette(), cell.getBgColor(), 40, 48);
  return p.join(";");
}

function colour(p: string[], rgb: boolean, palette: boolean, value: number, base: number, extended: number): void {
  if (rgb) p.push(`${extended};2;${(value >> 16) & 255};${(value >> 8) & 255};${value & 255}`);
  else if (palette && value < 8) p.push(String(base + value));
  else if (palette && value < 16) p.push(String(base + 60 + value - 8));
  else if (palette) p.push(`${extended};5;${value}`);
}
