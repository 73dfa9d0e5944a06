/**
 * Output bytes as text a language model can read: decoded as UTF-8 (bytes that are not UTF-8
 * become U+FFFD), pages cut where a character or a terminal escape sequence is complete, and
 * (unless raw) terminal escape sequences, carriage-return overwrites and other control
 * characters removed.
 */

/** A page of output decoded: `text`, and how many of the page's bytes it used (the rest come next time). */
export interface DecodedPage {
  text: string;
  used: number;
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

export interface DecodeOptions {
  /** The page's size: `bytes` may hold more after it (a look-ahead, to find where a sequence cut by the page ends). Default: all of `bytes`. */
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
  return { text: utf8.decode(bytes.subarray(0, used)), used };
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
  const stripped = text
    .replace(OSC, "")
    .replace(STRING_SEQUENCE, "")
    .replace(CSI, "")
    .replace(OTHER_ESCAPE, "")
    .replace(/\r+\n/g, "\n");
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
