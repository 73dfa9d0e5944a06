import { SwitchboardError, type SessionEvent } from "../protocol/index.js";
import { isPublicError } from "../protocol/errors.js";
import type { ActiveRun } from "./agent-run.js";
import type { PluginEntry } from "./config.js";
import { PluginToolEvent, type ChildFrame, type LogLevel, type RuntimeMethod } from "./ipc.js";
import type { PluginLimits } from "./limits.js";
import type { CallOutcome, PluginMetrics } from "./metrics.js";
import { grantedPermissions } from "./permissions.js";
import { PluginProcess, type ExitInfo } from "./plugin-process.js";
import { RateWindow } from "./rate-window.js";
import { PluginRuntime } from "./runtime.js";
import type { StateStore } from "./state-store.js";
import type { Timer } from "../core/clock.js";
import type { PluginHostDeps, SubscriptionOutlet } from "./types.js";

type StreamFrame = Extract<ChildFrame, { t: "agent.delta" | "agent.tool" }>;

export interface PluginInstanceOptions {
  pluginId: string;
  entry: PluginEntry;
  /** Arguments after `process.execPath` (see `sandboxArgs`). */
  args: string[];
  /** The plugin's resolved entry file. */
  entryFile: string;
  /** The plugin's own writable directory (its working directory). */
  stateDir: string;
  store: StateStore;
  deps: PluginHostDeps;
  limits: PluginLimits;
  metrics: PluginMetrics;
  /** The plugin that registered `agentId`, when it is another one (agent ids are global). */
  agentOwner(agentId: string): string | undefined;
  /** See `RuntimeContext.writingOwnConfig`. */
  writingOwnConfig(writing: boolean): void;
  /** The process exited; the instance has disposed its runtime already. */
  onExit(instance: PluginInstance, info: ExitInfo): void;
}

/** Most events held for a plugin while it waits for the answer of `messages.inbound` (more are dropped and counted). */
const HELD_EVENTS_MAX = 1000;

/**
 * One running process of a plugin and the runtime API it is served: runtime calls (bounded in
 * flight and per second, counted in the metrics), log lines (rate-limited, cut), agent stream
 * frames (routed to their runs) and session events (dropped and counted while the plugin lags).
 * The host calls into the plugin through `process` (agent runs, the HTTP hook).
 */
export class PluginInstance {
  readonly process: PluginProcess;
  readonly runtime: PluginRuntime;
  /** Agent runs in flight, by run id. */
  readonly runs = new Map<string, ActiveRun>();
  /** The agents it had registered when its process exited (its runtime forgets them then). */
  agentsAtExit: ReadonlySet<string> = new Set();
  private readonly options: PluginInstanceOptions;
  private readonly calls: RateWindow;
  private readonly log: RateWindow;
  /** Reports the log lines dropped in the current window when it ends; set only while some were. */
  private droppedReport: Timer | undefined;
  private inFlight = 0;
  /** `messages.inbound` calls not answered yet; while there are any, events are held (see {@link onRequest}). */
  private inboundCalls = 0;
  private readonly heldEvents: Array<{ sub: number; sessionId: string; event: SessionEvent }> = [];
  /** About the bytes of the events held for following subscriptions (they count towards their budget). */
  private heldBytes = 0;
  /** Following subscriptions waiting for the plugin to read (see {@link outlet}). */
  private readonly drainListeners = new Set<() => void>();

