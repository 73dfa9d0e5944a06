/** Bytes of a session's newest output kept to find its last line: a line longer than this shows its end. */
export const LAST_LINE_TAIL_BYTES = 1024;
/** The longest last line a session summary carries (characters; the list cuts it shorter still). */
export const LAST_LINE_MAX_CHARS = 200;

// CSI (ESC [ … final byte), OSC (ESC ] … BEL or ST), other two-byte escapes, then the C0 controls
// left over (tabs become spaces first).
// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

/**
 * The last line a session wrote, for the sessions list: keeps only the newest
 * {@link LAST_LINE_TAIL_BYTES} of output, in a ring written in place (a key's echo allocates
 * nothing), and finds the line when asked (once per change), so a busy session pays nothing per
 * line and a list poll little per session.
 */
export class LastLine {
  private readonly ring = new Uint8Array(LAST_LINE_TAIL_BYTES);
  /** Where the next byte goes; bytes kept: at most the ring's size (full once it wrapped). */
  private end = 0;
  private kept = 0;
  private readonly encoder = new TextEncoder();
  /** The line found since the last push: a list asks every session at each poll, most printed nothing since. */
  private found: string | null | undefined;
  private pushed = 0;

  /** How many chunks were pushed: the line may have changed since a count read before. */
  get pushes(): number {
    return this.pushed;
  }

  push(chunk: Uint8Array | string): void {
    this.found = undefined;
    this.pushed++;
    const bytes = typeof chunk === "string" ? this.encoder.encode(chunk.slice(-LAST_LINE_TAIL_BYTES)) : chunk;
    const size = this.ring.length;
    const tail = bytes.length > size ? bytes.subarray(bytes.length - size) : bytes;
    const first = Math.min(tail.length, size - this.end);
    this.ring.set(tail.subarray(0, first), this.end);
    this.ring.set(tail.subarray(first), 0);
    this.end = (this.end + tail.length) % size;
    this.kept = Math.min(size, this.kept + tail.length);
  }

  /** The last line with visible text, escapes and control characters removed; null before any. */
  value(): string | null {
    if (this.found === undefined) this.found = lastLine(new TextDecoder().decode(this.tail()));
    return this.found;
  }

  /** The bytes kept, oldest first. */
  private tail(): Uint8Array {
    if (this.kept < this.ring.length) return this.ring.subarray(0, this.kept);
    const out = new Uint8Array(this.ring.length);
    out.set(this.ring.subarray(this.end), 0);
    out.set(this.ring.subarray(0, this.end), this.ring.length - this.end);
    return out;
  }
}

/** The last line of `text` with visible text, as a terminal would show it (no escapes, no `\r` overwrites). */
export function lastLine(text: string): string | null {
  const lines = text.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    // After a carriage return the line is written over from its start: what follows the last one shows.
    const parts = lines[i]!.split("\r").map(visible);
    const clean = parts.findLast((part) => part.length > 0) ?? "";
    if (clean.length > 0)
      return clean.length > LAST_LINE_MAX_CHARS ? `…${clean.slice(-LAST_LINE_MAX_CHARS + 1)}` : clean;
  }
  return null;
}

function visible(part: string): string {
  // A chunk cut in the middle of a UTF-8 sequence decodes to U+FFFD at the cut: not text.
  return part
    .replace(/\t/g, " ")
    .replace(ESCAPES, "")
    .replace(/^\uFFFD+/, "")
    .trim();
}
