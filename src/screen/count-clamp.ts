/**
 * xterm.js does the work a count asks for, however large: REP (`CSI Ps b`) allocates and prints
 * Ps characters (`x ESC[999999999b`: 124 s and 3.8 GB), IL, DL, SU and SD (`CSI Ps L/M/S/T`) move
 * lines Ps times (3–5 µs each) and CHT, CBT (`CSI Ps I/Z`) step Ps tab stops. Past a bound set by
 * the terminal's size a larger count shows nothing more; {@link CountClamp} lowers it to one that
 * shows the same (test/screen/count-clamp.test.ts compares screens with and without).
 */

/** The terminal a count is clamped for: the size it is parsed at, and the scrollback it keeps. */
export interface ClampSize {
  cols: number;
  rows: number;
  scrollback: number;
}

/** The fewest columns xterm's buffer has (a 1-column terminal prints 2 characters a row). */
const XTERM_MIN_COLS = 2;

/** xterm's parameters saturate here, and it keeps at most 32 of them and 32 sub-parameters. */
const PARAM_MAX = 2 ** 31 - 1;
const PARAMS_MAX = 32;
const SUB_PARAMS_MAX = 32;

const CAN = 0x18;
const SUB = 0x1a;
const ESC = 0x1b;
const DEL = 0x7f;
const C2 = 0xc2;
const CSI_C1 = 0x9b;
const SEMI = 0x3b;
const COLON = 0x3a;

/**
 * The count a sequence with `final` (no prefix, no intermediates) does the same with, or `count`.
 * Lines and tab stops: once every row or column is done, more repeat nothing. REP: once every
 * row and scrollback line is filled with the character, `period` more characters fill exactly
 * whole lines again (cols of width 1, or whole lines of width-2 characters: ⌊cols/2⌋ a line).
 */
export function clampedCount(final: number, count: number, size: ClampSize): number {
  switch (final) {
    case 0x4c: // IL
    case 0x4d: // DL
    case 0x53: // SU
    case 0x54: // SD
      return Math.min(count, size.rows);
    case 0x49: // CHT
    case 0x5a: // CBT
      return Math.min(count, size.cols);
    case 0x62: {
      // REP. xterm lays out at least XTERM_MIN_COLS columns, whatever the size it was given.
      const cols = Math.max(size.cols, XTERM_MIN_COLS);
      const bound = cols * (size.rows + size.scrollback + 2);
      if (count <= bound) return count;
      const half = Math.floor(cols / 2);
      const period = cols % 2 === 1 && half > 0 ? cols * half : cols;
      return bound + ((count - bound) % period);
    }
    default:
      return count;
  }
}

/** Passes on the run of bytes before `at`, then `text`; the run goes on from `skip` (`at` when absent). */
type Emit = (at: number, text: string | Uint8Array, skip?: number) => void;

function isParamByte(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || b === SEMI || b === COLON;
}

type ClampState =
  /** Outside a sequence; `c2`: after a C2, which with 9B is a CSI. */
  | "ground"
  | "c2"
  /** After an ESC (C0 controls keep it open to a `[`). */
  | "esc"
  /** After a CSI's introducer, before any parameter. */
  | "entry"
  /** In its parameters: held, as xterm reads them, until the sequence ends. */
  | "params";

/**
 * Output on its way to the emulator with the counts of CSI sequences clamped (see
 * {@link clampedCount}). A CSI's parameters go on as they are unless its count is lowered; only
 * those a push ends inside are held, as the text xterm reads them (digits saturated, at most 32
 * of each kind: ~700 bytes). C0 controls among them go on where they are, as xterm runs them
 * there. Inside a sequence bytes from 0x80 are decoded as xterm's UTF-8 decoder does: a stray
 * one is dropped, a character ends the sequence.
 */
export class CountClamp {
  private state: ClampState = "ground";
  /** The parameters read so far, without the digits of the one being read. */
  private held = "";
  /** That one's value, or -1 before its first digit. */
  private digits = -1;
  private params = 1;
  private subParams = 0;
  /** The rest of the parameters changes nothing (xterm rejects them): left out. */
  private rejected = false;
  /** A rejected sub-parameter is being read: it and its digits are left out. */
  private rejectedSub = false;
  /**
   * Where the parameters began in the bytes being pushed: they pass on as they are unless a count
   * is lowered. -1: they began in an earlier push, or were cut out of this one, and are held.
   */
  private paramsStart = -1;
  /** A UTF-8 character begun inside a sequence, and how many bytes it still needs. */
  private utf8: number[] = [];
  private utf8Needs = 0;

