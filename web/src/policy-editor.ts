import { POLICY_ANSWERS, TIMEOUT_ANSWERS, TOOL_KINDS } from "../../src/protocol/index.js";
import type { PermissionPolicyInput, PolicyPreviewRow, PolicyRule } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";
import { fill, h } from "./dom.js";
import { errorText } from "./format.js";

/** A rule as the editor holds it: every field a string, as its inputs do. */
interface RuleDraft {
  name: string;
  kind: string;
  paths: string;
  insideCwd: "" | "inside" | "outside";
  command: string;
  answer: PolicyRule["answer"];
}

/**
 * The agent session's permission rules (docs/agents.md, "Permission policy"): the rules in
 * order, what they would have answered to the session's past requests (Preview) and Save, which
 * sets them for this session. Loaded when opened; viewers see them without Save.
 */
export class PolicyEditor {
  readonly element: HTMLDetailsElement;
  private rules: RuleDraft[] = [];
  private timeoutS = "";
  private onTimeout: string = "reject_once";
  private readonly rulesEl = h("div", { class: "policy-rules", "data-test": "policy-rules" });
  private readonly previewEl = h("div", { class: "policy-preview", "data-test": "policy-preview" });
  private readonly statusEl = h("p", { class: "policy-status muted", "data-test": "policy-status" });
  private readonly timeoutInput: HTMLInputElement;
  private readonly onTimeoutSelect: HTMLSelectElement;

  constructor(
    private readonly ctx: AppContext,
    private readonly sessionId: string,
  ) {
    this.timeoutInput = h("input", {
      type: "number",
      min: "1",
      placeholder: "300",
      "aria-label": "Seconds a request waits for a person",
      oninput: () => (this.timeoutS = this.timeoutInput.value),
    });
    this.onTimeoutSelect = select(TIMEOUT_ANSWERS, "reject_once", (v) => (this.onTimeout = v), "Then");
    this.element = h(
      "details",
      { class: "policy-editor", "data-test": "policy-editor", ontoggle: () => this.element.open && void this.load() },
      h(
        "summary",
        { class: "btn btn-ghost btn-small", title: "Rules that answer the agent's permission requests" },
        "Rules",
      ),
      h(
        "div",
        { class: "policy-panel" },
        this.rulesEl,
        h(
          "div",
          { class: "policy-actions" },
          ctx.canSteer
            ? h("button", { class: "btn btn-small", type: "button", onclick: () => this.addRule() }, "Add rule")
            : null,
          h("label", null, "Wait ", this.timeoutInput, " s, then ", this.onTimeoutSelect),
        ),
        h(
          "div",
          { class: "policy-actions" },
          h(
            "button",
            {
              class: "btn btn-small",
              type: "button",
              "data-test": "policy-preview-button",
              onclick: () => void this.preview(),
            },
            "Preview",
          ),
          ctx.canSteer
            ? h(
                "button",
                {
                  class: "btn btn-small btn-primary",
                  type: "button",
                  "data-test": "policy-save",
                  onclick: () => void this.save(),
                },
                "Save",
              )
            : null,
        ),
        this.statusEl,
        this.previewEl,
      ),
    );
  }

  private async load(): Promise<void> {
    try {
      const { policy, source } = await this.ctx.http.permissionPolicy(this.sessionId);
      this.rules = (policy?.rules ?? []).map(draftOf);
      this.timeoutS = policy?.timeoutMs !== undefined ? String(policy.timeoutMs / 1000) : "";
      this.onTimeout = policy?.onTimeout ?? "reject_once";
      this.timeoutInput.value = this.timeoutS;
      this.onTimeoutSelect.value = this.onTimeout;
      this.statusEl.textContent =
        source === "session"
          ? "This session's own rules."
          : source === "agent"
            ? "The agent's rules (config)."
            : "No rules: a person answers every request.";
      this.renderRules();
    } catch (error) {
      this.statusEl.textContent = errorText(error);
    }
  }

  private addRule(): void {
    this.rules.push({
      name: `rule-${this.rules.length + 1}`,
      kind: "",
      paths: "",
      insideCwd: "",
      command: "",
      answer: "ask",
    });
    this.renderRules();
  }

