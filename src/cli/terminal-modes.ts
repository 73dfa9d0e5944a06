/**
 * Tracks the terminal modes a program turns on through its output (DEC private modes such as
 * the alternate screen, mouse reporting, a hidden cursor), so that `attach` can turn exactly
 * those off again when it leaves — detaching from vim must not leave the user's own terminal
 * on the alternate screen with mouse reporting on. Resetting modes that were never set is
 * avoided on purpose: `CSI ? 1049 l` outside the alternate screen restores a stale cursor.
 */

const ESC = 0x1b;
const BRACKET = 0x5b; // [
const QUESTION = 0x3f; // ?
/** Longest parameter list kept while a sequence is split across chunks. */
export const MAX_SEQUENCE_PARAM_BYTES = 64;

/**
 * Modes whose non-default state is "set" (`h`), with how to turn each off. Alternate-screen
 * modes come first: leaving the alternate screen before anything else puts the user's screen back.
 */
const RESET_WHEN_SET = new Map<number, string>([
  [1049, "\x1b[?1049l"],
  [1047, "\x1b[?1047l"],
  [47, "\x1b[?47l"],
  [1, "\x1b[?1l"], // application cursor keys
  [1000, "\x1b[?1000l"], // mouse: clicks
  [1002, "\x1b[?1002l"], // mouse: drags
  [1003, "\x1b[?1003l"], // mouse: all motion
  [1004, "\x1b[?1004l"], // focus events
  [1005, "\x1b[?1005l"], // mouse: UTF-8 coordinates
  [1006, "\x1b[?1006l"], // mouse: SGR coordinates
  [1015, "\x1b[?1015l"], // mouse: urxvt coordinates
  [2004, "\x1b[?2004l"], // bracketed paste
]);
/** The cursor (mode 25) is visible by default; a program may leave it hidden. */
const CURSOR_VISIBLE = 25;

type State = "text" | "esc" | "csi" | "private";

export class TerminalModes {
  private state: State = "text";
  private params = "";
  private readonly set = new Set<number>();
  private cursorHidden = false;
  private keypadApplication = false;

  /** Feeds output bytes in order. */
  feed(bytes: Uint8Array): void {
    for (const b of bytes) {
      switch (this.state) {
        case "text":
          if (b === ESC) this.state = "esc";
          break;
        case "esc":
          if (b === BRACKET) {
            this.state = "csi";
          } else {
            if (b === 0x3d /* = */) this.keypadApplication = true;
            else if (b === 0x3e /* > */) this.keypadApplication = false;
            this.state = b === ESC ? "esc" : "text";
          }
          break;
        case "csi":
          if (b === QUESTION) {
            this.state = "private";
            this.params = "";
          } else {
            this.state = b === ESC ? "esc" : "text";
          }
          break;
        case "private":
          if ((b >= 0x30 && b <= 0x39) || b === 0x3b /* ; */) {
            if (this.params.length >= MAX_SEQUENCE_PARAM_BYTES) this.state = "text";
            else this.params += String.fromCharCode(b);
          } else {
            if (b === 0x68 /* h */ || b === 0x6c /* l */) this.apply(b === 0x68);
            this.state = b === ESC ? "esc" : "text";
          }
          break;
      }
    }
  }

  /** The bytes that undo every mode left on; empty when there is nothing to undo. */
  resetSequence(): string {
    let out = "";
    for (const [mode, reset] of RESET_WHEN_SET) if (this.set.has(mode)) out += reset;
    if (this.keypadApplication) out += "\x1b>";
    if (this.cursorHidden) out += "\x1b[?25h";
    return out;
  }

  private apply(on: boolean): void {
    for (const part of this.params.split(";")) {
      if (part === "") continue;
      const mode = Number(part);
      if (mode === CURSOR_VISIBLE) this.cursorHidden = !on;
      else if (RESET_WHEN_SET.has(mode)) {
        if (on) this.set.add(mode);
        else this.set.delete(mode);
      }
    }
  }
}
