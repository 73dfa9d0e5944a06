import { readFileSync } from "node:fs";
import { SwitchboardError } from "../protocol/errors.js";

/*
 * What execve(2) takes in arguments and environment (Linux), checked before a session starts so
 * that too much is refused with SPAWN_FAILED naming what is too long, not found out by the
 * kernel (E2BIG) after the session exists.
 */

/**
 * Linux's `MAX_ARG_STRLEN` (32 pages): the most bytes, its NUL included, execve(2) takes in one
 * argument or one `NAME=value` of the environment. The protocol allows longer strings
 * (`LIMITS.STRING_BYTES`), which only the kernel refuses, with E2BIG.
 */
export const MAX_EXEC_STRING_BYTES = 32 * 4096;
/** Linux's `ARG_MAX` (32 pages): the least room execve(2) gives the arguments and environment together. */
const MIN_EXEC_TOTAL_BYTES = 32 * 4096;
/** Linux: at most 3/4 of the default 8 MiB stack limit (`_STK_LIM`) goes to the arguments and environment. */
const MAX_EXEC_TOTAL_BYTES = 6 * 1024 * 1024;
/** What the transports add to the environment (a PTY's `TERM` and `PWD`) and the program's path, with room to spare. */
const EXEC_RESERVE_BYTES = 8 * 1024;

/**
 * Checks what execve(2) would refuse with E2BIG (Linux; fs/exec.c): an argument or a variable
 * longer than {@link MAX_EXEC_STRING_BYTES}, or all of them together beyond a quarter of the
 * stack limit (`ulimit -s`, which the child inherits). A PTY's process would otherwise be started
 * and die at once, printing only `execvp(3) failed.: Argument list too long`, and a pipe's spawn
 * say only `spawn E2BIG`.
 */
export function checkExecSize(command: readonly string[], env: Readonly<Record<string, string>>): void {
  if (process.platform !== "linux") return;
  const tooLong = (bytes: number): boolean => bytes + 1 > MAX_EXEC_STRING_BYTES;
  const most = `the system takes at most ${MAX_EXEC_STRING_BYTES - 1} bytes in one (E2BIG)`;
  let total = EXEC_RESERVE_BYTES;
  let pointers = 0;
  for (const [i, arg] of command.entries()) {
    const bytes = Buffer.byteLength(arg);
    if (tooLong(bytes)) {
      throw spawnFailed(
        `argument ${i} of the command is ${bytes} bytes: ${most}; pass it in a file or on stdin instead`,
      );
    }
    total += bytes + 1;
    pointers++;
  }
  for (const [name, value] of Object.entries(env)) {
    const bytes = Buffer.byteLength(name) + 1 + Buffer.byteLength(value);
    if (tooLong(bytes)) {
      throw spawnFailed(
        `the environment variable ${name} is ${bytes} bytes with its name: ${most}; pass the value in a file instead`,
      );
    }
    total += bytes + 1;
    pointers++;
  }
  const limit = execTotalLimit();
  total += (pointers + 1) * 8;
  if (total > limit) {
    throw spawnFailed(
      `the command and its environment are ${total} bytes together: the system takes at most ${limit} (E2BIG; a quarter of ` +
        "the gateway's stack limit, `ulimit -s`); pass less in the environment or on the command line, e.g. in a file",
    );
  }
}

/** Read once: the gateway does not change its own stack limit, which every child inherits. */
let totalLimit: number | undefined;

/** How many bytes of arguments and environment execve(2) takes, from the stack limit the child inherits (Linux). */
function execTotalLimit(): number {
  totalLimit ??= readTotalLimit();
  return totalLimit;
}

function readTotalLimit(): number {
  let stack = Infinity;
  try {
    const line = /^Max stack size\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "latin1"))?.[1];
    if (line !== undefined && line !== "unlimited") stack = Number(line);
  } catch {
    // No /proc: take the kernel's cap.
  }
  const quarter = Number.isFinite(stack) ? Math.floor(stack / 4) : MAX_EXEC_TOTAL_BYTES;
  return Math.max(MIN_EXEC_TOTAL_BYTES, Math.min(MAX_EXEC_TOTAL_BYTES, quarter));
}

function spawnFailed(reason: string): SwitchboardError {
  return new SwitchboardError("SPAWN_FAILED", reason);
}
