import { LIMITS } from "../../src/protocol/index.js";
import type { SessionEvent, TurnMark } from "../../src/protocol/index.js";
import { AgentModel } from "./agent-model.js";
import type { RunView } from "./agent-model.js";
import type { AppContext } from "./context.js";
import { h } from "./dom.js";
import { errorText } from "./format.js";

/** A log of at most this many events is replayed whole, as it always was, without asking where its turns start. */
export const TAIL_MIN_EVENTS = 200;
/**
 * A longer log opens on its last turns when it holds more than this many events or bytes (a few
 * turns of long answers render for seconds: docs/benchmarks.md, "Slow link"); else it too is
 * replayed whole.
 */
export const TAIL_FIRST_EVENTS = 2000;
export const TAIL_FIRST_BYTES = 1024 * 1024;
/** Turns the page opens on (the live part: they and what follows come over the subscription). */
export const TAIL_TURNS = 1;
/** Turns one page of older (or newer) history holds. */
export const PAGE_TURNS = 4;
/** Pages kept on the page at once: past it the one furthest from where the reader loads goes, leaving a gap to load again. */
export const PAGES_KEPT = 12;
/** A page loads while its place (the top, a gap) is within this many pixels of the visible part. */
export const LOAD_MARGIN_PX = 800;

/** What the pages need of the agent view. */
export interface TurnPagesHost {
  readonly scroller: HTMLElement;
  /** Renders a run of a page (and remembers its element, for later re-renders). */
  render(run: RunView): HTMLElement;
  /** A page's runs left the page. */
  forget(runIds: readonly string[]): void;
  /** Each event a page applies, with the runs it touched (to find a search hit's run). */
  applied(event: SessionEvent, runs: readonly RunView[]): void;
}

/** Turns `[start, end)` of the log: their runs, rebuilt from their events alone. */
interface Page {
  start: number;
  end: number;
  model: AgentModel;
  el: HTMLElement;
}

/**
 * The history above the live part of an agent session whose log is long (docs/ui.md, "Long
 * conversations"): pages of turns, each read from the turn index (`GET /v1/sessions/:id/turns`)
 * and the events route, loaded as the reader scrolls up (or into a gap left below a search hit),
 * at most {@link PAGES_KEPT} at once. Runs go one at a time, so a page's runs are those that
 * start in it, rebuilt from its events (and each one's `run.queued`, which may lie earlier);
 * events of other runs in its range (prompts queued meanwhile) belong to the page they start in.
 */
export class TurnPages {
  readonly element: HTMLElement;
  private readonly top: HTMLButtonElement;
  private readonly pages: Page[] = [];
  /** Where the live part starts: the pages lie before it. */
  private liveFrom = Number.POSITIVE_INFINITY;
  private olderDone = false;
  /** Pages load by themselves only once the live part is on the page (before, the top would look near). */
  private enabled = false;
  private loading = false;
  /** A load failed: the next waits for a click on the button rather than retrying each frame. */
  private stalled = false;
  private disposed = false;
  private readonly observer: IntersectionObserver;
  /** The gap elements on the page, by the seq they start at. */
  private readonly gaps = new Map<HTMLElement, number>();

  constructor(
    private readonly ctx: AppContext,
    private readonly sessionId: string,
    private readonly host: TurnPagesHost,
  ) {
    this.top = h(
      "button",
      { class: "btn btn-small btn-ghost turn-more", type: "button", "data-test": "older-turns", hidden: true },
      "Earlier turns",
    );
    this.top.addEventListener("click", () => {
      this.stalled = false;
      void this.loadOlder();
    });
    this.element = h("div", { class: "turn-pages" });
    this.observer = new IntersectionObserver(() => this.check(), {
      root: host.scroller,
      rootMargin: `${LOAD_MARGIN_PX}px 0px`,
    });
  }

  /** The live part starts at `liveFrom`: older turns can be loaded. */
  live(liveFrom: number): void {
    this.liveFrom = liveFrom;
    this.layout();
  }

