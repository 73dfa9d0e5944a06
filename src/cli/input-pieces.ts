import { LIMITS } from "../protocol/limits.js";

/**
 * `text` in pieces of at most `maxBytes` of UTF-8, never inside a character, so input past
 * {@link LIMITS.INPUT_BYTES} (`send ID "$(cat notes.txt)"`) goes as several messages instead of
 * being refused. An empty text is one empty piece.
 * @example
 * inputPieces("a".repeat(100_000)).length; // 2
 */
export function inputPieces(text: string, maxBytes: number = LIMITS.INPUT_BYTES): string[] {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: most input needs no counting.
  if (text.length * 3 <= maxBytes) return [text];
  const pieces: string[] = [];
  let start = 0;
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const code = text.codePointAt(i)!;
    const units = code > 0xffff ? 2 : 1;
    // Lone surrogates travel as U+FFFD, 3 bytes.
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code <= 0xffff ? 3 : 4;
    if (bytes + size > maxBytes) {
      pieces.push(text.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += size;
    i += units;
  }
  pieces.push(text.slice(start));
  return pieces;
}