  private renderRules(): void {
    const editable = this.ctx.canSteer;
    fill(
      this.rulesEl,
      this.rules.length === 0 ? h("p", { class: "muted" }, "No rules.") : null,
      this.rules.map((rule, i) =>
        h(
          "div",
          { class: "policy-rule", "data-test": "policy-rule" },
          input(rule.name, "name", (v) => (rule.name = v), editable),
          select(["", ...TOOL_KINDS], rule.kind, (v) => (rule.kind = v), "kind", editable, "any kind"),
          input(rule.command, "command regex", (v) => (rule.command = v), editable),
          input(rule.paths, "path globs, comma-separated", (v) => (rule.paths = v), editable),
          select(
            ["", "inside", "outside"],
            rule.insideCwd,
            (v) => (rule.insideCwd = v as RuleDraft["insideCwd"]),
            "cwd",
            editable,
            "anywhere",
          ),
          select(POLICY_ANSWERS, rule.answer, (v) => (rule.answer = v as RuleDraft["answer"]), "answer", editable),
          editable
            ? h(
                "button",
                {
                  class: "btn btn-ghost btn-small",
                  type: "button",
                  title: "Remove this rule",
                  onclick: () => {
                    this.rules.splice(i, 1);
                    this.renderRules();
                  },
                },
                "✕",
              )
            : null,
        ),
      ),
    );
  }

  private policy(): PermissionPolicyInput {
    const seconds = Number(this.timeoutS);
    return {
      rules: this.rules.map(ruleOf),
      ...(this.timeoutS.trim() !== "" && seconds > 0 ? { timeoutMs: Math.round(seconds * 1000) } : {}),
      onTimeout: this.onTimeout as PermissionPolicyInput["onTimeout"],
    };
  }

  private async preview(): Promise<void> {
    try {
      const { requests } = await this.ctx.http.previewPermissionPolicy(this.sessionId, this.policy());
      fill(this.previewEl, previewTable(requests));
      this.statusEl.textContent = `${requests.length} past request(s) checked.`;
    } catch (error) {
      this.statusEl.textContent = errorText(error);
    }
  }

  private async save(): Promise<void> {
    try {
      await this.ctx.http.setPermissionPolicy(this.sessionId, this.policy());
      this.statusEl.textContent = "Saved: this session's requests are answered by these rules from now on.";
    } catch (error) {
      this.statusEl.textContent = errorText(error);
    }
  }
}

function draftOf(rule: PolicyRule): RuleDraft {
  return {
    name: rule.name,
    kind: rule.kind ?? "",
    paths: (rule.paths ?? []).join(", "),
    insideCwd: rule.insideCwd === undefined ? "" : rule.insideCwd ? "inside" : "outside",
    command: rule.command ?? "",
    answer: rule.answer,
  };
}

function ruleOf(draft: RuleDraft): PolicyRule {
  const paths = draft.paths
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  return {
    name: draft.name.trim(),
    ...(draft.kind !== "" ? { kind: draft.kind } : {}),
    ...(paths.length > 0 ? { paths } : {}),
    ...(draft.insideCwd !== "" ? { insideCwd: draft.insideCwd === "inside" } : {}),
    ...(draft.command !== "" ? { command: draft.command } : {}),
    answer: draft.answer,
  };
}

function previewTable(rows: PolicyPreviewRow[]): HTMLElement {
  if (rows.length === 0) return h("p", { class: "muted" }, "The session has no past permission requests.");
  return h(
    "table",
    { class: "policy-preview-table" },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", null, "Request"),
        h("th", null, "Kind"),
        h("th", null, "Rule"),
        h("th", null, "Would answer"),
        h("th", null, "Was answered by"),
      ),
    ),
    h(
      "tbody",
      null,
      rows.map((row) =>
        h(
          "tr",
          { "data-test": "policy-preview-row", "data-rule": row.rule ?? "" },
          h("td", null, row.title),
          h("td", null, row.toolCall?.kind ?? ""),
          h("td", null, row.rule ?? "none"),
          h("td", null, row.answer === "ask" ? "ask a person" : row.answer),
          h("td", null, row.got === null ? "open" : (row.got.by ?? row.got.outcome)),
        ),
      ),
    ),
  );
}

function input(value: string, label: string, set: (v: string) => void, editable = true): HTMLInputElement {
  const el = h("input", { type: "text", placeholder: label, "aria-label": label, disabled: !editable });
  el.value = value;
  el.addEventListener("input", () => set(el.value));
  return el;
}

function select(
  values: readonly string[],
  value: string,
  set: (v: string) => void,
  label: string,
  editable = true,
  emptyLabel = "",
): HTMLSelectElement {
  const el = h(
    "select",
    { "aria-label": label, disabled: !editable, onchange: () => set(el.value) },
    values.map((v) => h("option", { value: v }, v === "" ? emptyLabel : v)),
  );
  el.value = value;
  return el;
}
