import type { CreateSessionRequest } from "../../src/client/index.js";
import type { SessionInfo } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";
import { fill, h, icon } from "./dom.js";
import { dialogHead, formField, modalDialog } from "./form-dialog.js";
import { errorText } from "./format.js";
import { noteHeld } from "./tab-memory.js";
import { splitCommand } from "./shell-words.js";

/** What a new terminal runs unless the user types something else. */
export const DEFAULT_COMMAND = "bash -l";
/** The built-in agent: no keys needed (docs/agents.md). */
export const DEFAULT_AGENT = "echo";

/**
 * "New session": a terminal (command line split like a shell would, PTY or pipes) or an
 * agent (a configured agent id; `echo` is built in). Opens the new session on success.
 */
export class CreateDialog {
  readonly element: HTMLDialogElement;
  private readonly ctx: Pick<AppContext, "http" | "store" | "navigate">;
  private kind: "terminal" | "agent" = "terminal";
  private readonly form: HTMLFormElement;
  private readonly error: HTMLElement;
  private readonly tabs: HTMLElement;
  private readonly fields: HTMLElement;
  private readonly submit: HTMLButtonElement;
  /** The gateway's agents, offered as the Agent field is typed in (still free text: a plugin's may come later). */
  private readonly agentIds = h("datalist", { id: "agent-ids" });
  private readonly inputs = {
    command: h("input", {
      name: "command",
      value: DEFAULT_COMMAND,
      autocomplete: "off",
      spellcheck: "false",
      required: true,
    }),
    pty: h("input", { name: "pty", type: "checkbox", checked: true }),
    agent: h("input", {
      name: "agent",
      value: DEFAULT_AGENT,
      autocomplete: "off",
      spellcheck: "false",
      required: true,
      list: "agent-ids",
    }),
    name: h("input", { name: "name", placeholder: "optional", autocomplete: "off", maxlength: 200 }),
    cwd: h("input", { name: "cwd", placeholder: "the gateway's directory", autocomplete: "off", spellcheck: "false" }),
    // A branch makes the session run in a new git worktree of the repository at cwd (docs/ui.md).
    branch: h("input", { name: "branch", placeholder: "optional", autocomplete: "off", spellcheck: "false" }),
    base: h("input", {
      name: "base",
      placeholder: "the repository's branch",
      autocomplete: "off",
      spellcheck: "false",
    }),
  };