  /** The live part is on the page: from now on pages load as the reader comes near them. */
  enable(): void {
    this.enabled = true;
    this.check();
  }

  /** A run of a page, by id. */
  run(runId: string): RunView | undefined {
    for (const page of this.pages) {
      const run = page.model.get(runId);
      if (run) return run;
    }
    return undefined;
  }

  get runCount(): number {
    return this.pages.reduce((n, p) => n + p.model.runs.length, 0);
  }

  /**
   * Loads the turn that holds event `seq` (a search hit before the live part), with the gap
   * between it and the live part to load as the reader scrolls down.
   */
  async openAround(seq: number): Promise<void> {
    if (this.liveFrom === Number.POSITIVE_INFINITY || seq >= this.liveFrom) return;
    if (this.pages.some((p) => p.start <= seq && seq < p.end)) return;
    const answer = await this.ctx.client.http.turns(this.sessionId, { before: seq + 1, limit: 1 });
    const turn = answer.turns[0];
    const start = turn?.start ?? answer.first;
    const end = Math.min(answer.next ?? this.liveFrom, this.liveFrom);
    const page = await this.build(answer.turns, start, end);
    this.insert(page);
  }

  dispose(): void {
    this.disposed = true;
    this.observer.disconnect();
  }

  /** Loads whatever the reader is near: the older turns at the top, or a gap. */
  private check(): void {
    if (!this.enabled || this.loading || this.stalled || this.disposed) return;
    if (this.liveFrom === Number.POSITIVE_INFINITY) return;
    if (!this.top.hidden && this.near(this.top)) {
      void this.loadOlder();
      return;
    }
    for (const [gap, from] of this.gaps)
      if (this.near(gap)) {
        void this.loadGap(from);
        return;
      }
  }

  private near(el: HTMLElement): boolean {
    if (!el.isConnected) return false;
    const view = this.host.scroller.getBoundingClientRect();
    const rect = el.getBoundingClientRect();
    return rect.bottom >= view.top - LOAD_MARGIN_PX && rect.top <= view.bottom + LOAD_MARGIN_PX;
  }

  private async loadOlder(): Promise<void> {
    await this.load(async () => {
      const before = this.pages[0]?.start ?? this.liveFrom;
      const answer = await this.ctx.client.http.turns(this.sessionId, { before, limit: PAGE_TURNS });
      if (answer.turns.length < PAGE_TURNS) this.olderDone = true;
      if (answer.turns.length === 0) return undefined;
      return this.build(answer.turns, answer.turns[0]!.start, before);
    });
  }

  /** Loads the turns after `from`, up to the next page or the live part. */
  private async loadGap(from: number): Promise<void> {
    await this.load(async () => {
      const to = this.pages.find((p) => p.start > from)?.start ?? this.liveFrom;
      const answer = await this.ctx.client.http.turns(this.sessionId, { from, limit: PAGE_TURNS });
      const turns = answer.turns.filter((t) => t.start < to);
      const end = turns.length === answer.turns.length && answer.next !== null ? Math.min(answer.next, to) : to;
      return this.build(turns, from, end);
    });
  }

  private async load(read: () => Promise<Page | undefined>): Promise<void> {
    if (this.loading || this.disposed) return;
    this.loading = true;
    this.top.disabled = true;
    try {
      const page = await read();
      if (this.disposed) return;
      if (page) this.insert(page);
      else this.layout();
    } catch (error) {
      this.stalled = true;
      this.ctx.toast(`Cannot load these turns: ${errorText(error)}`, "error");
    } finally {
      this.loading = false;
      this.top.disabled = false;
    }
    // Still near (a short page, a fast scroll): go on.
    requestAnimationFrame(() => this.check());
  }

