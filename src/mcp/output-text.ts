/**
 * Output bytes as text a language model can read: decoded as UTF-8 (each byte that is not part
 * of a UTF-8 character shown as `\xNN`, and counted, so that the tools can say the output is
 * binary), pages cut where a character or a terminal escape sequence is complete, and
 * (unless raw) terminal escape sequences, carriage-return overwrites and other control
 * characters removed.
 */

/**
 * A page of output decoded: `text`, how many of the page's bytes it used (the rest come next
 * time), and how many of those are not UTF-8 (shown as `\xNN`).
 */
export interface DecodedPage {
  text: string;
  used: number;
  invalid: number;
}

/**
 * The end of a page is moved back before an escape sequence it would cut when the sequence
 * started at most this many bytes before it; and a page that starts with a longer string
 * sequence (OSC: titles, hyperlinks) is taken whole in plain text, where it shows nothing. An
 * OSC longer than this (rare: hyperlinks and titles are far shorter) may be cut by a page end
 * and then shows on the next page as text.
 */
export const MAX_ESCAPE_BYTES = 8 * 1024;

/**
 * An escape sequence that has started but not ended (in latin1, one char a byte; it holds no
 * other ESC, being taken from the last one). OSC ends at BEL or ESC \; DCS, SOS, PM and APC
 * strings at ESC \, as {@link plainText} reads them.
 */
// eslint-disable-next-line no-control-regex -- escape sequences are made of control characters
const INCOMPLETE_ESCAPE = /^\x1b(?:\[[\x30-\x3f]*[\x20-\x2f]*|\][^\x07]*|[P_^X][\s\S]*|[\x20-\x2f]*)$/;
/** A string sequence (OSC, DCS, SOS, PM, APC) up to its end, as {@link plainText} removes it: its terminator, or the next ESC. */
// eslint-disable-next-line no-control-regex -- escape sequences are made of control characters
const STRING_TO_END = /^\x1b(?:\][^\x07\x1b]*(?:\x07|\x1b\\|(?=\x1b[^\\]))|[P_^X][^\x1b]*(?:\x1b\\|(?=\x1b[^\\])))/;

const utf8 = new TextDecoder("utf-8");
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export interface DecodeOptions {
  /**
   * The page's size: `bytes` may hold more after it (a look-ahead, to find where a sequence cut
   * by the page ends). Default: all of `bytes`. A page whose `\xNN` would make its text longer
   * than this many characters ends earlier: a page never shows more characters than it may read bytes.
   */
  max?: number;
  /**
   * A page that starts with a string sequence longer than `max` takes all of it (up to
   * {@link MAX_ESCAPE_BYTES}, when it ends within `bytes`): for plain text, which leaves
   * the sequence out, so that the next page does not start inside it.
   */
  wholeEscapes?: boolean;
}

/**
 * Decodes a page of output. Unless `complete` (nothing will follow: the session ended and the
 * page reaches the end of its output), a character or an escape sequence cut off at the page's
 * end is left for the next page — `used` stops before it. When `bytes` hold more after the page,
 * that is so only as long as something comes before it, so that paging makes progress; when the
 * page reaches the end of `bytes` (of the output so far), it is left also when it is all there
 * is (`used` 0): the rest of it is still to come, and taken alone it would show as text.
 */
export function decodePage(bytes: Uint8Array, complete: boolean, options: DecodeOptions = {}): DecodedPage {
  let used = Math.min(options.max ?? bytes.length, bytes.length);
  if (!complete || used < bytes.length) {
    const atEnd = used === bytes.length;
    used = utf8Boundary(bytes, used, atEnd);
    const open = openEscape(bytes, used);
    if (open > 0 || (open === 0 && atEnd)) used = open;
    else if (open === 0 && options.wholeEscapes === true) used = Math.max(used, stringSequenceEnd(bytes));
  }
  return decodeMarked(bytes.subarray(0, used), { maxChars: options.max ?? Infinity });
}

export interface MarkOptions {
  /** At most this many characters of text: fewer bytes are taken when `\xNN` would exceed it. */
  maxChars: number;
  /** Take the last bytes that fit instead of the first (`used` then counts from the end). */
  fromEnd?: boolean;
}

