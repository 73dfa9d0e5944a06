import type { Terminal } from "@xterm/headless";

/**
 * Parsing one emulator does in a turn of the screen thread before it lets the others with output
 * parse theirs: a session printing costly sequences (a clamped REP fills 82,080 cells at 80×24,
 * ~5 ms) is spread out in turns, and another session's screen waits a turn, not its whole backlog.
 */
export const SCREEN_PARSE_SLICE_MS = 10;

/**
 * Output bytes handed to xterm in one write: it parses a write whole and looks at the clock only
 * between writes (12 ms), so this bounds a turn of plain text to a few milliseconds.
 */
export const SCREEN_WRITE_PIECE_BYTES = 16 * 1024;

/** CSI finals whose work grows with the count or the terminal's size: REP, IL, DL, SU, SD, CHT, CBT, ED, EL, ICH, DCH, ECH. */
const COSTLY_CSI_FINALS = "bLMSTIZJK@PX";

/**
 * Gives each emulator's parsing turns of {@link SCREEN_PARSE_SLICE_MS}: before each costly
 * sequence, a parse that has run its slice pauses (xterm's async handlers keep its place) until
 * the thread's next turn, behind whatever other emulators and messages wait. `onParse` is told
 * before each costly sequence. {@link ParseBudget.endTurn} starts the next write on a fresh slice.
 */
export class ParseBudget {
  /** When the current slice began; undefined between turns. */
  private since: number | undefined;

  constructor(term: Terminal, onParse: () => void) {
    const check = (): boolean | Promise<boolean> => {
      onParse();
      // False: the sequence is not handled here; xterm runs its own handler once this resolves.
      return this.pause()?.then(() => false) ?? false;
    };
    // xterm's parser takes a promise from any handler (its typings say boolean only).
    const handler = check as () => boolean;
    for (const final of COSTLY_CSI_FINALS) term.parser.registerCsiHandler({ final }, handler);
    // DECALN fills the screen.
    term.parser.registerEscHandler({ intermediates: "#", final: "8" }, handler);
  }

  /**
   * Undefined while the slice lasts; once it has run SCREEN_PARSE_SLICE_MS, a promise of the
   * thread's next turn (a long sequence's handler awaits it between its chunks, as REP does).
   */
  pause(): Promise<void> | undefined {
    const now = performance.now();
    if (this.since === undefined) this.since = now;
    else if (now - this.since >= SCREEN_PARSE_SLICE_MS) {
      this.since = undefined;
      return new Promise((resolve) => setImmediate(resolve));
    }
    return undefined;
  }

  /** A write was parsed to its end: the next starts a slice of its own. */
  endTurn(): void {
    this.since = undefined;
  }
}
