import { withoutEscapes } from "./output-text.js";

/**
 * The echo is recognised by this many of the last characters of the typed line (whitespace,
 * control characters and escape sequences left out on both sides): a terminal wraps a long line
 * with spaces, carriage returns and cursor moves that a line editor chooses.
 */
export const ECHO_TAIL_CHARS = 40;
/** A line longer than this is looked at by its last this many bytes (a bound on memory while the echo is awaited). */
export const MAX_ECHO_LINE_BYTES = 64 * 1024;

/**
 * Finds where the response to a typed line starts in a PTY's output: after the line break that
 * ends the line in which the typed line's echo shows (`after_input` of wait_for_output; the
 * echo of an empty line is its line break alone).
 */
export class EchoSkip {
  private readonly needle: string;
  private readonly decoder = new TextDecoder("utf-8");
  private line: Uint8Array[] = [];
  private lineBytes = 0;

  constructor(typed: string) {
    this.needle = squeeze(typed).slice(-ECHO_TAIL_CHARS);
  }

  /** Takes the output's next bytes (`offset`: that of `bytes[0]`); returns the offset after the echo's line, once it is seen. */
  push(offset: number, bytes: Uint8Array): number | undefined {
    let from = 0;
    for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, i + 1)) {
      this.append(bytes.subarray(from, i));
      from = i + 1;
      const line = this.decoder.decode(Buffer.concat(this.line));
      this.line = [];
      this.lineBytes = 0;
      if (squeeze(line).includes(this.needle)) return offset + i + 1;
    }
    this.append(bytes.subarray(from));
    return undefined;
  }

  private append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.line.push(bytes);
    this.lineBytes += bytes.length;
    while (this.lineBytes - this.line[0]!.length >= MAX_ECHO_LINE_BYTES) this.lineBytes -= this.line.shift()!.length;
  }
}

/** Text as the echo is compared: no escape sequences, whitespace or control characters. */
function squeeze(text: string): string {
  return withoutEscapes(text).replace(/[\s\p{Cc}]/gu, "");
}
