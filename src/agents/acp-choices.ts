import type { ClientConnection } from "@agentclientprotocol/sdk";
import { SwitchboardError } from "../protocol/index.js";
import type { Actor, AgentState } from "../protocol/index.js";
import type { Clock } from "../core/clock.js";
import type { AgentEventInput } from "./adapter.js";
import { asRpcError, describeRpcError } from "./acp-failures.js";
import type { SessionModels } from "./acp-session-models.js";
import { toConfigOptions } from "./acp-updates.js";
import { isRecord } from "./acp-wire.js";

/**
 * What a user chose of what the agent offers (docs/agents.md, "Choosing"): a mode of
 * `agentState.modes` (ACP `session/set_mode`), or a value of one of `agentState.configOptions`
 * (ACP `session/set_config_option`; the model is one of them).
 */
export type AgentChoice =
  { kind: "mode"; modeId: string } | { kind: "config"; configId: string; value: string | boolean };

/**
 * How long the agent has to answer `session/set_mode` or `session/set_config_option`: unanswered,
 * the route answers AGENT_FAILED and the state shown stays as it was.
 */
export const ACP_CHOICE_TIMEOUT_MS = 10_000;

/**
 * Throws INVALID_OPTION naming what the agent offers when `choice` is not one of them in `state`
 * (or the agent offers none): nothing is sent to the agent then (test/agents/acp-choices.test.ts).
 */
export function checkChoice(state: AgentState | undefined, choice: AgentChoice): void {
  if (choice.kind === "mode") {
    const modes = state?.modes?.availableModes ?? [];
    if (modes.length === 0) throw new SwitchboardError("INVALID_OPTION", "the agent offers no modes");
    if (!modes.some((m) => m.id === choice.modeId)) {
      throw new SwitchboardError(
        "INVALID_OPTION",
        `the agent offers no mode ${JSON.stringify(choice.modeId)}; its modes: ${modes.map((m) => m.id).join(", ")}`,
      );
    }
    return;
  }
  const options = state?.configOptions ?? [];
  if (options.length === 0) throw new SwitchboardError("INVALID_OPTION", "the agent offers no settings");
  const option = options.find((o) => o.id === choice.configId);
  if (option === undefined) {
    throw new SwitchboardError(
      "INVALID_OPTION",
      `the agent offers no setting ${JSON.stringify(choice.configId)}; its settings: ${options.map((o) => o.id).join(", ")}`,
    );
  }
  if (option.type === "boolean") {
    if (typeof choice.value !== "boolean") {
      throw new SwitchboardError("INVALID_OPTION", `${option.id} takes true or false`);
    }
    return;
  }
  const values = option.options ?? [];
  if (typeof choice.value !== "string" || !values.some((v) => v.value === choice.value)) {
    throw new SwitchboardError(
      "INVALID_OPTION",
      `${option.id} has no value ${JSON.stringify(choice.value)}; its values: ${values.map((v) => v.value).join(", ")}`,
    );
  }
}

export interface ChoiceRequest {
  conn: ClientConnection;
  /** The agent's ACP session. */
  sessionId: string;
  choice: AgentChoice;
  /** The agent's models when it offers them as ACP's `models`: a choice of one goes as `session/set_model`. */
  sessionModels: SessionModels;
  /** Who asked: in the event the agent's confirmation logs. */
  by: Actor;
  clock: Clock;
  /**
   * Resolves once what the agent sent before its answer is applied: the SDK may hand over an
   * answer before the updates that came ahead of it (acp-wire.ts), and a `current_mode_update`
   * among them must be seen first.
   */
  applied: () => Promise<void>;
  /** Logs what the agent confirmed: `agent.mode` or `agent.config`. */
  emit: (event: AgentEventInput) => void;
}

/**
 * Sends the agent one choice and logs what it confirmed, never before its answer: for a config
 * value, the `configOptions` its answer holds (`agent.config`; for a model of its `models`, the
 * model option with the value it accepted in `session/set_model`); for a mode, `agent.mode`, unless
 * the agent said so itself (`current_mode_update`) while it answered. Either event names who
 * asked (`by`); a change the agent makes by itself has none. An error answer, or none within
 * {@link ACP_CHOICE_TIMEOUT_MS}, is AGENT_FAILED and logs nothing. Test: test/agents/acp-choices.test.ts.
 */
export class AcpChoices {
  /** The mode asked for and not answered yet; `said`: the agent's own `current_mode_update` named it. */
  private pendingMode: { modeId: string; by: Actor; said: boolean } | undefined;

  /**
   * Takes note of a `session/update` the agent sent (called for each, in wire order, before it is
   * applied); returns who asked when it is the `current_mode_update` confirming the mode asked for.
   */
  noted(update: unknown): Actor | undefined {
    const pending = this.pendingMode;
    if (pending === undefined || !isRecord(update) || update.sessionUpdate !== "current_mode_update") return undefined;
    if (update.currentModeId !== pending.modeId || pending.said) return undefined;
    pending.said = true;
    return pending.by;
  }

  async send(request: ChoiceRequest): Promise<void> {
    const { conn, sessionId, choice, emit, applied, by } = request;
    if (choice.kind === "mode") {
      const pending = { modeId: choice.modeId, by, said: false };
      this.pendingMode = pending;
      try {
        await answered(
          request,
          "session/set_mode",
          conn.agent.request("session/set_mode", { sessionId, modeId: choice.modeId }),
        );
        await applied();
      } finally {
        if (this.pendingMode === pending) this.pendingMode = undefined;
      }
      if (!pending.said) emit({ type: "agent.mode", currentModeId: choice.modeId, by });
      return;
    }
    if (typeof choice.value === "string" && request.sessionModels.owns(choice.configId)) {
      const modelId = choice.value;
      await answered(request, "session/set_model", conn.agent.request("session/set_model", { sessionId, modelId }));
      await applied();
      emit({ type: "agent.config", configOptions: [request.sessionModels.chosen(modelId)], by });
      return;
    }
    const params =
      typeof choice.value === "boolean"
        ? { sessionId, configId: choice.configId, type: "boolean", value: choice.value }
        : { sessionId, configId: choice.configId, value: choice.value };
    const result = await answered(
      request,
      "session/set_config_option",
      conn.agent.request("session/set_config_option", params),
    );
    await applied();
    const configOptions = toConfigOptions(isRecord(result) ? result.configOptions : undefined);
    if (configOptions === undefined) {
      throw new SwitchboardError("AGENT_FAILED", "session/set_config_option answered without configOptions");
    }
    emit({ type: "agent.config", configOptions, by });
  }
}

/** `request`'s result, or AGENT_FAILED for an error answer or none within {@link ACP_CHOICE_TIMEOUT_MS}. */
function answered(choice: ChoiceRequest, method: string, request: Promise<unknown>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = choice.clock.setTimeout(
      () =>
        reject(
          new SwitchboardError("AGENT_FAILED", `the agent did not answer ${method} within ${ACP_CHOICE_TIMEOUT_MS} ms`),
        ),
      ACP_CHOICE_TIMEOUT_MS,
    );
    request.then(
      (result) => {
        timer.cancel();
        resolve(result);
      },
      (err: unknown) => {
        timer.cancel();
        const error = asRpcError(err);
        reject(
          new SwitchboardError(
            "AGENT_FAILED",
            error !== undefined
              ? `the agent answered ${method} with ${describeRpcError(error)}`
              : `${method} failed: ${String(err)}`,
          ),
        );
      },
    );
  });
}
