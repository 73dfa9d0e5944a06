import { Counter, Gauge, type Registry } from "prom-client";
import { PLUGIN_STATES, type PluginState } from "./types.js";

export const CALL_OUTCOMES = ["ok", "denied", "error", "timeout"] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

/** The plugin system's Prometheus metrics, registered on the gateway's registry and removed on `dispose`. */
export class PluginMetrics {
  private readonly state: Gauge<"plugin" | "state">;
  private readonly calls: Counter<"plugin" | "method" | "outcome">;
  private readonly restarts: Counter<"plugin">;
  private readonly logDropped: Counter<"plugin">;
  private readonly hookRequests: Counter<"plugin" | "access" | "status">;

  constructor(private readonly registry: Registry | undefined) {
    const registers = registry ? [registry] : [];
    this.state = new Gauge({
      name: "switchboard_plugin_state",
      help: "1 for the state each plugin is in, 0 for the others",
      labelNames: ["plugin", "state"],
      registers,
    });
    this.calls = new Counter({
      name: "switchboard_plugin_calls_total",
      help: "Runtime API calls made by plugins, by method and outcome",
      labelNames: ["plugin", "method", "outcome"],
      registers,
    });
    this.restarts = new Counter({
      name: "switchboard_plugin_restarts_total",
      help: "Plugin restarts after a crash or hang",
      labelNames: ["plugin"],
      registers,
    });
    this.logDropped = new Counter({
      name: "switchboard_plugin_log_lines_dropped_total",
      help: "Plugin log lines (API log, stdout, stderr) dropped by the rate limit (logLinesPerSecond)",
      labelNames: ["plugin"],
      registers,
    });
    this.hookRequests = new Counter({
      name: "switchboard_plugin_hook_requests_total",
      help: "Requests to plugins' HTTP hooks, by access (public: /hooks/<id>/…, token: /v1/plugins/<id>/http/…) and answer status class",
      labelNames: ["plugin", "access", "status"],
      registers,
    });
  }

  setState(plugin: string, state: PluginState): void {
    for (const s of PLUGIN_STATES) this.state.set({ plugin, state: s }, s === state ? 1 : 0);
  }

  /** The plugin is gone from the config: its series go too. */
  remove(plugin: string): void {
    for (const s of PLUGIN_STATES) this.state.remove({ plugin, state: s });
  }

  call(plugin: string, method: string, outcome: CallOutcome): void {
    this.calls.inc({ plugin, method, outcome });
  }

  restart(plugin: string): void {
    this.restarts.inc({ plugin });
  }

  logLinesDropped(plugin: string, count: number): void {
    this.logDropped.inc({ plugin }, count);
  }

  /** A hook request answered with `status` (counted by class, `2xx` to `5xx`: a plugin picks any status). */
  hookRequest(plugin: string, access: "public" | "token", status: number): void {
    this.hookRequests.inc({ plugin, access, status: `${Math.floor(status / 100)}xx` });
  }

  dispose(): void {
    if (!this.registry) return;
    for (const name of [
      "switchboard_plugin_state",
      "switchboard_plugin_calls_total",
      "switchboard_plugin_restarts_total",
      "switchboard_plugin_log_lines_dropped_total",
      "switchboard_plugin_hook_requests_total",
    ])
      this.registry.removeSingleMetric(name);
  }
}