  /** The page of `turns`, events `[start, end)`. */
  private async build(turns: readonly TurnMark[], start: number, end: number): Promise<Page> {
    const events: SessionEvent[] = [];
    for (const t of turns) if (t.queued !== null && t.queued.seq < start) events.push(t.queued);
    for (let since = start - 1; since < end - 1;) {
      const limit = Math.min(LIMITS.EVENTS_PAGE_MAX, end - 1 - since);
      const read = await this.ctx.client.http.events(this.sessionId, { since, limit });
      for (const e of read.events) if (e.seq < end) events.push(e);
      if (read.next <= since || read.next >= read.head) break;
      since = read.next;
    }
    const runIds = new Set(turns.map((t) => t.runId));
    const model = new AgentModel();
    for (const event of events) {
      const runId = (event as { runId?: unknown }).runId;
      if (typeof runId === "string" && !runIds.has(runId)) continue;
      this.host.applied(event, model.apply(event));
    }
    const el = h(
      "div",
      { class: "turn-page", "data-from": String(start), "data-to": String(end) },
      model.runs.map((run) => this.host.render(run)),
    );
    return { start, end, model, el };
  }

  /** Puts `page` in its place, keeps the reader's place, and drops the page furthest from it past PAGES_KEPT. */
  private insert(page: Page): void {
    this.keepPlace(() => {
      const at = this.pages.findIndex((p) => p.start > page.start);
      const index = at < 0 ? this.pages.length : at;
      this.pages.splice(index, 0, page);
      if (this.pages.length > PAGES_KEPT) {
        // Loaded at the top: the newest page goes; loaded lower down: the oldest.
        const gone = index === 0 ? this.pages.pop()! : this.pages.shift()!;
        if (index !== 0) this.olderDone = false;
        this.host.forget(gone.model.runs.map((r) => r.runId));
      }
      this.layout();
    });
  }

  /** The top button, the pages in order, and a gap wherever two are not adjacent (or the last is short of the live part). */
  private layout(): void {
    for (const gap of this.gaps.keys()) this.observer.unobserve(gap);
    this.gaps.clear();
    const children: HTMLElement[] = [];
    this.top.hidden = this.olderDone || this.liveFrom === Number.POSITIVE_INFINITY;
    children.push(this.top);
    this.pages.forEach((page, i) => {
      children.push(page.el);
      const next = this.pages[i + 1]?.start ?? this.liveFrom;
      if (page.end < next) {
        const gap = h(
          "button",
          { class: "btn btn-small btn-ghost turn-more", type: "button", "data-test": "newer-turns" },
          "Later turns",
        );
        gap.addEventListener("click", () => {
          this.stalled = false;
          void this.loadGap(page.end);
        });
        this.gaps.set(gap, page.end);
        children.push(gap);
      }
    });
    // Pages that stay are not moved: a move would collapse the ranges of a search highlight in them.
    let at: ChildNode | null = this.element.firstChild;
    for (const child of children) {
      // Already further on (pages keep their order): what lies before it goes.
      if (child.parentNode === this.element)
        while (at !== null && at !== child) {
          const next: ChildNode | null = at.nextSibling;
          at.remove();
          at = next;
        }
      if (child === at) at = at.nextSibling;
      else this.element.insertBefore(child, at);
    }
    while (at) {
      const next: ChildNode | null = at.nextSibling;
      at.remove();
      at = next;
    }
    this.observer.observe(this.top);
    for (const gap of this.gaps.keys()) this.observer.observe(gap);
  }

  /** Runs `change` and scrolls so that the first run the reader saw stays where it was. */
  private keepPlace(change: () => void): void {
    const scroller = this.host.scroller;
    const view = scroller.getBoundingClientRect();
    const anchor = [...scroller.querySelectorAll<HTMLElement>(".run")].find(
      (el) => el.getBoundingClientRect().bottom > view.top,
    );
    const before = anchor?.getBoundingClientRect().top;
    change();
    if (anchor?.isConnected && before !== undefined) scroller.scrollTop += anchor.getBoundingClientRect().top - before;
  }
}
