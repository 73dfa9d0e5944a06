/**
 * Payload bytes a control string (OSC: titles, links, colours; DCS: sixel, DECRQSS; SOS, PM,
 * APC) may carry into the emulator; a longer one is aborted there and the rest of it dropped.
 * xterm.js gathers an OSC or DECRQSS payload up to 10 MB at about 12 bytes of heap per byte
 * (one 30 MB title grew the screen thread by 405 MB) and itself drops a string past that limit;
 * this drops it past 16 KiB instead. Headless, nothing longer shows: no title of 16 KiB, and
 * sixel images and clipboard writes (OSC 52) have no handler here.
 */
export const SCREEN_STRING_MAX_BYTES = 16 * 1024;

const BEL = 0x07;
const CAN = 0x18;
const SUB = 0x1a;
const ESC = 0x1b;
const DEL = 0x7f;
/** UTF-8 lead byte of U+0080–U+00BF: followed by 80–9F it is a C1 control. */
const C2 = 0xc2;
const CAN_BYTES = Uint8Array.of(CAN);
const C2_BYTES = Uint8Array.of(C2);
/** The final byte of ESC that opens a control string: `]` OSC, `P` DCS, `X` SOS, `^` PM, `_` APC. */
const ESC_INTROS: ReadonlySet<number> = new Set([0x5d, 0x50, 0x58, 0x5e, 0x5f]);
/** The same as C1 controls (after C2 in UTF-8): OSC, DCS, SOS, PM, APC. */
const C1_INTROS: ReadonlySet<number> = new Set([0x9d, 0x90, 0x98, 0x9e, 0x9f]);
const OSC_INTROS: ReadonlySet<number> = new Set([0x5d, 0x9d]);

type CapState =
  /** Outside any string; `esc`, `c2`: after an ESC or a C2 that may open one. */
  | "ground"
  | "esc"
  | "c2"
  /** Inside a string within the cap, passed on; `string-c2`: after a C2 in it. */
  | "string"
  | "string-c2"
  /** Inside a string past the cap (aborted in the emulator): its rest is dropped up to its end. */
  | "drop"
  | "drop-c2";

/**
 * Output of one PTY on its way to the emulator, with control strings over
 * {@link SCREEN_STRING_MAX_BYTES} cut out. Nothing is held or split: a push comes back whole
 * unless a string in it passes the cap, where a CAN goes in (xterm aborts the string, as it
 * does its own over-limit ones) and the string's rest is left out up to its end. The states
 * follow xterm's parser: any ESC, CAN, SUB or C1 control ends a string, BEL ends an OSC, and C0
 * controls after an ESC leave it open to a string (`ESC LF ]` opens an OSC).
 */
export class StringCap {
  private state: CapState = "ground";
  private osc = false;
  /** Payload bytes of the current string so far. */
  private length = 0;

  /** Whether the output so far ended outside any string (none being dropped). */
  get idle(): boolean {
    return this.state === "ground";
  }

  /** What of `bytes` goes on to the emulator, in order: `[bytes]` itself unless a string passed the cap. */
  push(bytes: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    /** Start of the run of bytes still to pass on (when not dropping). */
    let from = 0;
    let i = 0;
    let nextC2 = -2;
    while (i < bytes.length) {
      const b = bytes[i]!;
      switch (this.state) {
        case "ground": {
          // Only an ESC or a C2 can open a string: jump to the nearer one.
          if (nextC2 < i && nextC2 !== -1) nextC2 = bytes.indexOf(C2, i);
          const esc = bytes.indexOf(ESC, i);
          const next = esc < 0 ? nextC2 : nextC2 < 0 ? esc : Math.min(esc, nextC2);
          if (next < 0) {
            i = bytes.length;
            break;
          }
          this.state = bytes[next] === ESC ? "esc" : "c2";
          i = next + 1;
          break;
        }
        case "esc":
          if (ESC_INTROS.has(b)) this.open(OSC_INTROS.has(b));
          else if (b === C2) this.state = "c2";
          else if (b !== ESC && !(b < 0x20 && b !== CAN && b !== SUB) && b !== DEL) this.state = "ground";
          i++;
          break;
        case "c2":
          if (C1_INTROS.has(b)) {
            this.open(OSC_INTROS.has(b));
            i++;
          } else if (b >= 0x80 && b <= 0xbf) {
            this.state = "ground";
            i++;
          } else this.state = "ground"; // not a character: the byte is read again as it is
          break;
        case "string":
        case "drop": {
          const end = this.endOfPayload(bytes, i);
          if (this.state === "string") {
            const room = SCREEN_STRING_MAX_BYTES - this.length;
            if (end - i > room) {
              // Cut before a character, not inside one: the CAN then reaches xterm's parser.
              let cut = i + room;
              while (cut > i && (bytes[cut]! & 0xc0) === 0x80) cut--;
              if (cut > from) out.push(bytes.subarray(from, cut));
              out.push(CAN_BYTES);
              this.state = "drop";
            } else this.length += end - i;
          }
          i = end;
          if (i >= bytes.length) break;
          const dropping = this.state === "drop";
          const t = bytes[i]!;
          if (t === C2) {
            this.state = dropping ? "drop-c2" : "string-c2";
            i++;
            break;
          }
          // The string ends: a dropped one's BEL goes with it; ESC, CAN and SUB act on their own.
          this.state = t === ESC ? "esc" : "ground";
          if (dropping) from = t === BEL ? i + 1 : i;
          i++;
          break;
        }
        case "string-c2":
        case "drop-c2": {
          const dropping = this.state === "drop-c2";
          if (b >= 0x80 && b <= 0x9f) {
            // A C1 control ends the string and is read again outside it (it may open another).
            if (dropping) {
              if (i === 0) out.push(C2_BYTES);
              from = Math.max(0, i - 1);
            }
            this.state = "c2";
            break;
          }
          this.state = dropping ? "drop" : "string";
          if (!dropping) this.length++;
          break;
        }
      }
    }
    if (this.state !== "drop" && this.state !== "drop-c2" && bytes.length > from) {
      out.push(from === 0 ? bytes : bytes.subarray(from));
    }
    return out;
  }

  private open(osc: boolean): void {
    this.state = "string";
    this.osc = osc;
    this.length = 0;
  }

  /** The index of the next byte from `from` on that may end the current string (or a C2), or `bytes.length`. */
  private endOfPayload(bytes: Uint8Array, from: number): number {
    for (let j = from; j < bytes.length; j++) {
      const b = bytes[j]!;
      if (b === ESC || b === C2 || b === CAN || b === SUB || (b === BEL && this.osc)) return j;
    }
    return bytes.length;
  }
}
