import type { AppContext } from "./context.js";
import { fill, h, icon } from "./dom.js";
import { errorText, unconfirmedText } from "./format.js";

export interface PromptComposerOptions {
  sessionId: string;
  /** A prompt is being sent (before the gateway has it). */
  onSend(): void;
}

/**
 * A keyboard on a touch screen: no Shift+Enter there, so Enter starts a new line and Send sends,
 * and the box is not focused until tapped (focusing it pops up the keyboard over the answer).
 */
export function touchKeyboard(): boolean {
  return matchMedia("(hover: none) and (pointer: coarse)").matches;
}

/**
 * The bottom of an agent page: how many prompts wait in the queue, and the prompt box (Enter
 * sends, Shift+Enter starts a new line — on a touch screen Enter starts a new line and Send
 * sends; a prompt sent during a run queues behind it). A viewer
 * gets a read-only notice instead of the box. While a prompt is on its way the box and Send
 * are disabled, so a double click or a second Enter cannot send it twice.
 */
/** Unsent prompts by session, for as long as the tab is open. */
const drafts = new Map<string, string>();

export class PromptComposer {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private readonly options: PromptComposerOptions;
  private readonly queueLine: HTMLElement;
  private readonly textarea: HTMLTextAreaElement | null;
  private readonly sendButton: HTMLButtonElement | null;
  /** The session runs, so prompts can be sent (see {@link update}). */
  private running = true;
  /** A prompt is on its way to the gateway. */
  private sending = false;
  /** The page can reach the gateway: else Send waits (the SDK would hold a prompt 10 s, then time out). */
  private connected = true;
  private sendTitle = "Send";
  /**
   * A prompt whose sending was not confirmed (see {@link unconfirmedText}): it stays in the box
   * until it is seen to arrive ({@link arrived}), or the user sends it again after all.
   */
  private unconfirmed: string | null = null;

  constructor(ctx: AppContext, options: PromptComposerOptions) {
    this.ctx = ctx;
    this.options = options;
    this.queueLine = h("div", { class: "queue-line", hidden: true });
    if (ctx.canSteer) {
      const touch = touchKeyboard();
      this.textarea = h("textarea", {
        class: "prompt-input",
        rows: 1,
        placeholder: "Message the agent…",
        title: touch ? "Send sends, Enter starts a new line" : "Enter sends, Shift+Enter starts a new line",
        enterkeyhint: touch ? "enter" : "send",
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
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !touch) {
          event.preventDefault();
          void this.send();
        }
      });
      // A draft not sent yet stays with its session while the tab is open (exploratory test:
      // opening another session and coming back emptied the box).
      const draft = drafts.get(options.sessionId);
      if (draft !== undefined) this.textarea.value = draft;
      this.textarea.addEventListener("input", () => {
        this.autosize();
        if (this.textarea!.value === "") drafts.delete(options.sessionId);
        else drafts.set(options.sessionId, this.textarea!.value);
      });
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

  /** Focuses the box for typing right away, unless the keyboard would have to pop up for it. */
  focusForTyping(): void {
    if (!touchKeyboard()) this.focus();
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
    this.running = running;
    this.queueLine.hidden = queued === 0;
    fill(this.queueLine, icon("clock"), `${queued} prompt${queued === 1 ? "" : "s"} queued behind the active run`);
    this.enable();
    if (this.textarea && this.sendButton) {
      this.textarea.placeholder = !running
        ? "This session has ended."
        : active
          ? "Queue another prompt…"
          : "Message the agent…";
      this.sendTitle = active ? "Queue" : "Send";
      this.enable();
    }
  }

  /**
   * A prompt reached the session (`run.queued`): when it is the one whose sending was not
   * confirmed, it did arrive after all, and the box it was left in is emptied.
   */
  arrived(text: string, by: string): void {
    const textarea = this.textarea;
    if (!textarea || this.unconfirmed === null || text !== this.unconfirmed || by !== this.ctx.me.name) return;
    this.unconfirmed = null;
    if (textarea.value.trim() !== text) return;
    textarea.value = "";
    drafts.delete(this.options.sessionId);
    this.autosize();
    this.ctx.toast("The prompt that was not confirmed has arrived", "info");
  }

  /** Whether the page can reach the gateway now (the connection pill says the same). */
  setConnected(connected: boolean): void {
    if (this.connected === connected) return;
    this.connected = connected;
    this.enable();
  }

  private async send(): Promise<void> {
    const textarea = this.textarea;
    if (!textarea || this.sending) return;
    const text = textarea.value.trim();
    if (text === "") return;
    if (!this.connected) {
      // Said at once, the draft kept (exploratory test: the box froze 10 s, then "TIMEOUT").
      this.ctx.toast(
        "Not connected to the gateway: the prompt stays here; send it once the connection is back",
        "info",
      );
      return;
    }
    this.sending = true;
    this.unconfirmed = null;
    this.enable();
    this.options.onSend();
    try {
      await this.ctx.client.prompt(this.options.sessionId, text);
      textarea.value = "";
      drafts.delete(this.options.sessionId);
      this.autosize();
    } catch (error) {
      // Perhaps on its way (a stalled link): the prompt stays in the box, in case it never
      // arrives, and is taken out if it does; the user is asked to look before sending it again.
      const unconfirmed = unconfirmedText("Prompt", error);
      if (unconfirmed !== null) this.unconfirmed = text;
      this.ctx.toast(
        unconfirmed !== null
          ? `${unconfirmed} — check the conversation before sending again`
          : `Prompt not sent: ${errorText(error)}`,
        "error",
      );
    } finally {
      this.sending = false;
      this.enable();
      textarea.focus();
    }
  }

  /** The box and Send take input while the session runs and no prompt is on its way. */
  private enable(): void {
    const disabled = !this.running || this.sending;
    if (this.textarea) this.textarea.disabled = disabled;
    if (this.sendButton) {
      this.sendButton.disabled = disabled || !this.connected;
      this.sendButton.title = this.connected ? this.sendTitle : "Not connected: send once the connection is back";
    }
  }

  private autosize(): void {
    const textarea = this.textarea;
    if (!textarea) return;
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
  }
}
