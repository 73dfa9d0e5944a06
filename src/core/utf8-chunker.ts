/**
 * Streaming UTF-8 splitter for process output (docs/protocol.md, "Event types": "Output text is decoded with a
 * streaming UTF-8 decoder so a chunk never splits a character; bytes that are not UTF-8
 * travel as base64").
 *
 * Pure: no `node:` imports, `Uint8Array` only, so the SDK and the UI can use the same
 * code (e.g. {@link decodeOutputData} to rebuild raw bytes from `output` events).
 *
 * The invariant, property-tested in `test/core/utf8-chunker.test.ts`: concatenating
 * {@link decodeOutputData} of every piece, over any chunking of any byte sequence, gives
 * back exactly the input bytes.
 */

/** One decoded run of output: text when the bytes were valid UTF-8, else base64. */
export interface OutputPiece {
  /** The text, or the bytes as base64 when `enc` is `"base64"`. */
  data: string;
  /** Present only when `data` is base64 (the bytes were not valid UTF-8). */
  enc?: "base64";
  /** How many raw bytes this piece stands for. */
  byteLength: number;
}

/** The longest UTF-8 sequence is 4 bytes, so at most 3 bytes of an unfinished one are held back. */
export const UTF8_MAX_HELD_BYTES = 3;
/**
 * In a chunk that has invalid bytes, a valid run shorter than this travels inside the
 * neighbouring base64 piece instead of as its own text piece. Without it, binary output
 * (`cat /bin/ls`, random bytes) would turn into one piece, and one event, per few bytes:
 * random data has a valid byte about every other byte.
 */
export const UTF8_MIN_TEXT_RUN_BYTES = 32;

/**
 * Splits a byte stream into {@link OutputPiece}s without ever cutting a character in two.
 * @example
 * const chunker = new Utf8Chunker();
 * chunker.push(new Uint8Array([0x68, 0xe2, 0x82])); // [{data: "h", byteLength: 1}] — "€" is incomplete, held
 * chunker.push(new Uint8Array([0xac]));             // [{data: "€", byteLength: 3}]
 * chunker.push(new Uint8Array([0xff]));             // [{data: "/w==", enc: "base64", byteLength: 1}]
 */
export class Utf8Chunker {
  /** `fatal` so invalid input throws; `ignoreBOM` so a BOM is kept, not eaten. */
  private readonly decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  private held: Uint8Array = EMPTY;

  /** Bytes of an unfinished character waiting for the next chunk (0–3). */
  get heldBytes(): number {
    return this.held.length;
  }

  /** Takes the next chunk; returns the pieces that are complete. The chunk is not retained. */
  push(chunk: Uint8Array): OutputPiece[] {
    return this.split(chunk).map((p) => this.toPiece(p));
  }

  /** Ends the stream: whatever is held back (an unfinished character) goes out as base64. */
  end(): OutputPiece[] {
    return this.finish().map((p) => this.toPiece(p));
  }

  /**
   * {@link push} without decoding: the complete pieces as bytes (copies; the chunk is not
   * retained — unless `owned`: the caller gives the chunk away, and a piece may be a view
   * of it), each marked `binary` when it is not valid UTF-8 and must travel as base64.
   * The same cuts as `push`: decoding each piece gives exactly `push`'s pieces.
   */
  split(chunk: Uint8Array, owned = false): BytePiece[] {
    const bytes = this.held.length === 0 ? chunk : concat(this.held, chunk);
    const cut = completeLength(bytes);
    // Copies: the caller may reuse its buffer once we return.
    this.held = cut === bytes.length ? EMPTY : copy(bytes, cut, bytes.length);
    if (cut === 0) return [];
    const complete = bytes.subarray(0, cut);
    // Validity by trial decode: about 9 µs per 64 KiB of ASCII. Node's `buffer.isUtf8` is faster
    // per call but was measured to set off a full GC every few hundred milliseconds under a
    // PTY flood (and the PTY read throughput fell to ~0.83 of raw): not used.
    if (this.tryDecode(complete) !== undefined)
      return [{ bytes: owned ? complete : copy(complete, 0, cut), binary: false }];
    return splitMixed(complete);
  }

  /** {@link end} without encoding: the held bytes, if any, as one binary piece. */
  finish(): BytePiece[] {
    if (this.held.length === 0) return [];
    const rest = this.held;
    this.held = EMPTY;
    return [{ bytes: rest, binary: true }];
  }

  private toPiece(piece: BytePiece): OutputPiece {
    if (piece.binary) return base64Piece(piece.bytes);
    return { data: this.tryDecode(piece.bytes)!, byteLength: piece.bytes.length };
  }

  private tryDecode(bytes: Uint8Array): string | undefined {
    try {
      return this.decoder.decode(bytes);
    } catch (error) {
      // The fatal decoder throws TypeError on invalid input.
      if (!(error instanceof TypeError)) throw error;
      return undefined;
    }
  }
}

/** One piece of output as bytes: valid UTF-8 text, or `binary` (travels as base64). */
export interface BytePiece {
  bytes: Uint8Array;
  binary: boolean;
}

/**
 * Bytes that are not valid UTF-8 as a whole: valid runs of at least
 * {@link UTF8_MIN_TEXT_RUN_BYTES} become text pieces; invalid bytes, and the short valid runs
 * among them, become binary pieces. In order; every piece is a copy.
 */
