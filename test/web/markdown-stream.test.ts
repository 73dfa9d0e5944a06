import { build, stop } from "esbuild";
import fc from "fast-check";
import { Lexer } from "marked";
import type { Token } from "marked";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SettledBlocks } from "../../web/src/markdown-stream.js";
import type { MarkdownStream } from "../../web/src/markdown-stream.js";
import type { renderMarkdown } from "../../web/src/markdown.js";
import type { h, morph } from "../../web/src/dom.js";
import { launchBrowser } from "./harness.js";

// esbuild's service process ends with the file, which may share its process with the next.
afterAll(() => stop());

/** What the page renders from: marked's tokens for the whole text (web/src/markdown.ts's options). */
function wholeText(text: string): unknown {
  return plain(Lexer.lex(text, { gfm: true, breaks: true }));
}

/** Tokens as plain data (an array from marked also carries its link definitions). */
function plain(tokens: readonly Token[]): unknown {
  return JSON.parse(JSON.stringify(tokens)) as unknown;
}

/**
 * Streams `text` through SettledBlocks cut at `cuts`, checking after each piece that the blocks
 * kept plus those lexed again are the whole text's blocks; returns how many were kept in all.
 */
function stream(text: string, cuts: readonly number[]): number {
  const blocks = new SettledBlocks();
  let kept: Token[] = [];
  for (const cut of [...cuts, text.length]) {
    const shown = text.slice(0, cut);
    const { restart, tokens, settled } = blocks.lex(shown, true);
    if (restart) kept = [];
    expect(plain([...kept, ...tokens]), JSON.stringify(shown)).toEqual(wholeText(shown));
    kept = [...kept, ...tokens.slice(0, settled)];
  }
  return kept.length;
}

/** Pieces of Markdown whose meaning depends on what follows them. */
const PIECES = [
  ...["\n", "\n", "\n", "\n\n", " ", "  ", "    ", "\t", "word", "two words", "1", "-", ".", "<", "[", ":", "|"],
  ...["- ", "* ", "+ ", "1. ", "2) ", "- [ ] ", "- [x] ", "> ", "# ", "## "],
  ...["---", "===", "***", "```", "```ts", "~~~", "    code"],
  ...["| a | b |", "|---|---|", "|:-:|--:|", "| 1 | 2 |", "a | b"],
  ...["[x]", "[y]", "[x][y]", "[x]: http://a.example", '[y]: <http://b.example> "t"', "![i](http://c.example)"],
  ...["<div>", "</div>", "<pre>", "</pre>", "<!--", "-->", "`code`", "**b**", "_e_", "~~d~~", "\\", "&amp;"],
  ...["http://bare.example", "\r\n"],
];

const markdown = fc.array(fc.constantFrom(...PIECES), { maxLength: 40 }).map((pieces) => pieces.join(""));

/** A text and where it is cut into the pieces it streams in as. */
const streamed = markdown.chain((text) =>
  fc.tuple(
    fc.constant(text),
    fc
      .uniqueArray(fc.integer({ min: 1, max: Math.max(1, text.length - 1) }), { maxLength: 12 })
      .map((cuts) => cuts.filter((c) => c < text.length).sort((a, b) => a - b)),
  ),
);