  constructor(ctx: Pick<AppContext, "http" | "store" | "navigate">) {
    this.ctx = ctx;
    this.error = h("p", { class: "form-error", role: "alert" });
    // Toggle buttons: the kind chosen decides which fields follow (tabs would need panels).
    this.tabs = h("div", { class: "segmented", role: "group", "aria-label": "Kind of session" });
    this.fields = h("div", { class: "fields" });
    this.submit = h("button", { class: "btn btn-primary", type: "submit", "data-test": "create" }, "Start");
    this.form = h(
      "form",
      { class: "create-form", method: "dialog" },
      dialogHead("New session", () => this.close()),
      this.tabs,
      this.fields,
      this.error,
      h(
        "footer",
        { class: "dialog-foot" },
        h("button", { class: "btn", type: "button", onclick: () => this.close() }, "Cancel"),
        this.submit,
      ),
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.create();
    });
    this.element = modalDialog("New session", () => this.close(), this.form, this.agentIds);
    this.render();
  }

  open(kind: "terminal" | "agent" = "terminal"): void {
    this.kind = kind;
    fill(this.error);
    this.render();
    if (!this.element.open) this.element.showModal();
    (kind === "terminal" ? this.inputs.command : this.inputs.agent).focus();
    void this.loadAgents();
  }

  /** Fills the Agent field's suggestions from GET /v1/agents; without them the field is as before. */
  private async loadAgents(): Promise<void> {
    try {
      const agents = await this.ctx.http.listAgents();
      fill(
        this.agentIds,
        ...agents.map((a) => h("option", { value: a.id }, a.source === "built-in" ? "built in" : a.adapter)),
      );
    } catch {
      // Offline or refused: the field still takes any id.
    }
  }

  close(): void {
    if (this.element.open) this.element.close();
  }

  private render(): void {
    const tab = (kind: "terminal" | "agent", label: string, hint: string) =>
      h(
        "button",
        {
          type: "button",
          class: `segment${this.kind === kind ? " active" : ""}`,
          "aria-pressed": this.kind === kind ? "true" : "false",
          "data-kind": kind,
          onclick: () => {
            this.kind = kind;
            this.render();
            // The buttons are made anew: the focus stays on the one pressed (it fell to the page).
            this.tabs.querySelector<HTMLButtonElement>(`[data-kind="${kind}"]`)?.focus();
          },
        },
        icon(kind),
        h("span", null, h("strong", null, label), h("small", null, hint)),
      );
    fill(
      this.tabs,
      tab("terminal", "Terminal", "a command in a PTY or pipes"),
      tab("agent", "Agent", "prompts, tools, permissions"),
    );
    if (this.kind === "terminal") {
      fill(
        this.fields,
        formField("Command", this.inputs.command, "Split like a shell would: quotes work, nothing is expanded."),
        h(
          "label",
          { class: "check" },
          this.inputs.pty,
          h("span", null, "Interactive terminal (PTY)"),
          h("small", { class: "muted" }, "off: plain pipes"),
        ),
        formField("Name", this.inputs.name),
        formField("Working directory", this.inputs.cwd),
        ...this.worktreeFields(),
      );
    } else {
      fill(
        this.fields,
        formField(
          "Agent",
          this.inputs.agent,
          "An agent the gateway knows (the list offers them). echo is built in: try /tool, /plan, /permission.",
        ),
        formField("Name", this.inputs.name),
        formField("Working directory", this.inputs.cwd),
        ...this.worktreeFields(),
      );
    }
  }

  /** Branch and base of a new git worktree: with a branch, the working directory names the repository. */
  private worktreeFields(): HTMLElement[] {
    return [
      formField(
        "Worktree branch",
        this.inputs.branch,
        "Runs in a new git worktree of the repository above, on this branch (made from the base when new).",
      ),
      formField("Worktree base", this.inputs.base),
    ];
  }

  private request(): CreateSessionRequest {
    const name = this.inputs.name.value.trim();
    const cwd = this.inputs.cwd.value.trim();
    const branch = this.inputs.branch.value.trim();
    const base = this.inputs.base.value.trim();
    if (branch && !cwd) throw new Error("a worktree needs the repository: type its path as the working directory");
    const where = branch ? { worktree: { repo: cwd, branch, ...(base ? { base } : {}) } } : cwd ? { cwd } : {};
    const extra = { ...(name ? { name } : {}), ...where };
    if (this.kind === "agent")
      return { kind: "agent", agent: this.inputs.agent.value.trim() || DEFAULT_AGENT, ...extra };
    const command = splitCommand(this.inputs.command.value);
    if (command.length === 0) throw new Error("type a command to run");
    const pty = this.inputs.pty.checked;
    return { kind: "terminal", command, pty, ...extra };
  }

  private async create(): Promise<void> {
    fill(this.error);
    let body: CreateSessionRequest;
    try {
      body = this.request();
    } catch (error) {
      fill(this.error, errorText(error));
      return;
    }
    this.submit.disabled = true;
    try {
      const session: SessionInfo = await this.ctx.http.createSession(body);
      this.ctx.store.upsert(session);
      this.close();
      this.inputs.name.value = "";
      // Whoever starts a session means to use it: its page takes control (see maybeAutoAcquire).
      noteHeld(session.id, true);
      this.ctx.navigate(`#/s/${encodeURIComponent(session.id)}`);
    } catch (error) {
      fill(this.error, errorText(error));
    } finally {
      this.submit.disabled = false;
    }
  }
}
