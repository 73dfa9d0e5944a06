import { mkdir, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { SwitchboardError, type SessionEvent } from "../protocol/index.js";
import { isPublicError } from "../protocol/errors.js";
import { RUNTIME_PARAMS, type RuntimeMethod, type RuntimeParams } from "./ipc.js";
import type { PluginLimits } from "./limits.js";
import { requirePermission, type PluginPermission, type PluginPermissions } from "./permissions.js";
import { runCommandWithTimeout } from "./run-command.js";
import type { StateStore } from "./state-store.js";
import type { PluginCaller, PluginHostDeps, SubscriptionOutlet } from "./types.js";

/**
 * The policy: which runtime method needs which permission. Typed by `PluginPermission`, so it
 * can only name permissions the config schema can grant. Methods not listed need none.
 */
export const METHOD_PERMISSIONS: Readonly<Partial<Record<RuntimeMethod, PluginPermission>>> = {
  "system.runCommandWithTimeout": "runCommandWithTimeout",
  "config.writeConfigFile": "writeConfigFile",
};

export interface RuntimeContext {
  pluginId: string;
  permissions: PluginPermissions | undefined;
  stateDir: string;
  state: StateStore;
  deps: PluginHostDeps;
  limits: PluginLimits;
  /** Sends an event (or a drop notice) to the plugin; returns false when its queue is full. */
  deliver(sub: number, sessionId: string, event: SessionEvent): boolean;
  /** Where subscription `sub` delivers when it follows a session's log (`since`): nothing is dropped. */
  outlet(sub: number): SubscriptionOutlet;
  /** Agents owned by other plugins (ids are global). */
  agentOwner(agentId: string): string | undefined;
  /**
   * The plugin is writing its own `plugins.entries.<id>` (`writing`), or that write failed: the
   * reload that follows restarts it because of itself, which the host counts like a crash.
   */
  writingOwnConfig(writing: boolean): void;
}

/**
 * The host side of one plugin instance's runtime API: validates each request, checks the
 * policy, performs it through the injected deps and owns what it created (subscriptions,
 * agents, running commands) until `dispose`.
 */
export class PluginRuntime {
  readonly agents = new Set<string>();
  httpListening = false;
  private readonly subscriptions = new Map<number, { unsubscribe: () => void; dropped: number }>();
  private readonly commands = new AbortController();
  private runningCommands = 0;
  private disposed = false;
  private readonly caller: PluginCaller;

  constructor(private readonly ctx: RuntimeContext) {
    this.caller = { pluginId: ctx.pluginId, readAllSessions: ctx.permissions?.readAllSessions === true };
  }

  /** Performs one runtime call. Throws `SwitchboardError`s that travel back to the plugin. */
  async handle(requestId: number, method: RuntimeMethod, rawParams: unknown): Promise<unknown> {
    if (this.disposed) throw new SwitchboardError("SHUTTING_DOWN", "the plugin is stopping");
    const permission = METHOD_PERMISSIONS[method];
    if (permission !== undefined) requirePermission(this.ctx.pluginId, this.ctx.permissions, permission);
    const parsed = RUNTIME_PARAMS[method].safeParse(rawParams);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new SwitchboardError(
        "VALIDATION_FAILED",
        `${method}: ${issue ? `${issue.path.join(".") || "(params)"}: ${issue.message}` : "invalid params"}`,
      );
    }
    return this.perform(requestId, method, parsed.data);
  }

  private async perform(requestId: number, method: RuntimeMethod, params: unknown): Promise<unknown> {
    const { deps } = this.ctx;
    switch (method) {
      case "state.get":
        return this.ctx.state.get((params as RuntimeParams<"state.get">).key);
      case "state.set": {
        const p = params as RuntimeParams<"state.set">;
        await this.ctx.state.set(p.key, p.value);
        return null;
      }
      case "state.delete":
        return this.ctx.state.delete((params as RuntimeParams<"state.delete">).key);
      case "state.keys":
        return this.ctx.state.keys();
      case "sessions.list": {
        // Filtered here, so a plugin that wants the running sessions is not sent every ended one.
        const { state } = params as RuntimeParams<"sessions.list">;
        const all = await deps.sessions.list(this.caller);
        return state === undefined ? all : all.filter((s) => s.state === state);
      }
      case "sessions.get":
        return deps.sessions.get((params as RuntimeParams<"sessions.get">).id, this.caller);
      case "events.subscribe":
        return this.subscribe(requestId, params as RuntimeParams<"events.subscribe">);
      case "events.unsubscribe": {
        const sub = (params as RuntimeParams<"events.unsubscribe">).sub;
        const entry = this.subscriptions.get(sub);
        if (entry === undefined) return false;
        this.subscriptions.delete(sub);
        entry.unsubscribe();
        return true;
      }
      case "messages.inbound": {
        const message = (params as RuntimeParams<"messages.inbound">).message;
        if (JSON.stringify(message).length > this.ctx.limits.inboundMessageBytes)
          throw new SwitchboardError(
            "PAYLOAD_TOO_LARGE",
            `an inbound message is at most ${this.ctx.limits.inboundMessageBytes} bytes of JSON`,
          );
        return deps.messages.inbound(message, this.caller);
      }
      case "agents.register":
        return this.registerAgent((params as RuntimeParams<"agents.register">).agentId);
      case "agents.unregister": {
        const agentId = (params as RuntimeParams<"agents.unregister">).agentId;
        if (!this.agents.delete(agentId)) return false;
        deps.agents.unregistered(this.ctx.pluginId, agentId);
        return true;
      }
      case "http.listen":
        this.httpListening = true;
        return null;
      case "system.runCommandWithTimeout":
        return this.runCommand(params as RuntimeParams<"system.runCommandWithTimeout">);
      case "config.writeConfigFile":
        return this.writeConfig((params as RuntimeParams<"config.writeConfigFile">).patch);
      default: {
        const unreachable: never = method;
        throw new SwitchboardError("VALIDATION_FAILED", `unknown runtime method ${String(unreachable)}`);
      }
    }
  }

  private subscribe(requestId: number, params: RuntimeParams<"events.subscribe">): null {
    if (this.subscriptions.size >= this.ctx.limits.subscriptions)
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `a plugin may hold at most ${this.ctx.limits.subscriptions} subscriptions`,
      );
    if (this.subscriptions.has(requestId))
      throw new SwitchboardError("VALIDATION_FAILED", `subscription ${requestId} exists already`);
    // The subscription id is the request id: the runner registers its handler under it before
    // asking, so events that follow the answer immediately are not lost.
    const sub = requestId;
    const entry = { unsubscribe: () => {}, dropped: 0 };
    const { filter } = params;
    if (filter.since !== undefined) {
      if (filter.sessionId === undefined)
        throw new SwitchboardError(
          "VALIDATION_FAILED",
          "events.subscribe: filter.since needs filter.sessionId (positions are a session's seqs)",
        );
      entry.unsubscribe = this.ctx.deps.events.follow(
        filter.sessionId,
        filter.since,
        filter.types,
        this.ctx.outlet(sub),
        this.caller,
      );
      this.subscriptions.set(sub, entry);
      return null;
    }
    this.subscriptions.set(sub, entry);
    entry.unsubscribe = this.ctx.deps.events.subscribe(
      params.filter,
      (sessionId, event) => {
        if (!this.ctx.deliver(sub, sessionId, event)) entry.dropped++;
      },
      this.caller,
    );
    return null;
  }

  /** Drop counts per subscription, reset by the call (the host reports them once the queue drained). */
  takeDropped(): Array<{ sub: number; count: number }> {
    const out: Array<{ sub: number; count: number }> = [];
    for (const [sub, entry] of this.subscriptions) {
      if (entry.dropped === 0) continue;
      out.push({ sub, count: entry.dropped });
      entry.dropped = 0;
    }
    return out;
  }

  private registerAgent(agentId: string): null {
    if (this.agents.has(agentId)) return null;
    const owner = this.ctx.agentOwner(agentId);
    if (owner !== undefined)
      throw new SwitchboardError("VALIDATION_FAILED", `agent "${agentId}" is already registered by plugin "${owner}"`);
    if (this.agents.size >= this.ctx.limits.agentsPerPlugin)
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `a plugin may register at most ${this.ctx.limits.agentsPerPlugin} agents`,
      );
    this.ctx.deps.agents.registered(this.ctx.pluginId, agentId);
    this.agents.add(agentId);
    return null;
  }

  private async runCommand(params: RuntimeParams<"system.runCommandWithTimeout">): Promise<unknown> {
    const { limits } = this.ctx;
    if (params.timeoutMs > limits.commandMaxTimeoutMs)
      throw new SwitchboardError("VALIDATION_FAILED", `timeoutMs is at most ${limits.commandMaxTimeoutMs}`);
    if (this.runningCommands >= limits.commandsPerPlugin)
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `a plugin may run at most ${limits.commandsPerPlugin} commands at once`,
      );
    // The slot is taken before the first await: calls made together must not all pass the check.
    this.runningCommands++;
    try {
      // Relative cwds resolve in the plugin's state folder, which is also the default.
      const cwd = resolve(this.ctx.stateDir, params.cwd ?? ".");
      await mkdir(this.ctx.stateDir, { recursive: true, mode: 0o700 });
      const info = await stat(cwd).catch((error: NodeJS.ErrnoException) => {
        throw new SwitchboardError("SPAWN_FAILED", `cwd ${cwd}: ${error.code ?? error.message}`);
      });
      if (!info.isDirectory()) throw new SwitchboardError("SPAWN_FAILED", `cwd ${cwd} is not a directory`);
      return await runCommandWithTimeout({
        argv: params.argv,
        timeoutMs: params.timeoutMs,
        cwd,
        outputBytes: limits.commandOutputBytes,
        clock: this.ctx.deps.clock,
        signal: this.commands.signal,
      });
    } catch (error) {
      if (isPublicError(error) && error.code === "RESOURCE_EXHAUSTED") this.ctx.deps.reportFdExhausted();
      throw error;
    } finally {
      this.runningCommands--;
    }
  }

  private async writeConfig(patch: Record<string, unknown>): Promise<null> {
    if (JSON.stringify(patch).length > this.ctx.limits.configPatchBytes)
      throw new SwitchboardError(
        "PAYLOAD_TOO_LARGE",
        `a config patch is at most ${this.ctx.limits.configPatchBytes} bytes of JSON`,
      );
    checkPluginsPatch(this.ctx.pluginId, patch);
    const own = Object.hasOwn(patch, "plugins");
    if (own) this.ctx.writingOwnConfig(true);
    try {
      await this.ctx.deps.config.writePatch(patch, this.caller);
    } catch (error) {
      if (own) this.ctx.writingOwnConfig(false);
      throw error;
    }
    return null;
  }

  /**
   * Ends everything this instance owns: subscriptions, running commands. Idempotent. Its agents
   * are left registered with the gateway: the host forgets them once the plugin is not coming
   * back with them (see `PluginHost`), so sessions of them survive a restart.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const entry of this.subscriptions.values()) entry.unsubscribe();
    this.subscriptions.clear();
    this.agents.clear();
    this.httpListening = false;
    this.commands.abort();
  }
}

/**
 * A plugin may patch its own `plugins.entries.<self>.config` but nothing else under
 * `plugins`: no granting itself permissions, no loading other code. (The rest of the config
 * is open to it — `writeConfigFile` is a powerful permission; docs/plugins.md says so.)
 */
function checkPluginsPatch(pluginId: string, patch: Record<string, unknown>): void {
  if (!Object.hasOwn(patch, "plugins")) return;
  const deny = (): never => {
    throw new SwitchboardError(
      "PLUGIN_PERMISSION_DENIED",
      `a plugin may change only its own settings under plugins: plugins.entries.${pluginId}.config`,
      { permission: "writeConfigFile", configPath: `plugins.entries.${pluginId}.config` },
    );
  };
  const plugins = patch["plugins"];
  if (!isPlainObject(plugins) || Object.keys(plugins).some((k) => k !== "entries")) deny();
  const entries = (plugins as Record<string, unknown>)["entries"];
  if (!isPlainObject(entries) || Object.keys(entries).some((k) => k !== pluginId)) deny();
  const own = (entries as Record<string, unknown>)[pluginId];
  if (!isPlainObject(own) || Object.keys(own).some((k) => k !== "config")) deny();
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
