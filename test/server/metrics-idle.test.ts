import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

/**
 * Creates the gateway's metrics in a process of their own, lets it idle for a second and prints
 * how often its main thread slept and woke meanwhile (voluntary context switches: each wait of the
 * event loop that ended is one). Nothing else runs there, so the count is the metrics' timers.
 */
const CHILD = `
import { readFileSync } from "node:fs";
const { GatewayMetrics } = await import("./src/server/ops/metrics.ts");
const switches = () => Number(/^voluntary_ctxt_switches:\\s+(\\d+)/m.exec(readFileSync("/proc/thread-self/status", "utf8"))[1]);
const metrics = new GatewayMetrics();
await metrics.registry.metrics();
await new Promise((resolve) => setTimeout(resolve, 200));
const before = switches();
await new Promise((resolve) => setTimeout(resolve, 1000));
console.log(switches() - before);
`;

describe("the gateway's metrics while idle", () => {
  // Counts from /proc, as the gateway itself does (fd-monitor): Linux, where CI runs.
  it("do not wake the event loop more than a few times a second", () => {
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", CHILD], {
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(child.stderr).toBe("");
    const wakeups = Number(child.stdout.trim());
    expect(Number.isInteger(wakeups)).toBe(true);
    // The second's own timer, a sample or two of the event loop's delay (EVENT_LOOP_SAMPLE_MS) and
    // some slack for the machine; prom-client's 10 ms default woke it about 100 times.
    expect(wakeups).toBeLessThan(20);
  });
});
