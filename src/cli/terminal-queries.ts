/**
 * Removes terminal queries from replayed output before `attach` shows it.
 *
 * A session's history holds the queries its programs sent when they started (vim asks for the
 * cursor position `CSI 6 n`, the terminal's identity `CSI c` / `CSI > c`, its colours
 * `OSC 11 ; ? BEL`, modes `CSI ? 12 $ p`...). Written to the local terminal again, they are
 * answered again, and the answers come in on stdin like keys: attach sent them to the session,
 * where a shell showed `R$ 2RR84;0;0c` at its prompt (and ran it on Enter) and `cat > file`
 * wrote them into the file. Nobody typed them, and nobody asked for them now.
 *
 * They are removed rather than their answers dropped on the way back: the local terminal
 * answers whenever it gets to it, after an unknown delay, and its answers cannot be told from
 * keys the user types meanwhile; a query that is never written is never answered, by any
 * terminal. Live output is left alone: a program running now waits for its answer.
 *
 * Only sequences that make a terminal answer are removed; anything else, and anything this
 * scanner cannot make sense of, is passed on unchanged. 8-bit C1 controls (0x9b for CSI) are not
 * read: in UTF-8 those bytes are parts of characters, and terminals in UTF-8 mode ignore them.
 */

const ESC = 0x1b;
const BEL = 0x07;
const ENQ = 0x05;
/**
 * A sequence longer than this is passed on without being held back any longer: every query is
 * shorter, and a long string (an OSC 52 clipboard copy can be megabytes) must not be buffered.
 */
export const MAX_HELD_SEQUENCE_BYTES = 256;

