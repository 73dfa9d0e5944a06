import { plainText } from "./output-text.js";
import { BoundedPattern } from "./pattern-match.js";

/** A pattern is matched against at most this many of the latest characters of output (a bound on memory and on matching time). */
export const MATCH_WINDOW_CHARS = 64 * 1024;
/**
 * Output is taken into the window this many bytes at a time, and the pattern run after each
 * step: a replay frame of 256 KiB was cut to its last 64 K characters before the pattern ran,
 * so a line early in it ("listening on 3000", then 20,000 more lines) was never looked at.
 */
export const MATCH_STEP_BYTES = MATCH_WINDOW_CHARS / 4;
/**
 * When the window is cut, it is cut after a line break found in this many characters (so that
 * `^` does not match in the middle of a line that was cut), else where the window must end.
 */
const LINE_ALIGN_CHARS = MATCH_WINDOW_CHARS / 4;
/**
 * The longest match (in characters of output, escape sequences included) that is always found:
 * when the step that ends it was taken in, the window holds at least this much before it.
 */
export const SURE_MATCH_CHARS = MATCH_WINDOW_CHARS - MATCH_STEP_BYTES - LINE_ALIGN_CHARS;

/** Where a pattern matched in the output. */
export interface ScanMatch {
  /** What the pattern matched. */
  match: string;
  /**
   * The byte offset after the line the match ends on (its line break), or, when that line had
   * not ended yet, after the step in which it matched: the output up to there is the answer,
   * what comes after it is the next wait's. Never before the bytes of the call that found it.
   */
  end: number;
  /** The byte offset where the line the match begins on starts (at or before the match: read from there to see it). */
  lineOffset: number;
}

/**
 * Looks for a pattern in the output as it streams: decoded, taken into a window of the latest
 * {@link MATCH_WINDOW_CHARS} characters {@link MATCH_STEP_BYTES} at a time, so that every
 * byte is looked at, with the output before it as context.
 */
export class Scanner {
  private readonly decoder = new TextDecoder("utf-8");
  private readonly pattern: BoundedPattern;
  private window = "";
  /**
   * Byte offsets of the line breaks in the window, in order (from `head` on). A "\n" is one
   * byte in UTF-8 and never part of another character, so the k-th "\n" of the decoded text
   * is the k-th 0x0a byte.
   */
  private breaks: number[] = [];
  private head = 0;
  /** Where the window's first line starts (a byte offset; before the window when it was cut mid-line). */
  private firstLine: number;

  constructor(
    pattern: RegExp,
    private readonly raw: boolean,
    /** The byte offset of the first byte it will be given. */
    start: number,
  ) {
    this.pattern = new BoundedPattern(pattern);
    this.firstLine = start;
  }

  /**
   * Takes the next bytes (`offset`: the byte offset of `bytes[0]`); returns where the pattern
   * matched, if it did. Throws PatternTooSlow.
   */
  push(offset: number, bytes: Uint8Array): ScanMatch | undefined {
    for (let at = 0; at < bytes.length; at += MATCH_STEP_BYTES) {
      const step = bytes.subarray(at, at + MATCH_STEP_BYTES);
      for (let i = step.indexOf(0x0a); i >= 0; i = step.indexOf(0x0a, i + 1)) this.breaks.push(offset + at + i);
      this.window += this.decoder.decode(step, { stream: true });
      this.trim();
      const text = this.raw ? this.window : plainText(this.window);
      const found = this.pattern.find(text);
      if (found !== undefined) {
        const stepEnd = offset + at + step.length;
        return {
          match: found.match,
          end: Math.max(offset, this.lineEnd(text, found.index + Math.max(found.match.length - 1, 0), stepEnd)),
          lineOffset: this.lineStart(text, found.index),
        };
      }
    }
    return undefined;
  }

  /** Cuts the window to its last {@link MATCH_WINDOW_CHARS} characters, after a line break where there is one near. */
  private trim(): void {
    if (this.window.length <= MATCH_WINDOW_CHARS) return;
    let cut = this.window.length - MATCH_WINDOW_CHARS;
    if (this.window[cut - 1] !== "\n") {
      const lineBreak = this.window.indexOf("\n", cut);
      if (lineBreak >= 0 && lineBreak < cut + LINE_ALIGN_CHARS) cut = lineBreak + 1;
    }
    const dropped = this.window.slice(0, cut);
    let lines = 0;
    for (let i = dropped.indexOf("\n"); i >= 0; i = dropped.indexOf("\n", i + 1)) lines++;
    if (lines > 0) {
      this.firstLine = this.breaks[this.head + lines - 1]! + 1;
      this.head += lines;
      if (this.head > 4096 && this.head > this.breaks.length / 2) {
        this.breaks = this.breaks.slice(this.head);
        this.head = 0;
      }
    }
    this.window = this.window.slice(cut);
  }

  /**
   * The byte offset after the line break that ends the line `index` of `text` (the window, as
   * matched) is on; `otherwise` when that line has no line break yet. The k-th line break of
   * the text is the window's k-th when the text kept all of them before it (plain text drops
   * those inside escape sequences): when it did not, `otherwise` (later, never before the match).
   */
  private lineEnd(text: string, index: number, otherwise: number): number {
    const lineBreak = text.indexOf("\n", index);
    if (lineBreak < 0) return otherwise;
    let lines = 0;
    for (let i = text.indexOf("\n"); i >= 0 && i <= lineBreak; i = text.indexOf("\n", i + 1)) lines++;
    if (this.head + lines > this.breaks.length) return otherwise;
    if (!this.raw) {
      let at = -1;
      for (let k = 0; k < lines; k++) at = this.window.indexOf("\n", at + 1);
      const kept = plainText(this.window.slice(0, at + 1));
      let keptLines = 0;
      for (let i = kept.indexOf("\n"); i >= 0; i = kept.indexOf("\n", i + 1)) keptLines++;
      if (keptLines !== lines) return otherwise;
    }
    return this.breaks[this.head + lines - 1]! + 1;
  }

  /**
   * The byte offset of the start of the line that `index` of `text` (the window, as matched)
   * is on. Plain text keeps every line break but those inside escape sequences, so its n-th
   * line break is the window's n-th or a later one: counting the window's gives a line start at
   * or before the match.
   */
  private lineStart(text: string, index: number): number {
    let lines = 0;
    for (let i = text.indexOf("\n"); i >= 0 && i < index; i = text.indexOf("\n", i + 1)) lines++;
    return lines === 0 ? this.firstLine : this.breaks[this.head + lines - 1]! + 1;
  }
}