  constructor(options: PluginInstanceOptions) {
    const { pluginId, entry, stateDir, deps, limits } = options;
    this.options = options;
    this.calls = new RateWindow(limits.callsPerSecond, deps.clock);
    this.log = new RateWindow(limits.logLinesPerSecond, deps.clock);
    this.runtime = new PluginRuntime({
      pluginId,
      permissions: entry.permissions,
      stateDir,
      state: options.store,
      deps,
      limits,
      deliver: (sub, sessionId, event) => this.deliver(sub, sessionId, event),
      outlet: (sub) => this.outlet(sub),
      agentOwner: (agentId) => options.agentOwner(agentId),
      writingOwnConfig: (writing) => options.writingOwnConfig(writing),
    });
    this.process = new PluginProcess({
      id: pluginId,
      args: options.args,
      cwd: stateDir,
      init: {
        t: "init",
        id: pluginId,
        entry: options.entryFile,
        stateDir,
        config: entry.config ?? {},
        permissions: grantedPermissions(entry.permissions),
        deltaWindowChars: limits.agentDeltaWindowChars,
        frameBytes: limits.frameBytes,
        frameDepth: limits.frameDepth,
      },
      limits,
      clock: deps.clock,
      onRequest: (id, method, params) => this.onRequest(id, method, params),
      onLog: (frame) => this.pluginLog(frame.level, frame.msg, frame.fields),
      onOutput: (stream, line) => this.pluginLog(stream === "stderr" ? "warn" : "info", line, { stream }),
      onHostWarning: (message) => deps.logger.warn({ plugin: pluginId, err: message }, "plugin process trouble"),
      onStream: (frame) => this.onStream(frame),
      onDrain: () => {
        for (const { sub, count } of this.runtime.takeDropped()) this.process.send({ t: "dropped", sub, count });
        this.drained();
      },
      onExit: (info) => {
        if (info.spawnError?.code === "RESOURCE_EXHAUSTED") deps.reportFdExhausted();
        // Its last lines may have been dropped right before it died: that is said now or never.
        this.reportDroppedLogLines();
        // Runs in flight end through their calls, which the process rejected (AGENT_EXITED).
        this.agentsAtExit = new Set(this.runtime.agents);
        this.runtime.dispose();
        options.onExit(this, info);
      },
    });
  }

  private deliver(sub: number, sessionId: string, event: SessionEvent): boolean {
    if (this.inboundCalls > 0) {
      if (this.heldEvents.length >= HELD_EVENTS_MAX) return false;
      this.heldEvents.push({ sub, sessionId, event });
      return true;
    }
    // A slow plugin costs only itself: past the bound its deliveries are dropped and counted,
    // and it is told how many once its queue drained.
    if (this.process.queuedBytes > this.options.limits.outboundQueueBytes) return false;
    this.process.send({ t: "event", sub, sessionId, event });
    return true;
  }

  /**
   * Where a subscription that follows a session's log delivers: straight to the pipe (or held
   * behind an inbound call's answer, like any event), never dropped — the subscription sends
   * only while less than `outboundQueueBytes` is queued, and reads on from the log once the
   * plugin has read (the pipe's drain, or the release of held events).
   */
  private outlet(sub: number): SubscriptionOutlet {
    const queued = (): number => this.process.queuedBytes + this.heldBytes;
    return {
      get queuedBytes() {
        return queued();
      },
      budgetBytes: this.options.limits.outboundQueueBytes,
      deliver: (sessionId, event) => {
        if (this.inboundCalls > 0) {
          this.heldEvents.push({ sub, sessionId, event });
          this.heldBytes += JSON.stringify(event).length;
        } else this.process.send({ t: "event", sub, sessionId, event });
      },
      trimmed: (count) => this.process.send({ t: "dropped", sub, count }),
      onDrain: (listener) => {
        this.drainListeners.add(listener);
        return () => this.drainListeners.delete(listener);
      },
    };
  }

  /** The plugin read what was queued (or held events went out): following subscriptions read on. */
  private drained(): void {
    for (const listener of [...this.drainListeners]) listener();
  }

  private onStream(frame: StreamFrame): void {
    const run = this.runs.get(frame.runId);
    if (run === undefined) return;
    this.process.touch(run.callId);
    // Tool events are counted by their JSON's length (as the runner counts them): they fill the
    // same log, and a plugin reporting tool calls as fast as the pipe takes them got past its
    // back-pressure.
    const chars = frame.t === "agent.delta" ? frame.text.length : JSON.stringify(frame.event).length;
    if (!run.credit.take(chars)) {
      this.process.kill(
        `protocol violation: run ${frame.runId} sent ${run.credit.outstandingChars} characters of deltas and tool events without an ack (its window is ${this.options.limits.agentDeltaWindowChars})`,
      );
      return;
    }
    if (frame.t === "agent.delta") {
      run.sink.delta(frame.text);
      return;
    }
    const tool = PluginToolEvent.safeParse(frame.event);
    if (tool.success) run.sink.tool(tool.data);
    else
      this.options.deps.logger.warn(
        { plugin: this.options.pluginId, runId: frame.runId, err: tool.error.issues[0]?.message },
        "plugin tool event dropped: invalid",
      );
  }

