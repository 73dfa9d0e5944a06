/**
 * Tracks the terminal state a program changes through its output (DEC private modes such as
 * the alternate screen, mouse reporting, a hidden cursor; the scroll region, character sets,
 * key encodings), so that `attach` can put exactly those back when it leaves — detaching from
 * vim must not leave the user's own terminal on the alternate screen with mouse reporting on,
 * nor with vim's scroll region (`seq 1 45` then scrolled 20 of 30 rows). Colours a program set
 * through OSC (palette entries, the default foreground, background and cursor colours: a theme
 * switcher, or vim with `termguicolors` themes) are put back to the terminal's own as well.
 * Resetting what was never changed is avoided on purpose: `CSI ? 1049 l` outside the alternate
 * screen restores a stale cursor, `CSI r` moves the cursor, and an OSC 104 of the whole palette
 * would undo a palette the user's shell set (base16-shell does).
 */

const ESC = 0x1b;
const BEL = 0x07;
const SO = 0x0e;
const SI = 0x0f;
/** Longest parameter list kept while a sequence is split across chunks. */
export const MAX_SEQUENCE_PARAM_BYTES = 64;
/**
 * Most bytes of an OSC string kept to read what it changes (a palette entry is ~20 bytes: `4;1;rgb:ff/00/00`).
 * A longer one is still followed to its end; if it was a palette change, the whole palette is reset.
 */
export const MAX_OSC_BYTES = 1024;
/** OSC 4: palette entries; OSC 104 resets them (all, or those listed). */
const OSC_PALETTE = 4;
/**
 * OSC 10–19 set the terminal's dynamic colours (10 foreground, 11 background, 12 cursor, 13/14
 * pointer, 17/19 highlight); OSC 110–119 put each back. Those xterm does not reset (15, 16, 18:
 * Tektronix) are not tracked.
 */
const OSC_DYNAMIC = new Set([10, 11, 12, 13, 14, 17, 19]);
/** String terminator (ST) for the OSC sequences written on reset. */
const ST = "\x1b\\";

/**
 * DEC private modes whose non-default state is "set" (`h`), with how to turn each off.
 * Alternate-screen modes come first: leaving the alternate screen before anything else puts
 * the user's screen back (and its cursor, which what follows keeps where it is).
 */
const RESET_WHEN_SET = new Map<number, string>([
  [1049, "\x1b[?1049l"],
  [1047, "\x1b[?1047l"],
  [47, "\x1b[?47l"],
  [1, "\x1b[?1l"], // application cursor keys
  [5, "\x1b[?5l"], // reverse video
  [45, "\x1b[?45l"], // reverse wraparound
  [66, "\x1b[?66l"], // application keypad (DECNKM)
  [69, "\x1b[?69l"], // left and right margins (DECLRMM)
  [9, "\x1b[?9l"], // mouse: X10
  [1000, "\x1b[?1000l"], // mouse: clicks
  [1001, "\x1b[?1001l"], // mouse: highlight tracking
  [1002, "\x1b[?1002l"], // mouse: drags
  [1003, "\x1b[?1003l"], // mouse: all motion
  [1004, "\x1b[?1004l"], // focus events
  [1005, "\x1b[?1005l"], // mouse: UTF-8 coordinates
  [1006, "\x1b[?1006l"], // mouse: SGR coordinates
  [1015, "\x1b[?1015l"], // mouse: urxvt coordinates
  [2004, "\x1b[?2004l"], // bracketed paste
  // Synchronized output: a frame begun and not ended (a detach mid-frame) holds the terminal's
  // drawing until its timeout, or for good in some terminals.
  [2026, "\x1b[?2026l"],
]);
/** The cursor (mode 25) is visible by default; a program may leave it hidden. */
const CURSOR_VISIBLE = 25;
/** Origin mode: cursor addresses relative to the scroll region. Turning it off homes the cursor. */
const ORIGIN = 6;
/** Autowrap is on by default; with it off, long lines overwrite their last column. */
const AUTOWRAP = 7;
/** ANSI (not DEC private) modes whose default is off: insert (IRM), automatic newline (LNM). */
const ANSI_MODES = new Set([4, 20]);
/**
 * The whole screen as the scroll region again, the cursor kept where it is: DECSTBM homes the
 * cursor, so it is saved (DECSC) and restored (DECRC) around it. DECRC also restores origin mode
 * and the character sets as they were saved: they are put back before (origin) and after it.
 */
export const RESET_SCROLL_REGION = "\x1b7\x1b[r\x1b8";

type State = "text" | "esc" | "charset" | "csi" | "osc";

