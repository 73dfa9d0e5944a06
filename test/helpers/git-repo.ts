import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

/** Runs the real `git` in `cwd` as a fixed author (the machine may have none configured); its stdout. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@t",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@t",
    },
  });
}

/** A new repository at `repo` (made if missing) on branch `main`, with `files` in one commit, "first". */
export function gitRepo(repo: string, files: Record<string, string>): void {
  mkdirSync(repo, { recursive: true });
  git(repo, "init", "-q", "-b", "main");
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(repo, file), text);
  git(repo, "add", ".");
  git(repo, "commit", "-q", "-m", "first");
}
