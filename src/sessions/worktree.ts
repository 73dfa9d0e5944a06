import { mkdir, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { SwitchboardError } from "../protocol/errors.js";
import { WORKTREE_UNTRACKED_LISTED } from "../protocol/worktrees.js";
import type {
  SessionWorktree,
  WorktreeDiff,
  WorktreeDiffFile,
  WorktreeRequest,
  WorktreeStatus,
} from "../protocol/worktrees.js";
import { git } from "../system/git.js";
import { isInside } from "../system/path-inside.js";

/**
 * Git worktrees for sessions (docs/protocol.md, "Worktrees"): made, inspected and removed with the
 * real `git` (src/system/git.ts), confined to the configured roots. Not server-specific: the
 * gateway calls it when it creates and deletes a session, and from the worktree routes.
 * test/gateway/worktree-sessions.test.ts runs it on real repositories.
 */

/** `worktrees` of the config. */
export interface WorktreeSettings {
  /** Directories repositories must be inside (absolute). Empty: worktrees are off. */
  roots: readonly string[];
  /** Where new worktrees go, as `DIR/REPO-NAME/BRANCH`; default: next to the repository, `REPO.worktrees/BRANCH`. */
  dir?: string | undefined;
}

/** Names tried for a worktree's directory (`BRANCH`, `BRANCH-2`, …) before giving up. */
export const WORKTREE_NAME_TRIES = 100;

/** Changed files a WORKTREE_DIRTY message names at most. */
const DIRTY_FILES_NAMED = 10;

/** The real path of `p`, or undefined when it does not exist. */
async function realOrNone(p: string): Promise<string | undefined> {
  return realpath(p).catch((err: unknown) => {
    // Anything but "missing" (EACCES, ELOOP) is the caller's to see.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  });
}

/** Refuses `p` (a real path) unless it is inside one of the roots. */
async function assertInRoots(settings: WorktreeSettings, p: string, what: string): Promise<void> {
  if (settings.roots.length === 0) {
    throw new SwitchboardError(
      "OUTSIDE_ROOTS",
      "worktrees are off: the config names no worktrees.roots (the directories repositories may be in)",
    );
  }
  for (const root of settings.roots) {
    const real = await realOrNone(root);
    if (real !== undefined && isInside(real, p)) return;
  }
  throw new SwitchboardError("OUTSIDE_ROOTS", `${what} ${p} is outside worktrees.roots (${settings.roots.join(", ")})`);
}

/** A directory name for `branch`: `/` and anything unusual become `-`. */
function branchSlug(branch: string): string {
  return branch.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[.-]+/, "") || "worktree";
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    (err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    },
  );
}

/**
 * Makes a worktree of `request.repo` on `request.branch` (a new branch from `base`, or an
 * existing one) and says where it is. Refused with OUTSIDE_ROOTS before git runs when the
 * repository or the new directory is outside the roots; git's own refusals come as GIT_FAILED.
 */
export async function createWorktree(settings: WorktreeSettings, request: WorktreeRequest): Promise<SessionWorktree> {
  const given = await realOrNone(request.repo);
  if (given === undefined) {
    throw new SwitchboardError("VALIDATION_FAILED", `worktree.repo: ${request.repo} does not exist`);
  }
  await assertInRoots(settings, given, "the repository");
  const repo = (await git(given, ["rev-parse", "--show-toplevel"])).trim();
  await assertInRoots(settings, repo, "the repository");
  await git(repo, ["check-ref-format", "--branch", request.branch]);
  const branchExists = await hasRef(repo, `refs/heads/${request.branch}`);
  const base = request.base ?? (await currentBranch(repo));
  if (!(await hasRef(repo, `${base}^{commit}`))) {
    throw new SwitchboardError("GIT_FAILED", `worktree.base: ${base} is not a commit, branch or tag of ${repo}`);
  }
  const parent = settings.dir !== undefined ? path.join(settings.dir, path.basename(repo)) : `${repo}.worktrees`;
  await mkdir(parent, { recursive: true });
  await assertInRoots(settings, await realpath(parent), "the worktree directory");
  const target = await freeName(path.join(await realpath(parent), branchSlug(request.branch)));
  const args = branchExists
    ? ["worktree", "add", target, request.branch]
    : ["worktree", "add", "-b", request.branch, target, base];
  await git(repo, args);
  return { repo, path: target, branch: request.branch, base, newBranch: !branchExists };
}

async function freeName(wanted: string): Promise<string> {
  for (let i = 1; i <= WORKTREE_NAME_TRIES; i++) {
    const candidate = i === 1 ? wanted : `${wanted}-${i}`;
    if (!(await exists(candidate))) return candidate;
  }
  throw new SwitchboardError(
    "GIT_FAILED",
    `${wanted} and ${WORKTREE_NAME_TRIES - 1} more names are taken (WORKTREE_NAME_TRIES): remove old worktrees`,
  );
}

async function hasRef(repo: string, ref: string): Promise<boolean> {
  const out = await git(repo, ["rev-parse", "--verify", "--quiet", "--end-of-options", ref], { okCodes: [1] });
  return out.trim() !== "";
}

/** The branch checked out in `repo`, or its commit when HEAD is detached. */
async function currentBranch(repo: string): Promise<string> {
  const name = (await git(repo, ["symbolic-ref", "--short", "-q", "HEAD"], { okCodes: [1] })).trim();
  return name !== "" ? name : (await git(repo, ["rev-parse", "HEAD"])).trim();
}

/** `git status` of the worktree, as paths (NUL-separated porcelain: no quoting to undo). */
async function statusEntries(dir: string): Promise<Array<{ code: string; path: string }>> {
  const out = await git(dir, ["status", "--porcelain=v1", "-z", "--untracked-files=all"]);
  const fields = out.split("\0");
  const entries: Array<{ code: string; path: string }> = [];
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    if (field.length < 4) continue;
    const code = field.slice(0, 2);
    entries.push({ code, path: field.slice(3) });
    // A rename or copy is followed by its old path.
    if (code.includes("R") || code.includes("C")) i++;
  }
  return entries;
}

