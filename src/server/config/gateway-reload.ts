import { realpathSync, statSync, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { DEFAULT_LIMITS } from "./config.js";
import type { Config, Limits } from "./config.js";
import type { GatewayCore } from "../context.js";
import { TOKEN_PRINCIPAL_PREFIX, TokenRegistry } from "../identity/auth.js";
import { HTTP_HOLDER_PREFIX } from "../http/http-constants.js";
import { buildSettings } from "./settings.js";
import type { RoutingTable, Settings } from "./settings.js";
import type { Session } from "../../sessions/session.js";
import { REVOKED } from "../ws/ws-common.js";
import type { Logger } from "../ops/logger.js";
import { Disposables } from "../../system/disposables.js";

/** What a reload swaps; the core reads both through getters. */
export interface LiveSettings {
  settings: Settings;
  tokens: TokenRegistry;
}

export type ReloadResult = { ok: true; warnings: string[] } | { ok: false; error: string };

/**
 * The gateway's `reload()`: re-reads the config file and swaps settings, tokens, routing and
 * plugins at once, or changes nothing and says why. Connections and HTTP leases of revoked or
 * changed tokens end. Settings read at start only (limits, retention, `control`, hosts, origins)
 * give a warning ({@link startOnlyChanges}); `retention.endedSessions` applies from the next
 * pruner pass. docs/cli.md (`serve`), docs/protocol.md close code 1008.
 */
export function configReloader(input: {
  configFile: string | undefined;
  core: GatewayCore;
  live: LiveSettings;
  routing: RoutingTable;
  adminToken: string;
  uiSessionsFile: string;
}): () => ReloadResult {
  const { configFile, core, live, routing, adminToken, uiSessionsFile } = input;
  const logger = core.logger;
  const started = live.settings.config;
  return () => {
    if (configFile === undefined) return { ok: false, error: "no config file to reload (the config was given inline)" };
    try {
      const next = buildSettings(configFile, core.pluginAgents.keys());
      const previous = live.tokens;
      const nextTokens = new TokenRegistry(next.config.auth.tokens, adminToken, uiSessionsFile, previous, {
        devices: core.devices,
        shares: core.shares,
        trustedProxy: next.config.auth.trustedProxy,
      });
      live.settings = next;
      live.tokens = nextTokens;
      // Open connections hold the identity they were opened with: those the new tokens no longer
      // grant (removed, or a role or globs changed) are ended, or a revoked token would go on.
      const revoked = core.connections.revokeUnless((identity) => nextTokens.has(identity), REVOKED);
      if (revoked > 0) logger.info({ connections: revoked }, "closed the connections of revoked or changed tokens");
      // Their control leases went with their connections; HTTP callers hold theirs by principal,
      // and a lease of a revoked token would keep everyone else from steering until it expired.
      const granted = (principal: string) => {
        const before = previous.byPrincipal(principal);
        return before !== undefined && nextTokens.has(before);
      };
      const released = releaseRevokedLeases(core.sessions.list(), granted);
      // A removed token's browsers are notified no more, and the buttons they got answer nothing.
      const gone = (principal: string) => principal.startsWith(TOKEN_PRINCIPAL_PREFIX) && !granted(principal);
      core.push.subscriptions.forget((t) => gone(t.principal));
      core.push.actions.forget((g) => gone(g.principal));
      if (released > 0) logger.info({ sessions: released }, "released the control leases of revoked or changed tokens");
      routing.replace(next.router);
      void core.plugins
        ?.load(next.config.plugins ?? {})
        .catch((error: unknown) => logger.error({ err: error }, "plugin reload failed"));
      const warnings = [...next.warnings];
      const restartOnly = startOnlyChanges(started, next.config);
      if (restartOnly.length > 0)
        warnings.push(
          restartOnly.length === 1
            ? `${restartOnly[0]} changed: it is read at start only and applies after a restart`
            : `${restartOnly.join(", ")} changed: they are read at start only and apply after a restart`,
        );
      // At warn when it comes with warnings: a reload that ignores a setting is not routine.
      logger[warnings.length > 0 ? "warn" : "info"]({ warnings }, "config reloaded");
      return { ok: true, warnings };
    } catch (error) {
      const message = (error as Error).message;
      // With a code to alert on, as every other refusal has.
      logger.error({ code: "CONFIG_INVALID", err: message }, "config reload refused; keeping the previous config");
      return { ok: false, error: message };
    }
  };
}

/**
 * The settings a reload leaves as they were at start (the gateway's listeners, log and sessions
 * were built with them) that `next` changes, by path: a reload says so rather than appear to apply
 * them.
 */
function startOnlyChanges(running: Config, next: Config): string[] {
  const pairs: Array<[string, unknown, unknown]> = [
    ["allowedHosts", running.allowedHosts, next.allowedHosts],
    ["allowedOrigins", running.allowedOrigins, next.allowedOrigins],
    ...Object.keys(DEFAULT_LIMITS).map((k): [string, unknown, unknown] => [
      `limits.${k}`,
      running.limits[k as keyof Limits],
      next.limits[k as keyof Limits],
    ]),
    ["retention.maxEvents", running.retention.maxEvents, next.retention.maxEvents],
    ["retention.maxBytes", running.retention.maxBytes, next.retention.maxBytes],
    ["control.autoReleaseAfterMs", running.control.autoReleaseAfterMs, next.control.autoReleaseAfterMs],
    ["control.reconnectGraceMs", running.control.reconnectGraceMs, next.control.reconnectGraceMs],
    ["sessions.quietAfterMs", running.sessions.quietAfterMs, next.sessions.quietAfterMs],
    ["cluster", running.cluster, next.cluster],
  ];
  return pairs.filter(([, a, b]) => JSON.stringify(a) !== JSON.stringify(b)).map(([path]) => path);
}
/**
 * Releases the control leases HTTP callers hold (`http:<principal>`) of a principal `granted`
 * says the config no longer grants as it did; returns how many. The session's log records it as
 * `control` `disconnected`, as when a WebSocket holder goes away.
 */
export function releaseRevokedLeases(sessions: readonly Session[], granted: (principal: string) => boolean): number {
  let released = 0;
  for (const session of sessions) {
    const key = session.lease.holder?.key;
    if (key === undefined || !key.startsWith(HTTP_HOLDER_PREFIX)) continue;
    if (granted(key.slice(HTTP_HOLDER_PREFIX.length))) continue;
    if (session.lease.release(key, "disconnected")) released++;
  }
  return released;
}

/** What `file` leads to: its real path, and that file's inode, size and modification time. */
function configFingerprint(file: string): string {
  try {
    const real = realpathSync(file);
    const stat = statSync(real);
    return `${real}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  } catch {
    return "";
  }
}

/** How long a burst of file change notifications is collapsed into one reload. */
export const CONFIG_WATCH_DEBOUNCE_MS = 200;

/**
 * Reloads when the config file changes. Editors replace files, so the directory is watched. A
 * config that is a symbolic link may change without an event naming it: Kubernetes mounts a
 * ConfigMap as `cfg.json -> ..data/cfg.json` and swaps the `..data` link. So any other change in
 * the directory reloads too when what the file leads to (its target and that one's inode, size
 * and time) is no longer what it was.
 */
export function watchConfig(file: string, reload: () => unknown, logger: Logger): { close(): void } {
  const dir = dirname(resolve(file));
  const name = basename(file);
  const owned = new Disposables();
  let seen = configFingerprint(file);
  let named = false;
  const timers = owned.timers({
    settle: {
      after: CONFIG_WATCH_DEBOUNCE_MS,
      fire: () => {
        const now = configFingerprint(file);
        const moved = now !== seen;
        seen = now;
        if (named || moved) reload();
        named = false;
      },
    },
  });
  try {
    const watcher = watch(dir, (_event, changed) => {
      named ||= changed === null || changed === name;
      timers.start("settle");
    });
    watcher.unref();
    owned.add(() => watcher.close());
  } catch (error) {
    logger.warn({ err: (error as Error).message }, "cannot watch the config file; reload with SIGHUP");
  }
  return { close: () => owned.dispose() };
}