function splitMixed(bytes: Uint8Array): BytePiece[] {
  const pieces: BytePiece[] = [];
  let binaryStart = 0; // start of the bytes not yet emitted, all bound for base64
  let i = 0;
  while (i < bytes.length) {
    const end = validRunEnd(bytes, i);
    if (end - i >= UTF8_MIN_TEXT_RUN_BYTES) {
      if (i > binaryStart) pieces.push({ bytes: copy(bytes, binaryStart, i), binary: true });
      pieces.push({ bytes: copy(bytes, i, end), binary: false });
      binaryStart = end;
    }
    // Past the run (a short one stays in the binary range) and the invalid byte that ends it.
    i = end < bytes.length ? end + 1 : end;
  }
  if (bytes.length > binaryStart) pieces.push({ bytes: copy(bytes, binaryStart, bytes.length), binary: true });
  return pieces;
}

/** The raw bytes a piece (or an `output` event's `data`/`enc`) stands for. */
export function decodeOutputData(data: string, enc?: "base64"): Uint8Array {
  return enc === "base64" ? decodeBase64(data) : ENCODER.encode(data);
}

const EMPTY = new Uint8Array(0);

/** A copy of `bytes[start, end)`. (On a Node Buffer `.slice` is a view, so never rely on it.) */
function copy(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes, start, end);
}
const ENCODER = new TextEncoder();

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function base64Piece(bytes: Uint8Array): OutputPiece {
  return { data: encodeBase64(bytes), enc: "base64", byteLength: bytes.length };
}

/**
 * Length of the prefix of `bytes` that ends on a character boundary: everything but a
 * trailing *valid but unfinished* sequence (at most 3 bytes). A trailing sequence that is
 * already invalid is not held: waiting cannot make it valid.
 */
function completeLength(bytes: Uint8Array): number {
  const len = bytes.length;
  for (let start = Math.max(0, len - UTF8_MAX_HELD_BYTES); start < len; start++) {
    if (sequenceLength(bytes, start, len) === INCOMPLETE) return start;
  }
  return len;
}

const INCOMPLETE = -1;

/** End of the run of valid sequences that starts at `i` (`i` itself if none does). */
function validRunEnd(bytes: Uint8Array, i: number): number {
  let end = i;
  while (end < bytes.length) {
    if (bytes[end]! < 0x80) {
      end++;
      continue;
    }
    const n = sequenceLength(bytes, end, bytes.length);
    if (n <= 0) break;
    end += n;
  }
  return end;
}

/**
 * At `i`: the length (1–4) of the valid UTF-8 sequence that starts there, 0 if none does,
 * or INCOMPLETE if the bytes up to `end` are a valid start of one that `end` cuts off.
 * Ranges from the Unicode Standard, Table 3-7 (no overlongs, no surrogates, ≤ U+10FFFF).
 */
function sequenceLength(bytes: Uint8Array, i: number, end: number): number {
  const b0 = bytes[i]!;
  if (b0 < 0x80) return 1;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) need = 1;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    need = 2;
    if (b0 === 0xe0) lo = 0xa0;
    else if (b0 === 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    need = 3;
    if (b0 === 0xf0) lo = 0x90;
    else if (b0 === 0xf4) hi = 0x8f;
  } else return 0;
  for (let k = 1; k <= need; k++) {
    if (i + k >= end) return INCOMPLETE;
    const b = bytes[i + k]!;
    // Only the second byte has the narrowed range; the rest are plain continuations.
    if (k === 1 ? b < lo || b > hi : b < 0x80 || b > 0xbf) return 0;
  }
  return need + 1;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INDEX = (() => {
  const index = new Int16Array(128).fill(-1);
  for (let i = 0; i < B64.length; i++) index[B64.charCodeAt(i)] = i;
  return index;
})();

const B64_CODES = Uint8Array.from(B64, (c) => c.charCodeAt(0));
const PAD = 0x3d; // "="
/** The output is ASCII, for which windows-1252 (the "latin1" label) is the identity: a fast bytes-to-string. */
const ASCII_DECODER = new TextDecoder("latin1");

/** Standard base64 with padding (RFC 4648 §4). */
export function encodeBase64(bytes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = B64_CODES[n >>> 18]!;
    out[o++] = B64_CODES[(n >>> 12) & 63]!;
    out[o++] = B64_CODES[(n >>> 6) & 63]!;
    out[o++] = B64_CODES[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest > 0) {
    const n = (bytes[i]! << 16) | (rest === 2 ? bytes[i + 1]! << 8 : 0);
    out[o] = B64_CODES[n >>> 18]!;
    out[o + 1] = B64_CODES[(n >>> 12) & 63]!;
    out[o + 2] = rest === 2 ? B64_CODES[(n >>> 6) & 63]! : PAD;
    out[o + 3] = PAD;
  }
  return ASCII_DECODER.decode(out);
}

/** Decodes standard base64 (padding optional). Throws on characters outside the alphabet. */
export function decodeBase64(text: string): Uint8Array {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d /* = */) end--;
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let bits = 0;
  let value = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const code = text.charCodeAt(i);
    const digit = code < 128 ? B64_INDEX[code]! : -1;
    if (digit < 0) throw new TypeError(`invalid base64 character at ${i}`);
    // At most 12 bits are pending at once (6 + 6 before a byte is taken out).
    value = ((value << 6) | digit) & 0xfff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (value >> bits) & 0xff;
    }
  }
  return o === out.length ? out : out.subarray(0, o);
}
