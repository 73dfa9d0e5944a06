import type { AppContext } from "./context.js";
import { fill, h, icon } from "./dom.js";
import { errorText } from "./format.js";

export interface PromptComposerOptions {
  sessionId: string;
  /** Whether the session has ended (the prompt box stays disabled after a send). */
  ended(): boolean;
}

/**
 * The bottom of an agent page: how many prompts wait in the queue, and the prompt box (Enter
 * sends, Shift+Enter starts a new line; a prompt sent during a run queues behind it). A viewer
 * gets a read-only notice instead of the box.
 */
export class PromptComposer {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private readonly options: PromptComposerOptions;
  private readonly queueLine: HTMLElement;
  private readonly textarea: HTMLTextAreaElement | null;
  private readonly sendButton: HTMLButtonElement | null;

  constructor(ctx: AppContext, options: PromptComposerOptions) {
    this.ctx = ctx;
    this.options = options;
    this.queueLine = h("div", { class: "queue-line", hidden: true });
    if (ctx.canSteer) {
      this.textarea = h("textarea", {
        class: "prompt-input",
        rows: 1,
        placeholder: "Message the agent…",
        title: "Enter sends, Shift+Enter starts a new line",
        "aria-label": "Prompt",
      });
      this.sendButton = h(
        "button",
        { class: "btn btn-primary btn-send", type: "submit", "data-test": "send", "aria-label": "Send" },
        icon("send"),
      );
      const form = h("form", { class: "composer-form" }, this.textarea, this.sendButton);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        void this.send();
      });
      this.textarea.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          void this.send();
        }
      });
      this.textarea.addEventListener("input", () => this.autosize());
      this.element = h("div", { class: "composer" }, this.queueLine, form);
    } else {
      this.textarea = null;
      this.sendButton = null;
      this.element = h(
        "div",
        { class: "composer readonly", "data-test": "readonly" },
        this.queueLine,
        h("p", null, icon("eye"), h("strong", null, "Read-only"), " · you are signed in as a viewer"),
      );
    }
  }

  focus(): void {
    this.textarea?.focus();
  }

  /** Puts `hint` in the prompt box, ready to send. */
  useHint(hint: string): void {
    if (!this.textarea) return;
    this.textarea.value = hint;
    this.autosize();
    this.textarea.focus();
  }

  /** Shows the queue, and whether a prompt can be sent now (`running`) and would queue (`active`). */
  update(state: { running: boolean; active: boolean; queued: number }): void {
    const { running, active, queued } = state;
    this.queueLine.hidden = queued === 0;
    fill(this.queueLine, icon("clock"), `${queued} prompt${queued === 1 ? "" : "s"} queued behind the active run`);
    if (this.textarea && this.sendButton) {
      this.textarea.disabled = !running;
      this.sendButton.disabled = !running;
      this.textarea.placeholder = !running
        ? "This session has ended."
        : active
          ? "Queue another prompt…"
          : "Message the agent…";
      this.sendButton.title = active ? "Queue" : "Send";
    }
  }

  private async send(): Promise<void> {
    const textarea = this.textarea;
    if (!textarea) return;
    const text = textarea.value.trim();
    if (text === "") return;
    textarea.disabled = true;
    try {
      await this.ctx.client.prompt(this.options.sessionId, text);
      textarea.value = "";
      this.autosize();
    } catch (error) {
      this.ctx.toast(`Prompt not sent: ${errorText(error)}`, "error");
    } finally {
      textarea.disabled = this.options.ended();
      textarea.focus();
    }
  }

  private autosize(): void {
    const textarea = this.textarea;
    if (!textarea) return;
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
  }
}
