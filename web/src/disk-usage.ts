import type { AppContext } from "./context.js";
import { h } from "./dom.js";
import { errorText } from "./format.js";

/** How often the admin's disk line is fetched again while the list shows. */
export const DISK_REFRESH_MS = 60_000;

/** Bytes as people read them: `812 KiB`, `1.4 GiB`. */
export function byteSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 || value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

function days(ms: number): string {
  const d = ms / 86_400_000;
  return d >= 1 ? `${Math.round(d * 10) / 10} days` : `${Math.round(ms / 3_600_000)} h`;
}

/**
 * For admins, under the session list: what the data directory takes (`GET /v1/admin/disk`) and
 * the rule that removes ended sessions (docs/operations.md, "Disk"). Refreshed every
 * {@link DISK_REFRESH_MS}.
 */
export class DiskUsageLine {
  readonly element: HTMLElement;
  private readonly timer: ReturnType<typeof setInterval>;
  private disposed = false;

  constructor(private readonly ctx: AppContext) {
    this.element = h("p", { class: "list-disk", "data-test": "disk-usage" });
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), DISK_REFRESH_MS);
  }

  dispose(): void {
    this.disposed = true;
    clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    try {
      const disk = await this.ctx.http.diskUsage();
      if (this.disposed) return;
      const { maxAgeMs, maxTotalBytes } = disk.retention;
      const rule = [
        maxAgeMs !== null ? `kept ${days(maxAgeMs)}` : "kept with no age limit",
        maxTotalBytes !== null ? `up to ${byteSize(maxTotalBytes)}` : "with no size cap",
      ].join(", ");
      this.element.textContent = `Data directory: ${disk.dataDir.partial ? "over " : ""}${byteSize(disk.dataDir.bytes)} · ended sessions: ${disk.endedSessions.count} (${byteSize(disk.endedSessions.bytes)}), ${rule}`;
      this.element.dataset["bytes"] = String(disk.dataDir.bytes);
    } catch (error) {
      if (!this.disposed) this.element.textContent = `Data directory size unknown: ${errorText(error)}`;
    }
  }
}
