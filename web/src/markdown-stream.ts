import type { Links, Token, Tokens } from "marked";
import { h, morphChildren, updatedBy } from "./dom.js";
import { lexMarkdown, renderBlock } from "./markdown.js";

/** Runs `step` when the page has time to spare (see {@link MarkdownStream}'s check). */
export type WhenIdle = (step: (deadline: IdleDeadline) => void) => void;

/**
 * A streaming answer's Markdown at a cost that follows what changed: settled blocks keep their DOM
 * and each update renders only the text after them; text that is not the old text grown is
 * rendered whole. It shows what {@link renderMarkdown} would (test/web/markdown-stream.test.ts): when
 * final and idle, the whole text is rendered and patched in where a block differs (bench/README.md, "Web UI").
 * @example
 * morph(live, stream.show(h("div", { class: "answer md" }), text, { final: false, caret: true }));
 */
export class MarkdownStream {
  private blocks = new SettledBlocks();
  /** The element on the page showing the text, and what it shows. */
  private host: Element | null = null;
  private text = "";
  private final = false;
  /** Its first this many child nodes are the settled blocks' (see {@link SettledBlocks}). */
  private settledNodes = 0;
  /** Counts the changes to what is shown: a check of an earlier one gives up. */
  private version = 0;
  private readonly caret = h("span", { class: "caret" });
  private readonly whenIdle: WhenIdle;

  /** `whenIdle`: where the check of a final answer runs (tests run it at once). */
  constructor(options: { whenIdle?: WhenIdle } = {}) {
    this.whenIdle = options.whenIdle ?? requestIdle;
  }

  /**
   * `fresh` to put in a run's freshly built DOM for `text`: filled now when nothing of this
   * stream is on the page, else left empty for {@link morph} to bring the live element up to
   * date. `final`: the text is complete (checked against rendering it whole, see above).
   * `caret`: the streaming caret ends it.
   */
  show<T extends Element>(fresh: T, text: string, options: { final: boolean; caret: boolean }): T {
    if (!this.host?.isConnected) this.update(fresh, text, options);
    return updatedBy(fresh, (live) => this.update(live, text, options));
  }

  private update(host: Element, text: string, { final, caret }: { final: boolean; caret: boolean }): void {
    // Out first: a block the caret ended is as it was rendered again.
    this.caret.remove();
    if (host !== this.host || text !== this.text || final !== this.final) {
      const { restart, tokens, settled } = this.blocks.lex(text, host === this.host);
      if (restart) this.settledNodes = 0;
      const nodes: Node[] = [];
      let settledNodes = this.settledNodes;
      for (const [i, token] of tokens.entries()) {
        const added = blockNodes(token);
        nodes.push(...added);
        if (i < settled) settledNodes += added.length;
      }
      morphChildren(host, nodes, this.settledNodes);
      this.settledNodes = settledNodes;
      this.host = host;
      this.text = text;
      this.final = final;
      this.version++;
      // Rendered whole (restart), it is what rendering it whole gives.
      if (final && !restart) this.checkWhenIdle();
    }
    if (caret) caretHost(host).appendChild(this.caret);
  }

  /** Runs {@link check} in idle time, as long as nothing changes meanwhile (a later final update checks again). */
  private checkWhenIdle(): void {
    const { version, host } = this;
    if (!host) return;
    const steps = this.check(host, this.text);
    const slice = (deadline: IdleDeadline): void => {
      if (version !== this.version || !host.isConnected) return;
      const until = performance.now() + Math.max(deadline.timeRemaining(), FORCED_SLICE_MS);
      do if (steps.next().done) return;
      while (performance.now() < until);
      this.whenIdle(slice);
    };
    this.whenIdle(slice);
  }

  /**
   * Renders `text` whole, a block per step, comparing each with what `host` shows; where they
   * differ, puts the whole rendering in and forgets the settled blocks (the next update renders
   * everything again).
   */
  private *check(host: Element, text: string): Generator<void, void, void> {
    const { tokens } = lexMarkdown(text);
    yield;
    const whole: Node[] = [];
    let same = true;
    for (const token of tokens) {
      for (const node of blockNodes(token)) {
        same &&= isShown(host.childNodes[whole.length], node, this.caret);
        whole.push(node);
      }
      yield;
    }
    // The caret is its host's last child; after a block (a rule) the answer's own.
    const shown = host.childNodes.length - (this.caret.parentNode === host ? 1 : 0);
    if (same && shown === whole.length) return;
    console.warn("an answer rendered block by block differed from its whole rendering; replaced", { text });
    const caret = this.caret.isConnected;
    this.caret.remove();
    morphChildren(host, whole);
    if (caret) caretHost(host).appendChild(this.caret);
    this.blocks = new SettledBlocks();
    this.settledNodes = 0;
  }
}

/** The check of a final answer waits for idle time at most this long; then it runs anyway, a slice at a time. */
export const IDLE_CHECK_TIMEOUT_MS = 2_000;
/** A slice of the check when the page gave it no idle time (it waited its longest, or the browser has no requestIdleCallback). */
const FORCED_SLICE_MS = 8;

/** requestIdleCallback, or where there is none (Safari) a timer after the next frames. */
function requestIdle(step: (deadline: IdleDeadline) => void): void {
  if (typeof requestIdleCallback === "function") requestIdleCallback(step, { timeout: IDLE_CHECK_TIMEOUT_MS });
  else setTimeout(() => step({ didTimeout: true, timeRemaining: () => 0 }), NO_IDLE_CALLBACK_DELAY_MS);
}

/** Without requestIdleCallback, a slice of the check waits this long. */
const NO_IDLE_CALLBACK_DELAY_MS = 100;

