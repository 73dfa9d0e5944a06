import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { PluginHost } from "../plugins/index.js";
import type { PluginCaller, PluginHostDeps } from "../plugins/index.js";
import { eventOf } from "../log/output-entry.js";
import { truncateId } from "./identity/access.js";
import { PLUGIN_OWNER_PREFIX } from "./identity/auth.js";
import { SwitchboardError } from "../protocol/index.js";
import type { Actor, EventType } from "../protocol/index.js";
import { rewriteConfigFile } from "./config/config.js";
import type { GatewayCore } from "./context.js";
import type { FdMonitor } from "./ops/fd-monitor.js";
import { deliverMessage } from "./routes/messages.js";
import { buildSettings } from "./config/settings.js";
import { Viewer } from "./ws/viewer.js";

/** What the gateway needs to start the plugin host: where config comes from and how to reload. */
export interface PluginWiring {
  dataDir: string;
  configFile: string | undefined;
  reload: () => { ok: true; warnings: string[] } | { ok: false; error: string };
  /** Where plugins' failures for lack of file descriptors are counted. */
  fds: FdMonitor;
}

/** Agent ids registered by plugins, to the plugin that serves each. */
export type PluginAgents = Map<string, string>;

/**
 * Builds the plugin host with the gateway behind its runtime API. Plugins are configured by
 * an admin; they deliver inbound messages as `plugin:<id>`, see the sessions those created (and
 * their events) — every session only with the `readAllSessions` permission — and reach
 * dangerous APIs only with their config permissions (checked by the host).
 */
export function createPluginHost(core: GatewayCore, wiring: PluginWiring, agents: PluginAgents): PluginHost {
  // A plugin is the principal `plugin:ID`, and its sessions' owner shows that too.
  const ownerName = (pluginId: string): string => `${PLUGIN_OWNER_PREFIX}${pluginId}`;
  const actor = (pluginId: string): Actor => ({ name: ownerName(pluginId), role: "plugin", id: ownerName(pluginId) });
  /** Whether `caller` (whose sessions' owner is `owner`) may see the session `sessionId` (one that does not exist: no). */
  const sees = (caller: PluginCaller, sessionId: string, owner = ownerName(caller.pluginId)): boolean => {
    if (caller.readAllSessions) return true;
    const record = core.sessions.get(sessionId)?.record;
    return record !== undefined && (record.ownerId ?? record.owner) === owner;
  };
  const deps: PluginHostDeps = {
    dataDir: wiring.dataDir,
    logger: core.logger.child({ component: "plugins" }),
    clock: core.clock,
    sessions: {
      list: (caller) =>
        core.sessions
          .list()
          .filter((s) => sees(caller, s.id))
          .map((s) => s.info()),
      // A session it may not see is null, as one that does not exist: its existence does not leak.
      get: (id, caller) => (sees(caller, id) ? (core.sessions.get(id)?.info() ?? null) : null),
    },
    events: {
      subscribe: (filter, handler, caller) => {
        const types = filter.types ? new Set<EventType>(filter.types) : undefined;
        const owner = ownerName(caller.pluginId);
        return core.events.tap((sessionId, event) => {
          if (filter.sessionId !== undefined && filter.sessionId !== sessionId) return;
          if (sees(caller, sessionId, owner)) handler(sessionId, event);
        }, types);
      },
      follow: (sessionId, since, types, outlet, caller) => {
        const log = sees(caller, sessionId) ? core.events.get(sessionId) : undefined;
        if (log === undefined) throw new SwitchboardError("SESSION_NOT_FOUND", `no session ${truncateId(sessionId)}`);
        const viewer = new Viewer({
          core,
          log,
          seq: since,
          sink: {
            get queuedBytes() {
              return outlet.queuedBytes;
            },
            deliver: (entries) => {
              for (const entry of entries) outlet.deliver(sessionId, eventOf(entry));
            },
            trimmed: (first, _head, from) => {
              if (first - 1 > from) outlet.trimmed(first - 1 - from);
            },
          },
          budgetBytes: outlet.budgetBytes,
          types: types ? new Set<string>(types) : undefined,
        });
        const stopDrain = outlet.onDrain(() => viewer.pump());
        viewer.start();
        return () => {
          stopDrain();
          viewer.close();
        };
      },
    },
    messages: {
      // Exactly as POST /v1/messages (it lacked `bindingIndex`).
      inbound: async (raw, caller) => deliverMessage(core, raw, actor(caller.pluginId)),
    },
    config: {
      writePatch: async (patch) => {
        if (wiring.configFile === undefined)
          throw new SwitchboardError(
            "CONFIG_INVALID",
            "the gateway runs without a config file; there is nothing to write",
          );
        const current = JSON.parse(readFileSync(wiring.configFile, "utf8")) as unknown;
        const next = mergePatch(current, patch);
        buildSettings(next as Record<string, unknown>); // validates; throws CONFIG_INVALID and nothing is written
        rewriteConfigFile(wiring.configFile, next);
        // Applies the rest of the config before the plugin hears back (it may route to an agent it
        // just added), while the plugins' part is only started: it restarts the plugin whose own
        // config changed, and this answer must not wait behind that plugin's stop. The plugin
        // gets it while it stops (its HTTP requests in flight finish first, see runner/main.mjs).
        const result = wiring.reload();
        if (!result.ok) throw new SwitchboardError("CONFIG_INVALID", result.error);
      },
    },
    reportFdExhausted: () => wiring.fds.reportExhausted("plugin"),
    agents: {
      registered: (pluginId, agentId) => {
        if (core.config.agents[agentId] !== undefined || agentId === "echo") {
          throw new SwitchboardError("CONFIG_INVALID", `agent id ${agentId} is already configured in the gateway`);
        }
        const owner = agents.get(agentId);
        if (owner !== undefined && owner !== pluginId)
          throw new SwitchboardError("CONFIG_INVALID", `agent id ${agentId} is registered by plugin ${owner}`);
        agents.set(agentId, pluginId);
      },
      unregistered: (pluginId, agentId) => {
        if (agents.get(agentId) === pluginId) agents.delete(agentId);
      },
    },
  };
  return new PluginHost(deps, {
    registry: core.metrics.registry,
    ...(wiring.configFile !== undefined
      ? { baseDir: dirname(resolve(wiring.configFile)), protectedPaths: [resolve(wiring.configFile)] }
      : {}),
  });
}

/** RFC 7396 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
