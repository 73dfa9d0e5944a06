import { watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { join } from "node:path";
import type { Logger } from "./logger.js";
import { DATA_DIR_LOCK_FILE } from "./data-dir-lock.js";
import type { DataDirLock } from "./data-dir-lock.js";
import type { LogWriteFailure } from "../../log/store.js";
import { Disposables } from "../../system/disposables.js";

/** How often the gateway checks that its data directory is still where it was, where it cannot watch its lock file. */
export const DATA_DIR_CHECK_MS = 5_000;

/**
 * Notices the data directory removed or replaced while the gateway runs (SQLite would go on
 * writing into deleted files): the lock file is watched (inotify), else checked every
 * {@link DATA_DIR_CHECK_MS}. Once gone, the gateway logs it once and `refuse` makes the log refuse
 * new work (LOG_UNAVAILABLE) until a restart.
 */
export function watchDataDir(options: {
  dataDir: string;
  lock: DataDirLock;
  logger: Logger;
  refuse: (failure: LogWriteFailure) => void;
}): { close(): void } {
  let watcher: FSWatcher | undefined;
  const owned = new Disposables();
  owned.add(() => watcher?.close());
  const check = () => {
    if (options.lock.inPlace()) return;
    owned.dispose();
    const message = `the data directory ${options.dataDir} was removed or replaced while the gateway ran: what it records now goes to deleted files and is lost when it stops; stop the gateway (it ends its sessions) and start it again`;
    options.logger.error({ code: "DATA_DIR_GONE", dataDir: options.dataDir }, message);
    options.refuse({ message, code: "DATA_DIR_GONE", since: Date.now(), attempts: 0 });
  };
  const timers = owned.timers({
    poll: {
      after: DATA_DIR_CHECK_MS,
      fire: () => {
        timers.start("poll");
        check();
      },
    },
  });
  const poll = () => timers.start("poll");
  try {
    watcher = watch(join(options.dataDir, DATA_DIR_LOCK_FILE), { persistent: false }, check);
    watcher.on("error", (error) => {
      // inotify gave up on the file (its watch was dropped): the check goes on by polling.
      options.logger.debug({ err: error }, "watching the data directory's lock file failed; checking it on a timer");
      watcher?.close();
      watcher = undefined;
      poll();
    });
  } catch (error) {
    options.logger.debug({ err: error }, "cannot watch the data directory's lock file; checking it on a timer");
    poll();
  }
  return { close: () => owned.dispose() };
}
