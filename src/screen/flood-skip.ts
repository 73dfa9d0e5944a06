/**
 * Which part of a long run of output cannot show on the screen, so the emulator need not parse
 * it: a flood (`seq`, a build log, `cat` of a big file) is mostly lines that scroll out of the
 * screen and the scrollback before anyone can see them. test/screen/flood-skip.test.ts checks
 * that skipping gives the state parsing everything gives.
 */

/** The first part of a run of output that {@link floodPlan} found may be skipped. */
export interface FloodPlan {
  /** Bytes to parse first, as usual. */
  parse: number;
  /** Bytes from `parse` up to here may be skipped. */
  cut: number;
  /** The SGR sequences of the skipped bytes that still set the pen at `cut` (after the last reset). */
  pen: string;
}

const LF = 0x0a;
const CR = 0x0d;
const ESC = 0x1b;

/**
 * Plans to skip part of `bytes`: a stretch of inert output (text, CR, LF, tab, bell and SGR
 * colour sequences: they leave no state but the pen and the cursor) ending at a CR LF, with at
 * least `keepLines` more line feeds of inert output after it. Those bring the cursor to the
 * bottom row (no scroll region) and scroll every older row out of the screen and scrollback, so
 * the skipped part cannot show. The cursor is at column 0 at the cut: the caller writes the pen
 * and a CR in place of the skipped bytes. Undefined when nothing can be skipped.
 */
export function floodPlan(bytes: Uint8Array, keepLines: number): FloodPlan | undefined {
  let start = 0;
  while (start < bytes.length) {
    const end = inertEnd(bytes, start);
    const cut = cutBefore(bytes, start, end, keepLines);
    if (cut > start) {
      const { pen, start: skipFrom } = penOf(bytes, start, cut);
      return { parse: skipFrom, cut, pen };
    }
    if (end >= bytes.length) return undefined;
    // The next stretch starts after a CR LF, where a sequence that is not inert has surely ended
    // (the caller checks the parser is between sequences there).
    start = afterCrLf(bytes, end + 1);
  }
  return undefined;
}

/** The index of the first byte from `from` on that is not inert, or `bytes.length`. */
function inertEnd(bytes: Uint8Array, from: number): number {
  for (let i = from; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b >= 0x20 && b !== 0x7f) {
      // UTF-8 C2 80–C2 9F are C1 controls (CSI among them).
      if (b === 0xc2 && (bytes[i + 1] ?? 0) >= 0x80 && (bytes[i + 1] ?? 0) <= 0x9f) return i;
      continue;
    }
    if (b === CR || b === LF || b === 0x09 || b === 0x07) continue;
    const sgrEnd = b === ESC ? sgrEndAt(bytes, i) : 0;
    if (sgrEnd === 0) return i;
    i = sgrEnd - 1;
  }
  return bytes.length;
}

/** The index just past the last CR LF in `[from, end)` with `keepLines` line feeds after it there, or -1. */
function cutBefore(bytes: Uint8Array, from: number, end: number, keepLines: number): number {
  let seen = 0;
  for (let i = end - 1; i > from; i--) {
    if (bytes[i] !== LF) continue;
    if (seen >= keepLines && bytes[i - 1] === CR) return i + 1;
    seen++;
  }
  return -1;
}

function afterCrLf(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 1 < bytes.length; i++) if (bytes[i] === CR && bytes[i + 1] === LF) return i + 2;
  return bytes.length;
}

/** The index just past an SGR sequence (`ESC [ digits ; : m`) starting at `at`, or 0. */
function sgrEndAt(bytes: Uint8Array, at: number): number {
  if (bytes[at + 1] !== 0x5b) return 0;
  for (let i = at + 2; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x6d) return i + 1;
    if (!((b >= 0x30 && b <= 0x39) || b === 0x3b || b === 0x3a)) return 0;
  }
  return 0;
}

/** SGR sequences a plan carries at most: with more and no reset among them, the older ones are parsed. */
const PEN_MAX_SEQUENCES = 256;

/**
 * The pen at `to` as SGR sequences of `[from, to)` (all inert): a reset and what follows the
 * last one (`ESC [ m`, `ESC [ 0 m`), else up to PEN_MAX_SEQUENCES of the last; and where the
 * skip may start so that the sequences before it are parsed.
 */
function penOf(bytes: Uint8Array, from: number, to: number): { pen: string; start: number } {
  const starts: number[] = [];
  let reset = false;
  for (let i = bytes.lastIndexOf(ESC, to - 1); i >= from; i = i > 0 ? bytes.lastIndexOf(ESC, i - 1) : -1) {
    // Every ESC in an inert stretch begins an SGR sequence.
    if (bytes[i + 2] === 0x6d || (bytes[i + 2] === 0x30 && bytes[i + 3] === 0x6d)) {
      reset = true;
      break;
    }
    if (starts.length === PEN_MAX_SEQUENCES) return { pen: sequencesAt(bytes, starts), start: starts.at(-1)! };
    starts.push(i);
  }
  return { pen: (reset ? "\x1b[m" : "") + sequencesAt(bytes, starts), start: from };
}

/** The SGR sequences starting at `starts` (last first), in the order they came. */
function sequencesAt(bytes: Uint8Array, starts: number[]): string {
  let pen = "";
  for (let k = starts.length - 1; k >= 0; k--) {
    const i = starts[k]!;
    pen += Buffer.from(bytes.buffer, bytes.byteOffset + i, sgrEndAt(bytes, i) - i).toString("latin1");
  }
  return pen;
}