/** Branch, uncommitted changes and commits ahead of (and behind) the base. */
export async function worktreeStatus(worktree: SessionWorktree): Promise<WorktreeStatus> {
  const dir = worktree.path;
  const [branch, entries, counts] = await Promise.all([
    git(dir, ["symbolic-ref", "--short", "-q", "HEAD"], { okCodes: [1] }),
    statusEntries(dir),
    git(dir, ["rev-list", "--left-right", "--count", `${worktree.base}...HEAD`, "--"], { okCodes: [128] }),
  ]);
  const [behind, ahead] = counts.trim().split(/\s+/).map(Number);
  const known = Number.isInteger(ahead) && Number.isInteger(behind);
  return {
    branch: branch.trim() || null,
    base: worktree.base,
    dirty: entries.length > 0,
    changed: entries.length,
    ahead: known ? ahead! : null,
    behind: known ? behind! : null,
  };
}

/** The worktree against where it forked from its base: its commits and uncommitted changes to tracked files. */
export async function worktreeDiff(worktree: SessionWorktree): Promise<WorktreeDiff> {
  const dir = worktree.path;
  const mergeBase = (await git(dir, ["merge-base", "--end-of-options", worktree.base, "HEAD"])).trim();
  const [patch, entries] = await Promise.all([
    git(dir, ["diff", "--no-color", "--no-ext-diff", "--find-renames", mergeBase, "--"]),
    statusEntries(dir),
  ]);
  const untracked = entries.filter((e) => e.code === "??").map((e) => e.path);
  return {
    base: worktree.base,
    mergeBase,
    files: splitGitDiff(patch),
    untracked: untracked.slice(0, WORKTREE_UNTRACKED_LISTED),
  };
}