describe("SettledBlocks (which blocks of a streaming answer can no longer change)", () => {
  it("gives the whole text's blocks at every point of a stream, for any Markdown cut anywhere", () => {
    fc.assert(
      fc.property(streamed, ([text, cuts]) => {
        stream(text, cuts);
      }),
      { numRuns: 2_000 },
    );
  });

  it("keeps finished blocks, and lexes again only the text after them", () => {
    const text = ["# Title", "", "First paragraph.", "", "```ts", "const x = 1;", "```", "", "Last para"].join("\n");
    const blocks = new SettledBlocks();
    blocks.lex(text.slice(0, 20), true);
    const { restart, tokens, settled } = blocks.lex(text, true);
    expect(restart).toBe(false);
    // From "First paragraph." on: the heading and its blank line were kept.
    expect(tokens.map((t) => t.type)).toEqual(["paragraph", "space", "code", "space", "paragraph"]);
    expect(settled).toBe(4);
    expect(blocks.lex(`${text}graph`, true).tokens.map((t) => t.raw)).toEqual(["Last paragraph"]);
  });

  for (const [what, text, cut] of [
    ["a paragraph that a line of dashes makes a heading", "para\nmore\n---\n\nnext", 9],
    ["a list whose next item comes after a blank line", "1. one\n\n2. two\n\nafter", 9],
    ["a list item that goes on with an indented line", "- one\n\n  still one\n\nafter", 8],
    ["indented code with a blank line in it", "    a\n\n    b\n\nafter", 7],
    ["a table whose rows keep coming", "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\nafter", 24],
    ["a fence still open", "```\ncode\n\nmore code\n```\n\nafter", 12],
    ["a link whose definition comes later", "see [x]\n\nmore\n\n[x]: https://example.com/x\n\nafter", 15],
    ["a definition's title on the next line", '[x]: https://example.com\n"title"\n\n[x]', 25],
    ["a definition that stops being one", "# [x]\n\n[x]: h\n\nnext", 15],
    ["a list line's trailing spaces, which are no blank line", "1. [x]1. \n</pre>", 12],
  ] as const) {
    it(`renders again what later text changes: ${what}`, () => {
      stream(text, [cut]);
    });
  }

  it("starts again when the text is not the earlier text grown, or is final", () => {
    const blocks = new SettledBlocks();
    blocks.lex("one\n\ntwo\n\nthree", true);
    expect(blocks.lex("one\n\ntwo\n\nthree!", true).restart).toBe(false);
    expect(blocks.lex("one\n\nTWO\n\nthree!", true)).toMatchObject({ restart: true });
    expect(blocks.lex("one\n\nTWO\n\nthree!", false)).toMatchObject({ restart: true });
  });
});

/**
 * The page's side, in Chromium: web/src's MarkdownStream morphed into a live element as
 * run-render.ts does, against renderMarkdown of the same text with the caret where the answer
 * ends (the rendering before streams were incremental).
 */
