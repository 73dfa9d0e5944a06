import { z } from "zod";

/**
 * Git worktree sessions (docs/protocol.md, "Worktrees"): `worktree` of `POST /v1/sessions` asks
 * for a new worktree of `repo` on `branch` (made from `base` when it does not exist yet); the
 * session's cwd is that worktree. Shared by the server, the SDK and the UI.
 */

/** Characters of a branch or base name (git allows longer refs; nobody types one). */
export const GIT_REF_MAX_CHARS = 200;

/** A ref name as it may reach git's argv: no NUL, and no leading `-` (git would read an option). */
const RefName = z
  .string()
  .min(1)
  .max(GIT_REF_MAX_CHARS)
  .refine((v) => !v.includes("\0"), "must not contain NUL bytes")
  .refine((v) => !v.startsWith("-"), "must not start with -");

/** `worktree` of `POST /v1/sessions` (terminal and agent sessions). */
export const WorktreeRequest = z.strictObject({
  /** The repository (absolute; a directory inside it will do), inside one of `worktrees.roots`. */
  repo: z
    .string()
    .min(1)
    .max(4096)
    .refine((v) => !v.includes("\0"), "must not contain NUL bytes")
    .refine((p) => p.startsWith("/"), "must be an absolute path"),
  /** A new branch (made from `base`) or an existing one (checked out as it is). */
  branch: RefName,
  /** What a new branch starts from, and what "ahead" and the diff compare with (default: the repo's current branch). */
  base: RefName.optional(),
});
export type WorktreeRequest = z.infer<typeof WorktreeRequest>;

/** A session's worktree as its info shows it (SessionInfo `worktree`). */
export const SessionWorktree = z.object({
  /** The repository's top-level directory. */
  repo: z.string(),
  /** The worktree's directory: the session's cwd. */
  path: z.string(),
  branch: z.string(),
  base: z.string(),
  /** Whether the session made the branch (false: it existed). */
  newBranch: z.boolean(),
  /** When the worktree was removed (`DELETE … removeWorktree=true`); absent while it exists. */
  removedAt: z.number().optional(),
});
export type SessionWorktree = z.infer<typeof SessionWorktree>;

/** `GET /v1/sessions/:id/worktree`: the worktree now. */
export interface WorktreeStatus {
  /** The branch checked out now (null: detached HEAD). */
  branch: string | null;
  base: string;
  /** Uncommitted changes, untracked files included. */
  dirty: boolean;
  /** Files `git status` lists. */
  changed: number;
  /** Commits on HEAD not on the base, and on the base not on HEAD (null: the base no longer resolves). */
  ahead: number | null;
  behind: number | null;
}

/** One file of a worktree diff. */
export interface WorktreeDiffFile {
  path: string;
  status: "added" | "modified" | "deleted" | "renamed";
  /** `@@` hunks and their lines ("" for a binary file or a mode change). */
  hunks: string;
  added: number;
  removed: number;
  binary: boolean;
}

/** `GET /v1/sessions/:id/worktree/diff`: the worktree (commits and uncommitted changes to tracked files) against where it forked from the base. */
export interface WorktreeDiff {
  base: string;
  /** The commit the diff is taken from: `git merge-base BASE HEAD`. */
  mergeBase: string;
  files: WorktreeDiffFile[];
  /** Untracked files (not in the diff), at most WORKTREE_UNTRACKED_LISTED. */
  untracked: string[];
}

/** Untracked files a worktree diff names at most. */
export const WORKTREE_UNTRACKED_LISTED = 200;
