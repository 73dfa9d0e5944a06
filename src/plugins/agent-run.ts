import { SwitchboardError } from "../protocol/index.js";
import { isPublicError } from "../protocol/errors.js";
import { AgentFinal } from "./ipc.js";
import type { PluginLimits } from "./limits.js";
import { PluginExitedError, type PluginProcess } from "./plugin-process.js";
import { RunCredit } from "./run-credit.js";
import type { AgentRunOutcome, AgentRunRequest, AgentRunSink } from "./types.js";

/**
 * A plugin agent's run in flight: the host routes the plugin's stream frames to `sink` and
 * counts its delta text against its window in `credit`.
 */
export interface ActiveRun {
  callId: number;
  sink: AgentRunSink;
  credit: RunCredit;
}

export interface AgentRunOptions {
  pluginId: string;
  agentId: string;
  process: PluginProcess;
  /** The plugin instance's runs, by run id; the run is in it exactly while it is active. */
  runs: Map<string, ActiveRun>;
  request: AgentRunRequest;
  sink: AgentRunSink;
  signal: AbortSignal;
  limits: Pick<PluginLimits, "agentIdleTimeoutMs" | "agentDeltaWindowChars" | "frameBytes">;
}

/**
 * Drives one run of a plugin agent: calls `agent.run` in the plugin (its stream frames reach
 * `sink` through `runs`) and ends it with exactly one of `sink.final` / `sink.error`, or with
 * nothing when `signal` aborts first (outcome `"aborted"`).
 */
export function runPluginAgent(options: AgentRunOptions): Promise<AgentRunOutcome> {
  const { process, runs, request, sink, signal } = options;
  if (signal.aborted) return Promise.resolve("aborted");
  if (runs.has(request.runId)) {
    sink.error("VALIDATION_FAILED", `run ${request.runId} is already active`);
    return Promise.resolve("error");
  }
  const { id: callId, result } = process.call(
    "agent.run",
    { agentId: options.agentId, ...request },
    options.limits.agentIdleTimeoutMs,
  );
  const credit = new RunCredit({
    windowChars: options.limits.agentDeltaWindowChars,
    frameChars: options.limits.frameBytes,
    room: () => sink.room?.(),
    ack: (chars) => process.send({ t: "agent.ack", runId: request.runId, chars }),
    // Held back by the log, the plugin is silent through no fault of its own.
    onHold: (held) => (held ? process.suspendTimeout(callId) : process.resumeTimeout(callId)),
  });
  runs.set(request.runId, { callId, sink, credit });
  return new Promise<AgentRunOutcome>((resolve) => {
    let settled = false;
    const finish = (outcome: AgentRunOutcome, terminal: () => void): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      runs.delete(request.runId);
      credit.close();
      terminal();
      resolve(outcome);
    };
    const onAbort = (): void => {
      process.send({ t: "agent.abort", runId: request.runId });
      process.forget(callId);
      finish("aborted", () => {});
    };
    signal.addEventListener("abort", onAbort, { once: true });
    result.then(
      (value) => {
        const final = AgentFinal.safeParse(value);
        if (final.success) finish("final", () => sink.final(final.data.text, final.data.stopReason ?? "end_turn"));
        else
          finish("error", () =>
            sink.error(
              "AGENT_FAILED",
              `plugin "${options.pluginId}" answered the run with something other than {text, stopReason?}`,
            ),
          );
      },
      (error: unknown) => {
        const err = isPublicError(error) ? error : new SwitchboardError("INTERNAL", String(error));
        if (err instanceof PluginExitedError) {
          finish("error", () => sink.error("AGENT_EXITED", err.message));
          return;
        }
        if (err.code === "PLUGIN_TIMEOUT") {
          // The plugin went silent: tell it to stop working on the run.
          process.send({ t: "agent.abort", runId: request.runId });
          finish("error", () => sink.error("PLUGIN_TIMEOUT", err.message));
          return;
        }
        finish("error", () => sink.error("AGENT_FAILED", err.message));
      },
    );
  });
}
