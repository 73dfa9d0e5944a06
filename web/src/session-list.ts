import type { SessionInfo } from "../../src/protocol/index.js";
import { DiskUsageLine } from "./disk-usage.js";
import type { AppContext } from "./context.js";
import { fill, h, icon } from "./dom.js";
import type { IconName } from "./dom.js";
import { controlHolder, displayState, relativeTime, sessionSubtitle, sessionTitle, stateRank } from "./format.js";

/** Relative times ("12s ago") are redrawn this often. */
export const LIST_TICK_MS = 5_000;

export type Filter = "all" | "active" | "waiting" | "ended";
const FILTERS: { id: Filter; label: string }[] = [
  { id: "all", label: "All" },
  { id: "active", label: "Active" },
  { id: "waiting", label: "Needs input" },
  { id: "ended", label: "Ended" },
];

const KIND_ICONS: Record<SessionInfo["kind"], IconName> = { terminal: "terminal", agent: "agent", stream: "stream" };

function matches(filter: Filter, s: SessionInfo): boolean {
  const state = displayState(s).state;
  switch (filter) {
    case "all":
      return true;
    case "active":
      return s.state === "running";
    case "waiting":
      return state === "waiting";
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
  private readonly rows = new Map<string, { el: HTMLElement; key: string; activity: HTMLElement }>();
  /** What the rows area shows when no row does ("Loading sessions…", …), to redraw it only when that changes. */
  private emptyShown: HTMLElement | null = null;
  private _filter: Filter;
  private selected: string | null = null;
  private readonly offStore: () => void;
  private readonly ticker: ReturnType<typeof setInterval>;
  /** Admins only, on the full list: the data directory's size. */
  private readonly disk: DiskUsageLine | null;

  /** `filter`: the chip chosen at first (the home page keeps the last one while the tab is open). */
  constructor(ctx: AppContext, mode: "full" | "compact", filter: Filter = "all") {
    this.ctx = ctx;
    this.mode = mode;
    this._filter = filter;
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
    this.element = h(
      "section",
      { class: `session-list list-${mode}`, "aria-label": "Sessions" },
      h(
        "header",
        { class: "list-head" },
        h("div", { class: "list-title" }, h(mode === "full" ? "h1" : "h2", null, "Sessions"), newButton),
        mode === "full" ? this.summaryEl : null,
        this.chipsEl,
      ),
      this.rowsEl,
      this.disk?.element ?? null,
    );
    this.offStore = ctx.store.onChange(() => this.render());
    this.ticker = setInterval(() => this.render(), LIST_TICK_MS);
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

  select(id: string | null): void {
    this.selected = id;
    for (const [rowId, row] of this.rows) markSelected(row.el, rowId === id);
  }

  dispose(): void {
    this.offStore();
    clearInterval(this.ticker);
    this.disk?.dispose();
  }

  private render(): void {
    const all = this.ctx.store.list();
    const now = Date.now();
    this.renderChips(all);
    const visible = sortSessions(all.filter((s) => matches(this._filter, s)));
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
    const seen = new Set<string>();
    const ordered: HTMLElement[] = [];
    for (const s of visible) {
      seen.add(s.id);
      const key = rowKey(s, this.parentTitle(s));
      let row = this.rows.get(s.id);
      if (!row || row.key !== key) {
        row = { ...this.row(s), key };
        this.rows.set(s.id, row);
      }
      markSelected(row.el, s.id === this.selected);
      setActivity(row.activity, s, now);
      ordered.push(row.el);
    }
    for (const id of [...this.rows.keys()]) if (!seen.has(id)) this.rows.delete(id);
    // Reorder only when needed so hover and focus survive a poll; a focused row that had to be
    // redrawn or moved gets the focus back.
    const current = [...this.rowsEl.children];
    if (current.length !== ordered.length || ordered.some((el, i) => current[i] !== el)) {
      const focused = current.find((el) => el.contains(document.activeElement)) as HTMLElement | undefined;
      fill(this.rowsEl, ordered);
      const again = focused && this.rows.get(focused.dataset["session"] ?? "")?.el;
      if (again && !again.contains(document.activeElement)) again.focus({ preventScroll: true });
    }
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

  /** A row, and its relative time (updated in place by {@link setActivity}). */
  private row(s: SessionInfo): { el: HTMLElement; activity: HTMLElement } {
    const badge = displayState(s);
    const parent = this.parentTitle(s);
    const sub = h(
      "span",
      { class: "row-sub" },
      sessionSubtitle(s),
      parent ? h("span", { class: "row-parent" }, ` · ↳ ${parent}`) : null,
    );
    // A name in a right-to-left script reads (and is cut off with "…") from its own start.
    const title = h("span", { class: "row-title", dir: "auto" }, sessionTitle(s));
    const stateBadge = h(
      "span",
      { class: `badge state-${badge.state}`, "data-state": badge.state },
      h("span", { class: "dot" }),
      badge.label,
    );
    const activity = h("span", { class: "row-meta activity" });
    const common = {
      class: `row state-${badge.state}`,
      href: `#/s/${encodeURIComponent(s.id)}`,
      "data-session": s.id,
      "data-kind": s.kind,
    };
    if (this.mode === "compact") {
      const el = h(
        "a",
        common,
        h("span", { class: `kind-icon kind-${s.kind}` }, icon(KIND_ICONS[s.kind])),
        h("span", { class: "row-main" }, title, h("span", { class: "row-line" }, stateBadge, activity)),
      );
      return { el, activity };
    }
    const holder = controlHolder(s.controller, this.ctx.me.name);
    const el = h(
      "a",
      common,
      h("span", { class: `kind-icon kind-${s.kind}` }, icon(KIND_ICONS[s.kind])),
      h("span", { class: "row-main" }, title, sub),
      stateBadge,
      h(
        "span",
        { class: "row-meta-group" },
        activity,
        h("span", { class: "row-meta viewers", title: `${s.viewers} watching` }, icon("eye"), String(s.viewers)),
        // The icons say "watching" and "control" to the eye only: a screen reader read "0 free".
        h("span", { class: "sr-only" }, " watching, control: "),
        h(
          "span",
          { class: `row-meta control${s.controller ? " held" : ""}`, title: holder.title },
          icon(s.controller ? "lock" : "unlock"),
          holder.label,
        ),
      ),
    );
    return { el, activity };
  }

  private empty(none: boolean): HTMLElement {
    if (!this.ctx.store.loaded) return h("div", { class: "empty muted" }, "Loading sessions…");
    if (!none) return h("div", { class: "empty muted" }, "No sessions match this filter.");
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
          ? "Start a shell or an agent; everyone you share the gateway with can watch it live."
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

/** What a row shows, but its relative time. */
function rowKey(s: SessionInfo, parent: string | null): string {
  return JSON.stringify([
    s.name,
    s.state,
    s.exitCode,
    s.signal,
    s.run,
    s.viewers,
    s.controller,
    s.cols,
    s.rows,
    parent,
  ]);
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
