import { StringDecoder } from "node:string_decoder";

/**
 * Splits a byte stream into newline-terminated lines, refusing any line longer than
 * `maxBytes` (counted in UTF-16 code units of the decoded text, which bounds memory the same
 * way). Used for the IPC pipe (one JSON frame per line) and for a plugin's stdout/stderr.
 */
export class FrameReader {
  private readonly decoder = new StringDecoder("utf8");
  private buffer = "";

  constructor(
    private readonly maxChars: number,
    private readonly onLine: (line: string) => void,
    /** Called with the start of an over-long line; the reader skips the rest of that line. */
    private readonly onOverflow: (head: string) => void,
  ) {}

  private skipping = false;

  push(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    for (;;) {
      const nl = text.indexOf("\n");
      if (nl === -1) break;
      const piece = text.slice(0, nl);
      text = text.slice(nl + 1);
      if (this.skipping) {
        this.skipping = false;
        this.buffer = "";
        continue;
      }
      const line = this.buffer + piece;
      this.buffer = "";
      if (line.length > this.maxChars) {
        this.onOverflow(line.slice(0, this.maxChars));
        continue;
      }
      this.onLine(line);
    }
    if (this.skipping) return;
    this.buffer += text;
    if (this.buffer.length > this.maxChars) {
      this.onOverflow(this.buffer.slice(0, this.maxChars));
      this.buffer = "";
      this.skipping = true;
    }
  }

  /** The unterminated rest, if any (at end of stream). */
  flush(): string {
    const rest = this.skipping ? "" : this.buffer + this.decoder.end();
    this.buffer = "";
    this.skipping = false;
    return rest;
  }
}
