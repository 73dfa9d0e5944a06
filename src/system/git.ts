import { execFile } from "node:child_process";
import type { ExecFileException } from "node:child_process";
import { SwitchboardError } from "../protocol/errors.js";

/** How long one git command may take before it is killed and reported as GIT_FAILED. */
export const GIT_TIMEOUT_MS = 30_000;

/** Output one git command may print (a diff against the base is the largest); past it: GIT_FAILED. */
export const GIT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** Characters of git's stderr a GIT_FAILED message quotes. */
const GIT_MESSAGE_CHARS = 2_000;

/**
 * Runs the real `git` binary in `cwd` with `args` (execFile: no shell, so nothing in an argument
 * is interpreted), bounded by GIT_TIMEOUT_MS and GIT_MAX_OUTPUT_BYTES. Resolves with stdout; a
 * non-zero exit, a missing git or a timeout rejects with GIT_FAILED quoting git's own message.
 * The environment keeps git from asking anyone anything (no terminal prompt, no editor, no pager).
 * @example
 * await git(repo, ["rev-parse", "--show-toplevel"]); // "/home/me/src/app\n"
 */
export function git(
  cwd: string,
  args: readonly string[],
  options: { okCodes?: readonly number[] } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      args,
      {
        cwd,
        timeout: GIT_TIMEOUT_MS,
        killSignal: "SIGKILL",
        maxBuffer: GIT_MAX_OUTPUT_BYTES,
        encoding: "utf8",
        windowsHide: true,
        env: {
          ...gatewayEnvWithoutGit(),
          GIT_TERMINAL_PROMPT: "0",
          GIT_EDITOR: "true",
          GIT_PAGER: "cat",
          LC_ALL: "C",
        },
      },
      (error, stdout, stderr) => {
        if (error === null) return resolve(stdout);
        const code = typeof error.code === "number" ? error.code : undefined;
        if (code !== undefined && options.okCodes?.includes(code) === true) return resolve(stdout);
        reject(gitFailure(args, error, stderr));
      },
    );
  });
}

/**
 * The gateway's environment without its `GIT_*` variables: a `GIT_DIR` or `GIT_WORK_TREE` the
 * gateway was started with would point every command at another repository than the one named.
 */
function gatewayEnvWithoutGit(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("GIT_")));
}

function gitFailure(args: readonly string[], error: ExecFileException, stderr: string): SwitchboardError {
  const command = `git ${args[0] ?? ""}`;
  if (error.code === "ENOENT")
    return new SwitchboardError(
      "GIT_FAILED",
      `${command}: git is not installed on the gateway's machine (not found on PATH)`,
    );
  if (error.killed === true)
    return new SwitchboardError(
      "GIT_FAILED",
      `${command} took longer than ${GIT_TIMEOUT_MS} ms (GIT_TIMEOUT_MS) and was stopped`,
    );
  if (error.code === "ERR_CHILD_PROCESS_STDIO_MAXBUFFER")
    return new SwitchboardError(
      "GIT_FAILED",
      `${command} printed more than ${GIT_MAX_OUTPUT_BYTES} bytes (GIT_MAX_OUTPUT_BYTES)`,
    );
  const said = stderr.trim().slice(0, GIT_MESSAGE_CHARS) || error.message;
  return new SwitchboardError("GIT_FAILED", `${command} failed: ${said}`);
}
