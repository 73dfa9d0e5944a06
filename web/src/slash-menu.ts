import type { AgentCommand } from "../../src/protocol/index.js";
import { h } from "./dom.js";

/** Commands the menu lists at most (Claude Code offers about 40; the list scrolls). */
export const SLASH_MENU_MAX_ITEMS = 50;

/**
 * The slash-command menu of the prompt box: while the box holds `/` and a word at its start, the
 * agent's commands (`agentState.commands`, kept current by `agent.commands` events) whose names
 * start with that word, then those that contain it, with their description and input hint. Arrow
 * keys move, Enter or Tab takes the highlighted one, Escape closes, a click or tap takes one.
 * Taking one puts `/name ` in the box; while nothing follows it, the command's input hint shows
 * after it in the box, as a placeholder does ({@link ghost}). Everything the agent named goes in
 * as text (test/web/ui-composer.test.ts: a description with markup shows as text).
 */
export class SlashMenu {
  readonly element: HTMLElement;
  /**
   * Laid over the box: the command typed, invisible, then its input hint in the placeholder's
   * colour, so that the hint stands where the argument goes.
   */
  readonly ghost: HTMLElement;
  private readonly ghostTyped: HTMLElement;
  private readonly ghostHint: HTMLElement;
  private readonly textarea: HTMLTextAreaElement;
  private commands: readonly AgentCommand[] = [];
  private shown: AgentCommand[] = [];
  private active = 0;
  /** The word the list was filtered by: another word highlights its first command again. */
  private filteredBy: string | null = null;
  /** Closed with Escape: stays closed until the word changes. */
  private dismissed: string | null = null;
  /** Called once a command was put in the box (the box grows to fit it). */
  private readonly onPick: () => void;

  constructor(textarea: HTMLTextAreaElement, onPick: () => void) {
    this.textarea = textarea;
    this.onPick = onPick;
    this.element = h("ul", {
      class: "slash-menu",
      role: "listbox",
      id: `slash-menu-${Math.random().toString(36).slice(2)}`,
      "aria-label": "Commands",
      "data-testid": "slash-menu",
      hidden: true,
    });
    this.ghostTyped = h("span", { class: "ghost-typed" });
    this.ghostHint = h("span", { class: "ghost-hint", "data-testid": "command-hint" });
    this.ghost = h(
      "div",
      { class: "prompt-ghost", "aria-hidden": "true", hidden: true },
      this.ghostTyped,
      this.ghostHint,
    );
    // A press, not a click: the box keeps the focus (and a phone its keyboard).
    this.element.addEventListener("pointerdown", (event) => {
      const item = (event.target as Element).closest<HTMLElement>("[data-command]");
      if (!item) return;
      event.preventDefault();
      this.pick(Number(item.dataset["index"]));
    });
    textarea.addEventListener("input", () => this.refresh());
    textarea.addEventListener("blur", () => this.close());
  }

  /** The commands the agent offers now. */
  setCommands(commands: readonly AgentCommand[]): void {
    this.commands = commands;
    if (!this.element.hidden || this.word() !== null) this.refresh();
  }

  /** Handles a key of the box; true when the menu took it (the box must not act on it too). */
  keydown(event: KeyboardEvent): boolean {
    if (this.element.hidden || event.isComposing) return false;
    switch (event.key) {
      case "ArrowDown":
      case "ArrowUp": {
        const step = event.key === "ArrowDown" ? 1 : -1;
        this.active = (this.active + step + this.shown.length) % this.shown.length;
        this.highlight();
        break;
      }
      case "Enter":
      case "Tab":
        if (event.shiftKey) return false;
        this.pick(this.active);
        break;
      case "Escape":
        this.dismissed = this.word();
        this.close();
        break;
      default:
        return false;
    }
    event.preventDefault();
    event.stopPropagation();
    return true;
  }

  /** The box's text changed from outside (a prompt sent, a draft put back): the menu and hint follow it. */
  refresh(): void {
    this.showHint();
    const word = this.word();
    if (word === null || this.commands.length === 0 || word === this.dismissed) {
      if (word !== this.dismissed) this.dismissed = null;
      this.close();
      return;
    }
    this.dismissed = null;
    this.open(word);
  }

  /** The word after a leading `/` while the cursor is still in it, else null. */
  private word(): string | null {
    const match = /^\/(\S*)$/.exec(this.textarea.value.slice(0, this.textarea.selectionEnd));
    return match && this.textarea.value.startsWith(match[0]) ? match[1]!.toLowerCase() : null;
  }

  /** The input hint of the command the box holds, while nothing follows it. */
  private showHint(): void {
    const match = /^\/(\S+) $/.exec(this.textarea.value);
    const command = match ? this.commands.find((c) => c.name === match[1]) : undefined;
    this.ghost.hidden = !command?.hint;
    this.ghostTyped.textContent = this.textarea.value;
    this.ghostHint.textContent = command?.hint ?? "";
  }

  private open(word: string): void {
    if (word !== this.filteredBy) this.active = 0;
    this.filteredBy = word;
    const names = (c: AgentCommand): string => c.name.toLowerCase();
    this.shown = [
      ...this.commands.filter((c) => names(c).startsWith(word)),
      ...this.commands.filter((c) => !names(c).startsWith(word) && names(c).includes(word)),
    ].slice(0, SLASH_MENU_MAX_ITEMS);
    if (this.shown.length === 0) {
      this.close();
      return;
    }
    this.active = Math.min(this.active, this.shown.length - 1);
    this.element.replaceChildren(
      ...this.shown.map((c, i) =>
        h(
          "li",
          {
            class: "slash-item",
            role: "option",
            id: `${this.element.id}-${i}`,
            "data-command": c.name,
            "data-index": i,
          },
          h("span", { class: "slash-name" }, `/${c.name}`),
          c.hint ? h("span", { class: "slash-hint" }, c.hint) : null,
          h("span", { class: "slash-desc" }, c.description),
        ),
      ),
    );
    this.element.hidden = false;
    this.textarea.setAttribute("aria-expanded", "true");
    this.textarea.setAttribute("aria-controls", this.element.id);
    this.highlight();
  }

  private highlight(): void {
    for (const [i, item] of [...this.element.children].entries()) {
      const on = i === this.active;
      item.classList.toggle("active", on);
      item.setAttribute("aria-selected", String(on));
      if (on) {
        this.textarea.setAttribute("aria-activedescendant", item.id);
        (item as HTMLElement).scrollIntoView?.({ block: "nearest" });
      }
    }
  }

  private close(): void {
    this.filteredBy = null;
    if (this.element.hidden) return;
    this.element.hidden = true;
    this.textarea.setAttribute("aria-expanded", "false");
    this.textarea.removeAttribute("aria-activedescendant");
  }

  private pick(index: number): void {
    const command = this.shown[index];
    if (!command) return;
    const rest = this.textarea.value.replace(/^\/\S*\s?/, "");
    this.textarea.value = `/${command.name} ${rest}`;
    const at = command.name.length + 2;
    this.textarea.setSelectionRange(at, at);
    this.close();
    this.showHint();
    this.textarea.focus();
    this.onPick();
  }
}
