import { existsSync, realpathSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SwitchboardError } from "../protocol/index.js";
import { isPublicError, InternalError } from "../protocol/errors.js";
import { parsePluginsConfig, type PluginEntry, type PluginsConfig } from "./config.js";
import { runPluginAgent } from "./agent-run.js";
import { callHook, callPublicHook, hookBodyBytes } from "./http-hooks.js";
import type { HttpHookResponse } from "./ipc.js";
import { DEFAULT_PLUGIN_LIMITS, type PluginLimits } from "./limits.js";
import { PluginMetrics } from "./metrics.js";
import { grantedPermissions } from "./permissions.js";
import { PluginInstance } from "./plugin-instance.js";
import type { ExitInfo } from "./plugin-process.js";
import { resolvePlugin, RUNNER_ENTRY, sandboxArgs } from "./sandbox.js";
import { StateStore } from "./state-store.js";
import { explainSyntaxError } from "./syntax-check.js";
import { restartDelay, settled, wakeSettled, type Slot } from "./slot.js";
import type {
  AgentRunOutcome,
  AgentRunRequest,
  AgentRunSink,
  HttpHookCall,
  PluginHostDeps,
  PluginHostOptions,
  PluginState,
  PluginStatus,
} from "./types.js";

/**
 * Runs the configured plugins, each in its own sandboxed process ({@link PluginInstance}), and
 * restarts crashed ones after a backoff, up to a limit. The gateway owns one: `load` at start and
 * on reload, `status()` for `GET /v1/plugins`, `runAgent`, `handleHttp` for webhooks, `close`.
 * @example
 * const host = new PluginHost(deps, { registry, baseDir: dirname(configFile) });
 * await host.load(config.plugins); // ... await host.close();
 */
