/** What a terminal's output asks of whoever watches it: a bell, or a notification with its text. */
export type TerminalCall = { kind: "bell" } | { kind: "notification"; text: string };

/** The most bytes of an OSC string kept to read a notification from; the rest of a longer one is dropped. */
export const MAX_OSC_PAYLOAD_BYTES = 1024;

const BEL = 0x07;
const ESC = 0x1b;
const OSC_INTRODUCER = 0x5d; // ]
const ST_FINAL = 0x5c; // \ of ESC \
const DIGIT_7 = 0x37;
const DIGIT_9 = 0x39;
const SEMICOLON = 0x3b;
/** DCS (P), SOS (X), PM (^), APC (_): strings whose BEL is data, not a bell. */
const OTHER_STRINGS: ReadonlySet<number> = new Set([0x50, 0x58, 0x5e, 0x5f]);

type Mode = "ground" | "esc" | "osc" | "osc-esc" | "string" | "string-esc";

/**
 * Finds bells (BEL outside an OSC/DCS/SOS/PM/APC string) and OSC 9 / OSC 777 notifications in
 * streamed output, across chunk splits. A chunk with no BEL or ST and no open string costs a few
 * native searches; others are walked byte by byte. test/core/attention-scan.test.ts.
 */
export class AttentionScanner {
  private mode: Mode = "ground";
  private readonly payload = new Uint8Array(MAX_OSC_PAYLOAD_BYTES);
  private payloadLength = 0;
  private readonly decoder = new TextDecoder();

  constructor(private readonly found: (call: TerminalCall) => void) {}

  scan(chunk: Uint8Array): void {
    if (this.mode !== "ground" || chunk.indexOf(BEL) >= 0 || hasST(chunk)) {
      this.walk(chunk, 0, chunk.length);
      return;
    }
    // No BEL and no ST: only the last ESC can leave a string open at the end. Its sequence is
    // walked, not the text after it (which holds no ESC or BEL).
    const n = chunk.length;
    const last = chunk.lastIndexOf(ESC);
    if (last < 0) return;
    // An ESC at the very end may be the start of the ST of a string the ESC before it opened.
    const before = last === n - 1 && last > 0 ? chunk.lastIndexOf(ESC, last - 1) : -1;
    if (before >= 0) {
      this.walk(chunk, before, n);
      return;
    }
    this.walk(chunk, last, Math.min(n, last + 2));
    // An OSC string runs on to the end: its first bytes are what a notification would say.
    if (this.state() === "osc") this.walk(chunk, last + 2, Math.min(n, last + 2 + MAX_OSC_PAYLOAD_BYTES));
  }

  /** The mode now (read through a call: TypeScript keeps `this.mode` narrowed across `walk`). */
  private state(): Mode {
    return this.mode;
  }

  /** The state machine, byte by byte from `from` (a tight loop: about a nanosecond a byte). */
  private walk(chunk: Uint8Array, from: number, to: number): void {
    const payload = this.payload;
    let mode = this.mode;
    let length = this.payloadLength;
    for (let i = from; i < to; i++) {
      const b = chunk[i]!;
      switch (mode) {
        case "ground":
          if (b === BEL) this.found({ kind: "bell" });
          else if (b === ESC) mode = "esc";
          break;
        case "esc":
          if (b === OSC_INTRODUCER) {
            mode = "osc";
            length = 0;
          } else if (OTHER_STRINGS.has(b)) mode = "string";
          else if (b !== ESC) mode = "ground";
          break;
        case "osc":
          if (b === BEL) {
            mode = "ground";
            this.oscEnded(length);
          } else if (b === ESC) mode = "osc-esc";
          else if (length < MAX_OSC_PAYLOAD_BYTES) payload[length++] = b;
          break;
        case "osc-esc":
          if (b === ST_FINAL) {
            mode = "ground";
            this.oscEnded(length);
          } else {
            // An ESC ends the string and starts a sequence of its own: this byte is that sequence's.
            mode = "esc";
            i--;
          }
          break;
        case "string":
          if (b === ESC) mode = "string-esc";
          break;
        case "string-esc":
          if (b === ST_FINAL) mode = "ground";
          else {
            mode = "esc";
            i--;
          }
          break;
      }
    }
    this.mode = mode;
    this.payloadLength = length;
  }

  private oscEnded(length: number): void {
    // Only OSC 9 and 777 are read: a title or hyperlink is not decoded at all.
    const p = this.payload;
    const osc9 = length >= 2 && p[0] === DIGIT_9 && p[1] === SEMICOLON;
    const osc777 = length >= 4 && p[0] === DIGIT_7 && p[1] === DIGIT_7 && p[2] === DIGIT_7 && p[3] === SEMICOLON;
    if (!osc9 && !osc777) return;
    const text = this.decoder.decode(p.subarray(0, length));
    const call = notificationOf(text);
    if (call !== undefined) this.found(call);
  }
}

/** Whether `chunk` holds an ST (`ESC \\`), which may end a notification without a BEL. */
function hasST(chunk: Uint8Array): boolean {
  for (let i = chunk.indexOf(ST_FINAL, 1); i >= 0; i = chunk.indexOf(ST_FINAL, i + 1))
    if (chunk[i - 1] === ESC) return true;
  return false;
}

/** The notification an OSC string's text (what follows `ESC ]`) carries, if it is one. */
export function notificationOf(osc: string): TerminalCall | undefined {
  if (osc.startsWith("9;")) {
    const text = osc.slice(2);
    // ConEmu's OSC 9;4 (progress, as Windows Terminal and others take it) is no notification.
    if (text === "4" || text.startsWith("4;")) return undefined;
    return { kind: "notification", text };
  }
  if (osc.startsWith("777;notify;")) {
    const [title = "", ...body] = osc.slice("777;notify;".length).split(";");
    const rest = body.join(";");
    return { kind: "notification", text: title !== "" && rest !== "" ? `${title}: ${rest}` : title || rest };
  }
  return undefined;
}
