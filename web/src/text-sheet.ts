import type { Terminal } from "@xterm/xterm";
import { h, icon } from "./dom.js";

/**
 * A terminal's text, scrollback and screen: rows a long line wrapped onto are joined again, and
 * the blank rows under the last output are left out.
 */
export function terminalText(term: Terminal): string {
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buffer.length; i++) {
    const row = buffer.getLine(i);
    if (!row) continue;
    // A row that goes on in the next one keeps its trailing spaces: they are part of the line.
    const text = row.translateToString(!buffer.getLine(i + 1)?.isWrapped);
    if (row.isWrapped && lines.length > 0) lines[lines.length - 1] += text;
    else lines.push(text);
  }
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.join("\n");
}

/**
 * Shows `text` in a sheet over the page, as plain text: xterm draws on a canvas, which a touch
 * screen cannot select, so this is where a phone selects and copies terminal output, with the
 * system's own handles. It opens at the end, where the newest output is; Done or Escape closes it.
 */
export function showTextSheet(title: string, text: string): HTMLDialogElement {
  const pre = h("pre", { class: "sheet-text", tabindex: 0, "data-test": "sheet-text" }, text);
  const dialog = h(
    "dialog",
    { class: "dialog text-sheet", "aria-label": `Text of ${title}` },
    h(
      "header",
      { class: "dialog-head" },
      h("h2", null, title),
      h("button", { class: "btn", type: "button", "data-test": "sheet-done", onclick: () => dialog.close() }, "Done"),
    ),
    pre,
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.appendChild(dialog);
  dialog.showModal();
  pre.scrollTop = pre.scrollHeight;
  return dialog;
}

/** On a touch screen (the button shows only there): `term`'s text in a sheet, to select and copy. */
export function renderTextButton(title: () => string, term: Terminal): HTMLButtonElement {
  return h(
    "button",
    {
      class: "btn btn-small touch-only",
      type: "button",
      title: "Show the terminal's text, to select and copy",
      "data-test": "show-text",
      onclick: () => showTextSheet(title(), terminalText(term)),
    },
    icon("text"),
    h("span", null, "Text"),
  );
}