export class TerminalModes {
  private state: State = "text";
  /** The CSI's private prefix (`?`, `>`, `<`, `=`) or "". */
  private prefix = "";
  private params = "";
  private intermediates = "";
  /** Which G-set (`(`, `)`, `*`, `+`) an `ESC (` designation is for. */
  private designating = 0;
  private set = new Set<number>();
  private ansi = new Set<number>();
  private cursorHidden = false;
  private keypadApplication = false;
  private origin = false;
  private autowrapOff = false;
  private region = false;
  /** G0 is not ASCII (`ESC ( 0`: line drawing); `shifted`: G1 is in use (SO). */
  private g0Changed = false;
  private shifted = false;
  /** xterm's key modifier resources set (`CSI > 4 ; 2 m`: modifyOtherKeys). */
  private readonly keyModifiers = new Set<number>();
  /** Kitty keyboard protocol flags pushed (`CSI > 1 u`) and not popped. */
  private kittyPushes = 0;
  private cursorShape = false;
  /** The OSC string being read, as long as it is at most MAX_OSC_BYTES, and whether it was longer. */
  private osc = "";
  private oscOverflow = false;
  /** Palette entries a program set (OSC 4), or all of them (a change too long to read). */
  private palette = new Set<number>();
  private paletteAll = false;
  /** Dynamic colours (OSC 10–19) a program set. */
  private dynamicColors = new Set<number>();

  /** Whether the program set a scroll region (DECSTBM) that is still in force. */
  get scrollRegion(): boolean {
    return this.region;
  }

  /** Whether the program is on the alternate screen. */
  get alternateScreen(): boolean {
    return this.set.has(1049) || this.set.has(1047) || this.set.has(47);
  }

  /** Feeds output bytes in order. */
  feed(bytes: Uint8Array): void {
    for (const b of bytes) {
      switch (this.state) {
        case "text":
          if (b === ESC) this.state = "esc";
          else if (b === SO) this.shifted = true;
          else if (b === SI) this.shifted = false;
          break;
        case "esc":
          this.state = "text";
          if (b === 0x5b /* [ */) {
            this.state = "csi";
            this.prefix = "";
            this.params = "";
            this.intermediates = "";
          } else if (b === 0x5d /* ] */) {
            this.state = "osc";
            this.osc = "";
            this.oscOverflow = false;
          } else if (b >= 0x28 && b <= 0x2b /* ( ) * + */) {
            this.state = "charset";
            this.designating = b;
          } else if (b === 0x3d /* = */) this.keypadApplication = true;
          else if (b === 0x3e /* > */) this.keypadApplication = false;
          else if (b === 0x63 /* c: RIS, a full reset */) this.reset();
          else if (b === ESC) this.state = "esc";
          break;
        case "charset":
          if (this.designating === 0x28) this.g0Changed = b !== 0x42; /* B: ASCII */
          this.state = b === ESC ? "esc" : "text";
          break;
        case "csi":
          if (b >= 0x3c && b <= 0x3f && this.params === "" && this.prefix === "" && this.intermediates === "") {
            this.prefix = String.fromCharCode(b);
          } else if ((b >= 0x30 && b <= 0x39) || b === 0x3b /* ; */ || b === 0x3a /* : */) {
            if (this.params.length >= MAX_SEQUENCE_PARAM_BYTES) this.state = "text";
            else this.params += String.fromCharCode(b);
          } else if (b >= 0x20 && b <= 0x2f) {
            if (this.intermediates.length >= 4) this.state = "text";
            else this.intermediates += String.fromCharCode(b);
          } else {
            if (b >= 0x40 && b <= 0x7e) this.csi(String.fromCharCode(b));
            this.state = b === ESC ? "esc" : "text";
          }
          break;
        case "osc":
          // Ended by BEL or ST (ESC \: the ESC ends it, the backslash is then an escape that means nothing).
          if (b === BEL || b === ESC) {
            this.oscString();
            this.state = b === ESC ? "esc" : "text";
          } else if (this.osc.length >= MAX_OSC_BYTES) this.oscOverflow = true;
          else this.osc += String.fromCharCode(b);
          break;
      }
    }
  }

