import headless from "@xterm/headless";
import type { IBuffer, IBufferCell, Terminal as HeadlessTerminal } from "@xterm/headless";
import { CountClamp } from "./count-clamp.js";
import { floodPlan } from "./flood-skip.js";
import { capMarks } from "./mark-cap.js";
import type { PrintingCore } from "./mark-cap.js";
import { ParseBudget, SCREEN_WRITE_PIECE_BYTES } from "./parse-budget.js";
import { boundRepeat } from "./repeat-bound.js";
import { JOIN_MARK, JOIN_OSC, linesAnsi, modesAnsi, wholeScreenOf } from "./screen-ansi.js";
import { rowAnsi, sgrOf, windowOf } from "./screen-view.js";
import { StringCap } from "./string-cap.js";

// The package is CommonJS: its classes come from the default export under Node's ESM.
const { Terminal } = headless;

/**
 * Scrollback lines an emulator keeps, and a checkpoint carries: what a late viewer can scroll
 * back to without reading the log. At 120 columns a line costs about 1–2 KiB in xterm's buffer,
 * so this bounds an emulator's buffer to a few MiB (docs/protocol.md, "Screen").
 */
export const SCREEN_SCROLLBACK_LINES = 1000;

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

export interface EmulatorOptions {
  /** Scrollback lines kept; SCREEN_SCROLLBACK_LINES when absent. */
  scrollback?: number | undefined;
  /** Told each time the emulator prints or runs a costly sequence (the screen thread tracks who parses). */
  onParse?: (() => void) | undefined;
}

export interface ViewOptions {
  format: ScreenFormat;
  /** The viewer's size; the PTY's when absent. */
  cols?: number | undefined;
  rows?: number | undefined;
  /**
   * ANSI at the PTY's size: the whole terminal as {@link ScreenEmulator.checkpoint} rebuilds it
   * (scrollback, both buffers, pen, scroll region, modes), after a clear, so that output from the
   * view's offset on continues it exactly. `/ws/session?since=screen` sends it.
   */
  whole?: boolean | undefined;
}

/**
 * One PTY's screen, parsed by xterm.js (the parser the web UI runs) without a renderer: what
 * `GET /v1/sessions/:id/screen` shows and a checkpoint saves. Writes are asynchronous (xterm
 * parses in slices and yields between them); `settled()` resolves once everything written is
 * parsed.
 */
export class ScreenEmulator {
  private readonly term: HeadlessTerminal;
  private _title = "";
  private pending: Promise<void> = Promise.resolve();
  /** Cuts control strings too long to show out of the output (src/screen/string-cap.ts). */
  private readonly cap = new StringCap();
  /** Lowers counts past what can show (src/screen/count-clamp.ts), for the size the output is parsed at. */
  private readonly clamp = new CountClamp();

  /** Turns of SCREEN_PARSE_SLICE_MS for costly sequences (src/screen/parse-budget.ts). */
  private readonly budget: ParseBudget;
  /** Writes handed to xterm and not yet parsed. */
  private writing = 0;

  private readonly scrollback: number;

  constructor(cols: number, rows: number, options: EmulatorOptions = {}) {
    const scrollback = options.scrollback ?? SCREEN_SCROLLBACK_LINES;
    const onParse = options.onParse ?? (() => undefined);
    this.scrollback = scrollback;
    this.term = new Terminal({ cols, rows, scrollback, allowProposedApi: true, logLevel: "off" });
    this.term.onTitleChange((title) => (this._title = title));
    capMarks(this.core(), onParse);
    // Before the budget's handler, which then runs first (src/screen/repeat-bound.ts).
    boundRepeat(this.term, () => this.budget.pause());
    this.budget = new ParseBudget(this.term, onParse);
  }

