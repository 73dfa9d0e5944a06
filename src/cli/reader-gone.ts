import { fstatSync } from "node:fs";
import { loadAddon } from "../system/native-addon.js";

/** How often a follower asks whether its output's reader is gone: once a second, as `tail -f` does. */
export const READER_CHECK_MS = 1_000;

/**
 * Calls `onGone` once the reader of pipe or socket `fd` is gone, checking every
 * {@link READER_CHECK_MS} without writing: else `logs -f ID | grep -m1 ready` outlives `grep`
 * until the next output (EPIPE). Returns the stop function. Watches nothing for a file or a
 * terminal (SIGHUP tells), or without native/fd_hangup.c.
 */
export function watchReader(onGone: () => void, fd = 1, everyMs = READER_CHECK_MS): () => void {
  if (addon === null || !pipeOrSocket(fd)) return () => undefined;
  const { hangup } = addon;
  const timer = setInterval(() => {
    if (!hangup(fd)) return;
    clearInterval(timer);
    onGone();
  }, everyMs);
  // It must not keep the process alive by itself.
  timer.unref();
  return () => clearInterval(timer);
}

function pipeOrSocket(fd: number): boolean {
  try {
    const stat = fstatSync(fd);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}

/** The addon's function; see native/fd_hangup.c. */
interface FdHangup {
  /** Whether poll(2) reports POLLERR or POLLHUP on `fd`, without waiting. */
  hangup(fd: number): boolean;
}

const addon = loadAddon<FdHangup>("fd_hangup");

/** For tests: whether the addon is built and loaded. */
export function readerWatchAvailable(): boolean {
  return addon !== null;
}
