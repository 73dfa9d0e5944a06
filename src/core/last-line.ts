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
 * {@link LAST_LINE_TAIL_BYTES} of output (a copy of at most that much per chunk) and finds the
 * line when asked (once per change), so a busy session pays nothing per line and a list poll
 * little per session.
 */
export class LastLine {
  private tail = new Uint8Array(0);
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
    if (bytes.length >= LAST_LINE_TAIL_BYTES) {
      this.tail = bytes.slice(bytes.length - LAST_LINE_TAIL_BYTES);
      return;
    }
    const keep = Math.min(this.tail.length, LAST_LINE_TAIL_BYTES - bytes.length);
    const next = new Uint8Array(keep + bytes.length);
    next.set(this.tail.subarray(this.tail.length - keep), 0);
    next.set(bytes, keep);
    this.tail = next;
  }

  /** The last line with visible text, escapes and control characters removed; null before any. */
  value(): string | null {
    if (this.found === undefined) this.found = lastLine(new TextDecoder().decode(this.tail));
    return this.found;
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
