import { fstatSync } from "node:fs";
import { loadAddon } from "../system/native-addon.js";

/** How often a follower asks whether its output's reader is gone: once a second, as `tail -f` does. */
export const READER_CHECK_MS = 1_000;

/**
 * Calls `onGone` once the reader of `fd` (stdout) is gone — every reader of a pipe closed it, or
 * a socket's peer hung up — asking every {@link READER_CHECK_MS} without writing a byte.
 *
 * A process learns that otherwise only when it next writes (EPIPE): `switchboard logs -f ID |
 * grep -m1 ready` on a session that prints `ready` and goes quiet would outlive `grep` until the
 * session's next output, perhaps for good. Returns the function that stops watching. Watches
 * nothing when `fd` is a file or a terminal (a terminal that goes away sends SIGHUP), or where
 * native/fd_hangup.c is not built.
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
