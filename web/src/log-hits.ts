import type { SearchHit } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";
import { h } from "./dom.js";
import { errorText } from "./format.js";

/** How long typing must pause before the logs are searched (each search is a request). */
export const LOG_SEARCH_DEBOUNCE_MS = 250;
/** Shortest query searched in the logs (one letter matches little a person wants). */
export const LOG_SEARCH_MIN_CHARS = 2;
/** Hits shown under the session rows. */
export const LOG_HITS_SHOWN = 20;

/**
 * The board's search in the sessions' logs (`GET /v1/search`): under the session rows, the
 * newest hits of what is typed in the search box, each with its session's name and a snippet
 * with the match marked. A hit opens the session; a terminal's page then finds the words in its
 * scrollback (`#/s/ID?find=…`, see parseRoute).
 */
export class LogHits {
  readonly element: HTMLElement;
  private readonly listEl: HTMLElement;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private asked: AbortController | undefined;
  private query = "";

  constructor(private readonly ctx: AppContext) {
    this.listEl = h("ol", { class: "log-hits-list" });
    this.element = h(
      "section",
      { class: "log-hits", "aria-label": "Found in logs", "data-test": "log-hits", hidden: true },
      h("h2", { class: "log-hits-title" }, "In logs"),
      this.listEl,
    );
  }

  /** Searches the logs for `query` once typing pauses; an empty or short one hides the hits. */
  search(query: string): void {
    clearTimeout(this.timer);
    this.asked?.abort();
    this.query = query.trim();
    if (this.query.length < LOG_SEARCH_MIN_CHARS) {
      this.element.hidden = true;
      return;
    }
    this.timer = setTimeout(() => void this.fetch(this.query), LOG_SEARCH_DEBOUNCE_MS);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.asked?.abort();
  }

  private async fetch(query: string): Promise<void> {
    const asked = new AbortController();
    this.asked = asked;
    try {
      const { hits } = await this.ctx.http.search(query, { limit: LOG_HITS_SHOWN, signal: asked.signal });
      if (asked.signal.aborted || query !== this.query) return;
      this.render(hits, query);
    } catch (error) {
      if (asked.signal.aborted) return;
      this.listEl.replaceChildren(h("li", { class: "muted" }, `Cannot search the logs: ${errorText(error)}`));
      this.element.hidden = false;
    }
  }

  private render(hits: readonly SearchHit[], query: string): void {
    this.element.hidden = hits.length === 0;
    const find = query.replace(/\*+$/, "");
    this.listEl.replaceChildren(
      ...hits.map((hit) =>
        h(
          "li",
          null,
          h(
            "a",
            {
              class: "log-hit",
              "data-test": "log-hit",
              href: `#/s/${encodeURIComponent(hit.sessionId)}?seq=${hit.seq}&find=${encodeURIComponent(find)}`,
            },
            h("span", { class: "log-hit-session" }, hit.name ?? hit.sessionId),
            h("span", { class: "log-hit-snippet" }, ...marked(hit)),
          ),
        ),
      ),
    );
  }
}

/** The snippet as text nodes with each match in a `<mark>` (never HTML: the text is the logs'). */
function marked(hit: SearchHit): Array<string | HTMLElement> {
  const parts: Array<string | HTMLElement> = [];
  let at = 0;
  for (const [start, end] of hit.marks) {
    if (start < at || end > hit.snippet.length) continue;
    parts.push(hit.snippet.slice(at, start), h("mark", null, hit.snippet.slice(start, end)));
    at = end;
  }
  parts.push(hit.snippet.slice(at));
  return parts;
}
