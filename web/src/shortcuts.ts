import { h } from "./dom.js";

/** How long after `g` its second key counts (`g s`). */
export const SHORTCUT_SEQUENCE_MS = 1500;

/** The keyboard shortcuts, as the help lists them. */
export const SHORTCUTS: readonly { keys: string; what: string }[] = [
  { keys: "/", what: "Search the sessions" },
  { keys: "n", what: "New session" },
  { keys: "g s", what: "Go to the sessions" },
  { keys: "?", what: "This help" },
];

export interface ShortcutActions {
  search(): void;
  /** Absent for a viewer, who cannot create sessions. */
  newSession: (() => void) | undefined;
  sessions(): void;
}

/**
 * Single-key shortcuts (`/`, `n`, `g s`, `?`) for the whole page. Never while typing: not in a
 * field, a terminal (xterm's textarea is a field) or an open dialog, nor with Ctrl, Alt or Meta.
 * Test: ui-session-list.test.ts, "keyboard shortcuts".
 */
export class Shortcuts {
  readonly help: HTMLDialogElement;
  private pendingG = 0;

  constructor(private readonly actions: ShortcutActions) {
    const list = SHORTCUTS.filter((s) => s.keys !== "n" || actions.newSession !== undefined);
    this.help = h(
      "dialog",
      { class: "dialog shortcuts-help", "aria-label": "Keyboard shortcuts", "data-test": "shortcuts-help" },
      h(
        "form",
        { method: "dialog", class: "create-form" },
        h("header", { class: "dialog-head" }, h("h2", null, "Keyboard shortcuts")),
        h(
          "dl",
          { class: "shortcut-list" },
          list.flatMap((s) => [
            h(
              "dt",
              null,
              s.keys.split(" ").map((k) => h("kbd", null, k)),
            ),
            h("dd", null, s.what),
          ]),
        ),
        h("footer", { class: "dialog-foot" }, h("button", { class: "btn", type: "submit" }, "Close")),
      ),
    );
    document.addEventListener("keydown", this.onKey);
  }

  dispose(): void {
    document.removeEventListener("keydown", this.onKey);
  }

  private readonly onKey = (event: KeyboardEvent): void => {
    if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey || typing(event.target)) return;
    if (document.querySelector("dialog[open]")) return;
    const now = performance.now();
    const afterG = now - this.pendingG < SHORTCUT_SEQUENCE_MS;
    this.pendingG = 0;
    const act = (action: () => void) => {
      event.preventDefault();
      action();
    };
    if (afterG && event.key === "s") return act(() => this.actions.sessions());
    switch (event.key) {
      case "/":
        return act(() => this.actions.search());
      case "n":
        if (this.actions.newSession) act(this.actions.newSession);
        return;
      case "g":
        this.pendingG = now;
        return;
      case "?":
        return act(() => this.help.showModal());
    }
  };
}

/** Whether keys aimed at `target` are someone typing: a field, an editable element, a terminal. */
function typing(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target.closest(".xterm")) return true;
  return (
    target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement
  );
}