describe("MarkdownStream (an answer's DOM while it streams)", () => {
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    const bundle = await build({
      stdin: {
        contents: [
          'export { MarkdownStream } from "./web/src/markdown-stream.ts";',
          'export { renderMarkdown } from "./web/src/markdown.ts";',
          'export { h, morph } from "./web/src/dom.ts";',
        ].join("\n"),
        resolveDir: new URL("../..", import.meta.url).pathname,
        loader: "ts",
      },
      bundle: true,
      format: "iife",
      globalName: "md",
      platform: "browser",
      write: false,
    });
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.addScriptTag({ content: bundle.outputFiles[0]!.text });
    await page.addScriptTag({ content: STREAM_IN_PAGE });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it("shows what renderMarkdown shows at every point of a stream and at its end, and its idle check finds nothing to change, for any Markdown cut anywhere", async () => {
    await fc.assert(
      fc.asyncProperty(streamed, fc.boolean(), async ([text, cuts], finalAlone) => {
        const mismatch = await page.evaluate(([t, c, f]) => (window as unknown as StreamCheck).streamed(t, c, f), [
          text,
          cuts,
          finalAlone,
        ] as const);
        expect(mismatch).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it("builds only the end of a long answer when it becomes final, not the whole answer again (a 60 KB answer's end took 130–400 ms at a phone's speed)", async () => {
    const built = await page.evaluate(() => {
      const { md } = window as unknown as { md: PageModule };
      const stream = new md.MarkdownStream({ whenIdle: () => undefined });
      const live = md.h("div");
      document.body.replaceChildren(live);
      const text = Array.from({ length: 60 }, (_, i) => `para **${i}**`).join("\n\n");
      const show = (shown: string, final: boolean): number => {
        let count = 0;
        const create = document.createElement.bind(document);
        document.createElement = ((tag: string, options?: ElementCreationOptions) => (
          count++,
          create(tag, options)
        )) as typeof document.createElement;
        md.morph(
          live,
          md.h("div", null, stream.show(md.h("div", { class: "answer md" }), shown, { final, caret: !final })),
        );
        document.createElement = create;
        return count;
      };
      show(text.slice(0, -20), false);
      return { final: show(text, true), paragraphs: live.querySelectorAll("p").length };
    });
    expect(built.paragraphs).toBe(60);
    // The wrappers morphed in, and the last paragraphs: not 60 paragraphs and their <strong>s.
    expect(built.final).toBeLessThan(12);
  });

  it("puts the whole rendering in, once idle, when what the blocks built differs from it", async () => {
    const result = await page.evaluate(() => {
      const { md } = window as unknown as { md: PageModule };
      const idle: ((deadline: IdleDeadline) => void)[] = [];
      const stream = new md.MarkdownStream({ whenIdle: (step) => idle.push(step) });
      const live = md.h("div");
      document.body.replaceChildren(live);
      const text = "# Title\n\nfirst\n\n- one\n- two\n\nlast";
      const show = (shown: string, final: boolean): void =>
        md.morph(
          live,
          md.h("div", null, stream.show(md.h("div", { class: "answer md" }), shown, { final, caret: !final })),
        );
      show(text.slice(0, -2), false);
      // A settled block that is not what rendering gives (as a bug in SettledBlocks would leave it).
      live.querySelector("p")!.textContent = "tampered";
      show(text, true);
      const before = live.querySelector("p")!.textContent;
      while (idle.length > 0) idle.shift()!({ didTimeout: true, timeRemaining: () => 0 });
      const rendered = (shown: string): Element => {
        const want = md.h("div", { class: "answer md" });
        want.appendChild(md.renderMarkdown(shown));
        return want;
      };
      const after = live.querySelector("p")!.textContent;
      const same = live.firstElementChild!.isEqualNode(rendered(text));
      // Growing on after the replacement builds on it (what was settled before is forgotten).
      show(`${text}\n\nmore`, true);
      return { before, after, same, grown: live.firstElementChild!.isEqualNode(rendered(`${text}\n\nmore`)) };
    });
    expect(result).toEqual({ before: "tampered", after: "first", same: true, grown: true });
  });
});

/** What the page's bundle exports (see beforeAll). */
interface PageModule {
  MarkdownStream: typeof MarkdownStream;
  renderMarkdown: typeof renderMarkdown;
  h: typeof h;
  morph: typeof morph;
}

interface StreamCheck {
  streamed(
    text: string,
    cuts: readonly number[],
    finalAlone: boolean,
  ): { shown: string; page: string; expected: string; changedWhenIdle?: number } | null;
}

/** Plain JavaScript for the page (run-render.ts's use of MarkdownStream, and its caret before). */
const STREAM_IN_PAGE = `
const CARET_BLOCKS = new Set(["P", "UL", "OL", "LI", "BLOCKQUOTE", "PRE", "H3", "H4", "H5", "H6", "TABLE", "THEAD", "TBODY", "TR", "TH", "TD"]);
function expected(text, caret) {
  const el = md.h("div", { class: "answer md" });
  el.appendChild(md.renderMarkdown(text));
  let host = el;
  while (host.lastElementChild && CARET_BLOCKS.has(host.lastElementChild.tagName)) host = host.lastElementChild;
  if (caret) host.appendChild(md.h("span", { class: "caret" }));
  return el;
}
// finalAlone: the run ends after the last text came (else with it, in the same frame).
window.streamed = (text, cuts, finalAlone) => {
  const idle = [];
  const stream = new md.MarkdownStream({ whenIdle: (step) => idle.push(step) });
  const live = md.h("div");
  document.body.replaceChildren(live);
  const ends = finalAlone ? [...cuts, text.length, text.length] : [...cuts, text.length];
  for (const [i, end] of ends.entries()) {
    const shown = text.slice(0, end);
    const final = i === ends.length - 1;
    const answer = stream.show(md.h("div", { class: "answer md" }), shown, { final, caret: !final });
    md.morph(live, md.h("div", null, answer));
    // As the DOM compares them: the order of attributes morph added is not the order built.
    const want = expected(shown, !final);
    if (live.childNodes.length !== 1 || !live.firstChild.isEqualNode(want))
      return { shown, page: live.innerHTML, expected: want.outerHTML };
  }
  // The check against the whole rendering, run to its end: it changes nothing.
  const observer = new MutationObserver(() => undefined);
  observer.observe(live, { subtree: true, childList: true, characterData: true, attributes: true });
  while (idle.length > 0) idle.shift()({ didTimeout: false, timeRemaining: () => 50 });
  const changed = observer.takeRecords().length;
  observer.disconnect();
  if (changed > 0) return { shown: text, page: live.innerHTML, expected: "", changedWhenIdle: changed };
  return null;
};
`;
