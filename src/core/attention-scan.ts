/** What a terminal's output asks of whoever watches it: a bell, or a notification with its text. */
export type TerminalCall = { kind: "bell" } | { kind: "notification"; text: string };

/** The most bytes of an OSC string kept to read a notification from; the rest of a longer one is dropped. */
export const MAX_OSC_PAYLOAD_BYTES = 1024;

const BEL = 0x07;
const ESC = 0x1b;
const CAN = 0x18;
const SUB = 0x1a;
const OSC_INTRODUCER = 0x5d; // ]
const ST_FINAL = 0x5c; // \ of ESC \
/** DCS (P), SOS (X), PM (^), APC (_): strings whose BEL is data, not a bell. */
const OTHER_STRINGS: ReadonlySet<number> = new Set([0x50, 0x58, 0x5e, 0x5f]);

type Mode = "ground" | "esc" | "osc" | "osc-esc" | "string" | "string-esc";

/**
 * Finds the bells and notifications in a terminal's output as it streams: BEL outside an OSC,
 * DCS, SOS, PM or APC string is a bell; `ESC ] 9 ; text` (not ConEmu's `9;4;…` progress) and
 * `ESC ] 777 ; notify ; title ; body`, ended by BEL or ST, are notifications. Sequences split
 * across chunks are found (the state carries over).
 *
 * Cheap on the output path: a chunk without BEL or ST (`ESC \`), while no string is open, costs
 * a search for BEL, one for `\` and one backwards for the last ESC (which alone says whether a
 * string is open at its end), all native scans; only chunks with a BEL or ST, or inside a
 * string, are walked, from ESC to ESC (test/core/attention-scan.test.ts "scan cost").
 */
export class AttentionScanner {
  private mode: Mode = "ground";
  private readonly payload = new Uint8Array(MAX_OSC_PAYLOAD_BYTES);
  private payloadLength = 0;
  private readonly decoder = new TextDecoder();

  constructor(private readonly found: (call: TerminalCall) => void) {}

  scan(chunk: Uint8Array): void {
    if (this.mode === "ground" && chunk.indexOf(BEL) < 0 && !hasST(chunk)) {
      let last = chunk.lastIndexOf(ESC);
      // An ESC at the very end may be the start of the ST of a string the ESC before it opened.
      if (last === chunk.length - 1 && last > 0) {
        const before = chunk.lastIndexOf(ESC, last - 1);
        if (before >= 0) last = before;
      }
      if (last >= 0) this.walk(chunk, last);
      return;
    }
    this.walk(chunk, 0);
  }

  private walk(chunk: Uint8Array, from: number): void {
    const n = chunk.length;
    let i = from;
    // Next BEL and ESC at or after i in ground mode (n: none), searched again only once passed.
    let nextBel = -1;
    let nextEsc = -1;
    while (i < n) {
      switch (this.mode) {
        case "ground": {
          if (nextBel < i) nextBel = orNone(chunk.indexOf(BEL, i), n);
          if (nextEsc < i) nextEsc = orNone(chunk.indexOf(ESC, i), n);
          if (nextBel < nextEsc) {
            this.found({ kind: "bell" });
            i = nextBel + 1;
          } else if (nextEsc < n) {
            this.mode = "esc";
            i = nextEsc + 1;
          } else i = n;
          break;
        }
        case "esc": {
          const b = chunk[i++]!;
          if (b === OSC_INTRODUCER) {
            this.mode = "osc";
            this.payloadLength = 0;
          } else if (OTHER_STRINGS.has(b)) this.mode = "string";
          else if (b !== ESC) this.mode = "ground";
          break;
        }
        case "osc":
          i = this.oscBytes(chunk, i);
          break;
        case "osc-esc":
          if (chunk[i] === ST_FINAL) {
            i++;
            this.mode = "ground";
            this.oscEnded();
          } else this.mode = "esc"; // An ESC ends the string and starts a sequence of its own.
          break;
        case "string": {
          const esc = chunk.indexOf(ESC, i);
          if (esc < 0) i = n;
          else {
            this.mode = "string-esc";
            i = esc + 1;
          }
          break;
        }
        case "string-esc":
          if (chunk[i] === ST_FINAL) {
            i++;
            this.mode = "ground";
          } else this.mode = "esc";
          break;
      }
    }
  }

  /** Collects an OSC string's bytes up to its end (BEL, ESC, CAN or SUB); returns where it stopped. */
  private oscBytes(chunk: Uint8Array, from: number): number {
    for (let i = from; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === BEL) {
        this.mode = "ground";
        this.oscEnded();
        return i + 1;
      }
      if (b === ESC) {
        this.mode = "osc-esc";
        return i + 1;
      }
      if (b === CAN || b === SUB) {
        this.mode = "ground";
        return i + 1;
      }
      if (this.payloadLength < MAX_OSC_PAYLOAD_BYTES) this.payload[this.payloadLength++] = b;
    }
    return chunk.length;
  }

  private oscEnded(): void {
    const text = this.decoder.decode(this.payload.subarray(0, this.payloadLength));
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

function orNone(index: number, none: number): number {
  return index < 0 ? none : index;
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
