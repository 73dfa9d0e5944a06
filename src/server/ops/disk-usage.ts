import { opendir, lstat } from "node:fs/promises";
import { join } from "node:path";

/** A measured data directory is measured again after this long at the earliest. */
export const DISK_USAGE_CACHE_MS = 10_000;
/** Entries one measurement reads at most: past it, the answer says it is partial. */
export const DISK_USAGE_MAX_ENTRIES = 200_000;

export interface DiskUsage {
  /** Bytes of the files under the data directory (their sizes). */
  bytes: number;
  files: number;
  /** True when {@link DISK_USAGE_MAX_ENTRIES} stopped the count: `bytes` is a lower bound. */
  partial: boolean;
  measuredAt: number;
}

/**
 * The size of the data directory, for admins (`GET /v1/admin/disk`). Walks it asynchronously,
 * one directory entry at a time (each `lstat` is its own turn of the event loop), and keeps
 * the answer {@link DISK_USAGE_CACHE_MS}, so that a page polling it costs one walk per window.
 */
export class DiskUsageMeter {
  private last: DiskUsage | undefined;
  private running: Promise<DiskUsage> | undefined;

  constructor(
    private readonly dir: string,
    private readonly now: () => number,
  ) {}

  measure(): Promise<DiskUsage> {
    if (this.last !== undefined && this.now() - this.last.measuredAt < DISK_USAGE_CACHE_MS)
      return Promise.resolve(this.last);
    this.running ??= this.walk().finally(() => (this.running = undefined));
    return this.running;
  }

  private async walk(): Promise<DiskUsage> {
    const usage: DiskUsage = { bytes: 0, files: 0, partial: false, measuredAt: this.now() };
    const dirs = [this.dir];
    let entries = 0;
    while (dirs.length > 0) {
      const dir = dirs.pop()!;
      let handle;
      try {
        handle = await opendir(dir);
      } catch (error) {
        // Removed meanwhile (a session's output directory, by retention): nothing to count.
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw error;
      }
      for await (const entry of handle) {
        if (++entries > DISK_USAGE_MAX_ENTRIES) {
          usage.partial = true;
          break;
        }
        const path = join(dir, entry.name);
        if (entry.isDirectory()) dirs.push(path);
        else if (entry.isFile()) {
          const stat = await lstat(path).catch((error: NodeJS.ErrnoException) => {
            // Removed between the listing and the stat: not there to count.
            if (error.code === "ENOENT") return undefined;
            throw error;
          });
          if (stat === undefined) continue;
          usage.bytes += stat.size;
          usage.files++;
        }
      }
      if (usage.partial) break;
    }
    this.last = usage;
    return usage;
  }
}
