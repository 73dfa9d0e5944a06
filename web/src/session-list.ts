import { LogHits } from "./log-hits.js";
import type { SessionInfo } from "../../src/protocol/index.js";
import { DiskUsageLine } from "./disk-usage.js";
import type { AppContext } from "./context.js";
import { fill, h, icon } from "./dom.js";
import { displayState, errorText, relativeTime, sessionTitle, stateRank } from "./format.js";
import { matchesQuery, renderRow, rowKey, runAgainRequest } from "./session-row.js";
import type { Row } from "./session-row.js";
import { noteHeld } from "./tab-memory.js";

/** Relative times ("12s ago") are redrawn this often. */
export const LIST_TICK_MS = 5_000;

export type Filter = "all" | "active" | "waiting" | "ended";
const FILTERS: { id: Filter; label: string }[] = [
  { id: "all", label: "All" },
  { id: "active", label: "Active" },
  { id: "waiting", label: "Needs input" },
  { id: "ended", label: "Ended" },
];

/**
 * Past this many rows the list is virtual: only the rows in view, and
 * {@link VIRTUAL_OVERSCAN_ROWS} on each side, are in the DOM, the rest stand in as padding
 * (1,000 rows in the DOM made each poll's layout and the scroll slow;
 * test/web/ui-session-list-scale.test.ts). Below it every row is in the DOM, as a page find expects.
 */
export const VIRTUAL_MIN_ROWS = 150;
/** Rows kept in the DOM beyond each edge of the view of a virtual list. */
export const VIRTUAL_OVERSCAN_ROWS = 10;
/** A row's height until one is measured (px). */
const ROW_HEIGHT_GUESS = 56;

/** "Remove ended" waits this long for its confirming second click. */
export const REMOVE_ENDED_ARM_MS = 5_000;

function matches(filter: Filter, s: SessionInfo): boolean {
  const state = displayState(s).state;
  switch (filter) {
    case "all":
      return true;
    case "active":
      return s.state === "running";
    case "waiting":
      return state === "waiting" || (s.state === "running" && s.attention !== undefined);
    case "ended":
      return s.state !== "running";
  }
}

/** Newest-first within: needs input, alive, ended. */
export function sortSessions(list: SessionInfo[]): SessionInfo[] {
  return [...list].sort((a, b) => {
    const rank = stateRank(displayState(a).state) - stateRank(displayState(b).state);
    if (rank !== 0) return rank;
    return (b.endedAt ?? b.lastActivityAt) - (a.endedAt ?? a.lastActivityAt);
  });
}

/**
 * The sessions list: `full` is the home page (every column), `compact` the sidebar next to
 * an open session. Rows are keyed by id and redrawn only when what they show changed; their
 * relative times and the filter chips are updated in place, so keyboard focus survives a poll.
 */
export class SessionList {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private readonly mode: "full" | "compact";
  private readonly rowsEl: HTMLElement;
  private readonly summaryEl: HTMLElement;
  private readonly chipsEl: HTMLElement;
  private readonly chips: { filter: Filter; el: HTMLButtonElement; count: HTMLElement }[];
  private readonly rows = new Map<string, Row & { key: string }>();
  private readonly searchEl: HTMLInputElement;
  /** The search in the sessions' logs, under the rows (the home page's list only). */
  private readonly logHits: LogHits | null;
  private readonly removeEndedEl: HTMLButtonElement | null;
  private removeArmed: ReturnType<typeof setTimeout> | undefined;
  private removing = false;
  /** What the rows area shows when no row does ("Loading sessions…", …), to redraw it only when that changes. */
  private emptyShown: HTMLElement | null = null;
  private _filter: Filter;
  private _query = "";
  private selected: string | null = null;
  private readonly offStore: () => void;
  private readonly ticker: ReturnType<typeof setInterval>;
  /** Admins only, on the full list: the data directory's size. */
  private readonly disk: DiskUsageLine | null;
  /** The rows the filter and search leave, in order, as the last render found them (a scroll renders a window of them). */
  private visible: SessionInfo[] = [];
  /** A row's height in a virtual list (px), measured from the rows shown. */
  private rowHeight = ROW_HEIGHT_GUESS;
  /** The rows of {@link visible} in the DOM, `to` excluded. */
  private drawn = { from: 0, to: 0 };
  /** A scroll or resize asked for the window again; drawn at the next frame. */
  private windowFrame: number | null = null;
  private readonly onScroll = () => {
    if (this.visible.length <= VIRTUAL_MIN_ROWS || this.windowFrame !== null) return;
    this.windowFrame = requestAnimationFrame(() => {
      this.windowFrame = null;
      this.renderRows(Date.now(), true);
    });
  };

