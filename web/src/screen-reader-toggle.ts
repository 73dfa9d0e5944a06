import type { Terminal } from "@xterm/xterm";
import { h } from "./dom.js";

/** Where the screen reader setting is kept: it applies to every terminal, in every tab. */
const SCREEN_READER_KEY = "switchboard.screenReaderMode";

export function screenReaderWanted(): boolean {
  try {
    return localStorage.getItem(SCREEN_READER_KEY) === "on";
  } catch {
    return false; // storage blocked: the default
  }
}

/**
 * Turns xterm's screen reader mode on or off, for this terminal and the next ones: with it,
 * xterm keeps the rows in an accessible tree and reads new output out; without it (the default,
 * as it costs on every write) the output is drawn on a canvas a screen reader cannot read. The
 * button is shown only while it has the focus (tabbing through the header reaches it).
 */
export function renderScreenReaderToggle(term: Terminal): HTMLButtonElement {
  const button = h(
    "button",
    {
      class: "btn btn-small sr-only-focusable",
      type: "button",
      title: "Let a screen reader read the terminal (xterm's screen reader mode)",
      "data-test": "screen-reader",
      "aria-pressed": String(term.options.screenReaderMode === true),
      onclick: () => {
        const on = term.options.screenReaderMode !== true;
        term.options.screenReaderMode = on;
        button.setAttribute("aria-pressed", String(on));
        try {
          if (on) localStorage.setItem(SCREEN_READER_KEY, "on");
          else localStorage.removeItem(SCREEN_READER_KEY);
        } catch {
          // storage blocked: this terminal only
        }
      },
    },
    "Screen reader mode",
  );
  return button;
}
