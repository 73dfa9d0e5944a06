/**
 * Control strings (OSC: titles, links; DCS: sixel, DECRQSS; SOS, PM, APC) longer than this are
 * dropped whole before the emulator sees them. xterm.js gathers a string's payload up to 10 MB
 * and costs about 12 bytes of heap per byte meanwhile: one 30 MB OSC title raised the screen
 * thread by 405 MB, and a title of 1 MB went into every view and checkpoint. A headless
 * emulator shows nothing of a longer one: no terminal shows a 16 KiB title, and sixel images
 * and clipboard writes (OSC 52) have no effect on the screen it keeps.
 */
export const SCREEN_STRING_MAX_BYTES = 16 * 1024;

const BEL = 0x07;
const CAN = 0x18;
const SUB = 0x1a;
const ESC = 0x1b;
const C2 = 0xc2;
const BACKSLASH = 0x5c;
/** The final byte of ESC that opens a control string: `]` OSC, `P` DCS, `X` SOS, `^` PM, `_` APC. */
const ESC_INTROS = new Set([0x5d, 0x50, 0x58, 0x5e, 0x5f]);
/** The same as C1 controls, in UTF-8 after C2: OSC, DCS, SOS, PM, APC. */
const C1_INTROS = new Set([0x9d, 0x90, 0x98, 0x9e, 0x9f]);
const C1_OSC = 0x9d;
const C1_ST = 0x9c;

type CapState =
  /** Outside any string; `esc` and `c2`: after an ESC or a C2 byte that may open one. */
  | "ground"
  | "esc"
  | "c2"
  /** Inside a string, held until it ends; `-esc`, `-c2`: after an ESC or C2 in it. */
  | "string"
  | "string-esc"
  | "string-c2"
  /** Inside a string past the cap: swallowed up to its end. */
  | "drop"
  | "drop-esc"
  | "drop-c2";

/**
 * Output of one PTY on its way to the emulator, with control strings over
 * {@link SCREEN_STRING_MAX_BYTES} taken out. A string is held (at most that many bytes) until it
 * ends, then passed on whole, or dropped with its terminator once it grows past the cap; the
 * state carries over from one `push` to the next. Strings end as xterm ends them: ST (`ESC \`
 * or C1 ST), BEL for OSC, CAN or SUB, or any other ESC (which then starts a sequence of its own).
 */
export class StringCap {
  private state: CapState = "ground";
  /** The bytes of the string being held (its opening included), while `state` is `string*`. */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private osc = false;

  /** Whether nothing is held or being dropped: what was pushed has all been passed on. */
  get idle(): boolean {
    return this.state === "ground";
  }

  /** What of `bytes` goes on to the emulator, in order. */
  push(bytes: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let from = 0;
    let i = 0;
    const pass = (end: number) => {
      if (end > from) out.push(bytes.subarray(from, end));
    };
    while (i < bytes.length) {
      switch (this.state) {
        case "ground": {
          const next = nextSpecial(bytes, i);
          if (next < 0) {
            i = bytes.length;
            break;
          }
          pass(next);
          from = next;
          this.state = bytes[next] === ESC ? "esc" : "c2";
          i = next + 1;
          break;
        }
        case "esc":
        case "c2": {
          const b = bytes[i]!;
          const opens = this.state === "esc" ? ESC_INTROS.has(b) : C1_INTROS.has(b);
          if (!opens) {
            // Not a string: the ESC or C2 goes on with what follows (it may have come in an earlier push).
            if (from === i) out.push(Uint8Array.of(this.state === "esc" ? ESC : C2));
            this.state = "ground";
            if (b === ESC || b === C2) continue;
            i++;
            break;
          }
          this.osc = this.state === "esc" ? b === 0x5d : b === C1_OSC;
          this.hold(Uint8Array.of(this.state === "esc" ? ESC : C2, b));
          this.state = "string";
          i++;
          from = i;
          break;
        }
        case "string":
        case "drop": {
          const dropping = this.state === "drop";
          let j = i;
          for (; j < bytes.length; j++) {
            const b = bytes[j]!;
            if (b === ESC || b === C2 || b === CAN || b === SUB || (b === BEL && this.osc)) break;
          }
          if (!dropping) this.hold(bytes.subarray(i, j));
          i = j;
          from = j;
          if (this.state === "string" && this.heldBytes > SCREEN_STRING_MAX_BYTES + 2) this.drop();
          if (j >= bytes.length) break;
          const b = bytes[j]!;
          if (b === ESC || b === C2) {
            this.state = `${this.state}-${b === ESC ? "esc" : "c2"}` as CapState;
            i = j + 1;
            from = i;
            break;
          }
          // BEL ends the string; CAN and SUB abort it and act on their own.
          this.end(out, b === BEL ? Uint8Array.of(b) : undefined);
          if (b !== BEL) out.push(Uint8Array.of(b));
          i = j + 1;
          from = i;
          break;
        }
        case "string-esc":
        case "drop-esc": {
          const b = bytes[i]!;
          if (b === BACKSLASH) {
            this.end(out, Uint8Array.of(ESC, BACKSLASH));
            i++;
            from = i;
            break;
          }
          // Any other ESC ends the string and starts a sequence: read on as after an ESC.
          this.end(out);
          this.state = "esc";
          from = i;
          break;
        }
        case "string-c2":
        case "drop-c2": {
          const b = bytes[i]!;
          if (b === C1_ST) {
            this.end(out, Uint8Array.of(C2, C1_ST));
            i++;
            from = i;
            break;
          }
          // A character of the payload (C2 80–BF), or a C1 control that ends it.
          if (b < 0x80 || b > 0xbf || C1_INTROS.has(b)) {
            this.end(out);
            this.state = "c2";
            from = i;
            break;
          }
          this.state = this.state === "string-c2" ? "string" : "drop";
          if (this.state === "string") this.hold(Uint8Array.of(C2));
          from = i;
          break;
        }
      }
    }
    if (this.state === "ground") pass(bytes.length);
    return out;
  }

  private hold(bytes: Uint8Array): void {
    if (bytes.length === 0 || this.state === "drop") return;
    // Copied: the caller's buffer may be reused once this push returns.
    this.held.push(bytes.slice());
    this.heldBytes += bytes.length;
  }

  private drop(): void {
    this.held = [];
    this.heldBytes = 0;
    this.state = "drop";
  }

  /** The string ended: passed on with `terminator` when it was held, nothing when it was dropped. */
  private end(out: Uint8Array[], terminator?: Uint8Array): void {
    if (this.state.startsWith("string")) {
      out.push(...this.held);
      if (terminator !== undefined) out.push(terminator);
    }
    this.held = [];
    this.heldBytes = 0;
    this.state = "ground";
  }
}

/** The index of the next ESC or C2 byte from `from` on, or -1. */
function nextSpecial(bytes: Uint8Array, from: number): number {
  const esc = bytes.indexOf(ESC, from);
  const c2 = bytes.indexOf(C2, from);
  if (esc < 0) return c2;
  if (c2 < 0) return esc;
  return Math.min(esc, c2);
}
