// Where a PTY master is read, as a closed union, and the moves between those places: the state
// machine that PtyMasterReader (pty-master.ts) keeps to, apart so that it reads at a glance.

/**
 * Where a master is read ({@link READER_MOVES} lists the moves): `loop` (the stream reads it),
 * `resting` (a paced flood, the stream paused for FLOOD_PACE_MS), `thread` (reader thread `id`;
 * `takeScheduled`: a take waits for the check phase), `draining` (stream ended; the tail is read
 * synchronously, again every PTY_DRAIN_POLL_MS while the slave is open elsewhere), `ended` (sink
 * told; fd open until close()), `closed` (the sink hears nothing more).
 */
export type ReaderState =
  | { at: "loop" }
  | { at: "resting" }
  | { at: "thread"; id: number; takeScheduled: boolean }
  | { at: "draining" }
  | { at: "ended" }
  | { at: "closed" };
export type ReaderAt = ReaderState["at"];

/** The moves a master reader makes; any other is a bug, and PtyMasterReader (pty-master.ts) throws on it. */
export const READER_MOVES: Readonly<Record<ReaderAt, readonly ReaderAt[]>> = {
  loop: ["resting", "thread", "draining", "ended", "closed"],
  resting: ["resting", "loop", "draining", "ended", "closed"],
  thread: ["loop", "closed"],
  draining: ["draining", "ended", "closed"],
  ended: ["closed"],
  closed: [],
};

export const LOOP = { at: "loop" } as const;
export const RESTING = { at: "resting" } as const;
export const DRAINING = { at: "draining" } as const;
export const ENDED = { at: "ended" } as const;
export const CLOSED = { at: "closed" } as const;
