import { Lexer, type Links, type MarkedOptions, type Token, type Tokens } from "marked";
import { h, icon } from "./dom.js";

/**
 * Renders agent answers as GitHub-flavoured Markdown via marked's lexer, building the DOM from its
 * tokens, never from HTML strings, so output cannot inject markup: raw HTML shows as text, links
 * open only for http(s) and mailto, images become links (the page loads nothing an agent names).
 * An unclosed fence is code to the end; blocks get `dir="auto"` so RTL text reads right.
 */
export function renderMarkdown(text: string): DocumentFragment {
  const out = document.createDocumentFragment();
  appendBlocks(out, lexMarkdown(text).tokens);
  return out;
}

/**
 * `text`'s top-level blocks, and the link reference definitions (`[x]: https://…`) known at its end: those in
 * `known` (from text before it, see markdown-stream.ts) and its own. A definition anywhere in a
 * document serves links before it too, so the blocks of a part depend on what the rest defines.
 */
export function lexMarkdown(text: string, known?: Links): { tokens: Token[]; links: Links } {
  const lexer = new Lexer(OPTIONS);
  if (known) Object.assign(lexer.tokens.links, known);
  const tokens = lexer.lex(text);
  return { tokens, links: tokens.links };
}

/** What one top-level block shows: nothing (blank lines, a definition), an element, or (rarely) text nodes. */
export function renderBlock(token: Token): Node | null {
  return block(token as Tokens.Generic);
}

/** Line breaks in a paragraph are kept, as agents (and GitHub comments) mean them. */
const OPTIONS: MarkedOptions = { gfm: true, breaks: true };

const AUTO_DIR = { dir: "auto" } as const;

/** Headings start at h3: the page and the run header are above them. */
const HEADING_OFFSET = 2;

/** Where a link may go: the web, and mail. Anything else (javascript:, a path on the gateway) stays text. */
const SAFE_URL = /^(https?:\/\/|mailto:)/i;

function appendBlocks(parent: Node, tokens: readonly Token[]): void {
  for (const token of tokens) {
    const el = block(token as Tokens.Generic);
    if (el) parent.appendChild(el);
  }
}

function block(token: Tokens.Generic): Node | null {
  switch (token.type) {
    case "space":
    case "def":
    case "checkbox":
      return null;
    case "paragraph":
      return inlineInto(h("p", AUTO_DIR), (token as Tokens.Paragraph).tokens);
    case "heading": {
      const t = token as Tokens.Heading;
      const level = Math.min(6, t.depth + HEADING_OFFSET) as 3 | 4 | 5 | 6;
      return inlineInto(h(`h${level}`, { class: "md-h", ...AUTO_DIR }), t.tokens);
    }
    case "code": {
      const t = token as Tokens.Code;
      // The info string's first word names the language (```ts title="a.ts").
      const lang = t.lang?.trim().split(/\s+/)[0] ?? "";
      return h("pre", { class: "md-code", "data-lang": lang || null }, copyButton(), h("code", null, t.text));
    }
    case "blockquote": {
      const quote = h("blockquote");
      appendBlocks(quote, (token as Tokens.Blockquote).tokens);
      return quote;
    }
    case "list":
      return list(token as Tokens.List);
    case "table":
      return table(token as Tokens.Table);
    case "hr":
      return h("hr");
    case "html":
      // Shown as written, never interpreted.
      return h("p", { class: "md-html" }, (token as Tokens.HTML).text.replace(/\n+$/, ""));
    case "text": {
      // A tight list item's text: inline content without a paragraph.
      const t = token as Tokens.Text;
      return t.tokens ? inlineInto(document.createDocumentFragment(), t.tokens) : document.createTextNode(t.text);
    }
    default:
      return document.createTextNode(token.raw);
  }
}

