// switchboard_acp_unknown_updates_total counts ACP session/update variants the gateway does not
// know by name, under a bounded set of labels: an agent inventing names cannot grow the metrics.
import { describe, expect, it } from "vitest";
import { GatewayMetrics, MAX_UNKNOWN_UPDATE_LABELS } from "../../src/server/ops/metrics.js";

describe("switchboard_acp_unknown_updates_total", () => {
  it("labels at most MAX_UNKNOWN_UPDATE_LABELS variant names, the rest and odd names as other", async () => {
    const metrics = new GatewayMetrics();
    try {
      metrics.countUnknownAcpUpdate("future_update");
      metrics.countUnknownAcpUpdate("future_update");
      metrics.countUnknownAcpUpdate('bad"name\n');
      for (let i = 0; i < MAX_UNKNOWN_UPDATE_LABELS * 3; i++) metrics.countUnknownAcpUpdate(`invented_${i}`);
      const values = (await metrics.acpUnknownUpdates.get()).values;
      const byLabel = new Map(values.map((v) => [v.labels.variant as string, v.value]));
      expect(byLabel.get("future_update")).toBe(2);
      expect(byLabel.size).toBeLessThanOrEqual(MAX_UNKNOWN_UPDATE_LABELS + 1);
      expect(byLabel.has('bad"name\n')).toBe(false);
      // Every count is kept: the labels that did not fit count as other.
      expect([...byLabel.values()].reduce((a, b) => a + b, 0)).toBe(3 + MAX_UNKNOWN_UPDATE_LABELS * 3);
      const invented = [...byLabel.keys()].filter((label) => label.startsWith("invented_")).length;
      expect(invented).toBeGreaterThan(0);
      expect(byLabel.get("other")).toBe(1 + MAX_UNKNOWN_UPDATE_LABELS * 3 - invented);
    } finally {
      metrics.close();
    }
  });
});
