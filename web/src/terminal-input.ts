import { h, icon } from "./dom.js";

/** Pasted text is sent in pieces of at most this many characters (each ≤ 64 KiB of UTF-8, the input limit). */
export const INPUT_CHUNK_CHARS = 16_384;

/**
 * Keys a phone keyboard lacks, shown under the terminal on narrow screens. An arrow's `data` is
 * the last byte of its sequence: ESC [ A normally, ESC O A in application cursor mode (DECCKM,
 * which vim, htop, less and nano set), as xterm's own arrow keys send.
 */
const KEYBAR: { label: string; data: string; title: string; arrow?: true }[] = [
  { label: "Esc", data: "\x1b", title: "Escape" },
  { label: "Tab", data: "\t", title: "Tab" },
  { label: "^C", data: "\x03", title: "Ctrl-C (interrupt)" },
  { label: "^D", data: "\x04", title: "Ctrl-D (end of input)" },
  { label: "↑", data: "A", title: "Up", arrow: true },
  { label: "↓", data: "B", title: "Down", arrow: true },
  { label: "←", data: "D", title: "Left", arrow: true },
  { label: "→", data: "C", title: "Right", arrow: true },
];

/** The bytes of a key-bar key; `applicationCursor`: the program set application cursor mode. */
function keyData(key: (typeof KEYBAR)[number], applicationCursor: boolean): string {
  if (!key.arrow) return key.data;
  return `${applicationCursor ? "\x1bO" : "\x1b["}${key.data}`;
}

/**
 * A button's handlers that keep it from taking the focus when pressed (the click still fires):
 * typing goes on where it was, and a phone keeps its soft keyboard.
 */
export const KEEP_FOCUS = {
  onpointerdown: (event: Event): void => event.preventDefault(),
  onmousedown: (event: Event): void => event.preventDefault(),
};

export interface KeyBarHandlers {
  /** Types a key's bytes. */
  type(data: string): void;
  /** Puts the focus (back) on the terminal. */
  focusTerminal(): void;
  /** Whether the program set application cursor mode (DECCKM, `ESC [ ? 1 h`): arrows then send ESC O. */
  applicationCursor(): boolean;
}

/**
 * The row of {@link KEYBAR} keys. A key never takes the focus (its pointerdown and mousedown
 * are cancelled) and hands it to the terminal after typing: on a phone, focus leaving the
 * terminal closes the soft keyboard, and what is typed next would not reach the terminal.
 */
export function renderKeyBar(handlers: KeyBarHandlers): HTMLElement {
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
          // Read out as what the key does: "^C" is read "caret C".
          "aria-label": k.title,
          ...KEEP_FOCUS,
          onclick: () => {
            handlers.type(keyData(k, handlers.applicationCursor()));
            handlers.focusTerminal();
          },
        },
        k.label,
      ),
    ),
  );
}

/** What ends a pipe session's input from the line box, as Ctrl-D does in a terminal. */
export const END_OF_INPUT: unique symbol = Symbol("end of input");
export type Keys = string | typeof END_OF_INPUT;

/** `keys` in order with each run of strings joined: one input each, not one per key typed ahead. */
export function joinKeys(keys: readonly Keys[]): Keys[] {
  const joined: Keys[] = [];
  for (const key of keys) {
    const last = joined.length - 1;
    if (typeof key === "string" && typeof joined[last] === "string") joined[last] += key;
    else joined.push(key);
  }
  return joined;
}

/** A pipe session's input: a line field whose line (with its newline) is typed through `type`. */
export function renderLineInput(type: (data: Keys) => void): HTMLFormElement {
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
    h(
      "button",
      {
        class: "btn",
        type: "button",
        title: "End the input (Ctrl-D): the process reads end of file; sort, wc or cat finish",
        "data-test": "end-input",
        onclick: () => type(END_OF_INPUT),
      },
      "EOF",
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    type(`${input.value}\n`);
    input.value = "";
  });
  // Ctrl-D in an empty box, as at the start of a line in a terminal.
  input.addEventListener("keydown", (event) => {
    if (event.key !== "d" || !event.ctrlKey || input.value !== "") return;
    event.preventDefault();
    type(END_OF_INPUT);
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

/**
 * A key filter that is true for a Tab (or Shift+Tab) pressed right after Escape, with no other
 * key between: the way out of a terminal for a keyboard user.
 */
export function escapeThenTab(): (event: KeyboardEvent) => boolean {
  let armed = false;
  return (event) => {
    if (event.type !== "keydown" || MODIFIER_KEYS.has(event.key)) return false;
    const plain = !event.ctrlKey && !event.altKey && !event.metaKey;
    const leave = armed && plain && event.key === "Tab";
    armed = plain && !event.shiftKey && event.key === "Escape";
    return leave;
  };
}

const MODIFIER_KEYS: ReadonlySet<string> = new Set(["Shift", "Control", "Alt", "Meta", "AltGraph", "CapsLock"]);

/**
 * Ctrl+C or Ctrl+Insert (no other modifier): the keys that copy a selection outside macOS. The
 * terminal leaves them to the browser when it has a selection (see terminal-view.ts).
 */
export function isCopyKey(event: KeyboardEvent): boolean {
  if (event.type !== "keydown" || !event.ctrlKey || event.altKey || event.shiftKey || event.metaKey) return false;
  return event.key === "c" || event.key === "C" || event.key === "Insert";
}