/** The nodes one top-level block renders as. */
function blockNodes(token: Token): Node[] {
  const node = renderBlock(token);
  return node instanceof DocumentFragment ? [...node.childNodes] : node ? [node] : [];
}

/** Whether `live` shows what `node` does, the streaming caret aside. */
function isShown(live: Node | undefined, node: Node, caret: Element): boolean {
  if (!live) return false;
  if (!live.contains(caret)) return live.isEqualNode(node);
  const copy = live.cloneNode(true);
  (copy instanceof Element ? copy.querySelector(".caret") : null)?.remove();
  return copy.isEqualNode(node);
}

/**
 * Which top-level blocks of a growing text can no longer change. Later text can make a paragraph
 * a heading (`text\n---`), extend a table or list, close a fence, or define `[x]: url` for links
 * before it; so a block is final once a blank line and another block follow it, unless it could
 * continue (list, indented code), and a new definition makes everything be lexed again.
 */
export class SettledBlocks {
  private text = "";
  /** Where in `text` the settled blocks end… */
  private settledEnd = 0;
  /** …and the link reference definitions among them. */
  private links: Links = noLinks();
  /**
   * The settled blocks' links were resolved with definitions after them too, which may yet
   * change or go (`[x]: h` becoming `[x]: https://…`, or a paragraph): lex all of it again.
   */
  private borrowed = false;

  /**
   * The blocks of `text` still to render: those after the settled ones when `grown` (the text
   * is the last one with more at its end), else all of them (`restart`). The first `settled` of
   * the returned tokens are final from now on, and are not returned again while the text grows.
   */
  lex(rawText: string, grown: boolean): { restart: boolean; tokens: Token[]; settled: number } {
    const text = normalizeNewlines(rawText);
    if (grown && !this.borrowed && text.startsWith(this.text)) {
      const tail = lexMarkdown(text.slice(this.settledEnd), this.links);
      if (size(tail.links) === size(this.links))
        return { restart: false, tokens: tail.tokens, settled: this.settle(text, tail.tokens) };
      // A new definition: links in the settled blocks may resolve to it.
    }
    this.settledEnd = 0;
    this.links = noLinks();
    const whole = lexMarkdown(text);
    const settled = this.settle(text, whole.tokens);
    this.borrowed = size(whole.links) > size(this.links);
    return { restart: true, tokens: whole.tokens, settled };
  }

  /** Moves the settled end past the final blocks among `tokens` (lexed from it); returns how many. */
  private settle(text: string, tokens: readonly Token[]): number {
    this.text = text;
    let count = 0;
    for (let i = tokens.length - 1; i > 0; i--)
      if (isFinalBefore(tokens, i)) {
        count = i;
        break;
      }
    // Marked's blocks are the text cut in order; should a block's `raw` not be its text, keep none.
    let end = this.settledEnd;
    for (const token of tokens.slice(0, count)) {
      if (!text.startsWith(token.raw, end)) return 0;
      end += token.raw.length;
    }
    this.settledEnd = end;
    for (const token of tokens.slice(0, count)) addDefinitions(this.links, token);
    return count;
  }
}

/**
 * Whether the blocks before `tokens[i]` are final: a blank line ends them, and the block it
 * follows cannot go on past it (a list or indented code can, with an indented line or the list's
 * next item).
 */
function isFinalBefore(tokens: readonly Token[], i: number): boolean {
  const blank = tokens[i - 1];
  const before = tokens[i - 2];
  const next = tokens[i];
  // A space token can be no more than the end of a line (a list's trailing spaces and newline).
  if (blank?.type !== "space" || !BLANK_LINE.test(blank.raw) || !next) return false;
  const continuable = before?.type === "list" || (before?.type === "code" && before.codeBlockStyle === "indented");
  return !continuable || !MAY_CONTINUE_LIST_OR_CODE.test(next.raw);
}

/** A line end, then a line with nothing on it. */
const BLANK_LINE = /\n[ \t]*\n/;

/** A line that may belong to a list or indented code before it: indented, or (the start of) a list marker. */
const MAY_CONTINUE_LIST_OR_CODE = /^[\s\-+*\d]/;

/** Adds the link reference definitions in `token` (also in quotes and list items) that `links` lacks: the first one counts. */
function addDefinitions(links: Links, token: Token): void {
  if (token.type === "def") {
    const def = token as Tokens.Def;
    links[def.tag] ??= { href: def.href, title: def.title };
  }
  const nested = token as { tokens?: Token[]; items?: Token[] };
  for (const child of nested.tokens ?? []) addDefinitions(links, child);
  for (const item of nested.items ?? []) addDefinitions(links, item);
}

function noLinks(): Links {
  return Object.create(null) as Links;
}

function size(links: Links): number {
  return Object.keys(links).length;
}

/** Marked reads `\r\n` and `\r` as `\n`; so does the settled end's arithmetic. */
function normalizeNewlines(text: string): string {
  return text.includes("\r") ? text.replace(/\r\n?/g, "\n") : text;
}

/** The blocks Markdown ends an answer with; the caret goes into the last one. */
const CARET_BLOCKS: ReadonlySet<string> = new Set([
  ...["P", "UL", "OL", "LI", "BLOCKQUOTE", "PRE", "H3", "H4", "H5", "H6"],
  ...["TABLE", "THEAD", "TBODY", "TR", "TH", "TD"],
]);

/**
 * The innermost block the answer ends with (its last paragraph, list item, code block…): an
 * inline caret after a block would start a line of its own, under the text it follows.
 */
function caretHost(answer: Element): Element {
  let host = answer;
  while (host.lastElementChild && CARET_BLOCKS.has(host.lastElementChild.tagName)) host = host.lastElementChild;
  return host;
}
