import { h } from "./dom.js";

/**
 * A small Markdown renderer for agent answers: fenced code, headings, lists, quotes,
 * paragraphs; inline code, bold, italics and http(s) links. It builds DOM nodes (never
 * HTML strings), so agent output cannot inject markup, and it tolerates half-written input
 * while a run streams (an unclosed fence is code until the end).
 */
export function renderMarkdown(text: string): DocumentFragment {
  const out = document.createDocumentFragment();
  const lines = text.split("\n");
  let i = 0;
  let paragraph: string[] = [];
  const flushParagraph = (): void => {
    if (paragraph.length === 0) return;
    const p = h("p");
    paragraph.forEach((line, n) => {
      if (n > 0) p.appendChild(h("br"));
      appendInline(p, line);
    });
    out.appendChild(p);
    paragraph = [];
  };
  while (i < lines.length) {
    const line = lines[i]!;
    const fence = /^\s*(```|~~~)\s*([\w+-]*)\s*$/.exec(line);
    if (fence) {
      flushParagraph();
      const code: string[] = [];
      i++;
      while (i < lines.length && !lines[i]!.trim().startsWith(fence[1]!)) code.push(lines[i++]!);
      i++;
      const lang = fence[2] ?? "";
      out.appendChild(h("pre", { class: "md-code", "data-lang": lang || null }, h("code", null, code.join("\n"))));
      continue;
    }
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    if (heading) {
      flushParagraph();
      const level = Math.min(6, heading[1]!.length + 2) as 3 | 4 | 5 | 6;
      const el = h(`h${level}`, { class: "md-h" });
      appendInline(el, heading[2]!);
      out.appendChild(el);
      i++;
      continue;
    }
    const bullet = /^\s*([-*+]|\d+[.)])\s+/.exec(line);
    if (bullet) {
      flushParagraph();
      const ordered = /\d/.test(bullet[1]!);
      // A numbered list a code block or a paragraph interrupted goes on with its own numbers
      // ("2. Run it" after the code of step 1), not from 1 again.
      const start = ordered ? parseInt(bullet[1]!, 10) : 1;
      const list = ordered ? h("ol", { start: start !== 1 ? start : null }) : h("ul");
      while (i < lines.length) {
        const m = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(lines[i]!);
        if (!m || /\d/.test(m[1]!) !== ordered) break;
        const li = h("li");
        const task = /^\[([ xX])\]\s+(.*)$/.exec(m[2]!);
        if (task) {
          li.classList.add(task[1] === " " ? "md-task" : "md-task-done");
          appendInline(li, task[2]!);
        } else appendInline(li, m[2]!);
        list.appendChild(li);
        i++;
      }
      out.appendChild(list);
      continue;
    }
    if (/^\s*>\s?/.test(line)) {
      flushParagraph();
      const quoted: string[] = [];
      while (i < lines.length && /^\s*>\s?/.test(lines[i]!)) quoted.push(lines[i++]!.replace(/^\s*>\s?/, ""));
      const q = h("blockquote");
      q.appendChild(renderMarkdown(quoted.join("\n")));
      out.appendChild(q);
      continue;
    }
    if (line.trim() === "") flushParagraph();
    else paragraph.push(line);
    i++;
  }
  flushParagraph();
  return out;
}

/**
 * Inline code, bold, italics and links. Underscores emphasise only at word edges, as in
 * CommonMark: `get_user_name` is a name, not "get *user* name" (agents write identifiers).
 */
const INLINE =
  /(`+)([\s\S]*?)\1|\*\*([^*]+)\*\*|(?<![\p{L}\p{N}_])__([^_]+)__(?![\p{L}\p{N}_])|\*([^*\s][^*]*)\*|(?<![\p{L}\p{N}_])_([^_\s][^_]*)_(?![\p{L}\p{N}_])|\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/gu;

function appendInline(parent: HTMLElement, text: string): void {
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    const at = m.index;
    if (at > last) parent.appendChild(document.createTextNode(text.slice(last, at)));
    if (m[2] !== undefined) parent.appendChild(h("code", null, m[2]));
    else if (m[3] !== undefined || m[4] !== undefined) parent.appendChild(h("strong", null, m[3] ?? m[4]));
    else if (m[5] !== undefined || m[6] !== undefined) parent.appendChild(h("em", null, m[5] ?? m[6]));
    else if (m[7] !== undefined && m[8] !== undefined)
      parent.appendChild(h("a", { href: m[8], target: "_blank", rel: "noopener noreferrer" }, m[7]));
    last = at + m[0].length;
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
}
