import type { AdapterContext, AdapterRun, AgentAdapter, RunOutcome } from "../agents/index.js";
import type { PluginHost } from "../plugins/index.js";

/**
 * The agent adapter for an agent a plugin registered: runs go over the plugin's IPC. A plugin
 * that answers with a final text but sent no deltas gets its text streamed as one delta, so
 * `chat.final.text` always equals the run's deltas.
 */
export function pluginAgentAdapter(host: PluginHost, agentId: string): (ctx: AdapterContext) => AgentAdapter {
  return (ctx) => ({
    dead: false,
    dispose: async () => undefined,
    async run(run: AdapterRun): Promise<RunOutcome> {
      let streamed = false;
      let outcome: RunOutcome = {
        kind: "error",
        code: "AGENT_FAILED",
        message: "the plugin agent ended without an answer",
      };
      await host.runAgent(
        agentId,
        { runId: run.runId, sessionId: ctx.sessionId, text: run.text },
        {
          delta: (text) => {
            streamed = true;
            run.sink.text(text);
          },
          // The plugin is held back while the session's log has no room, like any other agent.
          room: () => ctx.room(),
          tool: (event) => {
            // A plugin cannot start terminals, so the child terminals it would name are not its
            // own; and each update adds its ids to all the call's earlier ones, which the log
            // writes out again every time (40,000 new ids per update stalled the gateway for seconds).
            const { toolCallId, status, title, kind, terminalSessionIds: _notItsOwn, ...rest } = event;
            run.sink.tool({
              ...rest,
              toolCallId,
              status,
              ...(title !== undefined ? { title } : {}),
              ...(kind !== undefined ? { kind } : {}),
            });
          },
          final: (text, stopReason) => {
            if (!streamed && text) run.sink.text(text);
            outcome = { kind: "final", stopReason };
          },
          error: (code, message) => {
            outcome = { kind: "error", code, message };
          },
        },
        run.signal,
      );
      return outcome;
    },
  });
}