  /** Whether nothing is held: the output so far ended outside any CSI's parameters. */
  get idle(): boolean {
    return (this.state === "ground" || this.state === "c2") && this.utf8.length === 0;
  }

  /** What of `bytes` goes on to the emulator, parsed at `size`, in order. */
  push(bytes: Uint8Array, size: ClampSize): Uint8Array[] {
    const out: Uint8Array[] = [];
    /** Start of the run of bytes passed on as they are. */
    let from = 0;
    const emit: Emit = (at, text, skip = at) => {
      if (at > from) out.push(bytes.subarray(from, at));
      if (text.length > 0) out.push(typeof text === "string" ? Buffer.from(text, "latin1") : text);
      from = skip;
    };
    let nextEsc = -2;
    let nextC2 = -2;
    let i = 0;
    while (i < bytes.length) {
      const b = bytes[i]!;
      if (this.state === "ground") {
        // Only an ESC or a C2 can start a CSI: jump to the nearer one.
        if (nextEsc < i && nextEsc !== -1) nextEsc = bytes.indexOf(ESC, i);
        if (nextC2 < i && nextC2 !== -1) nextC2 = bytes.indexOf(C2, i);
        const next = nextEsc < 0 ? nextC2 : nextC2 < 0 ? nextEsc : Math.min(nextEsc, nextC2);
        if (next < 0) break;
        this.state = bytes[next] === ESC ? "esc" : "c2";
        i = next + 1;
      } else if (this.state === "c2") {
        // C2 is no continuation byte: C2 9B is U+009B whatever came before it.
        if (b === CSI_C1) {
          this.enter();
          i++;
        } else this.state = "ground";
      } else if (b < 0x80 && this.utf8Needs === 0) {
        i = this.step(bytes, i, size, emit);
      } else {
        const code = this.decode(b);
        if (code === "stray") {
          i++; // dropped by xterm, so passed on where it is
        } else if (code === "pending") {
          if (this.state === "params") this.hold(bytes, i, emit);
          emit(i, "", ++i);
        } else if (code === "reread") {
          emit(i, this.takeUtf8());
        } else if (code === "dropped") {
          emit(i, this.takeUtf8(), ++i);
        } else {
          // A character from 0x80 ends the sequence (a CSI C1 starts another).
          const char = this.takeUtf8();
          if (this.state === "params") this.endParams(i, emit);
          emit(i, char, ++i);
          if (code === CSI_C1) this.enter();
          else this.state = "ground";
        }
      }
    }
    if (this.state === "params") this.hold(bytes, bytes.length, emit);
    if (bytes.length > from) out.push(from === 0 ? bytes : bytes.subarray(from));
    return out;
  }

  /**
   * Cuts the parameters read so far in this push out of it (they are held from here on), keeping
   * the other bytes among them (C0 controls, stray bytes) where they go on.
   */
  private hold(bytes: Uint8Array, at: number, emit: Emit): void {
    const start = this.paramsStart;
    if (start < 0) return;
    const others = bytes.subarray(start, at).filter((b) => !isParamByte(b));
    emit(start, others, at);
    this.paramsStart = -1;
  }

  /** The parameters ended at `at` without a lowered count: held ones go on as xterm reads them. */
  private endParams(at: number, emit: Emit): void {
    const text = this.flush();
    if (this.paramsStart < 0) emit(at, text);
  }

  private takeUtf8(): Uint8Array {
    const seq = Uint8Array.from(this.utf8);
    this.utf8 = [];
    return seq;
  }

