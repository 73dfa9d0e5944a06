import { SwitchboardError } from "../../protocol/index.js";
import type { GatewayCore } from "../context.js";
import { DiskUsageMeter } from "../ops/disk-usage.js";
import { sendJson } from "../http/http.js";
import type { Router } from "../http/router.js";

/**
 * `GET /v1/admin/disk` (admins only): what the data directory takes, what ended sessions' logs
 * take of it, and the rule that removes them (docs/operations.md, "Disk").
 */
export function diskRoutes(router: Router, core: GatewayCore): void {
  const meter = new DiskUsageMeter(core.dataDir, () => core.clock.now());
  router.add("GET", "/v1/admin/disk", async (ctx) => {
    if (ctx.identity.role !== "admin")
      throw new SwitchboardError("FORBIDDEN", "only admins see the data directory's size");
    const usage = await meter.measure();
    let count = 0;
    let bytes = 0;
    for (const s of core.sessions.list()) {
      if (s.running) continue;
      count++;
      bytes += s.log.storedState.retainedBytes;
    }
    const rule = core.endedRetention();
    sendJson(ctx.res, 200, {
      dataDir: { bytes: usage.bytes, files: usage.files, partial: usage.partial, measuredAt: usage.measuredAt },
      endedSessions: { count, bytes },
      retention: {
        maxAgeMs: rule.maxAgeMs ?? null,
        maxCount: rule.maxCount ?? null,
        maxTotalBytes: rule.maxTotalBytes ?? null,
      },
    });
  });
}
