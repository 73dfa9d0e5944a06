import { createRequire } from "node:module";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { IntervalHistogram } from "node:perf_hooks";
import { Gauge } from "prom-client";
import type { Registry } from "prom-client";
import type { Clock } from "../../core/clock.js";
import { WorkTimer } from "../../core/work-timer.js";
import { registerProcessCpu } from "./process-cpu.js";

/**
 * How often the event loop's delay is sampled (`nodejs_eventloop_lag_*`), while it is: each sample
 * is a wake of the loop. prom-client's default, 10 ms, woke an idle gateway 100 times a second.
 * A stall of the loop longer than this is always seen; a shorter one when a sample falls in it.
 */
export const EVENT_LOOP_SAMPLE_MS = 1_000;
/** Sampling stops when no scrape came for this long (at most twice this), so an unwatched gateway sleeps. */
export const EVENT_LOOP_SAMPLE_IDLE_MS = 5 * 60_000;

/**
 * prom-client's default metrics but its event loop delay, whose sampler it starts at once and
 * never stops, and its CPU counters ({@link registerProcessCpu}): each module registers its
 * gauges, read at scrape time (`collect`).
 */
const DEFAULT_METRICS = [
  "processStartTime",
  "osMemoryHeap",
  "processOpenFileDescriptors",
  "processMaxFileDescriptors",
  "processResources",
  "processHandles",
  "processRequests",
  "heapSizeAndUsed",
  "heapSpacesSizeAndUsed",
  "version",
  "gc",
] as const;

/** Registers prom-client's default metrics on `registry`, with {@link registerEventLoopDelay} for the loop's delay. */
export function registerDefaultMetrics(registry: Registry, clock: Clock): { close(): void } {
  const load = createRequire(import.meta.url);
  registerProcessCpu(registry);
  for (const name of DEFAULT_METRICS) {
    const register = load(`prom-client/lib/metrics/${name}`) as (registry: Registry, config: object) => void;
    register(registry, {});
  }
  return registerEventLoopDelay(registry, clock);
}

/**
 * The `nodejs_eventloop_lag_*` gauges prom-client names (so dashboards work), sampled from the
 * first scrape on until none came for {@link EVENT_LOOP_SAMPLE_IDLE_MS}: a scrape reads what was
 * sampled since the one before. `nodejs_eventloop_lag_seconds` is measured at each scrape.
 */
export function registerEventLoopDelay(registry: Registry, clock: Clock): { close(): void } {
  let histogram: IntervalHistogram | undefined;
  const sampling = new WorkTimer({
    clock,
    everyMs: EVENT_LOOP_SAMPLE_IDLE_MS,
    run: () => undefined,
    onSleep: () => {
      histogram?.disable();
      histogram = undefined;
    },
  });
  const registers = [registry];
  const parts = [
    ["min", "The minimum recorded event loop delay.", (h: IntervalHistogram) => h.min],
    ["max", "The maximum recorded event loop delay.", (h: IntervalHistogram) => h.max],
    ["mean", "The mean of the recorded event loop delays.", (h: IntervalHistogram) => h.mean],
    ["stddev", "The standard deviation of the recorded event loop delays.", (h: IntervalHistogram) => h.stddev],
    ["p50", "The 50th percentile of the recorded event loop delays.", (h: IntervalHistogram) => h.percentile(50)],
    ["p90", "The 90th percentile of the recorded event loop delays.", (h: IntervalHistogram) => h.percentile(90)],
    ["p99", "The 99th percentile of the recorded event loop delays.", (h: IntervalHistogram) => h.percentile(99)],
  ] as const;
  // First, and setting the others before it waits: a scrape reads the gauges in this order.
  new Gauge({
    name: "nodejs_eventloop_lag_seconds",
    help: "Lag of event loop in seconds.",
    registers,
    async collect() {
      sampling.wake();
      if (histogram === undefined) {
        histogram = monitorEventLoopDelay({ resolution: EVENT_LOOP_SAMPLE_MS });
        histogram.enable();
      } else if (histogram.count > 0) {
        for (const { of, gauge } of gauges) gauge.set(of(histogram) / 1e9);
        histogram.reset();
      }
      const start = process.hrtime.bigint();
      await new Promise((resolve) => setImmediate(resolve));
      this.set(Number(process.hrtime.bigint() - start) / 1e9);
    },
  });
  const gauges = parts.map(([name, help, of]) => ({
    of,
    gauge: new Gauge({ name: `nodejs_eventloop_lag_${name}_seconds`, help, registers }),
  }));
  return {
    close() {
      sampling.close();
      histogram?.disable();
    },
  };
}