  private onRequest(id: number, method: RuntimeMethod, params: unknown): void {
    const { pluginId, limits, metrics, deps } = this.options;
    if (this.inFlight >= limits.pendingRequests) {
      metrics.call(pluginId, method, "error");
      this.process.respond(id, {
        ok: false,
        error: { code: "LIMIT_EXCEEDED", message: `at most ${limits.pendingRequests} runtime calls in flight` },
      });
      return;
    }
    if (!this.calls.take()) {
      metrics.call(pluginId, method, "error");
      this.process.respond(id, {
        ok: false,
        error: { code: "RATE_LIMITED", message: `at most ${limits.callsPerSecond} runtime calls per second` },
      });
      return;
    }
    this.inFlight++;
    // The events of a run a message starts (its chat.final may come within the same millisecond)
    // wait until the plugin has the answer with the run's id: a chat bridge that matched replies
    // by run id lost 9 in 100 of them.
    const holdsEvents = method === "messages.inbound";
    if (holdsEvents) this.inboundCalls++;
    this.runtime.handle(id, method, params).then(
      (value) => {
        this.inFlight--;
        metrics.call(pluginId, method, "ok");
        this.process.respond(id, { ok: true, value: value ?? null });
        if (holdsEvents) this.releaseEvents();
      },
      (error: unknown) => {
        this.inFlight--;
        const err = isPublicError(error)
          ? error
          : new SwitchboardError("INTERNAL", error instanceof Error ? error.message : String(error));
        const outcome: CallOutcome =
          err.code === "PLUGIN_PERMISSION_DENIED" ? "denied" : err.code === "PLUGIN_TIMEOUT" ? "timeout" : "error";
        metrics.call(pluginId, method, outcome);
        if (outcome === "denied") deps.logger.warn({ plugin: pluginId, method, ...err.details }, "plugin call denied");
        else if (err.code === "INTERNAL")
          deps.logger.error({ plugin: pluginId, method, err: err.message }, "plugin call failed");
        this.process.respond(id, { ok: false, error: { code: err.code, message: err.message } });
        if (holdsEvents) this.releaseEvents();
      },
    );
  }

  /** A `messages.inbound` call was answered: once none is left, the events held meanwhile go out, in order. */
  private releaseEvents(): void {
    if (--this.inboundCalls > 0) return;
    for (const { sub, sessionId, event } of this.heldEvents.splice(0)) {
      this.process.send({ t: "event", sub, sessionId, event });
    }
    this.heldBytes = 0;
    this.drained();
  }

  private pluginLog(level: LogLevel, msg: string, fields: Record<string, unknown> | undefined): void {
    const { pluginId, limits, deps } = this.options;
    // A line the gateway's level filters out (debug, unless SWITCHBOARD_LOG_LEVEL=debug) is not
    // written, so it takes nothing from the rate limit: it used up the lines the others had.
    if (deps.logger.isLevelEnabled?.(level) === false) return;
    const allowed = this.log.take((dropped) => {
      // Its next line came before the window's timer: reported here, and the timer is done.
      this.droppedReport?.cancel();
      this.droppedReport = undefined;
      this.droppedLogLines(dropped);
    });
    if (!allowed) {
      // Said when the window ends, not only with the plugin's next line: a plugin that floods
      // and then goes quiet would never have it said.
      this.droppedReport ??= deps.clock.setTimeout(() => {
        this.droppedReport = undefined;
        this.reportDroppedLogLines();
      }, this.log.msLeft());
      return;
    }
    const text = msg.length > limits.logLineChars ? `${msg.slice(0, limits.logLineChars)}…` : msg;
    const record: Record<string, unknown> = { plugin: pluginId };
    if (fields !== undefined)
      record["data"] = JSON.stringify(fields).length > limits.logLineChars ? { truncated: true } : fields;
    deps.logger[level](record, text);
  }

  /** Logs (and counts) the lines the rate limit dropped and that were not reported yet, if any. */
  private reportDroppedLogLines(): void {
    this.droppedReport?.cancel();
    this.droppedReport = undefined;
    const dropped = this.log.takeRefused();
    if (dropped > 0) this.droppedLogLines(dropped);
  }

  private droppedLogLines(dropped: number): void {
    const { pluginId, metrics, deps } = this.options;
    metrics.logLinesDropped(pluginId, dropped);
    deps.logger.warn({ plugin: pluginId, dropped }, "plugin log lines dropped (rate limit)");
  }
}
