import headless from "@xterm/headless";
import type { IBuffer, IBufferCell, Terminal as HeadlessTerminal } from "@xterm/headless";
import serialize from "@xterm/addon-serialize";
import { rowAnsi, sgrOf, windowOf } from "./screen-view.js";

// Both packages are CommonJS: their classes come from the default export under Node's ESM.
const { Terminal } = headless;
const { SerializeAddon } = serialize;

/**
 * Scrollback lines an emulator keeps, and a checkpoint carries: what a late viewer can scroll
 * back to without reading the log. At 120 columns a line costs about 1–2 KiB in xterm's buffer,
 * so this bounds an emulator's buffer to a few MiB (docs/protocol.md, "Screen").
 */
export const SCREEN_SCROLLBACK_LINES = 1000;

/** What the serializer writes where the alternate buffer's content starts. */
const ALT_START = "\x1b[?1049h\x1b[H";

/** What a viewer is shown: the active screen as text or ANSI, at the PTY's size or its own. */
export interface ScreenView {
  /** Text: one line per row joined with "\n", trailing blanks trimmed. ANSI: a redraw of the whole view. */
  screen: string;
  /** 0-based, in the view's coordinates (clamped into it when the view is smaller than the PTY). */
  cursor: { x: number; y: number; visible: boolean };
  /** A full-screen program is showing (the alternate buffer is active). */
  alternate: boolean;
  title: string;
  cols: number;
  rows: number;
}

export type ScreenFormat = "text" | "ansi";

export interface ViewOptions {
  format: ScreenFormat;
  /** The viewer's size; the PTY's when absent. */
  cols?: number | undefined;
  rows?: number | undefined;
}

/**
 * One PTY's screen, parsed by xterm.js (the parser the web UI runs) without a renderer: what
 * `GET /v1/sessions/:id/screen` shows and a checkpoint saves. Writes are asynchronous (xterm
 * parses in slices and yields between them); `settled()` resolves once everything written is
 * parsed.
 */
export class ScreenEmulator {
  private readonly term: HeadlessTerminal;
  private readonly serializer = new SerializeAddon();
  private _title = "";
  private pending: Promise<void> = Promise.resolve();

  constructor(cols: number, rows: number, scrollback = SCREEN_SCROLLBACK_LINES) {
    this.term = new Terminal({ cols, rows, scrollback, allowProposedApi: true });
    this.term.loadAddon(this.serializer as unknown as Parameters<HeadlessTerminal["loadAddon"]>[0]);
    this.term.onTitleChange((title) => (this._title = title));
  }

  /** An emulator in the state `state` (from {@link checkpoint}) describes. */
  static async restore(state: string, cols: number, rows: number, scrollback?: number): Promise<ScreenEmulator> {
    const emulator = new ScreenEmulator(cols, rows, scrollback);
    emulator.write(state);
    await emulator.settled();
    return emulator;
  }

  get cols(): number {
    return this.term.cols;
  }

  get rows(): number {
    return this.term.rows;
  }

  get title(): string {
    return this._title;
  }

  write(data: Uint8Array | string): void {
    this.pending = new Promise((resolve) => this.term.write(data, resolve));
  }

  /** Output written before a resize is parsed at the old size, as the PTY drew it. */
  resize(cols: number, rows: number): void {
    if (cols !== this.term.cols || rows !== this.term.rows) this.term.resize(cols, rows);
  }

  /** Resolves once everything written so far is parsed (xterm parses writes in order). */
  settled(): Promise<void> {
    return this.pending;
  }

