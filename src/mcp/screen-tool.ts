import { z } from "zod";
import { describeState } from "./format.js";
import { LIMITS, SESSION_STATES } from "../protocol/index.js";
import { SessionId } from "./session-tools.js";
import { defineTool } from "./tool.js";
import type { Tool } from "./tool.js";

const offset = z.number().int().nonnegative();

export const ScreenRead = z.object({
  id: z.string(),
  state: z.enum(SESSION_STATES),
  cursor: z.object({ x: z.number().int(), y: z.number().int(), visible: z.boolean() }),
  alternate: z.boolean(),
  title: z.string(),
  offset,
  cols: z.number().int(),
  rows: z.number().int(),
});

const readScreen = defineTool({
  name: "read_screen",
  title: "Read a terminal's screen",
  description:
    "Reads what a PTY session's terminal shows now, as text (one line per row), however much it printed before: the screen of a TUI (vim, htop, less, a coding agent), which read_output cannot rebuild from its escape sequences. The status line gives the cursor (0-based row and column), whether a full-screen program is showing (the alternate screen), the terminal's title, and offset: the output byte the screen reflects (wait_for_output since=offset waits for what comes after). cols and rows read it as a terminal of that size would show it (clipped, not rewrapped). Only PTY sessions (start_session with pty: true).",
  input: z.strictObject({
    id: SessionId,
    cols: z.number().int().min(1).max(LIMITS.MAX_COLS).optional().describe("Read at this width (default: the PTY's)."),
    rows: z.number().int().min(1).max(LIMITS.MAX_ROWS).optional().describe("Read at this height (default: the PTY's)."),
  }),
  output: ScreenRead,
  annotations: { readOnlyHint: true, openWorldHint: false },
  run: async (args, { gateway }) => {
    const screen = await gateway.http.screen(args.id, {
      format: "text",
      ...(args.cols !== undefined ? { cols: args.cols } : {}),
      ...(args.rows !== undefined ? { rows: args.rows } : {}),
    });
    const session = await gateway.http.getSession(args.id);
    const program = screen.alternate ? "a full-screen program is showing" : "no full-screen program";
    const title = screen.title === "" ? "" : ` | title ${JSON.stringify(screen.title)}`;
    const cursor = `cursor row ${screen.cursor.y} col ${screen.cursor.x}${screen.cursor.visible ? "" : " (hidden)"}`;
    const header = `[${args.id} ${describeState(session)} | screen ${screen.cols}x${screen.rows}, ${cursor} | ${program}${title} | offset ${screen.offset}]`;
    return {
      text: header,
      body: screen.screen,
      data: {
        id: args.id,
        state: session.state,
        cursor: screen.cursor,
        alternate: screen.alternate,
        title: screen.title,
        offset: screen.offset,
        cols: screen.cols,
        rows: screen.rows,
      },
    };
  },
});

export const SCREEN_TOOLS: readonly Tool[] = [readScreen];