export class PluginHost {
  private readonly slots = new Map<string, Slot>();
  private readonly limits: PluginLimits;
  private readonly metrics: PluginMetrics;
  private readonly runnerDir: string;
  private readonly baseDir: string;
  private readonly protectedPaths: readonly string[];
  private loading: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly deps: PluginHostDeps,
    options: PluginHostOptions = {},
  ) {
    this.limits = { ...DEFAULT_PLUGIN_LIMITS, ...options.limits };
    this.baseDir = options.baseDir ?? process.cwd();
    this.protectedPaths = [deps.dataDir, ...(options.protectedPaths ?? [])];
    const runnerDir = options.runnerDir ?? fileURLToPath(new URL("./runner/", import.meta.url));
    const runnerEntry = join(runnerDir, RUNNER_ENTRY);
    if (!existsSync(runnerEntry))
      throw new InternalError(
        `plugin runner not found at ${runnerEntry}: the build must copy the folder src/plugins/runner/ next to the compiled host`,
      );
    this.runnerDir = realpathSync(runnerDir);
    this.metrics = new PluginMetrics(options.registry);
  }

  /**
   * Applies the `plugins` config section: starts new plugins, stops removed and disabled ones,
   * restarts changed ones, leaves unchanged ones alone. Throws `CONFIG_INVALID` (changing
   * nothing) when the section is invalid. Resolves once every started plugin is running or
   * has failed its first start.
   */
  load(raw: unknown): Promise<void> {
    if (this.closing) return Promise.reject(new SwitchboardError("SHUTTING_DOWN", "the plugin host is closed"));
    let config: PluginsConfig;
    try {
      config = parsePluginsConfig(raw);
    } catch (error) {
      return Promise.reject(error);
    }
    const run = this.loading.then(() => this.apply(config));
    // Loads run one after another; each caller still sees its own outcome.
    this.loading = run.catch(() => undefined);
    return run;
  }

  /** One row per configured plugin, sorted by id: what `GET /v1/plugins` returns. */
  status(): PluginStatus[] {
    return [...this.slots.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((slot) => this.describe(slot));
  }

  /** One plugin's status. Throws `PLUGIN_NOT_FOUND`. */
  get(id: string): PluginStatus {
    return this.describe(this.slot(id));
  }

  /** Plugin-provided agents, as `{pluginId, agentId}`. */
  agents(): Array<{ pluginId: string; agentId: string }> {
    const out: Array<{ pluginId: string; agentId: string }> = [];
    for (const slot of this.slots.values())
      for (const agentId of slot.instance?.runtime.agents ?? []) out.push({ pluginId: slot.id, agentId });
    return out;
  }

  /** Stops and starts a plugin afresh (its restart count reset), e.g. to retry a `failed` one. Throws `PLUGIN_NOT_FOUND`. */
  restart(id: string): Promise<void> {
    if (this.closing) return Promise.reject(new SwitchboardError("SHUTTING_DOWN", "the plugin host is closed"));
    let slot: Slot;
    try {
      slot = this.slot(id);
    } catch (error) {
      return Promise.reject(error);
    }
    const run = this.loading.then(async () => {
      await this.stopSlot(slot);
      Object.assign(slot, { restarts: 0, consecutiveCrashes: 0, lastError: null });
      if (slot.entry.enabled !== false && this.slots.get(id) === slot) await this.startSlot(slot);
      else this.forgetAgents(slot);
    });
    // Serialized with config loads, like them.
    this.loading = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs one turn: streams into `sink`, ends with exactly one `sink.final` or `sink.error`, or is
   * `"aborted"` when `signal` aborts first (nothing more reaches `sink`). Held back while
   * `sink.room()` is false. Fails with `PLUGIN_TIMEOUT` after `agentIdleTimeoutMs` of silence (not
   * counting time held back), `AGENT_EXITED` if it dies. While the plugin restarts it waits (else a
   * chat bridge reads AGENT_NOT_FOUND as "no such agent"), then `PLUGIN_UNAVAILABLE`, or
   * `AGENT_NOT_FOUND` when it came back without that agent.
   */
  async runAgent(
    agentId: string,
    request: AgentRunRequest,
    sink: AgentRunSink,
    signal: AbortSignal,
  ): Promise<AgentRunOutcome> {
    const serving = () => [...this.slots.values()].find((s) => s.instance?.runtime.agents.has(agentId));
    let slot = serving();
    if (slot === undefined) {
      const coming = [...this.slots.values()].find(
        (s) => s.agents.has(agentId) && (s.state === "starting" || s.state === "restarting"),
      );
      if (coming !== undefined) {
        await settled(coming, this.deps.clock, this.limits.restartBackoffMaxMs + this.limits.startTimeoutMs, signal);
        if (signal.aborted) return "aborted";
        slot = serving();
        if (slot === undefined && coming.state !== "running") {
          const state =
            coming.state === "starting" || coming.state === "restarting" ? `still ${coming.state}` : coming.state;
          sink.error(
            "PLUGIN_UNAVAILABLE",
            `plugin "${coming.id}", which serves agent "${agentId}", is ${state}: GET /v1/plugins/${coming.id} says why`,
          );
          return "error";
        }
      }
    }
    const instance = slot?.instance;
    if (slot === undefined || instance === undefined) {
      sink.error("AGENT_NOT_FOUND", `no plugin agent "${agentId}" is registered`);
      return "error";
    }
    return runPluginAgent({
      pluginId: slot.id,
      agentId,
      process: instance.process,
      runs: instance.runs,
      request,
      sink,
      signal,
      limits: this.limits,
    });
  }

  /**
   * Forwards an HTTP request to the plugin's hook, credential headers stripped. Throws
   * `PLUGIN_NOT_FOUND`, `PLUGIN_UNAVAILABLE` (not running), `NOT_FOUND` (no hook), `PLUGIN_TIMEOUT`,
   * `PLUGIN_FAILED` (an answer HTTP cannot carry). A public request (`/hooks/<id>/…`) gets `NOT_FOUND`
   * alike for a missing plugin and one without `publicHooks`, so anonymous callers cannot tell which
   * exist, and `RATE_LIMITED` past `PUBLIC_HOOK_CONCURRENCY` (http-hooks.ts) in progress.
   */
  async handleHttp(pluginId: string, request: HttpHookCall): Promise<HttpHookResponse> {
    const slot = request.public ? this.publicSlot(pluginId) : this.slot(pluginId);
    const access = request.public ? "public" : "token";
    try {
      const call = request.public ? callPublicHook : callHook;
      const answer = await call(slot, request, this.limits);
      this.metrics.hookRequest(slot.id, access, answer.status);
      return answer;
    } catch (error) {
      this.metrics.hookRequest(slot.id, access, isPublicError(error) ? error.status : 500);
      throw error;
    }
  }

  /** The largest body a hook takes (see {@link hookBodyBytes}). */
  get hookBodyBytes(): number {
    return hookBodyBytes(this.limits);
  }

  private publicSlot(pluginId: string): Slot {
    const slot = this.slots.get(pluginId);
    if (slot === undefined || slot.entry.publicHooks !== true)
      throw new SwitchboardError("NOT_FOUND", `no public hook at /hooks/${pluginId}`);
    return slot;
  }

  /**
   * Stops every plugin (SIGKILL after the grace period) and removes the metrics. A start still
   * waiting for the plugin's `activate` is abandoned (killed), not waited for. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // The load in progress waits for its starts: one stuck in `activate` held a graceful stop
      // of the gateway (SIGTERM) for up to startTimeoutMs. Killed, it ends its start at once.
      for (const slot of this.slots.values())
        if (slot.state === "starting")
          void slot.instance?.process.kill("the plugin host closed during its start", true);
      await this.loading;
      await Promise.all(
        [...this.slots.values()].map(async (slot) => {
          await this.stopSlot(slot);
          this.forgetAgents(slot);
        }),
      );
      this.metrics.dispose();
    })();
    return this.closing;
  }

  private slot(id: string): Slot {
    const slot = this.slots.get(id);
    if (slot === undefined) throw new SwitchboardError("PLUGIN_NOT_FOUND", `no plugin "${id}" is configured`);
    return slot;
  }

  private describe(slot: Slot): PluginStatus {
    return {
      id: slot.id,
      state: slot.state,
      restarts: slot.restarts,
      lastError: slot.lastError,
      permissions: grantedPermissions(slot.entry.permissions),
      agents: [...(slot.instance?.runtime.agents ?? [])],
      pid: slot.instance?.process.pid ?? null,
      publicHooks: slot.entry.publicHooks === true,
    };
  }

  private async apply(config: PluginsConfig): Promise<void> {
    const work: Array<Promise<void>> = [];
    // The reload that follows a plugin's write of its own config is this one (a write that
    // changed nothing leaves no mark for a later one).
    const selfWritten = new Set<string>();
    for (const slot of this.slots.values()) {
      if (slot.wroteOwnConfig) selfWritten.add(slot.id);
      slot.wroteOwnConfig = false;
    }
    for (const slot of [...this.slots.values()]) {
      if (Object.hasOwn(config.entries, slot.id)) continue;
      this.slots.delete(slot.id);
      work.push(
        this.stopSlot(slot).then(() => {
          this.forgetAgents(slot);
          this.metrics.remove(slot.id);
        }),
      );
    }
    for (const [id, entry] of Object.entries(config.entries)) {
      const fingerprint = JSON.stringify(entry);
      const existing = this.slots.get(id);
      if (existing?.fingerprint === fingerprint) continue;
      const slot = existing ?? this.newSlot(id, entry, fingerprint);
      work.push(
        (async () => {
          if (existing) await this.stopSlot(existing);
          if (existing !== undefined && selfWritten.has(id) && entry.enabled !== false) {
            Object.assign(slot, { entry, fingerprint });
            await this.restartSelfConfigured(slot);
            return;
          }
          Object.assign(slot, { entry, fingerprint, restarts: 0, consecutiveCrashes: 0, lastError: null });
          if (entry.enabled === false) {
            this.setState(slot, "stopped");
            this.forgetAgents(slot);
          } else await this.startSlot(slot);
        })(),
      );
    }
    await Promise.all(work);
  }

  /**
   * Restarts a plugin that changed its own config. Counted like a crash: one that keeps doing it
   * before it has run `stableAfterMs` (one writing its config in `activate` restarted hundreds
   * of times a second, each time as a new configuration with `restarts: 0`) fails past
   * `maxRestarts`.
   */
  private async restartSelfConfigured(slot: Slot): Promise<void> {
    slot.consecutiveCrashes++;
    if (slot.consecutiveCrashes > this.limits.maxRestarts) {
      slot.lastError = `restarted itself ${slot.consecutiveCrashes} times in a row by writing its own config (writeConfigFile), without running ${this.limits.stableAfterMs} ms in between: a restart loop`;
      this.setState(slot, "failed");
      this.deps.logger.error(
        { plugin: slot.id, err: slot.lastError, crashes: slot.consecutiveCrashes },
        "plugin failed: restart limit reached",
      );
      return;
    }
    slot.restarts++;
    this.metrics.restart(slot.id);
    await this.startSlot(slot);
  }

  private newSlot(id: string, entry: PluginEntry, fingerprint: string): Slot {
    const slot: Slot = {
      id,
      entry,
      fingerprint,
      state: "stopped",
      restarts: 0,
      consecutiveCrashes: 0,
      lastError: null,
      instance: undefined,
      restartTimer: undefined,
      stableTimer: undefined,
      wroteOwnConfig: false,
      generation: 0,
      agents: new Set(),
      settledWaiters: [],
      publicCalls: 0,
      store: new StateStore(join(this.deps.dataDir, "plugin-state", `${id}.json`), this.limits),
    };
    this.slots.set(id, slot);
    return slot;
  }

  private setState(slot: Slot, state: PluginState): void {
    slot.state = state;
    this.metrics.setState(slot.id, state);
    // Back with what it serves now; or not coming back (until its config changes or a restart by hand).
    if (state === "running") this.forgetAgents(slot, slot.instance?.runtime.agents);
    else if (state === "failed") this.forgetAgents(slot);
    if (state !== "starting" && state !== "restarting") wakeSettled(slot);
  }

  /**
   * The agents `slot`'s last processes registered, except `keep`, are gone for good: the gateway
   * forgets them (new sessions of them are AGENT_NOT_FOUND) and runs no longer wait for them.
   * Until then, while the plugin restarts, the gateway keeps them: a session created or a message
   * routed meanwhile waits in {@link runAgent} like a prompt to an existing session.
   */
  private forgetAgents(slot: Slot, keep: ReadonlySet<string> = new Set()): void {
    for (const agentId of slot.agents) if (!keep.has(agentId)) this.deps.agents.unregistered(slot.id, agentId);
    slot.agents = new Set();
  }

  private async stopSlot(slot: Slot): Promise<void> {
    slot.generation++;
    slot.restartTimer?.cancel();
    slot.restartTimer = undefined;
    slot.stableTimer?.cancel();
    slot.stableTimer = undefined;
    const instance = slot.instance;
    if (slot.state !== "failed" || instance !== undefined) this.setState(slot, "stopped");
    if (instance !== undefined) await instance.process.stop();
  }

  /** Starts one process for the slot; resolves when it is running or this attempt failed. */
  private async startSlot(slot: Slot): Promise<void> {
    const generation = ++slot.generation;
    this.setState(slot, "starting");
    let stateDir: string;
    let args: string[];
    let entryFile: string;
    try {
      const resolved = await resolvePlugin(slot.entry.path, {
        baseDir: this.baseDir,
        protectedPaths: this.protectedPaths,
      });
      const dir = join(this.deps.dataDir, "plugins", slot.id);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      // The real path: the permission model compares resolved, not real, paths.
      stateDir = realpathSync(dir);
      args = sandboxArgs({
        runnerDir: this.runnerDir,
        pluginDir: resolved.dir,
        stateDir,
        heapMb: this.limits.heapMb,
      });
      entryFile = resolved.entry;
      slot.source = { entryFile, dir: resolved.dir };
    } catch (error) {
      // A configuration problem: restarting would fail the same way, so fail now.
      if (generation !== slot.generation) return;
      slot.lastError = error instanceof Error ? error.message : String(error);
      this.setState(slot, "failed");
      this.deps.logger.error({ plugin: slot.id, err: slot.lastError }, "plugin cannot start");
      return;
    }
    if (generation !== slot.generation) return;
    if (this.closing) {
      this.setState(slot, "stopped");
      this.forgetAgents(slot);
      return;
    }

    const instance = new PluginInstance({
      pluginId: slot.id,
      entry: slot.entry,
      args,
      entryFile,
      stateDir,
      store: slot.store,
      deps: this.deps,
      limits: this.limits,
      metrics: this.metrics,
      // A plugin that is restarting still holds its agents (see forgetAgents).
      agentOwner: (agentId) =>
        [...this.slots.values()].find(
          (s) => s !== slot && (s.instance?.runtime.agents.has(agentId) === true || s.agents.has(agentId)),
        )?.id,
      writingOwnConfig: (writing) => {
        slot.wroteOwnConfig = writing;
      },
      onExit: (exited, info) => this.onExit(slot, exited, info),
    });
    slot.instance = instance;
    try {
      await instance.process.ready();
    } catch (error) {
      // The exit handler (which runs for every failed start) records the error, logs it and
      // schedules the restart; a stop during the start lands here too.
      this.deps.logger.debug({ plugin: slot.id, err: (error as Error).message }, "plugin start ended");
      return;
    }
    if (slot.instance !== instance) return;
    this.setState(slot, "running");
    this.deps.logger.info({ plugin: slot.id, pid: instance.process.pid }, "plugin running");
    slot.stableTimer = this.deps.clock.setTimeout(() => {
      slot.consecutiveCrashes = 0;
    }, this.limits.stableAfterMs);
  }

  /** An instance's process exited (its runtime is disposed): a crash schedules a restart after a backoff. */
  private onExit(slot: Slot, instance: PluginInstance, info: ExitInfo): void {
    if (slot.instance !== instance) return;
    slot.instance = undefined;
    // Added to what earlier processes had: a restart that failed before registering anything
    // does not make the agents of the one that ran before it unknown.
    slot.agents = new Set([...slot.agents, ...instance.agentsAtExit]);
    slot.stableTimer?.cancel();
    slot.stableTimer = undefined;
    if (info.requested) return;

    // Without a reason of its own (a fatal report, the host's kill), what it last wrote on stderr
    // says why: a plugin out of memory dies by SIGABRT, and V8 tells the cause only there.
    slot.lastError =
      info.reason ??
      `exited with ${info.signal === null ? `code ${String(info.code)}` : `signal ${info.signal}`}${info.stderrHint === null ? "" : `: ${info.stderrHint}`}`;
    explainSyntaxError(slot, this.deps.logger);
    slot.consecutiveCrashes++;
    if (this.closing) {
      this.forgetAgents(slot);
      return;
    }
    if (slot.consecutiveCrashes > this.limits.maxRestarts) {
      this.setState(slot, "failed");
      this.deps.logger.error(
        { plugin: slot.id, err: slot.lastError, crashes: slot.consecutiveCrashes },
        "plugin failed: restart limit reached",
      );
      return;
    }
    const delay = restartDelay(slot.consecutiveCrashes, this.limits);
    this.setState(slot, "restarting");
    this.deps.logger.warn({ plugin: slot.id, err: slot.lastError, delayMs: delay }, "plugin crashed; restarting");
    const generation = slot.generation;
    slot.restartTimer = this.deps.clock.setTimeout(() => {
      slot.restartTimer = undefined;
      if (generation !== slot.generation || this.closing) return;
      slot.restarts++;
      this.metrics.restart(slot.id);
      void this.startSlot(slot);
    }, delay);
  }
}