  /**
   * `filter` and `query`: the chip chosen and the search typed at first (the home page and the
   * sidebar hand them on while the tab is open).
   */
  constructor(ctx: AppContext, mode: "full" | "compact", filter: Filter = "all", query = "") {
    this.ctx = ctx;
    this.mode = mode;
    this._filter = filter;
    this._query = query;
    this.searchEl = h("input", {
      class: "list-search",
      type: "search",
      placeholder: mode === "full" ? "Search name, command, owner, state" : "Search",
      "aria-label": "Search sessions by name, command, owner or state",
      "data-test": "search",
      value: query,
      oninput: () => this.search(this.searchEl.value),
    });
    this.removeEndedEl =
      mode === "full" && ctx.canSteer
        ? h(
            "button",
            {
              class: "btn btn-small btn-ghost remove-ended",
              type: "button",
              "data-test": "remove-ended",
              onclick: () => void this.removeEnded(),
              onkeydown: (e: Event) => {
                if ((e as KeyboardEvent).key === "Escape") this.disarmRemove();
              },
            },
            icon("trash"),
            h("span", null, "Remove ended"),
          )
        : null;
    this.summaryEl = h("p", { class: "list-summary" });
    this.chips = FILTERS.map((f) => {
      const count = h("span", { class: "chip-count" });
      const el = h(
        "button",
        {
          class: "chip",
          type: "button",
          onclick: () => (this.filter = f.id),
        },
        f.label,
        count,
      );
      return { filter: f.id, el, count };
    });
    this.chipsEl = h(
      "div",
      // Toggle buttons (aria-pressed), not tabs: they filter the list below, they do not switch
      // between panels.
      { class: "chips", role: "group", "aria-label": "Show sessions" },
      this.chips.map((c) => c.el),
    );
    // Rows are links, and say so to a screen reader: a list role on them (listitem) hid that.
    this.rowsEl = h("div", { class: "rows" });
    const newButton = ctx.canSteer
      ? h(
          "button",
          {
            class: "btn btn-primary",
            type: "button",
            "data-test": "new-session",
            onclick: () => ctx.openCreateDialog(),
          },
          icon("plus"),
          h("span", null, mode === "full" ? "New session" : "New"),
        )
      : null;
    this.disk = mode === "full" && ctx.me.role === "admin" ? new DiskUsageLine(ctx) : null;
    this.logHits = mode === "full" ? new LogHits(ctx) : null;
    this.logHits?.search(query);
    this.element = h(
      "section",
      { class: `session-list list-${mode}`, "aria-label": "Sessions" },
      h(
        "header",
        { class: "list-head" },
        h("div", { class: "list-title" }, h(mode === "full" ? "h1" : "h2", null, "Sessions"), newButton),
        mode === "full" ? this.summaryEl : null,
        this.chipsEl,
        h("div", { class: "list-tools" }, this.searchEl, this.removeEndedEl),
      ),
      this.rowsEl,
      this.logHits?.element ?? null,
      this.disk?.element ?? null,
    );
    this.offStore = ctx.store.onChange(() => this.render());
    this.ticker = setInterval(() => this.render(), LIST_TICK_MS);
    // Any scroll (the page's or the sidebar's): a virtual list shows the rows in view.
    document.addEventListener("scroll", this.onScroll, { capture: true, passive: true });
    window.addEventListener("resize", this.onScroll, { passive: true });
    // A Tab onto a row scrolls it into view at once: the rows after it are drawn now, not at the
    // next frame, or keys faster than frames tab out of the list (ui-session-list-scale.test.ts).
    this.rowsEl.addEventListener("focusin", () => {
      if (this.visible.length > VIRTUAL_MIN_ROWS) this.renderRows(Date.now(), true);
    });
    this.render();
  }