function list(token: Tokens.List): HTMLElement {
  const start = token.ordered && typeof token.start === "number" && token.start !== 1 ? token.start : null;
  const el = token.ordered ? h("ol", { start }) : h("ul");
  for (const item of token.items) {
    const li = h("li", AUTO_DIR);
    if (item.task) {
      li.classList.add(item.checked ? "md-task-done" : "md-task");
      li.appendChild(h("input", { type: "checkbox", disabled: true, checked: item.checked === true }));
    }
    appendBlocks(li, item.tokens);
    el.appendChild(li);
  }
  return el;
}

function table(token: Tokens.Table): HTMLElement {
  const cell = (tag: "th" | "td", c: Tokens.TableCell): HTMLElement =>
    inlineInto(h(tag, { class: c.align ? `md-align-${c.align}` : null, ...AUTO_DIR }), c.tokens);
  return h(
    "table",
    { class: "md-table" },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        token.header.map((c) => cell("th", c)),
      ),
    ),
    token.rows.length > 0
      ? h(
          "tbody",
          null,
          token.rows.map((row) =>
            h(
              "tr",
              null,
              row.map((c) => cell("td", c)),
            ),
          ),
        )
      : null,
  );
}

function inlineInto<T extends Node>(parent: T, tokens: readonly Token[] | undefined): T {
  for (const token of tokens ?? []) parent.appendChild(inline(token as Tokens.Generic));
  return parent;
}

function inline(token: Tokens.Generic): Node {
  switch (token.type) {
    case "text": {
      const t = token as Tokens.Text;
      return t.tokens ? inlineInto(document.createDocumentFragment(), t.tokens) : document.createTextNode(t.text);
    }
    case "escape":
      return document.createTextNode((token as Tokens.Escape).text);
    case "codespan":
      return h("code", null, (token as Tokens.Codespan).text);
    case "strong":
      return inlineInto(h("strong"), (token as Tokens.Strong).tokens);
    case "em":
      return inlineInto(h("em"), (token as Tokens.Em).tokens);
    case "del":
      return inlineInto(h("del"), (token as Tokens.Del).tokens);
    case "br":
      return h("br");
    case "link": {
      const t = token as Tokens.Link;
      if (!SAFE_URL.test(t.href)) return inlineInto(h("span"), t.tokens);
      return inlineInto(h("a", { href: t.href, title: t.title || null, ...NEW_TAB }), t.tokens);
    }
    case "image": {
      const t = token as Tokens.Image;
      const label = `${t.text || t.href} (image)`;
      return SAFE_URL.test(t.href)
        ? h("a", { href: t.href, class: "md-image", ...NEW_TAB }, label)
        : h("span", null, label);
    }
    case "checkbox":
      return document.createDocumentFragment();
    default:
      // Inline HTML and anything new: the text as written.
      return document.createTextNode(token.raw);
  }
}

const NEW_TAB = { target: "_blank", rel: "noopener noreferrer" } as const;

/**
 * A code block's Copy button (first in the block, so the streaming caret still ends the code).
 * Its listener reads the code from where the button is: a re-render keeps the button and its
 * listener (see `morph`). Selecting a wide code block by hand is awkward, on a phone above all.
 */
function copyButton(): HTMLButtonElement {
  const button = h(
    "button",
    { class: "code-copy", type: "button", title: "Copy the code", "aria-label": "Copy the code" },
    icon("copy"),
  );
  button.addEventListener("click", () => {
    const code = button.parentElement?.querySelector("code")?.textContent ?? "";
    void copyText(code).then((copied) => {
      button.dataset["copied"] = String(copied);
      button.setAttribute("aria-label", copied ? "Copied" : "Could not copy: select the code instead");
      setTimeout(() => {
        delete button.dataset["copied"];
        button.setAttribute("aria-label", "Copy the code");
      }, COPIED_SHOWN_MS);
    });
  });
  return button;
}

/** How long a Copy button shows that it copied. */
const COPIED_SHOWN_MS = 1_500;

/**
 * Puts `text` on the clipboard: the Clipboard API where the page may use it (HTTPS, localhost),
 * else the older copy command on a hidden text box (a gateway reached over plain HTTP by address).
 */
async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "copy-source", readonly: true, "aria-hidden": "true" });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    return copied;
  }
}
