import type { TerminalExit } from "./process-transport.js";

// Where a terminal process is in its life, as a closed union, and the moves between those places:
// the state machine ManagedProcess (terminal-process.ts) keeps to, apart so that it reads at a glance.

/**
 * Where a process is ({@link PROCESS_MOVES} lists the moves): `running` (the child runs, its
 * output is open; `paused`: not read), `output-ended` (the output ended before the child's exit),
 * `draining` (the child exited; the rest of its output is read), `reported` (the exit was told,
 * or the loss of its holder), `disposed` (`dispose()` or `detach()` before that: no callbacks;
 * `exited` resolves once the exit is known and the output ended), `closed` (both). `childExit`
 * is the child's exit once known: until then its pid still names its processes.
 */
export type ProcessState =
  | { at: "running"; paused: boolean }
  | { at: "output-ended" }
  | { at: "draining"; childExit: TerminalExit }
  | { at: "reported"; childExit: TerminalExit | null }
  | { at: "disposed"; childExit: TerminalExit | null; outputEnded: boolean }
  | { at: "closed"; childExit: TerminalExit | null };
export type ProcessAt = ProcessState["at"];

/** The moves a process makes; any other is a bug, and ManagedProcess (terminal-process.ts) throws on it. */
export const PROCESS_MOVES: Readonly<Record<ProcessAt, readonly ProcessAt[]>> = {
  running: ["running", "output-ended", "draining", "reported", "disposed"],
  "output-ended": ["reported", "disposed"],
  draining: ["reported", "disposed"],
  reported: ["reported", "closed"],
  disposed: ["disposed", "closed"],
  closed: ["closed"],
};
