import { realpathSync, statSync, watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { Logger } from "./logger.js";

/** What `file` leads to: its real path, and that file's inode, size and modification time. */
function configFingerprint(file: string): string {
  try {
    const real = realpathSync(file);
    const stat = statSync(real);
    return `${real}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  } catch {
    return "";
  }
}

/** How long a burst of file change notifications is collapsed into one reload. */
export const CONFIG_WATCH_DEBOUNCE_MS = 200;

/**
 * Reloads when the config file changes. Editors replace files, so the directory is watched. A
 * config that is a symbolic link may change without an event naming it: Kubernetes mounts a
 * ConfigMap as `cfg.json -> ..data/cfg.json` and swaps the `..data` link. So any other change in
 * the directory reloads too when what the file leads to (its target and that one's inode, size
 * and time) is no longer what it was.
 */
export function watchConfig(file: string, reload: () => unknown, logger: Logger): { close(): void } {
  const dir = dirname(resolve(file));
  const name = basename(file);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let watcher: FSWatcher | undefined;
  let seen = configFingerprint(file);
  try {
    let named = false;
    watcher = watch(dir, (_event, changed) => {
      named ||= changed === null || changed === name;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        const now = configFingerprint(file);
        const moved = now !== seen;
        seen = now;
        if (named || moved) reload();
        named = false;
      }, CONFIG_WATCH_DEBOUNCE_MS);
      timer.unref();
    });
    watcher.unref();
  } catch (error) {
    logger.warn({ err: (error as Error).message }, "cannot watch the config file; reload with SIGHUP");
  }
  return {
    close() {
      if (timer) clearTimeout(timer);
      watcher?.close();
    },
  };
}
