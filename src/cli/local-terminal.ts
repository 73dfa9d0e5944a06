import { RESET_SCROLL_REGION, TerminalModes } from "./terminal-modes.js";

/** Resets colours and attributes: a program may be cut off in the middle of a coloured line. */
const RESET_ATTRIBUTES = "\x1b[0m";

/**
 * The user's own terminal while `attach` runs: raw mode on, and a guarantee that it is put
 * back — on detach, on the session's exit, on errors, on signals and, as a last resort, in
 * a `process.on("exit")` hook (synchronous: TTY writes and `setRawMode` are).
 */
export class LocalTerminal {
  /** Modes the attached program switched on through its output. */
  readonly modes = new TerminalModes();
  private raw = false;
  private restored = false;
  private readonly onProcessExit = () => this.restore();

  constructor(
    readonly stdin: NodeJS.ReadStream,
    readonly stdout: NodeJS.WriteStream,
  ) {}

  get isTTY(): boolean {
    return this.stdout.isTTY === true;
  }

  /** The local size, when stdout is a terminal. */
  size(): { cols: number; rows: number } | undefined {
    if (!this.isTTY || !this.stdout.columns || !this.stdout.rows) return undefined;
    return { cols: this.stdout.columns, rows: this.stdout.rows };
  }

  /** Raw mode (keys go through unprocessed: Ctrl-C is a byte, not a signal). A no-op when stdin is not a terminal. */
  enterRaw(): void {
    process.on("exit", this.onProcessExit);
    if (this.stdin.isTTY !== true) return;
    this.stdin.setRawMode(true);
    this.raw = true;
  }

  /** Shows the session's output, keeping track of the modes it sets. */
  write(bytes: Uint8Array): void {
    this.modes.feed(bytes);
    this.stdout.write(bytes);
  }

  /** Whether the program is on the alternate screen (a full-screen program is drawing). */
  get alternateScreen(): boolean {
    return this.modes.alternateScreen;
  }

  /** Makes the whole screen the scroll region again, if the program's output set one (see {@link RESET_SCROLL_REGION}). */
  resetScrollRegion(): void {
    if (this.isTTY && this.modes.scrollRegion) this.write(new TextEncoder().encode(RESET_SCROLL_REGION));
  }

  /** Puts the terminal back as it was. Idempotent. */
  restore(): void {
    if (this.restored) return;
    this.restored = true;
    process.off("exit", this.onProcessExit);
    if (this.raw) {
      this.raw = false;
      this.stdin.setRawMode(false);
    }
    if (this.isTTY) this.stdout.write(this.modes.resetSequence() + RESET_ATTRIBUTES);
  }
}
