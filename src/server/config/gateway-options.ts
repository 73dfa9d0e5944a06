// The gateway's options and what every start step reads from them (the config, the shared
// services); apart from gateway.ts so that the steps in other modules can read them too.
import { systemClock } from "../../core/clock.js";
import type { Agent as HttpsAgent } from "node:https";
import type { Clock } from "../../core/clock.js";
import type { EndedRetentionSetting } from "../../log/ended-retention.js";
import { CatchUpPacing } from "../ws/catch-up.js";
import type { ClusterOptions } from "../cluster/cluster-mode.js";
import { resolveLimits } from "./config.js";
import type { Config, ConfigInput, Limits } from "./config.js";
import type { DataDirLock } from "../ops/data-dir-lock.js";
import { createLogger } from "../ops/logger.js";
import type { Logger } from "../ops/logger.js";
import { GatewayMetrics } from "../ops/metrics.js";
import { buildSettings } from "./settings.js";
import type { Settings } from "./settings.js";
import { DEFAULT_HOST } from "./listen-defaults.js";

export { DEFAULT_HOST, DEFAULT_PORT } from "./listen-defaults.js";

export interface GatewayOptions {
  host?: string;
  port?: number;
  dataDir: string;
  /** Admin token. Without one, one is generated into DATA_DIR/token on first start (and read from there after), configured tokens or not. */
  token?: string;
  /** A config file path or a config object (validated like a file). */
  config?: string | ConfigInput;
  /** Reload when the config file changes (default true). */
  watchConfig?: boolean;
  clock?: Clock;
  logger?: Logger;
  /** How often ended sessions are checked against `retention.endedSessions` (default 60 s). */
  pruneIntervalMs?: number;
  /** `retention.endedSessions` as `serve --ended-max-age/--ended-max-bytes` (or their variables) set it, ahead of the config. */
  endedSessions?: EndedRetentionSetting;
  /** Cluster mode (docs/cluster.md), ahead of the config's `cluster` section. */
  cluster?: ClusterOptions;
  /**
   * Serve HTTPS (and WSS) with this certificate and key, PEM (`serve --tls-cert/--tls-key`):
   * Node's own TLS, HTTP/1.1. The session cookie is then always `Secure`.
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** The HTTPS agent Web Push requests go through (tests: one that trusts their push endpoint's certificate). */
  pushAgent?: HttpsAgent;
  /** Hosts push endpoints may name (default PUSH_SERVICE_HOSTS; tests: their push endpoint's). */
  pushServiceHosts?: readonly string[];
  /** Count loopback peers against `limits.anonymousConnectionsPerAddress` too (tests: they only have loopback). */
  countLoopbackConnections?: boolean;
  /** Run terminal sessions under holders: `serve --holders`, ahead of the config's `sessions.holders`. */
  holders?: boolean;
  /**
   * Run terminal sessions under holders when neither `holders` nor the config's `sessions.holders`
   * says (`serve`: true; embedded and test gateways: false).
   */
  holdersByDefault?: boolean;
}

/** What every step reads: the options, the start config and the shared services. */
export interface Base {
  options: GatewayOptions;
  dataDir: string;
  lock: DataDirLock;
  undo: Array<() => unknown>;
  clock: Clock;
  logger: Logger;
  metrics: GatewayMetrics;
  settings: Settings;
  config: Config;
  limits: Limits;
  host: string;
  hasPlugins: boolean;
  /** Catch-up pacing, shared by feeds, exports and (cluster mode) the copies of other nodes' sessions. */
  catchUp: CatchUpPacing;
}

/** Reads the options and the config (said at once without plugins, else once they started). */
export function baseOf(options: GatewayOptions, dataDir: string, lock: DataDirLock, undo: Array<() => unknown>): Base {
  const logger = options.logger ?? createLogger();
  const settings = buildSettings(options.config);
  const config = settings.config;
  const hasPlugins = Object.keys(config.plugins ?? {}).length > 0;
  // With plugins, the warnings wait for them (see configWarnings).
  if (!hasPlugins) for (const w of settings.warnings) logger.warn({ warning: w }, "config");
  return {
    options,
    dataDir,
    lock,
    undo,
    clock: options.clock ?? systemClock,
    logger,
    metrics: new GatewayMetrics(),
    settings,
    config,
    limits: resolveLimits(config),
    host: options.host ?? DEFAULT_HOST,
    hasPlugins,
    catchUp: new CatchUpPacing((error) => logger.error({ err: error }, "a catch-up read failed")),
  };
}
