/** Last stderr lines of a plugin kept to explain its exit (a native crash writes ~20 after its cause)... */
export const STDERR_TAIL_LINES = 32;
/** ...each cut to this many characters, which also bounds the hint that goes into `lastError`. */
export const STDERR_HINT_CHARS = 300;

/**
 * The last lines a plugin wrote on stderr, kept (bounded) to say why it died when it could not
 * say so itself: out of memory, V8 writes "FATAL ERROR: ... JavaScript heap out of memory" on
 * stderr and the process ends by SIGABRT, which alone tells nothing.
 */
export class StderrTail {
  private readonly lines: string[] = [];

  push(line: string): void {
    if (this.lines.push(line.slice(0, STDERR_HINT_CHARS)) > STDERR_TAIL_LINES) this.lines.shift();
  }

  /**
   * The line that best says why the process died: the last that names an error or a fatal
   * condition, skipping V8's and Node's dumps around it (native stack frames like
   * ` 3: 0x10fb205 v8::internal::V8::FatalProcessOutOfMemory`, GC traces, `<---` and `-----`
   * banners, JS `at` frames); else the last line that is not part of a dump; null for none.
   */
  hint(): string | null {
    const candidates = this.lines
      .map((line) => line.trim())
      .filter((line) => line !== "" && !/^(\d+: 0x|\[\d+:0x|<---|-----|at )/.test(line));
    const telling = candidates.findLast((line) => /fatal|error|abort|panic|segmentation fault|killed/i.test(line));
    return telling ?? candidates.at(-1) ?? null;
  }
}
