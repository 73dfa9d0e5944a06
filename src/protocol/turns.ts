import { z } from "zod";
import { RunQueuedEvent } from "./events.js";

/** Most turns one `GET /v1/sessions/:id/turns` answers with. */
export const TURNS_PAGE_MAX = 100;

/**
 * One run of an agent session as the turn index places it (docs/protocol.md, "Turns"): its
 * start (its first event after `run.queued`), and its `run.queued` event when that lies before
 * the first start of the answer (a page read from that start would not have it).
 */
export const TurnMark = z.object({
  runId: z.string(),
  start: z.number().int().positive(),
  queued: RunQueuedEvent.nullable(),
});
export type TurnMark = z.infer<typeof TurnMark>;

/** `GET /v1/sessions/:id/turns`: a page of turns, oldest first. */
export const TurnsPage = z.object({
  turns: z.array(TurnMark),
  /** The start of the turn after the last one given; null when there is none yet (the page runs on to the head). */
  next: z.number().int().positive().nullable(),
  /** Without `before` and `from` (the last turns): the `run.queued` events of the prompts waiting in the queue. */
  waiting: z.array(RunQueuedEvent),
  head: z.number().int().nonnegative(),
  first: z.number().int().nonnegative(),
  /** About the size of the events the log holds (as retention counts them): how long a replay would be. */
  bytes: z.number().int().nonnegative(),
});
export type TurnsPage = z.infer<typeof TurnsPage>;