  get filter(): Filter {
    return this._filter;
  }

  /** Shows only the sessions `filter` matches, as a click on its chip does. */
  set filter(filter: Filter) {
    if (filter === this._filter) return;
    this._filter = filter;
    this.rows.clear();
    this.render();
  }

  get query(): string {
    return this._query;
  }

  /** Shows only the sessions whose name, command, owner or state has every word of `query`. */
  search(query: string): void {
    if (this.searchEl.value !== query) this.searchEl.value = query;
    if (query === this._query) return;
    this._query = query;
    this.logHits?.search(query);
    this.render();
  }

  /** Whether its search box has the focus: someone is typing a search. */
  get searching(): boolean {
    return document.activeElement === this.searchEl;
  }

  /** Puts the focus in its search box, after what is typed there. */
  focusSearch(): void {
    this.searchEl.focus();
    const end = this.searchEl.value.length;
    this.searchEl.setSelectionRange(end, end);
  }

  select(id: string | null): void {
    this.selected = id;
    for (const [rowId, row] of this.rows) markSelected(row.link, rowId === id);
  }

  dispose(): void {
    this.offStore();
    clearInterval(this.ticker);
    document.removeEventListener("scroll", this.onScroll, { capture: true });
    window.removeEventListener("resize", this.onScroll);
    if (this.windowFrame !== null) cancelAnimationFrame(this.windowFrame);
    this.disk?.dispose();
    this.logHits?.dispose();
    this.disarmRemove();
  }

  /** Starts an ended terminal session again with the same command, cwd, size and name, and opens it. */
  private async runAgain(s: SessionInfo): Promise<void> {
    try {
      const started = await this.ctx.http.createSession(runAgainRequest(s));
      this.ctx.store.upsert(started);
      // Started here to be used here: its page takes control (see maybeAutoAcquire).
      noteHeld(started.id, true);
      this.ctx.navigate(`#/s/${encodeURIComponent(started.id)}`);
    } catch (error) {
      this.ctx.toast(`Cannot start it again: ${errorText(error)}`, "error");
    }
  }

  /** First click arms ("Remove 3 ended?"), the second removes every ended session listed, logs and all. */
  private async removeEnded(): Promise<void> {
    const button = this.removeEndedEl;
    if (!button || this.removing) return;
    const ended = this.ctx.store.list().filter((s) => s.state !== "running");
    if (this.removeArmed === undefined) {
      if (ended.length === 0) return;
      fill(button, icon("trash"), h("span", null, `Remove ${ended.length} ended for good?`));
      button.classList.add("confirm");
      this.removeArmed = setTimeout(() => this.disarmRemove(), REMOVE_ENDED_ARM_MS);
      return;
    }
    this.disarmRemove();
    this.removing = true;
    button.disabled = true;
    const failed: string[] = [];
    for (const s of ended) {
      try {
        await this.ctx.http.removeSession(s.id);
        this.ctx.store.remove(s.id);
      } catch (error) {
        // Another operator's session the user may see but not remove, or one gone meanwhile.
        failed.push(`${sessionTitle(s)}: ${errorText(error)}`);
      }
    }
    this.removing = false;
    button.disabled = false;
    const removed = ended.length - failed.length;
    this.ctx.toast(`Removed ${removed} ended session${removed === 1 ? "" : "s"}.`);
    if (failed.length > 0) this.ctx.toast(`Not removed: ${failed.slice(0, 3).join("; ")}`, "error");
  }

  private disarmRemove(): void {
    if (this.removeArmed === undefined) return;
    clearTimeout(this.removeArmed);
    this.removeArmed = undefined;
    if (this.removeEndedEl) {
      fill(this.removeEndedEl, icon("trash"), h("span", null, "Remove ended"));
      this.removeEndedEl.classList.remove("confirm");
    }
  }