  /** The bytes that undo every change left in force; empty when there is nothing to undo. */
  resetSequence(): string {
    let out = "";
    for (const [mode, reset] of RESET_WHEN_SET) if (this.set.has(mode)) out += reset;
    // Cursor-moving resets after the alternate screen is left, in the order RESET_SCROLL_REGION needs.
    if (this.origin) out += "\x1b[?6l";
    if (this.region) out += RESET_SCROLL_REGION;
    if (this.g0Changed) out += "\x1b(B";
    if (this.shifted) out += "\x0f";
    if (this.autowrapOff) out += "\x1b[?7h";
    for (const mode of this.ansi) out += `\x1b[${mode}l`;
    for (const resource of this.keyModifiers) out += `\x1b[>${resource}m`;
    if (this.kittyPushes > 0) out += `\x1b[<${this.kittyPushes}u`;
    if (this.cursorShape) out += "\x1b[0 q";
    if (this.paletteAll) out += `\x1b]104${ST}`;
    else if (this.palette.size > 0) out += `\x1b]104;${[...this.palette].join(";")}${ST}`;
    for (const color of this.dynamicColors) out += `\x1b]${color + 100}${ST}`;
    if (this.keypadApplication) out += "\x1b>";
    if (this.cursorHidden) out += "\x1b[?25h";
    return out;
  }

  private csi(final: string): void {
    const params = this.params.split(";");
    const { prefix, intermediates } = this;
    if (intermediates === " " && final === "q" && prefix === "") {
      // DECSCUSR: the cursor's shape; 0 (or none) is the terminal's default.
      this.cursorShape = this.params !== "" && Number(params[0]) !== 0;
      return;
    }
    if (intermediates !== "") return;
    if (prefix === "?" && (final === "h" || final === "l")) this.privateModes(params, final === "h");
    else if (prefix === "" && (final === "h" || final === "l")) {
      for (const mode of params.map(Number)) if (ANSI_MODES.has(mode)) this.toggle(this.ansi, mode, final === "h");
    } else if (prefix === "" && final === "r") {
      // DECSTBM without parameters is the whole screen again.
      this.region = params.some((p) => p !== "");
    } else if (prefix === ">" && final === "m" && params[0] !== "") {
      // XTMODKEYS: a resource with a non-zero value is set; without one it is back to its default.
      const value = Number(params[1] ?? "");
      this.toggle(this.keyModifiers, Number(params[0]), params[1] !== undefined && params[1] !== "" && value !== 0);
    } else if (prefix === ">" && final === "u") this.kittyPushes++;
    else if (prefix === "<" && final === "u") this.kittyPushes = Math.max(0, this.kittyPushes - Number(params[0] || 1));
  }

  /** An OSC string ended: the colours it set, or put back. Queries (`?`) change nothing. */
  private oscString(): void {
    const parts = this.osc.split(";");
    const command = parts[0] === "" ? NaN : Number(parts[0]);
    if (command === OSC_PALETTE) {
      if (this.oscOverflow) this.paletteAll = true;
      // Pairs of an index and a colour spec.
      for (let i = 1; i + 1 < parts.length; i += 2) {
        const index = Number(parts[i]);
        if (parts[i + 1] !== "?" && Number.isInteger(index) && index >= 0 && index <= 255) this.palette.add(index);
      }
    } else if (command === OSC_PALETTE + 100) {
      const listed = parts.slice(1).filter((p) => p !== "");
      if (listed.length === 0 && !this.oscOverflow) {
        this.palette.clear();
        this.paletteAll = false;
      } else for (const index of listed) this.palette.delete(Number(index));
    } else if (OSC_DYNAMIC.has(command)) {
      // `OSC 10 ; fg ; bg` sets 10, then 11: each further value is the next colour.
      parts.slice(1).forEach((spec, i) => {
        if (spec !== "?" && OSC_DYNAMIC.has(command + i)) this.dynamicColors.add(command + i);
      });
    } else if (OSC_DYNAMIC.has(command - 100)) this.dynamicColors.delete(command - 100);
  }

  private privateModes(params: string[], on: boolean): void {
    for (const part of params) {
      if (part === "") continue;
      const mode = Number(part);
      if (mode === CURSOR_VISIBLE) this.cursorHidden = !on;
      else if (mode === ORIGIN) this.origin = on;
      else if (mode === AUTOWRAP) this.autowrapOff = !on;
      else if (RESET_WHEN_SET.has(mode)) this.toggle(this.set, mode, on);
    }
  }

  private toggle(set: Set<number>, value: number, on: boolean): void {
    if (on) set.add(value);
    else set.delete(value);
  }

  /** RIS: the terminal is back to its defaults (the program's changes with it). */
  private reset(): void {
    this.set = new Set();
    this.ansi = new Set();
    this.keyModifiers.clear();
    this.cursorHidden = this.keypadApplication = this.origin = this.autowrapOff = this.region = false;
    this.g0Changed = this.shifted = this.cursorShape = false;
    this.kittyPushes = 0;
    this.palette.clear();
    this.paletteAll = false;
    this.dynamicColors.clear();
  }
}
