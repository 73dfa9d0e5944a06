import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Registry } from "prom-client";
import { onTestFinished } from "vitest";
import { systemClock, type Clock } from "../../src/core/clock.js";
import { SwitchboardError, type SessionEvent, type SessionInfo } from "../../src/protocol/index.js";
import { PluginHost } from "../../src/plugins/host.js";
import type { EventFilter } from "../../src/plugins/ipc.js";
import type { PluginLimits } from "../../src/plugins/limits.js";
import type { PluginHostDeps } from "../../src/plugins/types.js";
import { sessionInfo } from "../helpers/session-info.js";
import { waitFor } from "../helpers/wait-for.js";

export { sessionInfo };

export const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
export const EXAMPLES = fileURLToPath(new URL("../../examples/plugins/", import.meta.url));

export interface LogRecord {
  level: string;
  fields: Record<string, unknown>;
  msg: string | undefined;
}

/** Limits small enough that crash, hang and timeout tests take a second or two. */
export const FAST_LIMITS: Partial<PluginLimits> = {
  startTimeoutMs: 3_000,
  callTimeoutMs: 1_000,
  agentIdleTimeoutMs: 1_000,
  stopGraceMs: 500,
  heartbeatIntervalMs: 200,
  heartbeatTimeoutMs: 800,
  restartBackoffBaseMs: 50,
  restartBackoffMaxMs: 200,
  maxRestarts: 2,
};

/**
 * A temporary gateway data dir with a fake token and database, fake gateway deps that record
 * what plugins do, and a host, closed (and the dir removed) after the test.
 */
export function setup(
  options: { limits?: Partial<PluginLimits>; inbound?: (m: Record<string, unknown>) => unknown; clock?: Clock } = {},
) {
  const dataDir = mkdtempSync(join(tmpdir(), "switchboard-plugins-"));
  const tokenFile = join(dataDir, "token");
  const dbFile = join(dataDir, "switchboard.db");
  writeFileSync(tokenFile, "sb_SECRET_TOKEN_do_not_leak\n", { mode: 0o600 });
  writeFileSync(dbFile, "SQLite format 3\0 fake database");
  const logs: LogRecord[] = [];
  const log = (level: string) => (fields: object, msg?: string) =>
    logs.push({ level, fields: fields as Record<string, unknown>, msg });
  const subscribers = new Set<{ filter: EventFilter; handler: (sessionId: string, event: SessionEvent) => void }>();
  const inbound: Array<Record<string, unknown>> = [];
  const patches: Array<Record<string, unknown>> = [];
  const agentChanges: string[] = [];
  const sessions: SessionInfo[] = [sessionInfo("s1"), { ...sessionInfo("s2"), state: "exited" }];
  const deps: PluginHostDeps = {
    dataDir,
    logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
    clock: options.clock ?? systemClock,
    sessions: {
      list: () => sessions,
      get: (id) => sessions.find((s) => s.id === id) ?? null,
    },
    events: {
      subscribe(filter, handler) {
        const entry = { filter, handler };
        subscribers.add(entry);
        return () => subscribers.delete(entry);
      },
      // Following a session's log needs one: tested through the gateway (test/gateway/plugin-follow.test.ts).
      follow() {
        throw new SwitchboardError("SESSION_NOT_FOUND", "these tests have no session logs to follow");
      },
    },
    messages: {
      async inbound(message) {
        inbound.push(message);
        return options.inbound ? options.inbound(message) : { sessionId: "s1", runId: `run-${inbound.length}` };
      },
    },
    config: {
      async writePatch(patch) {
        patches.push(patch);
      },
    },
    // The gateway at its descriptor limit is tested with a real one (test/server/fd-limit.test.ts).
    reportFdExhausted: () => undefined,
    agents: {
      registered: (pluginId, agentId) => agentChanges.push(`+${pluginId}/${agentId}`),
      unregistered: (pluginId, agentId) => agentChanges.push(`-${pluginId}/${agentId}`),
    },
  };
  const registry = new Registry();
  const host = new PluginHost(deps, { registry, limits: { ...FAST_LIMITS, ...options.limits } });
  onTestFinished(async () => {
    await host.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const emit = (sessionId: string, event: SessionEvent): void => {
    for (const { filter, handler } of subscribers) {
      if (filter.sessionId !== undefined && filter.sessionId !== sessionId) continue;
      if (filter.types !== undefined && !filter.types.includes(event.type)) continue;
      handler(sessionId, event);
    }
  };
  /** Waits for the first log record with this message. */
  const waitForLog = (msg: string, timeout = 10_000): Promise<LogRecord> =>
    waitFor(() => {
      const found = logs.find((l) => l.msg === msg);
      if (!found) throw new Error(`no log "${msg}" yet; have: ${logs.map((l) => l.msg).join(" | ")}`);
      return found;
    }, timeout);
  const waitForState = (id: string, state: string, timeout = 10_000) =>
    waitFor(() => {
      const status = host.get(id);
      if (status.state !== state)
        throw new Error(`plugin ${id} is ${status.state}, not ${state} (${status.lastError})`);
      return status;
    }, timeout);
  return {
    dataDir,
    tokenFile,
    dbFile,
    deps,
    host,
    registry,
    logs,
    inbound,
    patches,
    agentChanges,
    subscribers,
    emit,
    waitForLog,
    waitForState,
  };
}

export function entry(path: string, extra: Record<string, unknown> = {}) {
  return { path, ...extra };
}

export { hookCall } from "../helpers/hook-call.js";
