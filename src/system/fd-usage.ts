import { readFileSync, readdirSync, statSync } from "node:fs";

/*
 * How many file descriptors the gateway has open, against its limit (RLIMIT_NOFILE), as Linux
 * shows them in /proc; Node has no API for either. Elsewhere nothing is known (null), and
 * failures are reported as they come.
 */

/** Open file descriptors of this process and its limit. */
export interface FdUsage {
  open: number;
  limit: number;
}

/**
 * The most descriptors starting one process takes at once: a pipe session three socket pairs
 * (6) and libuv's pipe for an exec error (2); a PTY two (master and slave). With fewer free,
 * a spawn fails for lack of them.
 */
export const SPAWN_FDS = 8;

/** The last limit read: at the limit /proc/self/limits cannot be opened, and the limit rarely changes. */
let knownLimit: number | null | undefined;

/**
 * The soft limit, from `/proc/self/limits` (null where unknown or unlimited). Node raises the
 * soft limit to the hard one when it starts, so this is in effect the hard limit.
 */
function readFdLimit(): number | null {
  try {
    const line = readFileSync("/proc/self/limits", "latin1")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = Number(line?.slice("Max open files".length).trim().split(/\s+/)[0]);
    knownLimit = Number.isInteger(soft) && soft > 0 ? soft : null;
  } catch (error) {
    // EMFILE, ENFILE: no descriptor left to read it with (the gateway's, the system's); keep the
    // last one read. ENOENT: no /proc.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EMFILE" && code !== "ENFILE") knownLimit = null;
  }
  return knownLimit ?? null;
}

/**
 * Open descriptors. Linux ≥ 6.2 gives the count as the size of `/proc/self/fd`, which costs
 * no descriptor and about 20 µs at any count; older kernels report 0 there, and then the
 * directory is listed (about 2 ms per 1,000 descriptors, and it needs a descriptor itself:
 * when none is left the count is the limit). Null without /proc.
 */
function countOpenFds(limit: number | null): number | null {
  try {
    const size = statSync("/proc/self/fd").size;
    if (size > 0) return size;
  } catch {
    // No /proc (not Linux): nothing to count with.
    return null;
  }
  try {
    // Minus the descriptor the listing itself used.
    return readdirSync("/proc/self/fd").length - 1;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EMFILE" ? limit : null;
  }
}

/** Both, or null where either is unknown. Not for a hot path: callers rate-limit it. */
export function readFdUsage(): FdUsage | null {
  const limit = readFdLimit();
  const open = countOpenFds(limit);
  return limit === null || open === null ? null : { open, limit };
}