  private render(): void {
    const all = this.ctx.store.list();
    const now = Date.now();
    this.renderChips(all);
    const visible = sortSessions(all.filter((s) => matches(this._filter, s) && matchesQuery(s, this._query)));
    if (this.removeEndedEl) this.removeEndedEl.hidden = !all.some((s) => s.state !== "running");
    if (this.mode === "full") fill(this.summaryEl, summary(all));
    if (visible.length === 0) {
      this.rows.clear();
      const empty = this.empty(all.length === 0);
      // Redrawn only when it says something else: its buttons keep the focus.
      if (!this.emptyShown?.isEqualNode(empty)) {
        this.emptyShown = empty;
        fill(this.rowsEl, empty);
      }
      return;
    }
    this.emptyShown = null;
    this.visible = visible;
    this.renderRows(now);
  }

  /** Draws the rows of {@link visible}: all of them, or those in view of a virtual list. */
  private renderRows(now: number, scrolled = false): void {
    const visible = this.visible;
    const { from, to } =
      visible.length > VIRTUAL_MIN_ROWS ? this.window(visible.length) : { from: 0, to: visible.length };
    // A scroll within the rows drawn already changes nothing.
    if (scrolled && from === this.drawn.from && to === this.drawn.to) return;
    this.drawn = { from, to };
    const seen = new Set<string>();
    const ordered: HTMLElement[] = [];
    for (let i = from; i < to; i++) {
      const s = visible[i]!;
      seen.add(s.id);
      let row = this.rows.get(s.id);
      // A scroll draws the rows it brings in; a poll or tick also redraws those whose content changed.
      if (!row || !scrolled) {
        const key = rowKey(s, this.parentTitle(s));
        if (!row || row.key !== key) {
          row = { ...this.row(s), key };
          this.rows.set(s.id, row);
        }
        markSelected(row.link, s.id === this.selected);
        setActivity(row.activity, s, now);
      }
      ordered.push(row.el);
    }
    for (const id of [...this.rows.keys()]) if (!seen.has(id)) this.rows.delete(id);
    // The rows out of view stand in as padding, so the scrollbar and the scroll position are those of the whole list.
    const top = from > 0 ? `${from * this.rowHeight}px` : "";
    const bottom = to < visible.length ? `${(visible.length - to) * this.rowHeight}px` : "";
    if (this.rowsEl.style.paddingTop !== top) this.rowsEl.style.paddingTop = top;
    if (this.rowsEl.style.paddingBottom !== bottom) this.rowsEl.style.paddingBottom = bottom;
    // Only the rows that left or came are moved, so hover and focus survive a poll and a scroll;
    // a focused row that had to be redrawn or moved gets the focus back.
    const current = [...this.rowsEl.children];
    if (current.length !== ordered.length || ordered.some((el, i) => current[i] !== el)) {
      const focused = current.find((el) => el.contains(document.activeElement)) as HTMLElement | undefined;
      const keep = new Set(ordered);
      for (const el of current) if (!keep.has(el as HTMLElement)) el.remove();
      let next: ChildNode | null = this.rowsEl.firstChild;
      for (const el of ordered) {
        if (next === el) next = el.nextSibling;
        else this.rowsEl.insertBefore(el, next);
      }
      const again = focused && this.rows.get(focused.dataset["item"] ?? "");
      if (again && !again.el.contains(document.activeElement)) again.link.focus({ preventScroll: true });
    }
    if (!scrolled && ordered.length >= 2) {
      const measured = ordered[1]!.offsetTop - ordered[0]!.offsetTop;
      if (measured > 0) this.rowHeight = measured;
    }
  }

  /** The rows of a virtual list of `count` in view of its scrolling ancestor (or the window), with the overscan. */
  private window(count: number): { from: number; to: number } {
    const scroller = scrollingAncestor(this.rowsEl);
    const viewTop = scroller?.getBoundingClientRect().top ?? 0;
    const viewHeight = scroller?.clientHeight ?? window.innerHeight;
    const listTop = this.rowsEl.getBoundingClientRect().top + this.rowsEl.clientTop;
    const first = Math.floor((viewTop - listTop) / this.rowHeight);
    const from = Math.min(Math.max(0, first - VIRTUAL_OVERSCAN_ROWS), Math.max(0, count - 1));
    const to = Math.min(count, Math.max(0, first) + Math.ceil(viewHeight / this.rowHeight) + VIRTUAL_OVERSCAN_ROWS);
    return { from, to: Math.max(to, from + 1) };
  }

