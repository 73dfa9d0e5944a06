import type { LocalTerminal } from "./local-terminal.js";
import { printable } from "./printable.js";
import { truncateToWidth } from "./text-width.js";
import { systemClock } from "../core/clock.js";
import type { Clock } from "../core/clock.js";

/** The same notice (e.g. "control is held by ...") is shown at most this often while the user types. */
export const NOTICE_INTERVAL_MS = 3_000;

/**
 * One-line notices on stderr between the session's output. A notice about keys is not repeated
 * more often than {@link NOTICE_INTERVAL_MS}; one about losing control once per change. On the
 * alternate screen (vim, less) a notice is drawn over the last line, the cursor saved and
 * restored around it, instead of scrolling the program's screen.
 */
export class Notices {
  private readonly last = new Map<string, number>();
  private controlState: string | undefined;

  constructor(
    private readonly stderr: NodeJS.WritableStream,
    private readonly local: LocalTerminal,
    private readonly clock: Clock = systemClock,
  ) {}

  show(text: string): void {
    const now = this.clock.monotonic();
    const shown = this.last.get(text);
    if (shown !== undefined && now - shown < NOTICE_INTERVAL_MS) return;
    this.last.set(text, now);
    this.write(text);
  }

  /**
   * A notice that control was lost (`state`): said when it happens, not again for every later
   * error frame of the same kind. A new connection may find control anywhere: it says it again.
   */
  control(state: "taken-over" | "expired", text: string): void {
    if (this.controlState === state) return;
    this.controlState = state;
    this.write(text);
  }

  newConnection(): void {
    this.controlState = undefined;
  }

  private write(text: string): void {
    // Notices quote the gateway (holder names, error messages).
    text = `[switchboard] ${printable(text)}`;
    const size = this.local.size();
    if (!this.local.isTTY) this.stderr.write(`${text}\n`);
    else if (size && this.local.alternateScreen)
      // Cut to the width: a character in the last column of the last line would scroll the screen.
      this.stderr.write(`\x1b7\x1b[${size.rows};1H\x1b[2K\x1b[7m${truncateToWidth(text, size.cols - 1)}\x1b[0m\x1b8`);
    // Raw mode: the terminal does not turn \n into \r\n.
    else this.stderr.write(`\r\n${text}\r\n`);
  }
}
