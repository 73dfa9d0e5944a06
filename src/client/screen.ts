import type { TerminalScreenFrame } from "../protocol/index.js";

/**
 * A PTY session's screen from the gateway (`/ws/session?since=screen`, subscribe `screen`):
 * write `data`, then the output from byte `offset` on (docs/protocol.md, "The screen").
 */
export interface SessionScreen {
  /** ANSI that draws the screen. */
  data: string;
  /** The output byte output continues from. */
  offset: number;
  /** The size it is drawn for (the viewer's). */
  cols: number;
  rows: number;
  /** The PTY's size. */
  ptyCols: number;
  ptyRows: number;
  alternate: boolean;
  /** A screen sent mid-stream to a `lag: "screen"` viewer: the output bytes it skipped (kept in the log). */
  skipped?: number;
}

/** The screen a `screen` frame (of either endpoint) carries. */
export function screenOf(frame: Omit<TerminalScreenFrame, "type">): SessionScreen {
  return {
    data: frame.data,
    offset: frame.offset,
    cols: frame.cols,
    rows: frame.rows,
    ptyCols: frame.pty_cols,
    ptyRows: frame.pty_rows,
    alternate: frame.alternate,
    ...(frame.skipped !== undefined ? { skipped: frame.skipped } : {}),
  };
}
