import { z } from "zod";
import { Cols, Rows } from "./sessions.js";

/** `text`: the screen's characters, one line per row. `ansi`: escape sequences that redraw it. */
export const ScreenFormat = z.enum(["text", "ansi"]);

/** What `GET /v1/sessions/:id/screen` answers. */
export const ScreenAnswer = z.strictObject({
  screen: z.string(),
  /** 0-based, in the answer's `cols`×`rows`. */
  cursor: z.strictObject({ x: z.number().int(), y: z.number().int(), visible: z.boolean() }),
  /** A full-screen program is showing (the alternate screen buffer is active). */
  alternate: z.boolean(),
  title: z.string(),
  /** The output byte the screen reflects: live output from this offset on continues it exactly. */
  offset: z.number().int().nonnegative(),
  cols: Cols,
  rows: Rows,
});
export type ScreenAnswer = z.infer<typeof ScreenAnswer>;