/**
 * Bytes as UTF-8 text, each byte outside a well-formed character shown as `\xNN` (U+FFFD tells a
 * reader nothing) and counted in `invalid`; cut to `maxChars` at a character's boundary, since
 * `\xNN` is four characters a byte.
 * @example
 * decodeMarked(Uint8Array.of(0x6f, 0x6b, 0xff), { maxChars: 64 }) // { text: "ok\\xff", used: 3, invalid: 1 }
 */
export function decodeMarked(bytes: Uint8Array, options: MarkOptions): DecodedPage {
  try {
    return { text: strictUtf8.decode(bytes), used: bytes.length, invalid: 0 };
  } catch {
    // Not UTF-8 throughout (the fatal decoder says no more): walked character by character below.
  }
  const starts: number[] = [];
  const lengths: number[] = [];
  for (let i = 0; i < bytes.length;) {
    const length = utf8SequenceLength(bytes, i);
    starts.push(i);
    lengths.push(length);
    i += Math.max(length, 1);
  }
  // What each character or byte costs in UTF-16 characters: 2 for 4-byte characters, 4 for \xNN.
  const cost = (k: number) => (lengths[k] === 0 ? 4 : lengths[k] === 4 ? 2 : 1);
  let first = 0;
  let end = starts.length;
  let chars = 0;
  if (options.fromEnd === true) {
    for (first = starts.length; first > 0 && chars + cost(first - 1) <= options.maxChars; first--)
      chars += cost(first - 1);
  } else {
    for (end = 0; end < starts.length && chars + cost(end) <= options.maxChars; end++) chars += cost(end);
  }
  let text = "";
  let invalid = 0;
  let run = first;
  const flush = (until: number) => {
    if (until > run) text += utf8.decode(bytes.subarray(starts[run], starts[until] ?? bytes.length));
  };
  for (let k = first; k < end; k++) {
    if (lengths[k] !== 0) continue;
    flush(k);
    text += `\\x${bytes[starts[k]!]!.toString(16).padStart(2, "0")}`;
    invalid++;
    run = k + 1;
  }
  flush(end);
  const from = starts[first] ?? bytes.length;
  const to = starts[end] ?? bytes.length;
  return { text, used: to - from, invalid };
}

/** The length of the well-formed UTF-8 character at `i` (the Unicode standard's table 3-7), or 0 when it is not one. */
function utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i]!;
  if (b0 < 0x80) return 1;
  const inRange = (k: number, low: number, high: number) => {
    const b = bytes[i + k];
    return b !== undefined && b >= low && b <= high;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) return inRange(1, 0x80, 0xbf) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const [low, high] = b0 === 0xe0 ? [0xa0, 0xbf] : b0 === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return inRange(1, low, high) && inRange(2, 0x80, 0xbf) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const [low, high] = b0 === 0xf0 ? [0x90, 0xbf] : b0 === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return inRange(1, low, high) && inRange(2, 0x80, 0xbf) && inRange(3, 0x80, 0xbf) ? 4 : 0;
  }
  return 0;
}

/**
 * Where the page must end so that it does not cut a UTF-8 character (`end` when it does not);
 * a character cut at the start of the page is left out only when `atStartToo`.
 */
function utf8Boundary(bytes: Uint8Array, end: number, atStartToo: boolean): number {
  // A character has at most 4 bytes: look at the lead byte of the last one.
  for (let i = end - 1; i >= 0 && i >= end - 4; i--) {
    const b = bytes[i]!;
    if (b < 0x80) return end;
    if (b >= 0xc0) {
      // 0xc0, 0xc1 and 0xf5-0xff start no character: nothing that follows completes them.
      if (b < 0xc2 || b > 0xf4) return end;
      const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return end - i < length && (i > 0 || atStartToo) ? i : end;
    }
  }
  return end;
}

/** Where an escape sequence that a page ending at `end` would cut starts (at most {@link MAX_ESCAPE_BYTES} back), or -1. */
function openEscape(bytes: Uint8Array, end: number): number {
  const from = Math.max(0, end - MAX_ESCAPE_BYTES);
  const esc = bytes.subarray(from, end).lastIndexOf(0x1b);
  if (esc < 0) return -1;
  const start = from + esc;
  return INCOMPLETE_ESCAPE.test(latin1(bytes.subarray(start, end))) ? start : -1;
}

