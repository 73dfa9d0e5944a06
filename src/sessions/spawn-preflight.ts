import { accessSync, constants as fsConstants, statSync } from "node:fs";
import { delimiter, resolve } from "node:path";
import { SwitchboardError } from "../protocol/errors.js";
import { checkExecSize } from "./exec-limits.js";

/*
 * What would make a terminal process's exec fail (empty command, cwd, program not found or not
 * executable, arguments and environment too large), checked before it is started: used by
 * spawnTerminalProcess (terminal-process.ts).
 */

/** Search path when the child's environment has none (libuv's default; glibc's has the same two directories). */
export const DEFAULT_EXEC_PATH = "/usr/bin:/bin";

/**
 * Checks, before anything is started, what would make the exec fail, so the caller gets
 * SPAWN_FAILED with a reason instead of a process that dies at once (node-pty forks first
 * and reports an exec failure only as output and exit code 1). Mirrors execvp: a program
 * with a `/` is taken relative to `cwd`, otherwise searched in the child's `PATH`.
 */
export function assertSpawnable(command: readonly string[], cwd: string, env: Readonly<Record<string, string>>): void {
  const program = command[0];
  if (program === undefined || program === "") throw spawnFailed("the command is empty");
  checkCwd(cwd);
  checkExecSize(command, env);
  if (program.includes("/")) {
    const problem = executableProblem(resolve(cwd, program));
    if (problem === "missing") throw spawnFailed(`command not found: ${program}`);
    if (problem !== null) throw spawnFailed(`permission denied: ${program} ${problem}`);
    return;
  }
  let denied: { path: string; problem: string } | null = null;
  for (const dir of (env["PATH"] ?? DEFAULT_EXEC_PATH).split(delimiter)) {
    // An empty PATH entry means the current directory, as in execvp.
    const candidate = resolve(cwd, dir, program);
    const problem = executableProblem(candidate);
    if (problem === null) return;
    // execvp skips entries it cannot run and reports EACCES only if nothing else works.
    if (problem !== "missing" && problem !== "is a directory") denied ??= { path: candidate, problem };
  }
  if (denied !== null) throw spawnFailed(`permission denied: ${denied.path} ${denied.problem}`);
  throw spawnFailed(`command not found: ${program} (not in PATH)`);
}

/** Throws SPAWN_FAILED unless `cwd` is a directory the gateway's user can enter, saying which of those it is not. */
export function checkCwd(cwd: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(cwd).isDirectory();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw spawnFailed(`cwd does not exist: ${cwd}`);
    if (code === "EACCES") throw spawnFailed(`permission denied: cannot reach cwd ${cwd}`);
    throw spawnFailed(`cwd is not usable: ${cwd} (${code ?? String(error)})`);
  }
  if (!isDirectory) throw spawnFailed(`cwd is not a directory: ${cwd}`);
  try {
    accessSync(cwd, fsConstants.X_OK);
  } catch {
    throw spawnFailed(`permission denied: cannot enter cwd ${cwd}`);
  }
}

/** null when `path` can be executed, else why not ("missing" when there is nothing there). */
function executableProblem(path: string): "missing" | "is a directory" | "is not executable" | null {
  let isFile: boolean;
  try {
    const stats = statSync(path);
    if (stats.isDirectory()) return "is a directory";
    isFile = stats.isFile();
  } catch {
    // ENOENT, ENOTDIR, EACCES on a parent, ELOOP: execvp would not find it either.
    return "missing";
  }
  if (!isFile) return "is not executable";
  try {
    accessSync(path, fsConstants.X_OK);
    return null;
  } catch {
    return "is not executable";
  }
}

function spawnFailed(reason: string): SwitchboardError {
  return new SwitchboardError("SPAWN_FAILED", reason);
}
