import { isSwitchboardError } from "../../src/client/index.js";
import type { AgentCommand, PromptCapabilities } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";
import { fill, h, icon } from "./dom.js";
import { errorText, unconfirmedText } from "./format.js";
import { allowed, attachmentChip, attachmentOf, refusal, takesFiles } from "./prompt-attachments.js";
import type { Attachment } from "./prompt-attachments.js";
import { SlashMenu } from "./slash-menu.js";

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

/** Unsent prompts by session, for as long as the tab is open. */
const drafts = new Map<string, string>();

/**
 * The bottom of an agent page: the queue count and the prompt box (Enter sends, Shift+Enter or a
 * touch screen's Enter a new line), with slash commands (slash-menu.ts) and attachments
 * (prompt-attachments.ts). Disabled while a prompt is on its way (no double send); a content
 * refusal is said under the box, the files kept. A viewer gets a read-only notice.
 */
export class PromptComposer {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private readonly options: PromptComposerOptions;
  private readonly queueLine: HTMLElement;
  private readonly textarea: HTMLTextAreaElement | null;
  private readonly sendButton: HTMLButtonElement | null;
  private readonly slash: SlashMenu | null = null;
  /** The files to send with the next prompt, and their chips. */
  private attachments: Attachment[] = [];
  private readonly chips: HTMLElement;
  /** Why the last prompt or file was refused (role=alert), until the next try. */
  private readonly errorLine: HTMLElement;
  /** The attach buttons: shown while the agent may take files. */
  private readonly attachButtons: HTMLElement;
  /** What the agent takes beyond text (undefined: not known yet, the gateway checks). */
  private caps: PromptCapabilities | undefined;
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
    this.chips = h("ul", { class: "attachments", "aria-label": "Files to send", hidden: true });
    this.errorLine = h("p", { class: "composer-error", role: "alert", "data-testid": "composer-error", hidden: true });
    this.attachButtons = h("span", { class: "attach-buttons" });
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
      const slash = new SlashMenu(this.textarea, () => this.autosize());
      this.slash = slash;
      this.attachButtons.append(...this.pickers(touch));
      const form = h(
        "form",
        { class: "composer-form" },
        this.attachButtons,
        h("div", { class: "prompt-box" }, slash.element, slash.ghost, this.textarea),
        this.sendButton,
      );
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        void this.send();
      });
      this.textarea.addEventListener("paste", (event) => {
        const files = [...(event.clipboardData?.files ?? [])];
        if (files.length === 0) return; // text: the box takes it
        event.preventDefault();
        void this.attach(files);
      });
      form.addEventListener("dragover", (event) => {
        if (!event.dataTransfer?.types.includes("Files")) return;
        event.preventDefault();
        form.classList.add("dropping");
      });
      form.addEventListener("dragleave", () => form.classList.remove("dropping"));
      form.addEventListener("drop", (event) => {
        form.classList.remove("dropping");
        const files = [...(event.dataTransfer?.files ?? [])];
        if (files.length === 0) return;
        event.preventDefault();
        void this.attach(files);
      });
      this.textarea.addEventListener("keydown", (event) => {
        if (slash.keydown(event)) return;
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
      this.element = h("div", { class: "composer" }, this.queueLine, this.chips, this.errorLine, form);
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

  /** The agent's slash commands now (`agentState.commands`). */
  setCommands(commands: readonly AgentCommand[]): void {
    this.slash?.setCommands(commands);
  }

  /** What the agent takes in a prompt beyond text (`SessionInfo.promptCapabilities`; undefined: not known yet). */
  setCapabilities(caps: PromptCapabilities | undefined): void {
    if (sameCaps(caps, this.caps)) return;
    this.caps = caps;
    this.attachButtons.hidden = !takesFiles(caps);
    for (const button of this.attachButtons.querySelectorAll<HTMLElement>("[data-needs]"))
      button.hidden = caps !== undefined && !caps[button.dataset["needs"] as keyof PromptCapabilities];
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
    const attachments = this.attachments;
    if (text === "" && attachments.length === 0) return;
    const refused = attachments.find((a) => !allowed(a.block, this.caps));
    if (refused) {
      this.showError(`${refused.name}: this agent does not take such files in a prompt; remove it to send`);
      return;
    }
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
    this.showError(null);
    try {
      await this.ctx.client.prompt(
        this.options.sessionId,
        attachments.length === 0 ? text : { text, content: attachments.map((a) => a.block) },
      );
      textarea.value = "";
      drafts.delete(this.options.sessionId);
      this.autosize();
      this.slash?.refresh();
      if (this.attachments === attachments) this.setAttachments([]);
    } catch (error) {
      // Refused for what it carries: said where the files are, which stay to be changed.
      if (isSwitchboardError(error, "UNSUPPORTED_CONTENT") || isSwitchboardError(error, "PAYLOAD_TOO_LARGE")) {
        this.showError(`Prompt not sent: ${errorText(error)}`);
        return;
      }
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
    for (const button of this.attachButtons.querySelectorAll("button")) button.disabled = disabled;
    if (this.sendButton) {
      this.sendButton.disabled = disabled || !this.connected;
      this.sendButton.title = this.connected ? this.sendTitle : "Not connected: send once the connection is back";
    }
  }

  /** The attach buttons and their hidden file inputs: an image (on a touch screen also the camera), any file. */
  private pickers(touch: boolean): HTMLElement[] {
    const picker = (o: {
      label: string;
      icon: "image" | "camera" | "clip";
      accept?: string;
      capture?: boolean;
      needs?: keyof PromptCapabilities;
      test: string;
    }): HTMLElement => {
      const input = h("input", {
        type: "file",
        hidden: true,
        multiple: !o.capture,
        accept: o.accept ?? null,
        // A phone opens its camera for this one; the image picker beside it offers the gallery.
        capture: o.capture ? "environment" : null,
        "data-testid": `${o.test}-input`,
        onchange: () => {
          void this.attach([...(input.files ?? [])]);
          input.value = "";
        },
      });
      const button = h(
        "button",
        {
          class: "btn btn-ghost btn-icon attach",
          type: "button",
          title: o.label,
          "aria-label": o.label,
          "data-testid": o.test,
          "data-needs": o.needs ?? null,
          onclick: () => input.click(),
        },
        icon(o.icon),
      );
      return h("span", { class: "attach-picker" }, button, input);
    };
    return [
      picker({ label: "Attach an image", icon: "image", accept: "image/*", needs: "image", test: "attach-image" }),
      touch
        ? picker({
            label: "Take a photo",
            icon: "camera",
            accept: "image/*",
            capture: true,
            needs: "image",
            test: "attach-camera",
          })
        : null,
      picker({ label: "Attach a file", icon: "clip", needs: "embeddedContext", test: "attach-file" }),
    ].filter((b): b is HTMLElement => b !== null);
  }

  /** Reads `files` into attachments, each the agent and the bounds allow; the others say why. */
  private async attach(files: readonly File[]): Promise<void> {
    const problems: string[] = [];
    let next = [...this.attachments];
    for (const file of files) {
      const why = refusal(file, this.caps, next);
      if (why !== null) {
        problems.push(why);
        continue;
      }
      try {
        next = [...next, await attachmentOf(file)];
      } catch (error) {
        problems.push(`${file.name}: ${errorText(error)}`);
      }
    }
    this.setAttachments(next);
    this.showError(problems.length > 0 ? problems.join(" · ") : null);
  }

  private setAttachments(attachments: Attachment[]): void {
    this.attachments = attachments;
    this.chips.hidden = attachments.length === 0;
    this.chips.replaceChildren(
      ...attachments.map((a) =>
        attachmentChip(a, () => {
          this.setAttachments(this.attachments.filter((other) => other !== a));
          this.showError(null);
          this.textarea?.focus();
        }),
      ),
    );
  }

  private showError(text: string | null): void {
    this.errorLine.hidden = text === null;
    fill(this.errorLine, text === null ? null : icon("x"), text);
  }

  private autosize(): void {
    const textarea = this.textarea;
    if (!textarea) return;
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
  }
}

function sameCaps(a: PromptCapabilities | undefined, b: PromptCapabilities | undefined): boolean {
  return (
    a === b ||
    (a !== undefined &&
      b !== undefined &&
      a.image === b.image &&
      a.audio === b.audio &&
      a.embeddedContext === b.embeddedContext)
  );
}