  /**
   * ANSI that, written into a fresh terminal of this size, rebuilds this one: both buffers,
   * scrollback up to the bound, cursor, modes and title. What a checkpoint stores.
   */
  checkpoint(scrollback = SCREEN_SCROLLBACK_LINES): string {
    const core = this.core();
    // What the serializer (0.14.0) leaves out or gets wrong, each found by the property tests in
    // test/screen/screen-emulator.test.ts: it carries the normal buffer's pen into the alternate
    // buffer's cells; writes cursor moves by 0, which a terminal takes as 1; leaves out the
    // saved cursors (DECSC, and the one ?1049h saves), the scroll region and the title; and
    // places the cursor relative to its text, a column short when that filled its line.
    // Cells hold no ESC, so the alternate buffer's marker is unique.
    // eslint-disable-next-line no-control-regex -- escape sequences are made of control characters
    let state = this.serializer.serialize({ scrollback }).replace(/\x1b\[0[ABCD]/g, "");
    if (this.term.buffer.active.type === "alternate") {
      state = state.replace(ALT_START, `${this.savedCursor(core.buffers.normal)}${ALT_START}\x1b[0m`);
    }
    const { scrollTop, scrollBottom } = core.buffer;
    const region =
      scrollTop === 0 && scrollBottom === this.term.rows - 1 ? "" : `\x1b[${scrollTop + 1};${scrollBottom + 1}r`;
    const title = this._title === "" ? "" : `\x1b]2;${stripControls(this._title)}\x07`;
    const pen = `\x1b[${sgrOf(core._inputHandler._curAttrData)}m`;
    // DECSTBM homes the cursor: the region goes before the cursor is placed.
    return `${state}${this.savedCursor(core.buffer)}\x1b7${region}${this.cursorPlacement()}${pen}${title}`;
  }

  /** ANSI that moves the cursor and pen to where `buffer`'s DECSC saved them (then ESC 7 saves them again). */
  private savedCursor(buffer: XtermBuffer): string {
    const y = Math.max(0, Math.min(buffer.savedY - buffer.ybase, this.term.rows - 1));
    const x = Math.min(buffer.savedX, this.term.cols - 1);
    return `\x1b[${y + 1};${x + 1}H\x1b[${sgrOf(buffer.savedCurAttrData)}m`;
  }

  /** The active screen as a viewer of size `cols`×`rows` sees it (see {@link windowOf}). */
  view(options: ViewOptions): ScreenView {
    const buffer = this.term.buffer.active;
    const cols = options.cols ?? this.term.cols;
    const rows = options.rows ?? this.term.rows;
    const alternate = buffer.type === "alternate";
    const visible = !this.cursorHidden();
    const base = { alternate, title: this._title, cols, rows };
    if (options.format === "ansi" && cols === this.term.cols && rows === this.term.rows) {
      const screen = this.serializer.serialize({ scrollback: 0 });
      return { screen, cursor: { x: buffer.cursorX, y: buffer.cursorY, visible }, ...base };
    }
    const win = windowOf(
      { cols: this.term.cols, rows: this.term.rows, cursorX: buffer.cursorX, cursorY: buffer.cursorY },
      { cols, rows },
    );
    const cursor = { x: buffer.cursorX - win.left, y: buffer.cursorY - win.top, visible };
    if (options.format === "text") {
      const lines: string[] = [];
      for (let y = 0; y < rows; y++) lines.push(this.rowText(buffer, win.top + y, win.left, cols));
      while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
      return { screen: lines.join("\n"), cursor, ...base };
    }
    const cell = buffer.getNullCell();
    let screen = "\x1b[0m\x1b[H\x1b[2J";
    for (let y = 0; y < rows; y++) {
      const line = buffer.getLine(buffer.viewportY + win.top + y);
      if (line === undefined || win.top + y >= this.term.rows) continue;
      screen += `\x1b[${y + 1};1H` + rowAnsi(line, cell, win.left, cols);
    }
    screen += `\x1b[0m\x1b[${cursor.y + 1};${cursor.x + 1}H${visible ? "\x1b[?25h" : "\x1b[?25l"}`;
    return { screen, cursor, ...base };
  }

  dispose(): void {
    this.term.dispose();
  }

  /** The row `y` of the viewport, cells `left` to `left + width`, trailing blanks trimmed. */
  private rowText(buffer: IBuffer, y: number, left: number, width: number): string {
    if (y >= this.term.rows) return "";
    const line = buffer.getLine(buffer.viewportY + y);
    if (line === undefined) return "";
    const cell: IBufferCell = buffer.getNullCell();
    let text = "";
    for (let x = left; x < Math.min(left + width, this.term.cols); x++) {
      line.getCell(x, cell);
      const w = cell.getWidth();
      if (w === 0) continue; // the second half of a wide character
      // A wide character cut by the view's right edge shows as a blank, as tmux does.
      text += w === 2 && x + 1 >= left + width ? " " : cell.getChars() || " ";
    }
    return text.trimEnd();
  }

  /**
   * Whether everything written so far is whole: the parser is not inside an escape sequence and
   * no UTF-8 character is cut. A checkpoint taken elsewhere would lose the part already read
   * (test/screen/screen-emulator.test.ts shows it does).
   */
  get atBoundary(): boolean {
    const input = this.core()._inputHandler;
    return input._parser.currentState === 0 && input._utf8Decoder.interim[0] === 0;
  }

  /**
   * ANSI that puts the cursor where it is. Past the last column (a wrap pending: the next
   * character goes on the next line) no move can put it: the last cell is printed again, in its
   * own style (the caller sets the pen after).
   */
  private cursorPlacement(): string {
    const buffer = this.term.buffer.active;
    const y = buffer.cursorY + 1;
    if (buffer.cursorX < this.term.cols) return `\x1b[${y};${buffer.cursorX + 1}H`;
    const cell = buffer.getNullCell();
    const line = buffer.getLine(buffer.viewportY + buffer.cursorY);
    let x = this.term.cols - 1;
    line?.getCell(x, cell);
    if (cell.getWidth() === 0) line?.getCell(--x, cell);
    return `\x1b[${y};${x + 1}H\x1b[${sgrOf(cell)}m${cell.getChars() || " "}`;
  }

  private cursorHidden(): boolean {
    return this.core().coreService.isCursorHidden;
  }

  /** xterm's internals, for the state its API does not show (the serializer reads the same fields). */
  private core(): XtermCore {
    return (this.term as unknown as { _core: XtermCore })._core;
  }
}

interface XtermBuffer {
  scrollTop: number;
  scrollBottom: number;
  ybase: number;
  savedX: number;
  savedY: number;
  savedCurAttrData: IBufferCell;
}

/** The fields of xterm 6's core that {@link ScreenEmulator} reads. */
interface XtermCore {
  buffer: XtermBuffer;
  buffers: { normal: XtermBuffer; alt: XtermBuffer };
  coreService: { isCursorHidden: boolean };
  _inputHandler: {
    _parser: { currentState: number };
    _utf8Decoder: { interim: Uint8Array };
    /** The pen: the style of the next character printed (has the attribute methods of a cell). */
    _curAttrData: IBufferCell;
  };
}

/** A title goes back into OSC 2: no control character may end the sequence early. */
function stripControls(title: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  return title.replace(/[\x00-\x1f\x7f-\x9f]/g, "");
}
