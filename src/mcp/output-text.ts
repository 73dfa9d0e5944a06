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

/** A terminal escape sequence that has started in the last bytes of a page but not ended (in latin1, one char a byte). */
// eslint-disable-next-line no-control-regex -- escape sequences are made of control characters
const INCOMPLETE_ESCAPE = /^\x1b(?:\[[\x30-\x3f]*[\x20-\x2f]*|[\]P_^X](?:(?!\x07|\x1b\\)[\s\S])*|[\x20-\x2f]*)$/;
/** How far back from a page's end an unfinished escape sequence is looked for. */
const ESCAPE_LOOKBACK_BYTES = 256;

const utf8 = new TextDecoder("utf-8");

/**
 * Decodes a page of output. Unless `complete` (nothing will follow: the session ended and this
 * is the end of its output), a character or an escape sequence cut off at the page's end is
 * left for the next page — `used` stops before it — as long as something comes before it, so
 * every call makes progress.
 */
export function decodePage(bytes: Uint8Array, complete: boolean): DecodedPage {
  let used = bytes.length;
  if (!complete) {
    used = utf8Boundary(bytes, used);
    used = escapeBoundary(bytes, used);
  }
  return { text: utf8.decode(bytes.subarray(0, used)), used };
}

/** Where the page must end so that it does not cut a UTF-8 character (`end` when it does not). */
function utf8Boundary(bytes: Uint8Array, end: number): number {
  // A character has at most 4 bytes: look at the lead byte of the last one.
  for (let i = end - 1; i >= 0 && i >= end - 4; i--) {
    const b = bytes[i]!;
    if (b < 0x80) return end;
    if (b >= 0xc0) {
      const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return end - i < length && i > 0 ? i : end;
    }
  }
  return end;
}

/** Where the page must end so that it does not cut an escape sequence (`end` when it does not). */
function escapeBoundary(bytes: Uint8Array, end: number): number {
  const from = Math.max(0, end - ESCAPE_LOOKBACK_BYTES);
  const esc = bytes.subarray(from, end).lastIndexOf(0x1b);
  if (esc < 0) return end;
  const start = from + esc;
  if (start === 0) return end;
  const tail = String.fromCharCode(...bytes.subarray(start, end));
  return INCOMPLETE_ESCAPE.test(tail) ? start : end;
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

/** Bytes of a UTF-8 continuation (10xxxxxx) at the start of `bytes`, at most 3: where a page cut mid-character really starts. */
export function continuationBytes(bytes: Uint8Array): number {
  let n = 0;
  while (n < 3 && n < bytes.length && (bytes[n]! & 0xc0) === 0x80) n++;
  return n;
}
