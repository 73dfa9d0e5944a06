import type { AgentConfigOption } from "../protocol/index.js";
import { isRecord } from "./acp-wire.js";
import { InternalError } from "../protocol/errors.js";

/**
 * The id of the model option the gateway makes of an agent's `models`: what `POST
 * /v1/sessions/:id/config` names to choose one of them (docs/agents.md, "Choosing").
 */
export const SESSION_MODELS_OPTION_ID = "model";

/**
 * An agent's models as ACP's older, unstable `models` (`{availableModels, currentModelId}` in the
 * `session/new`, `session/load` and `session/resume` answers, chosen through `session/set_model`):
 * Gemini CLI 0.61 offers its models only so, without `configOptions`. The gateway shows them as a
 * `select` config option of category `model`, so a client has one model picker for every agent;
 * an agent that sends `configOptions` too is read by those alone, as ACP asks of a client.
 * Tested in test/agents/acp-choices.test.ts and, with Gemini CLI, test/web/ui-real-agents.test.ts.
 */
export class SessionModels {
  private option: AgentConfigOption | undefined;

  /** The model option an opening answer names in its `models`, once read; undefined when it names none or sends `configOptions`. */
  opened(answer: { models?: unknown; configOptions?: unknown }): AgentConfigOption | undefined {
    this.option = Array.isArray(answer.configOptions) ? undefined : toModelOption(answer.models);
    return this.option;
  }

  /** Whether `configId` names the option made of `models`: it is chosen through `session/set_model`. */
  owns(configId: string): boolean {
    return this.option !== undefined && this.option.id === configId;
  }

  /** The option once the agent confirmed `modelId` (its `session/set_model` answer is empty). */
  chosen(modelId: string): AgentConfigOption {
    if (this.option === undefined) throw new InternalError("no session models to choose from");
    this.option = { ...this.option, currentValue: modelId };
    return this.option;
  }
}

function toModelOption(models: unknown): AgentConfigOption | undefined {
  if (!isRecord(models) || typeof models.currentModelId !== "string" || !Array.isArray(models.availableModels)) {
    return undefined;
  }
  const options = models.availableModels.flatMap((m): NonNullable<AgentConfigOption["options"]> => {
    if (!isRecord(m) || typeof m.modelId !== "string") return [];
    const name = typeof m.name === "string" ? m.name : m.modelId;
    return [{ value: m.modelId, name, ...(typeof m.description === "string" ? { description: m.description } : {}) }];
  });
  return {
    id: SESSION_MODELS_OPTION_ID,
    name: "Model",
    category: "model",
    type: "select",
    currentValue: models.currentModelId,
    options,
  };
}
