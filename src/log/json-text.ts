import { loadAddon } from "../system/native-addon.js";
import { InternalError } from "../protocol/errors.js";

/**
 * The bytes of `${head}${JSON.stringify(decode(text))}${tail}`, built from the bytes; `text` (one
 * piece or consecutive pieces) must be valid UTF-8 as a whole. Every JSON frame of terminal output
 * is made here: native/json_text.c takes ~0.3 of {@link jsonTextFrameJs}'s time, the fallback when
 * the addon is not built (docs/benchmarks.md, "Real-time delivery").
 */
export function jsonTextFrame(head: string, text: Uint8Array | readonly Uint8Array[], tail: string): Buffer {
  return jsonFrame([head, { text }, tail]);
}

/**
 * A piece of a frame built by {@link jsonFrame}: text written as it is (UTF-8), or `{ text }`,
 * UTF-8 bytes (one piece, or pieces that follow each other) written as a JSON string literal.
 */
export type FramePiece = string | { readonly text: Uint8Array | readonly Uint8Array[] };

/**
 * The UTF-8 bytes of `pieces` one after the other (see {@link FramePiece}), in one Buffer
 * allocated at its size: a batch of events is written once, not built event by event and
 * copied together. `allocate` gives the Buffer of exactly that size (a view of a reused buffer,
 * see src/server/ws/outbound-frames.ts); the JS route, without the addon, allocates its own.
 */
export function jsonFrame(
  pieces: readonly FramePiece[],
  allocate: (size: number) => Buffer = (size) => Buffer.allocUnsafe(size),
): Buffer {
  if (native === null) return jsonFrameJs(pieces);
  let size = 0;
  for (const piece of pieces) {
    if (typeof piece === "string") {
      size += Buffer.byteLength(piece);
      continue;
    }
    size += 2;
    for (const part of partsOf(piece)) size += part.length + native.growth(part);
  }
  // An ordinary Buffer (or one `allocate` reuses); the addon only writes the text into it, part by part.
  const out = allocate(size);
  if (out.length !== size) throw new RangeError(`json-text: allocate(${size}) gave ${out.length} bytes`);
  let at = 0;
  for (const piece of pieces) {
    if (typeof piece === "string") {
      at += out.write(piece, at, "utf8");
      continue;
    }
    out[at++] = QUOTE;
    for (const part of partsOf(piece)) at = native.escape(part, out, at);
    out[at++] = QUOTE;
  }
  // Only bytes changed by another thread meanwhile (shared memory) could make this differ.
  if (at !== size) throw new InternalError(`json-text: wrote ${at} bytes of a ${size}-byte frame`);
  return out;
}

const QUOTE = 0x22;

function partsOf(piece: { readonly text: Uint8Array | readonly Uint8Array[] }): readonly Uint8Array[] {
  return piece.text instanceof Uint8Array ? [piece.text] : piece.text;
}

/** {@link jsonFrame} without the addon: each literal built by {@link jsonTextFrameJs}'s route. */
function jsonFrameJs(pieces: readonly FramePiece[]): Buffer {
  return Buffer.concat(
    pieces.map((piece) => {
      if (typeof piece === "string") return Buffer.from(piece, "utf8");
      const parts = partsOf(piece);
      return jsonTextFrameJs("", parts.length === 1 ? parts[0]! : Buffer.concat(parts), "");
    }),
  );
}

/**
 * {@link jsonTextFrame} in JS. Read as latin1, UTF-8 bytes become one character each, and
 * `JSON.stringify` escapes only quotes, backslashes and control characters (all ASCII, so never
 * part of a multi-byte character) and passes the rest through: the result, written back as
 * latin1, is the bytes with those escapes — exactly the UTF-8 of `JSON.stringify(text)`, without
 * decoding the bytes to text and encoding the frame again.
 */
export function jsonTextFrameJs(head: string, text: Uint8Array, tail: string): Buffer {
  const literal = JSON.stringify(Buffer.from(text.buffer, text.byteOffset, text.length).toString("latin1"));
  const headBytes = Buffer.byteLength(head);
  const out = Buffer.allocUnsafe(headBytes + literal.length + Buffer.byteLength(tail));
  out.write(head, 0, "utf8");
  out.write(literal, headBytes, "latin1");
  out.write(tail, headBytes + literal.length, "utf8");
  return out;
}

/** Whether {@link jsonTextFrame} uses the addon (false where it is not built, or after `useNativeJsonText(false)`). */
export function jsonTextNative(): boolean {
  return native !== null;
}

/** For benchmarks and tests: `false` makes {@link jsonTextFrame} use the JS route; `true` the addon again, if built. */
export function useNativeJsonText(on: boolean): void {
  native = on ? loaded : null;
}

/** The addon's functions; see native/json_text.c. */
interface NativeJsonText {
  /** Bytes the escapes add to `text`. */
  growth(text: Uint8Array): number;
  /** Writes `text` as it appears inside a JSON string (no quotes) into `out` from `at`; returns the offset after it. */
  escape(text: Uint8Array, out: Uint8Array, at: number): number;
}

const loaded = loadAddon<NativeJsonText>("json_text");
let native = loaded;