  /** An emulator in the state `state` (from {@link checkpoint}) describes. */
  static async restore(state: string, cols: number, rows: number, options?: EmulatorOptions): Promise<ScreenEmulator> {
    const emulator = new ScreenEmulator(cols, rows, options);
    const join = JOIN_MARK.exec(state);
    emulator.write(join === null ? state : state.slice(0, join.index));
    await emulator.settled();
    if (join !== null) emulator.core()._inputHandler._parser.precedingJoinState = Number(join[1]);
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

  /**
   * Writes output bytes (through the cap on control strings and the clamp on counts, to xterm in
   * SCREEN_WRITE_PIECE_BYTES pieces), or ANSI this gateway made (a checkpoint, a pen). Counts are
   * clamped for the size now: a resize waits until what was written before it is parsed (the
   * screen thread does). Marks past SCREEN_CELL_MARKS_MAX are dropped as they are printed.
   */
  write(data: Uint8Array | string): void {
    if (typeof data === "string") {
      this.writePiece(data);
      return;
    }
    const size = { cols: this.term.cols, rows: this.term.rows, scrollback: this.scrollback };
    for (const capped of this.cap.push(data))
      for (const piece of this.clamp.push(capped, size))
        for (let at = 0; at < piece.length; at += SCREEN_WRITE_PIECE_BYTES)
          this.writePiece(
            piece.length <= SCREEN_WRITE_PIECE_BYTES ? piece : piece.subarray(at, at + SCREEN_WRITE_PIECE_BYTES),
          );
  }

  private writePiece(piece: Uint8Array | string): void {
    this.writing++;
    this.pending = new Promise((resolve) =>
      this.term.write(piece, () => {
        if (--this.writing === 0) this.budget.endTurn();
        resolve();
      }),
    );
  }

  /**
   * Writes a long run of output, parsing only what can still show: lines a flood scrolls past the
   * scrollback are skipped (src/screen/flood-skip.ts): a `seq` flood is taken at 110–170 MiB/s
   * where parsing it all runs at 15–35 (bench/README.md, "The screen off the event loop").
   */
  async writeFlood(bytes: Uint8Array): Promise<void> {
    // Enough lines after a cut to bring the cursor to the bottom, then push every older row out.
    const keepLines = 2 * this.term.rows + this.scrollback + 1;
    let rest = bytes;
    for (let plan = floodPlan(rest, keepLines); plan !== undefined; plan = floodPlan(rest, keepLines)) {
      if (plan.parse > 0) this.write(rest.subarray(0, plan.parse));
      await this.settled();
      // A sequence cut at the run's start reads on: parse to the next line, then plan again.
      if (!this.atBoundary) {
        const line = rest.indexOf(0x0a, plan.parse) + 1;
        this.write(rest.subarray(plan.parse, line));
        rest = rest.subarray(line);
        continue;
      }
      // A scroll region keeps the rows outside it.
      const { scrollTop, scrollBottom } = this.core().buffer;
      const wholeScreen = scrollTop === 0 && scrollBottom === this.term.rows - 1;
      this.write(wholeScreen ? `${plan.pen}\r` : rest.subarray(plan.parse, plan.cut));
      rest = rest.subarray(plan.cut);
    }
    if (rest.length > 0) this.write(rest);
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
   * scrollback up to the bound, cursor, the cursors DECSC and `?1049h` saved, scroll region,
   * modes, pen, title and character sets (a saved cursor's character set is not carried). What a
   * checkpoint stores; test/screen/screen-emulator.test.ts compares every cell after a replay.
   */
  checkpoint(scrollback = SCREEN_SCROLLBACK_LINES): string {
    const core = this.core();
    const { normal, alternate, active } = this.term.buffer;
    const rows = this.term.rows;
    // The alternate buffer keeps the cursor its DECSC saved while the normal one shows: the next
    // ?1049h and DECRC restore it. ?1049h saves the normal cursor and ?1049l restores it: both
    // still at the fresh terminal's origin here, and set again below.
    const altSaved =
      active.type === "normal" ? `\x1b[?1049h${this.savedCursor(core.buffers.alt)}\x1b7\x1b[0m\x1b[?1049l` : "";
    let state = altSaved + linesAnsi(normal, Math.max(0, normal.length - rows - scrollback), this.term.cols);
    if (active.type === "alternate") {
      // Each buffer has its own scroll region. ?1049h saves the normal buffer's cursor and fills
      // the alternate one with the pen's background.
      const normalRegion = regionOf(core.buffers.normal, rows);
      state += `${normalRegion}${this.savedCursor(core.buffers.normal)}\x1b[?1049h\x1b[0m\x1b[2J\x1b[H`;
      state += linesAnsi(alternate, 0, this.term.cols);
    }
    const region = regionOf(core.buffer, rows);
    // Origin mode homes the cursor and makes its moves relative to the region: set before placing it.
    const origin = this.term.modes.originMode ? "\x1b[?6h" : "";
    const hidden = this.cursorHidden() ? "\x1b[?25l" : "";
    const modes = modesAnsi(this.term.modes, core.coreMouseService.activeEncoding);
    const title = this._title === "" ? "" : `\x1b]2;${stripControls(this._title)}\x07`;
    const pen = `\x1b[${sgrOf(core._inputHandler._curAttrData)}m`;
    const joinState = core._inputHandler._parser.precedingJoinState;
    const join = joinState === 0 ? "" : `\x1b]${JOIN_OSC};${joinState}\x07`;
    // DECSTBM homes the cursor: the region goes before the cursor is placed. The character sets
    // go after the cursor placement, which may print a cell again (as stored, already mapped).
    const placed = `${this.savedCursor(core.buffer)}\x1b7${region}${origin}${this.cursorPlacement(core.buffer.scrollTop)}`;
    return `${state}${placed}${pen}${title}${hidden}${modes}${this.charsets()}${join}`;
  }

  /** ANSI that designates G0–G3 as they are (ASCII ones are left out) and shifts to the one in use. */
  private charsets(): string {
    const service = this.core()._charsetService;
    const finals = charsetFinals();
    let out = "";
    service._charsets.forEach((charset, g) => {
      const final = finals.get(charset);
      if (final !== undefined && final !== "B") out += `\x1b${"()*+"[g]}${final}`;
    });
    out += ["", "\x0e", "\x1bn", "\x1bo"][service.glevel] ?? "";
    // DECRC can leave a set in use that is not the one shifted in; no designation can, so the
    // shifted-in one is designated as the set in use (what the next characters print with).
    const inUse = finals.get(service.charset) ?? "B";
    if (service.charset !== service._charsets[service.glevel]) out += `\x1b${"()*+"[service.glevel]}${inUse}`;
    return out;
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
    if (options.whole === true && cols === this.term.cols && rows === this.term.rows) {
      return { screen: wholeScreenOf(this.checkpoint()), cursor, ...base };
    }
    const cell = buffer.getNullCell();
    // A full-screen program's view is drawn on the viewer's alternate screen too: when the
    // program leaves it, the viewer's own screen comes back, and the viewer (attach) knows to
    // draw its notices over the last row instead of scrolling the program's screen.
    let screen = `${alternate ? "\x1b[?1049h" : ""}\x1b[0m\x1b[H\x1b[2J`;
    for (let y = 0; y < rows; y++) {
      const line = buffer.getLine(buffer.viewportY + win.top + y);
      if (line === undefined || win.top + y >= this.term.rows) continue;
      screen += `\x1b[${y + 1};1H` + rowAnsi(line, cell, win.left, cols);
    }
    screen += `\x1b[0m\x1b[${cursor.y + 1};${cursor.x + 1}H${visible ? "\x1b[?25h" : "\x1b[?25l"}`;
    // At the PTY's size the viewer stands in for its terminal: it sends keys, pastes and mouse
    // reports as the program asked for them.
    if (cols === this.term.cols && rows === this.term.rows) {
      screen += modesAnsi({ ...this.term.modes, insertMode: false, wraparoundMode: true }, this.mouseEncoding());
    }
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
   * Whether everything written so far is whole: the parser is not inside an escape sequence, no
   * UTF-8 character is cut, no over-long control string is being dropped and no count is held. A checkpoint taken
   * elsewhere would lose the part already read (test/screen/screen-emulator.test.ts shows it does).
   */
  get atBoundary(): boolean {
    const input = this.core()._inputHandler;
    return input._parser.currentState === 0 && input._utf8Decoder.interim[0] === 0 && this.cap.idle && this.clamp.idle;
  }

  /**
   * ANSI that puts the cursor where it is. Past the last column (a wrap pending: the next
   * character goes on the next line) no move can put it: the last cell is printed again, in its
   * own style (the caller sets the pen after).
   */
  private cursorPlacement(scrollTop: number): string {
    const buffer = this.term.buffer.active;
    const y = buffer.cursorY + 1 - (this.term.modes.originMode ? scrollTop : 0);
    if (buffer.cursorX < this.term.cols) return `\x1b[${y};${buffer.cursorX + 1}H`;
    const cell = buffer.getNullCell();
    const line = buffer.getLine(buffer.viewportY + buffer.cursorY);
    let x = this.term.cols - 1;
    line?.getCell(x, cell);
    if (cell.getWidth() === 0) line?.getCell(--x, cell);
    return `\x1b[${y};${x + 1}H\x1b[${sgrOf(cell)}m${cell.getChars() || " "}`;
  }

  private mouseEncoding(): string {
    return this.core().coreMouseService.activeEncoding;
  }

  private cursorHidden(): boolean {
    return this.core().coreService.isCursorHidden;
  }

  /** xterm's internals, for the state its API does not show (the serializer reads the same fields). */
  private core(): XtermCore & PrintingCore {
    return (this.term as unknown as { _core: XtermCore & PrintingCore })._core;
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
  /** "DEFAULT", "SGR" or "SGR_PIXELS": how mouse reports are encoded. */
  coreMouseService: { activeEncoding: string };
  /** G0–G3 (`undefined`: ASCII) and which of them is shifted in. */
  _charsetService: { _charsets: unknown[]; glevel: number; charset: unknown };
  _inputHandler: {
    _parser: { currentState: number; precedingJoinState: number };
    _utf8Decoder: { interim: Uint8Array };
    /** The pen: the style of the next character printed (has the attribute methods of a cell). */
    _curAttrData: IBufferCell;
  };
}

/** DECSTBM for `buffer`'s scroll region ("" when it is the whole screen). It homes the cursor. */
function regionOf(buffer: XtermBuffer, rows: number): string {
  const { scrollTop, scrollBottom } = buffer;
  return scrollTop === 0 && scrollBottom === rows - 1 ? "" : `\x1b[${scrollTop + 1};${scrollBottom + 1}r`;
}

let finalsOf: Map<unknown, string> | undefined;

/** xterm's character set tables, by the final byte that designates each (found by designating each once). */
function charsetFinals(): Map<unknown, string> {
  if (finalsOf !== undefined) return finalsOf;
  finalsOf = new Map();
  const probe = new Terminal({ cols: 2, rows: 1, allowProposedApi: true, logLevel: "off" });
  const core = (probe as unknown as { _core: XtermCore })._core;
  for (const final of "B0AR4C5QKYE6Z7H=`") {
    // Designation is parsed synchronously by the core's own write path; no render loop is involved.
    (probe as unknown as { _core: { writeSync(data: string): void } })._core.writeSync(`\x1b(${final}`);
    const table = core._charsetService._charsets[0];
    if (!finalsOf.has(table)) finalsOf.set(table, final);
  }
  probe.dispose();
  return finalsOf;
}

/** A title goes back into OSC 2: no control character may end the sequence early. */
function stripControls(title: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  return title.replace(/[\x00-\x1f\x7f-\x9f]/g, "");
}
