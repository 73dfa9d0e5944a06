import { h, icon } from "./dom.js";
import type { Child } from "./dom.js";

/*
 * The parts every form dialog of the UI is made of (New session, Pair a device, Share): a
 * labelled field, a header whose × closes the dialog, and the modal dialog itself, which a click
 * on its backdrop closes.
 */

/** A field of a dialog's form: its label, the input, and a hint under it. */
export function formField(label: string, input: HTMLElement, hint?: string): HTMLLabelElement {
  return h(
    "label",
    { class: "field" },
    h("span", { class: "field-label" }, label),
    input,
    hint ? h("small", { class: "muted" }, hint) : null,
  );
}

/** A dialog's header: its title, and a × button that calls `close`. */
export function dialogHead(title: string, close: () => void): HTMLElement {
  return h(
    "header",
    { class: "dialog-head" },
    h("h2", null, title),
    h("button", { class: "btn btn-ghost btn-icon", type: "button", "aria-label": "Close", onclick: close }, icon("x")),
  );
}

/** A modal dialog named `label` holding `content`; a click on its backdrop calls `close`. */
export function modalDialog(label: string, close: () => void, ...content: Child[]): HTMLDialogElement {
  const dialog = h("dialog", { class: "dialog", "aria-label": label }, ...content);
  dialog.addEventListener("click", (event) => {
    // A click on the backdrop (the dialog element itself, outside the form) closes it.
    if (event.target === dialog) close();
  });
  return dialog;
}
