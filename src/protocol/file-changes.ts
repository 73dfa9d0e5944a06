import type { EventOf } from "./events.js";

/**
 * What a run (or a whole session) changed, per file: `GET /v1/sessions/:id/runs/:run/changes` and
 * `GET /v1/sessions/:id/changes` (docs/protocol.md, "Changes"). Several `file.change` events of one
 * file combine into one change, from the first old side to the last new side.
 */
export type ChangedFileStatus = "added" | "modified" | "deleted";

export interface ChangedFile {
  /** Relative to the session's cwd, `/` separators. */
  path: string;
  status: ChangedFileStatus;
  content: EventOf<"file.change">["content"];
  /** Lines added and removed (0 for a change that is not `text`). */
  added: number;
  removed: number;
  /** The tool call of the latest change, when known. */
  toolCallId?: string;
  /** The runs that changed it, oldest first. */
  runIds: string[];
  /** `file.change` events combined. */
  changes: number;
  /** The unified diff's hunks, for `text` (absent past `MAX_CHANGES_DIFF_CHARS` of the answer: `diffOmitted`). */
  diff?: string;
  diffOmitted?: true;
  /** Only the region the agent reported, not placed in the whole file: not in the patch. */
  region?: true;
  oldBytes: number | null;
  newBytes: number | null;
  oldSha256: string | null;
  newSha256: string | null;
}

/** The answer of a changes route. */
export interface ChangesAnswer {
  sessionId: string;
  /** The run asked for (`latest` resolved); absent for the session's list. */
  runId?: string;
  /** The session's runs with changes or not, oldest first (the last `MAX_LISTED_RUNS`). */
  runs: string[];
  files: ChangedFile[];
}

/** Diff characters a changes answer carries in all; files past it have `diffOmitted` (the patch has them). */
export const MAX_CHANGES_DIFF_CHARS = 4 * 1024 * 1024;

/** Run ids a changes answer (and a RUN_NOT_FOUND message) names at most: the latest. */
export const MAX_LISTED_RUNS = 50;