/** The end of the string sequence `bytes` starts with, when it ends within {@link MAX_ESCAPE_BYTES} and within `bytes`; else 0. */
function stringSequenceEnd(bytes: Uint8Array): number {
  const head = latin1(bytes.subarray(0, MAX_ESCAPE_BYTES));
  return STRING_TO_END.exec(head)?.[0].length ?? 0;
}

/** Bytes as a string of one char per byte (what the sequence patterns read). */
function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) out += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return out;
}

/* eslint-disable no-control-regex -- these match terminal control sequences on purpose */
/** OSC (titles, hyperlinks): ESC ] ... BEL or ESC \. */
const OSC = /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?/g;
/** DCS, SOS, PM, APC strings: ESC P|X|^|_ ... ESC \. */
const STRING_SEQUENCE = /\x1b[P_^X][^\x1b]*(?:\x1b\\)?/g;
/** CSI (colours, cursor moves, clears): ESC [ params intermediates final. */
const CSI = /\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?/g;
/** Any other escape: ESC, intermediates, final. */
const OTHER_ESCAPE = /\x1b[\x20-\x2f]*[\x30-\x7e]?/g;
/** Control characters other than tab and newline (carriage returns are handled before). */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;
/* eslint-enable no-control-regex */

/**
 * Terminal output as plain text: escape sequences removed, CRLF as LF, a line rewritten with
 * carriage returns (a progress bar) reduced to what it shows last, other control characters
 * removed (tabs and newlines stay).
 *
 * @example
 * plainText("\x1b[32mok\x1b[0m\r\n 10%\r 90%\r\n") // "ok\n 90%\n"
 */
export function plainText(text: string): string {
  const stripped = withoutEscapes(text).replace(/\r+\n/g, "\n");
  if (!stripped.includes("\r")) return stripped.replace(CONTROL, "");
  return stripped
    .split("\n")
    .map((line) => {
      if (!line.includes("\r")) return line;
      const shown = line.split("\r").filter((part) => part !== "");
      return shown[shown.length - 1] ?? "";
    })
    .join("\n")
    .replace(CONTROL, "");
}

/** `text` without its terminal escape sequences (colours, cursor moves, titles), as {@link plainText} removes them. */
export function withoutEscapes(text: string): string {
  return text.replace(OSC, "").replace(STRING_SEQUENCE, "").replace(CSI, "").replace(OTHER_ESCAPE, "");
}

/** A whole escape sequence at `lastIndex`, as {@link plainText} removes it (one char a byte). */
const SEQUENCE = new RegExp([OSC, STRING_SEQUENCE, CSI, OTHER_ESCAPE].map((r) => r.source).join("|"), "y");

/**
 * Where a page that starts at `at` of `bytes` (the bytes before it are output too) really
 * starts: after the escape sequence it would start inside (begun at most
 * {@link MAX_ESCAPE_BYTES} before it), whose rest would otherwise show as text ("[33m");
 * `at` when it starts outside of one.
 */
export function escapeEnd(bytes: Uint8Array, at: number): number {
  const from = Math.max(0, at - MAX_ESCAPE_BYTES);
  const esc = bytes.subarray(from, at).lastIndexOf(0x1b);
  if (esc < 0) return at;
  const start = from + esc;
  if (!INCOMPLETE_ESCAPE.test(latin1(bytes.subarray(start, at)))) return at;
  SEQUENCE.lastIndex = 0;
  const sequence = SEQUENCE.exec(latin1(bytes.subarray(start, at + MAX_ESCAPE_BYTES)));
  return Math.max(at, start + (sequence?.[0].length ?? 0));
}

/** Bytes of a UTF-8 continuation (10xxxxxx) at the start of `bytes`, at most 3: where a page cut mid-character really starts. */
export function continuationBytes(bytes: Uint8Array): number {
  let n = 0;
  while (n < 3 && n < bytes.length && (bytes[n]! & 0xc0) === 0x80) n++;
  return n;
}