  private renderChips(all: SessionInfo[]): void {
    for (const chip of this.chips) {
      const count = all.filter((s) => matches(chip.filter, s)).length;
      const active = chip.filter === this._filter;
      chip.el.classList.toggle("active", active);
      chip.el.classList.toggle("attention", chip.filter === "waiting" && count > 0);
      chip.el.setAttribute("aria-pressed", active ? "true" : "false");
      chip.count.textContent = String(count);
    }
  }

  private parentTitle(s: SessionInfo): string | null {
    if (s.parent === null) return null;
    const parent = this.ctx.store.get(s.parent);
    return parent ? sessionTitle(parent) : "an agent";
  }

  private row(s: SessionInfo): Row {
    return renderRow(s, {
      mode: this.mode,
      me: this.ctx.me.name,
      parent: this.parentTitle(s),
      runAgain: this.ctx.canSteer ? (session) => void this.runAgain(session) : null,
    });
  }

  private empty(none: boolean): HTMLElement {
    if (!this.ctx.store.loaded) return h("div", { class: "empty muted" }, "Loading sessions…");
    if (!none)
      return h(
        "div",
        { class: "empty muted" },
        this._query.trim() ? `No sessions match “${this._query.trim()}” here.` : "No sessions match this filter.",
      );
    const canSteer = this.ctx.canSteer;
    return h(
      "div",
      { class: "empty" },
      h("div", { class: "empty-art" }, icon("terminal", "icon big"), icon("agent", "icon big")),
      h("h3", null, canSteer ? "No sessions yet" : "No sessions to watch yet"),
      h(
        "p",
        { class: "muted" },
        canSteer
          ? this.ctx.me.role === "admin"
            ? "Start a shell or an agent; everyone whose token may see it can watch it live."
            : "Start a shell or an agent. It is yours: admins, and tokens whose session patterns match its name, can watch it too."
          : "As a viewer you cannot start one: the sessions you may watch show up here as soon as someone starts them.",
      ),
      canSteer
        ? h(
            "div",
            { class: "empty-actions" },
            h(
              "button",
              { class: "btn", type: "button", onclick: () => this.ctx.openCreateDialog("terminal") },
              icon("terminal"),
              "New terminal",
            ),
            h(
              "button",
              { class: "btn btn-primary", type: "button", onclick: () => this.ctx.openCreateDialog("agent") },
              icon("agent"),
              "Try the echo agent",
            ),
          )
        : null,
    );
  }
}

/** The nearest ancestor of `el` that scrolls its content vertically; null when the page does. */
function scrollingAncestor(el: HTMLElement): HTMLElement | null {
  for (let at = el.parentElement; at !== null && at !== document.body; at = at.parentElement) {
    const overflow = getComputedStyle(at).overflowY;
    if ((overflow === "auto" || overflow === "scroll") && at.scrollHeight > at.clientHeight) return at;
  }
  return null;
}

/** The row of the open session, also for a screen reader (`aria-current`). */
function markSelected(el: HTMLElement, selected: boolean): void {
  el.classList.toggle("selected", selected);
  if (selected) el.setAttribute("aria-current", "page");
  else el.removeAttribute("aria-current");
}

/** A row's "12s ago", written only when it changed. */
function setActivity(el: HTMLElement, s: SessionInfo, now: number): void {
  const text = relativeTime(s.lastActivityAt, now);
  if (el.textContent !== text) el.textContent = text;
  el.title = new Date(s.lastActivityAt).toLocaleString();
}

function summary(all: SessionInfo[]): string {
  let running = 0;
  let waiting = 0;
  let ended = 0;
  for (const s of all) {
    if (s.state !== "running") ended++;
    else if (displayState(s).state === "waiting") waiting++;
    else running++;
  }
  const parts = [`${running} running`];
  if (waiting > 0) parts.push(`${waiting} waiting for input`);
  parts.push(`${ended} ended`);
  return parts.join(" · ");
}
