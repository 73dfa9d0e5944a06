import { z } from "zod";

/**
 * Why a session needs someone: an agent's open `permission` request or `elicitation`, a run that
 * failed (`run-failed`) or finished and was not seen since (`run-finished`); a terminal's `bell`
 * (BEL outside an OSC or DCS string), a `notification` (OSC 9, OSC 777 `notify`), or `quiet`
 * (no output for the configured time after output). docs/protocol.md, "Attention".
 */
export const ATTENTION_REASONS = [
  "permission",
  "elicitation",
  "run-failed",
  "run-finished",
  "bell",
  "notification",
  "quiet",
] as const;
export type AttentionReason = (typeof ATTENTION_REASONS)[number];

/** The longest `text` an attention carries, in characters (a notification's, a run's last line). */
export const ATTENTION_TEXT_CHARS = 200;

/** A session's `attention`: why it needs someone, what it said, and since when (epoch ms). */
export const Attention = z.object({
  reason: z.enum(ATTENTION_REASONS),
  text: z.string().optional(),
  since: z.number(),
});
export type Attention = z.infer<typeof Attention>;

/** `POST /v1/sessions/:id/seen`: a viewer looked at the session (no body). */
export const SeenBody = z.strictObject({});