  /** Reads the ASCII byte at `i` in a sequence; returns the index to read next. */
  private step(bytes: Uint8Array, i: number, size: ClampSize, emit: Emit): number {
    const b = bytes[i]!;
    if (b === ESC || b === CAN || b === SUB) {
      // ESC starts another sequence; CAN and SUB abort this one.
      if (this.state === "params") this.endParams(i, emit);
      this.state = b === ESC ? "esc" : "ground";
      return i + 1;
    }
    // C0 controls run where they are, the parameters left as they are; DEL is ignored.
    if (b < 0x20 || b === DEL) return i + 1;
    const param = isParamByte(b);
    switch (this.state) {
      case "esc":
        if (b === 0x5b) this.enter();
        else this.state = "ground";
        return i + 1;
      case "entry":
        if (param) {
          this.state = "params";
          this.paramsStart = i;
          return i; // read again as a parameter
        }
        // A prefix or an intermediate (no clamped sequence has one), or a final.
        this.state = "ground";
        return i + 1;
      case "params":
        if (param) {
          this.param(b);
          if (this.paramsStart < 0) emit(i, "", i + 1);
          return i + 1;
        }
        if (b >= 0x40 && b <= 0x7e) {
          const first = this.firstParam();
          const count = clampedCount(b, first, size);
          if (count === first) this.endParams(i, emit);
          else {
            this.hold(bytes, i, emit);
            emit(i, this.flush(count));
          }
        } else this.endParams(i, emit); // a prefix byte here (the sequence is ignored) or an intermediate
        this.state = "ground";
        return i + 1;
      default:
        return i + 1;
    }
  }

  private enter(): void {
    this.state = "entry";
    this.paramsStart = -1;
    this.held = "";
    this.digits = -1;
    this.params = 1;
    this.subParams = 0;
    this.rejected = false;
    this.rejectedSub = false;
  }

  /** Adds a parameter byte as xterm's Params does, keeping only what changes what it reads. */
  private param(b: number): void {
    if (this.rejected) return;
    if (b === SEMI) {
      this.endDigits();
      this.rejectedSub = false;
      if (this.params === PARAMS_MAX) this.rejected = true;
      else {
        this.params++;
        this.held += ";";
      }
    } else if (b === COLON) {
      this.endDigits();
      if (this.subParams === SUB_PARAMS_MAX) this.rejectedSub = true;
      else {
        this.subParams++;
        this.held += ":";
      }
    } else if (!this.rejectedSub) {
      this.digits = Math.min(Math.max(this.digits, 0) * 10 + (b - 0x30), PARAM_MAX);
    }
  }

  private endDigits(): void {
    if (this.digits >= 0) this.held += String(this.digits);
    this.digits = -1;
  }

  /** The first parameter's value as xterm reads it (0 when empty). */
  private firstParam(): number {
    const end = this.held.search(/[;:]/);
    const text = end < 0 ? this.held + (this.digits >= 0 ? String(this.digits) : "") : this.held.slice(0, end);
    return text === "" ? 0 : Number(text);
  }

  /** The held parameters as text, the first one replaced by `first` when given; nothing is held after. */
  private flush(first?: number): string {
    this.endDigits();
    let text = this.held;
    if (first !== undefined) {
      const end = text.search(/[;:]/);
      text = String(first) + (end < 0 ? "" : text.slice(end));
    }
    this.held = "";
    return text;
  }

  /**
   * One byte through xterm's UTF-8 decoding (Utf8ToUtf32): a stray continuation byte, or a
   * character too long or out of range, is dropped; a lead byte followed by anything but a
   * continuation is dropped and that byte read again.
   */
  private decode(b: number): number | "stray" | "pending" | "reread" | "dropped" {
    if (this.utf8Needs > 0) {
      if ((b & 0xc0) !== 0x80) {
        this.utf8Needs = 0;
        return "reread";
      }
      this.utf8.push(b);
      if (--this.utf8Needs > 0) return "pending";
      return codeOf(this.utf8) ?? "dropped";
    }
    const needs = (b & 0xe0) === 0xc0 ? 1 : (b & 0xf0) === 0xe0 ? 2 : (b & 0xf8) === 0xf0 ? 3 : 0;
    if (needs === 0) return "stray";
    this.utf8 = [b];
    this.utf8Needs = needs;
    return "pending";
  }
}

/** The code point of a whole UTF-8 sequence, or undefined where xterm drops it. */
function codeOf(seq: number[]): number | undefined {
  const [a = 0, b = 0, c = 0, d = 0] = seq;
  if (seq.length === 2) {
    const code = ((a & 0x1f) << 6) | (b & 0x3f);
    return code < 0x80 ? undefined : code;
  }
  if (seq.length === 3) {
    const code = ((a & 0x0f) << 12) | ((b & 0x3f) << 6) | (c & 0x3f);
    return code < 0x800 || (code >= 0xd800 && code <= 0xdfff) || code === 0xfeff ? undefined : code;
  }
  const code = ((a & 0x07) << 18) | ((b & 0x3f) << 12) | ((c & 0x3f) << 6) | (d & 0x3f);
  return code < 0x10000 || code > 0x10ffff ? undefined : code;
}