/** `git diff` output, per file. */
export function splitGitDiff(patch: string): WorktreeDiffFile[] {
  const files: WorktreeDiffFile[] = [];
  for (const chunk of patch.split(/^(?=diff --git )/m)) {
    if (!chunk.startsWith("diff --git ")) continue;
    const lines = chunk.split("\n");
    const firstHunk = lines.findIndex((l) => l.startsWith("@@"));
    const header = firstHunk < 0 ? lines : lines.slice(0, firstHunk);
    const hunkLines = firstHunk < 0 ? [] : lines.slice(firstHunk);
    const pathOf = (prefix: string) => header.find((l) => l.startsWith(prefix))?.slice(prefix.length);
    const renamedTo = pathOf("rename to ");
    const newPath = pathOf("+++ b/");
    const oldPath = pathOf("--- a/");
    const fromHeader = /^diff --git a\/(.*) b\/(.*)$/.exec(lines[0]!)?.[2];
    const status: WorktreeDiffFile["status"] = header.some((l) => l.startsWith("new file mode"))
      ? "added"
      : header.some((l) => l.startsWith("deleted file mode"))
        ? "deleted"
        : renamedTo !== undefined
          ? "renamed"
          : "modified";
    let added = 0;
    let removed = 0;
    for (const line of hunkLines) {
      if (line.startsWith("+")) added++;
      else if (line.startsWith("-")) removed++;
    }
    const hunks = hunkLines.join("\n").replace(/\n$/, "");
    files.push({
      path: renamedTo ?? newPath ?? oldPath ?? fromHeader ?? "",
      status,
      hunks: hunks === "" ? "" : `${hunks}\n`,
      added,
      removed,
      binary: header.some((l) => l.startsWith("Binary files ")),
    });
  }
  return files;
}

/**
 * Removes the worktree (its branch stays, with every commit on it). Uncommitted work is refused
 * with WORKTREE_DIRTY unless `discardChanges`; a worktree whose directory is gone already is
 * pruned from the repository's list.
 */
export async function removeWorktree(worktree: SessionWorktree, options: { discardChanges: boolean }): Promise<void> {
  if (!(await exists(worktree.path))) {
    await git(worktree.repo, ["worktree", "prune"]);
    return;
  }
  if (!options.discardChanges) await assertClean(worktree);
  await git(worktree.repo, ["worktree", "remove", ...(options.discardChanges ? ["--force"] : []), worktree.path]);
}

/** WORKTREE_DIRTY, naming the first changed files, unless the worktree is clean (or gone). */
export async function assertClean(worktree: SessionWorktree): Promise<void> {
  if (!(await exists(worktree.path))) return;
  const entries = await statusEntries(worktree.path);
  if (entries.length === 0) return;
  const named = entries
    .slice(0, DIRTY_FILES_NAMED)
    .map((e) => e.path)
    .join(", ");
  const more = entries.length > DIRTY_FILES_NAMED ? ` and ${entries.length - DIRTY_FILES_NAMED} more` : "";
  throw new SwitchboardError(
    "WORKTREE_DIRTY",
    `the worktree ${worktree.path} has uncommitted changes (${named}${more}): commit them, or remove it with discardChanges=true`,
    { changed: entries.length },
  );
}

/**
 * Makes the worktree `request` asks for and starts a session in it with `start`; when the start
 * fails the worktree is removed again (and the branch, if it was made for it), so a refused
 * create leaves nothing behind.
 */
export async function inNewWorktree<T>(
  settings: WorktreeSettings,
  request: WorktreeRequest,
  start: (worktree: SessionWorktree) => Promise<T>,
): Promise<T> {
  const worktree = await createWorktree(settings, request);
  try {
    return await start(worktree);
  } catch (error) {
    await git(worktree.repo, ["worktree", "remove", "--force", worktree.path]).then(
      () => (worktree.newBranch ? git(worktree.repo, ["branch", "-D", worktree.branch]) : ""),
      // The session's refusal is what the caller needs; a worktree left behind is listed by `git worktree list`.
      () => "",
    );
    throw error;
  }
}
