import type { Logger } from "./logger.js";
import type { DataDirLock } from "./data-dir-lock.js";
import type { LogWriteFailure } from "../log/store.js";

/** How often the gateway checks that its data directory is still where it was. */
export const DATA_DIR_CHECK_MS = 5_000;

/**
 * Checks every {@link DATA_DIR_CHECK_MS} that the data directory was not removed or replaced
 * while the gateway runs (`rm -rf .switchboard`, a cleaner of /tmp). SQLite goes on writing into
 * the deleted files without an error, so nothing else would notice: once it is gone, the gateway
 * says so in its log, once, and `refuse` makes the log refuse new work (LOG_UNAVAILABLE, and
 * `switchboard_log_writable` 0), as on a full disk. Nothing brings the old files back: it stays
 * so until the gateway is restarted.
 */
export function watchDataDir(options: {
  dataDir: string;
  lock: DataDirLock;
  logger: Logger;
  refuse: (failure: LogWriteFailure) => void;
}): { close(): void } {
  const timer = setInterval(() => {
    if (options.lock.inPlace()) return;
    clearInterval(timer);
    const message = `the data directory ${options.dataDir} was removed or replaced while the gateway ran: what it records now goes to deleted files and is lost when it stops; stop the gateway (it ends its sessions) and start it again`;
    options.logger.error({ code: "DATA_DIR_GONE", dataDir: options.dataDir }, message);
    options.refuse({ message, code: "DATA_DIR_GONE", since: Date.now(), attempts: 0 });
  }, DATA_DIR_CHECK_MS);
  timer.unref();
  return { close: () => clearInterval(timer) };
}