/** `CSI Ps t` reports (XTWINOPS): window state, position, sizes, title. The others act on the window. */
const WINDOW_REPORTS = new Set(["11", "13", "14", "15", "16", "18", "19", "20", "21"]);
// eslint-disable-next-line no-control-regex -- escape sequences are what is read here
const CSI_SHAPE = /^\x1b\[([<=>?]?)([\d;:]*)([\x20-\x2f]*)([\x40-\x7e])$/;

/** Whether a whole CSI sequence asks the terminal for an answer. */
function csiIsQuery(sequence: string): boolean {
  const m = CSI_SHAPE.exec(sequence);
  if (m === null) return false;
  const [, prefix, params, inter, final] = m as unknown as [string, string, string, string, string];
  const first = params.split(";")[0] ?? "";
  if (inter === "") {
    switch (final) {
      case "c": // DA1 (CSI c), DA2 (CSI > c), DA3 (CSI = c); `CSI ? ... c` sets a cursor on Linux
        return prefix !== "?" && prefix !== "<";
      case "n": // DSR: status, cursor position (CSI 6 n, CSI ? 6 n); `CSI > n` sets key modifiers
        return prefix === "" || prefix === "?";
      case "q": // XTVERSION (CSI > q)
        return prefix === ">";
      case "t": // window reports (CSI 14 t, CSI 18 t)
        return prefix === "" && WINDOW_REPORTS.has(first);
      case "x": // DECREQTPARM
        return prefix === "" && (first === "" || first === "0" || first === "1");
      case "u": // kitty keyboard protocol flags (CSI ? u)
        return prefix === "?";
      case "m": // XTQMODKEYS (CSI ? 4 m)
        return prefix === "?";
      case "S": {
        // XTSMGRAPHICS: read (1) or read the maximum (4)
        const action = params.split(";")[1];
        return prefix === "?" && (action === "1" || action === "4");
      }
      default:
        return false;
    }
  }
  if (inter === "$") return final === "p" || final === "w" || final === "u"; // DECRQM, DECRQPSR, DECRQTSR
  if (inter === "*") return final === "y"; // DECRQCRA (a checksum of screen contents)
  if (inter === "#") return final === "|"; // XTREPORTSGR
  if (inter === "&") return final === "u"; // DECRQUPSS
  return false;
}

/** Whether a whole string sequence (`ESC ]`, `ESC P`, `ESC _`, ... to its terminator) asks for an answer. */
function stringIsQuery(type: number, body: string): boolean {
  switch (type) {
    case 0x5d: // ] OSC: a `?` field asks for a value (OSC 10 ; ?, OSC 4 ; 1 ; ?, OSC 52 ; c ; ?)
      return body.split(";").slice(1).includes("?") || body.startsWith("1337;Report");
    case 0x50: // P DCS: DECRQSS (DCS $ q ... ST), XTGETTCAP (DCS + q ... ST)
      return /^[\d;]*[$+]q/.test(body);
    case 0x5f: // _ APC: a kitty graphics query (a=q)
      return body.startsWith("G") && /(^|,)a=q(,|$)/.test(body.slice(1).split(";")[0] ?? "");
    default:
      return false;
  }
}

type State =
  | "ground"
  /** After ESC (and any intermediates). */
  | "esc"
  | "csi"
  /** In a string (OSC, DCS, APC, PM, SOS) held back until its end. */
  | "string"
  /** ESC inside a held string: `\` ends it (ST). */
  | "string-esc"
  /** In a string too long to be a query: passed on as it comes until its end. */
  | "pass"
  | "pass-esc";

/** Strips queries from a stream of output written in consecutive chunks (see the module comment). */
export class QueryFilter {
  private state: State = "ground";
  /** The bytes of the sequence in progress, from its ESC. */
  private held: number[] = [];
  private stringType = 0;

  /**
   * Feeds the next chunk of output; returns what to write. With `strip` false (live output)
   * the chunk is passed on as it is, except that a sequence begun in stripped output is
   * finished (and judged) first.
   */
  filter(bytes: Uint8Array, strip = true): Uint8Array {
    if (!strip && this.state === "ground") return bytes;
    const out = new Uint8Array(this.held.length + bytes.length);
    let n = 0;
    const emit = (b: number) => (out[n++] = b);
    const emitHeld = () => {
      for (const b of this.held) emit(b);
      this.held = [];
    };
    let i = 0;
    for (; i < bytes.length; i++) {
      if (!strip && this.state === "ground") break;
      const b = bytes[i]!;
      switch (this.state) {
        case "ground":
          if (b === ESC) {
            this.held = [b];
            this.state = "esc";
          } else if (b !== ENQ) {
            // ENQ asks for the answerback message.
            emit(b);
          }
          break;
        case "esc":
          this.held.push(b);
          if (this.held.length === 2 && b === 0x5b /* [ */) this.state = "csi";
          else if (this.held.length === 2 && (b === 0x5d || b === 0x50 || b === 0x5f || b === 0x5e || b === 0x58)) {
            this.stringType = b;
            this.state = "string";
          } else if (b >= 0x20 && b <= 0x2f) {
            // An intermediate (ESC ( B): the final byte comes next.
            if (this.held.length > 8) this.passOn(emitHeld);
          } else if (b === ESC) {
            this.held.pop();
            emitHeld();
            this.held = [b];
          } else if (this.held.length === 2 && b === 0x5a /* Z */) {
            // DECID: as DA1.
            this.held = [];
            this.state = "ground";
          } else this.passOn(emitHeld);
          break;
        case "csi":
          if (b >= 0x40 && b <= 0x7e) {
            this.held.push(b);
            if (csiIsQuery(String.fromCharCode(...this.held))) this.held = [];
            this.passOn(emitHeld);
          } else if (b === ESC) {
            // Cut short by a new sequence.
            emitHeld();
            this.held = [b];
            this.state = "esc";
          } else {
            this.held.push(b);
            if (b < 0x20 || this.held.length > MAX_HELD_SEQUENCE_BYTES) this.passOn(emitHeld);
          }
          break;
        case "string":
          this.held.push(b);
          if (b === BEL) this.endString(emitHeld, 1);
          else if (b === ESC) this.state = "string-esc";
          else if (this.held.length > MAX_HELD_SEQUENCE_BYTES) {
            emitHeld();
            this.state = "pass";
          }
          break;
        case "string-esc":
          if (b === 0x5c /* \ */) {
            this.held.push(b);
            this.endString(emitHeld, 2);
          } else {
            // ESC cut the string short: it is no query, and the ESC starts a new sequence.
            this.held.pop();
            emitHeld();
            this.held = [ESC];
            this.state = "esc";
            i--;
          }
          break;
        case "pass":
          if (b === ESC) {
            this.held = [b];
            this.state = "pass-esc";
          } else {
            emit(b);
            if (b === BEL) this.state = "ground";
          }
          break;
        case "pass-esc":
          if (b === 0x5c /* \ */) {
            emitHeld();
            emit(b);
            this.state = "ground";
          } else {
            // As in "string-esc": the ESC starts a new sequence.
            this.state = "esc";
            i--;
          }
          break;
      }
    }
    const rest = bytes.subarray(i);
    if (rest.length === 0) return out.subarray(0, n);
    const whole = new Uint8Array(n + rest.length);
    whole.set(out.subarray(0, n));
    whole.set(rest, n);
    return whole;
  }

  /** A sequence is over (or given up on): what is held goes out, and plain text follows. */
  private passOn(emitHeld: () => void): void {
    emitHeld();
    this.state = "ground";
  }

  /** A string ended with a terminator of `terminator` bytes: dropped if a query, else passed on. */
  private endString(emitHeld: () => void, terminator: number): void {
    const body = String.fromCharCode(...this.held.slice(2, this.held.length - terminator));
    if (stringIsQuery(this.stringType, body)) this.held = [];
    this.passOn(emitHeld);
  }
}
