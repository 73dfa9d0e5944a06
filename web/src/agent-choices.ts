import { reduceAgentState } from "../../src/client/index.js";
import type { AgentState, SessionEvent, SessionInfo } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";
import { h } from "./dom.js";
import { errorText } from "./format.js";

/**
 * The agent header's mode and model pickers: what the agent offers (`agentState.modes` and its
 * option of category `model`), the current one selected. A pick is sent as `mode` / `config`
 * (docs/agents.md, "Choosing") and shows once the agent confirmed it (its `agent.*` event);
 * refused, the pickers show the state as it stands and a toast says why. Hidden while the agent
 * offers neither; disabled for a caller who may not steer.
 */
export class AgentChoices {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private readonly sessionId: string;
  private state: AgentState | undefined;
  private readonly modeSelect: HTMLSelectElement;
  private readonly modelSelect: HTMLSelectElement;
  /** A pick sent and not answered yet: the pickers wait for it. */
  private busy = false;

  constructor(ctx: AppContext, session: SessionInfo) {
    this.ctx = ctx;
    this.sessionId = session.id;
    this.state = session.agentState;
    this.modeSelect = h("select", {
      class: "agent-pick",
      "data-test": "mode-picker",
      title: "The agent's mode",
      "aria-label": "Mode",
      onchange: () => void this.pick("mode", this.modeSelect.value),
    });
    this.modelSelect = h("select", {
      class: "agent-pick",
      "data-test": "model-picker",
      title: "The agent's model",
      "aria-label": "Model",
      onchange: () => void this.pick("model", this.modelSelect.value),
    });
    this.element = h("span", { class: "agent-choices" }, this.modeSelect, this.modelSelect);
    this.render();
  }

  /** Takes in an event of the session's log (the `agent.*` ones change the state). */
  apply(event: SessionEvent): void {
    // What the page's first state already took in is not applied again.
    if (this.state !== undefined && event.seq <= this.state.seq) return;
    const next = reduceAgentState(this.state, event);
    if (next === this.state) return;
    this.state = next;
    this.render();
  }

  private async pick(what: "mode" | "model", value: string): Promise<void> {
    const model = this.modelOption();
    this.busy = true;
    this.render();
    try {
      const answer =
        what === "mode"
          ? await this.ctx.client.setMode(this.sessionId, value)
          : await this.ctx.client.setConfig(this.sessionId, model!.id, value);
      if (answer.agentState !== null && (this.state === undefined || answer.agentState.seq >= this.state.seq))
        this.state = answer.agentState;
    } catch (error) {
      this.ctx.toast(errorText(error), "error");
    } finally {
      this.busy = false;
      this.render();
    }
  }

  private modelOption(): NonNullable<AgentState["configOptions"]>[number] | undefined {
    return this.state?.configOptions?.find((o) => o.category === "model" && o.type === "select");
  }

  private render(): void {
    const modes = this.state?.modes;
    const model = this.modelOption();
    const disabled = this.busy || !this.ctx.canSteer;
    this.modeSelect.hidden = modes === undefined || modes.availableModes.length === 0;
    this.modeSelect.disabled = disabled;
    this.modeSelect.replaceChildren(
      ...(modes?.availableModes ?? []).map((m) => h("option", { value: m.id, title: m.description ?? m.name }, m.name)),
    );
    if (modes !== undefined) this.modeSelect.value = modes.currentModeId;
    this.modelSelect.hidden = model === undefined || (model.options ?? []).length === 0;
    this.modelSelect.disabled = disabled;
    this.modelSelect.replaceChildren(
      ...(model?.options ?? []).map((o) => h("option", { value: o.value, title: o.description ?? o.name }, o.name)),
    );
    if (typeof model?.currentValue === "string") this.modelSelect.value = model.currentValue;
    this.element.hidden = this.modeSelect.hidden && this.modelSelect.hidden;
  }
}
