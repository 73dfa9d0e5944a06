import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { registerProcessCpu } from "../../src/server/ops/process-cpu.js";

async function seconds(registry: Registry): Promise<Record<string, number>> {
  const values: Record<string, number> = {};
  for (const metric of await registry.getMetricsAsJSON()) values[metric.name] = metric.values[0]!.value;
  return values;
}

/** Runs until this process has spent `ms` more of user CPU (not wall time: a loaded host gives less). */
function spinCpu(ms: number): void {
  const end = process.cpuUsage().user + ms * 1000;
  while (process.cpuUsage().user < end);
}

describe("the process's CPU counters", () => {
  it("count from the process's start, user and system adding up to the total, and grow by the CPU spent", async () => {
    const registry = new Registry();
    registerProcessCpu(registry);
    const atStart = process.cpuUsage();
    const first = await seconds(registry);
    expect(Object.keys(first).sort()).toEqual([
      "process_cpu_seconds_total",
      "process_cpu_system_seconds_total",
      "process_cpu_user_seconds_total",
    ]);
    // The CPU this test process spent before the registry existed is counted (prom-client's
    // module counted from its registration on).
    expect(first.process_cpu_seconds_total).toBeGreaterThanOrEqual((atStart.user + atStart.system) / 1e6);
    expect(first.process_cpu_user_seconds_total! + first.process_cpu_system_seconds_total!).toBeCloseTo(
      first.process_cpu_seconds_total!,
      6,
    );

    const afterFirst = process.cpuUsage();
    spinCpu(200);
    const beforeSecond = process.cpuUsage();
    const second = await seconds(registry);
    const afterSecond = process.cpuUsage();
    // The counter grew by the user CPU spent between the two reads: at least what was spent
    // between the scrapes, at most that and both scrapes' own (1e-9: the float sums' rounding).
    const grown = second.process_cpu_user_seconds_total! - first.process_cpu_user_seconds_total!;
    expect(grown).toBeGreaterThanOrEqual((beforeSecond.user - afterFirst.user) / 1e6 - 1e-9);
    expect(grown).toBeLessThanOrEqual((afterSecond.user - atStart.user) / 1e6 + 1e-9);
    expect(second.process_cpu_seconds_total).toBeGreaterThanOrEqual(second.process_cpu_user_seconds_total!);
    expect(second.process_cpu_user_seconds_total! + second.process_cpu_system_seconds_total!).toBeCloseTo(
      second.process_cpu_seconds_total!,
      6,
    );
  });
});
