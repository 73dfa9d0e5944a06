import { Counter } from "prom-client";
import type { Registry } from "prom-client";

/**
 * `process_cpu_user_seconds_total`, `process_cpu_system_seconds_total` and
 * `process_cpu_seconds_total`, as prom-client's default metric names them, read at each scrape.
 * prom-client's own module loads `@opentelemetry/api` (18 modules, ~30 ms of a start's CPU) for
 * exemplars this registry never has. These count from the process's start, as Prometheus's
 * client libraries for other languages do, not from the registration.
 */
export function registerProcessCpu(registry: Registry): void {
  let counted = { user: 0, system: 0 };
  const registers = [registry];
  const user = new Counter({
    name: "process_cpu_user_seconds_total",
    help: "Total user CPU time spent in seconds.",
    registers,
    // One collect sets all three, before the registry reads any of them (it reads in this order).
    collect() {
      const now = process.cpuUsage();
      const userSeconds = (now.user - counted.user) / 1e6;
      const systemSeconds = (now.system - counted.system) / 1e6;
      counted = now;
      user.inc(userSeconds);
      system.inc(systemSeconds);
      total.inc(userSeconds + systemSeconds);
    },
  });
  const system = new Counter({
    name: "process_cpu_system_seconds_total",
    help: "Total system CPU time spent in seconds.",
    registers,
  });
  const total = new Counter({
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    registers,
  });
}
