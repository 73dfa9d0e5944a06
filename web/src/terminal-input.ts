import { h, icon } from "./dom.js";

/** Pasted text is sent in pieces of at most this many characters (each ≤ 64 KiB of UTF-8, the input limit). */
export const INPUT_CHUNK_CHARS = 16_384;

/** Keys a phone keyboard lacks, shown under the terminal on narrow screens. */
const KEYBAR: { label: string; data: string; title: string }[] = [
  { label: "Esc", data: "\x1b", title: "Escape" },
  { label: "Tab", data: "\t", title: "Tab" },
  { label: "^C", data: "\x03", title: "Ctrl-C (interrupt)" },
  { label: "^D", data: "\x04", title: "Ctrl-D (end of input)" },
  { label: "↑", data: "\x1b[A", title: "Up" },
  { label: "↓", data: "\x1b[B", title: "Down" },
  { label: "←", data: "\x1b[D", title: "Left" },
  { label: "→", data: "\x1b[C", title: "Right" },
];

export interface KeyBarHandlers {
  /** Types a key's bytes. */
  type(data: string): void;
  /** Puts the focus (back) on the terminal. */
  focusTerminal(): void;
}

/**
 * The row of {@link KEYBAR} keys. A key never takes the focus (its pointerdown and mousedown
 * are cancelled) and hands it to the terminal after typing: on a phone, focus leaving the
 * terminal closes the soft keyboard, and what is typed next would not reach the terminal.
 */
export function renderKeyBar(handlers: KeyBarHandlers): HTMLElement {
  const keepFocus = (event: Event): void => event.preventDefault();
  return h(
    "div",
    { class: "keybar", "aria-label": "Special keys" },
    KEYBAR.map((k) =>
      h(
        "button",
        {
          type: "button",
          class: "key",
          title: k.title,
          onpointerdown: keepFocus,
          onmousedown: keepFocus,
          onclick: () => {
            handlers.type(k.data);
            handlers.focusTerminal();
          },
        },
        k.label,
      ),
    ),
  );
}

/** A pipe session's input: a line field whose line (with its newline) is typed through `type`. */
export function renderLineInput(type: (data: string) => void): HTMLFormElement {
  const input = h("input", {
    class: "line-field",
    placeholder: "Send a line to stdin…",
    autocomplete: "off",
    spellcheck: "false",
    "aria-label": "Line to send",
  });
  const form = h(
    "form",
    { class: "line-input" },
    input,
    h("button", { class: "btn btn-primary", type: "submit" }, icon("send"), "Send"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    type(`${input.value}\n`);
    input.value = "";
  });
  return form;
}

/** Splits text into pieces of at most `size` UTF-16 units without cutting a surrogate pair. */
export function inputChunks(text: string, size: number): string[] {
  if (text.length <= size) return [text];
  const out: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + size);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}
