import { isSwitchboardError, reduceAgentState } from "../../src/client/index.js";
import type { AgentState, SessionEvent, SessionInfo } from "../../src/protocol/index.js";
import type { RunView } from "./agent-model.js";
import { AgentChoices } from "./agent-choices.js";
import { AgentModel, answerText } from "./agent-model.js";
import type { AppContext, View } from "./context.js";
import { h, icon, morph } from "./dom.js";
import { errorText, followErrorText, sessionTitle } from "./format.js";
import { PolicyEditor } from "./policy-editor.js";
import { PromptComposer } from "./prompt-composer.js";
import { ResumeBar } from "./resume-bar.js";
import { renderRun } from "./run-render.js";
import { SessionChanges } from "./changes-panel.js";
import type { ChangesState } from "./changes-panel.js";
import type { RunPage } from "./run-render.js";
import { SessionFeed } from "./session-feed.js";
import type { SessionFeedHandlers } from "./session-feed.js";
import { SessionHeader } from "./session-header.js";
import { TAIL_FIRST_BYTES, TAIL_FIRST_EVENTS, TAIL_MIN_EVENTS, TAIL_TURNS, TurnPages } from "./turn-pages.js";
import { usageMeter } from "./usage-meter.js";

/** The conversation sticks to the bottom while the reader is within this many pixels of it. */
export const STICK_TO_BOTTOM_PX = 120;
/** The search highlight's name (`::highlight(search-hit)` in styles.css). */
const HIT_HIGHLIGHT = "search-hit";

/** A search hit the page opens at (`#/s/ID?seq=N&find=TEXT`, log-hits.ts). */
export interface AgentHit {
  seq: number;
  find?: string;
}

/**
 * An agent session: the conversation rebuilt from the log (prompts, streamed answers,
 * thoughts, tool calls with their terminals, the plan, permission requests), a prompt box
 * that queues behind the active run, and abort. Runs are re-rendered at most once a frame.
 */
export class AgentView implements View {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private session: SessionInfo;
  private readonly model = new AgentModel();
  private readonly header: SessionHeader;
  /** The mode and model pickers in the header. */
  private readonly choices: AgentChoices;
  /** What the agent said of itself: the page's first copy, then each `agent.*` event taken in. */
  private agentState: AgentState | undefined;
  /** The header's usage meter (usage-meter.ts), empty until the agent reports its usage. */
  private readonly usageSlot: HTMLElement;
  /**
   * Replaced when a lost session is resumed: the old one ended with the session's `lost`.
   * Undefined while a long conversation looks up where its last turns start.
   */
  private feed: SessionFeed | undefined;
  /** A long conversation's earlier turns, loaded a page at a time (turn-pages.ts); none for a short one. */
  private readonly pages: TurnPages | undefined;
  /** The search hit the page was opened at, and the run that holds it once known. */
  private readonly hit: AgentHit | undefined;
  private hitRunId: string | undefined;
  /** The seq of the last event applied: a new feed starts after it. */
  private lastSeq = 0;
  private readonly resumeBar: ResumeBar;
  private readonly page: RunPage;
  private readonly scroller: HTMLElement;
  /** "New messages ↓", shown while the reader is scrolled up and more comes in below. */
  private readonly newMessages: HTMLButtonElement;
  private readonly runsEl: HTMLElement;
  private readonly intro: HTMLElement;
  /** The conversation's title as the agent named it (`agentState.title`), above the runs. */
  private readonly agentTitle = h("p", { class: "agent-title", "data-test": "agent-title", hidden: true });
  private readonly composer: PromptComposer;
  private readonly abortButton: HTMLButtonElement;
  private readonly abortAllButton: HTMLButtonElement;
  private readonly runEls = new Map<string, HTMLElement>();
  /** Sections (thoughts, tool details) the user opened or closed, by `data-section`: see {@link RunPage}. */
  private readonly sections = new Map<string, boolean>();
  private readonly dirty = new Set<string>();
  private frame: number | undefined;
  private ended = false;
  /** The older turns load by themselves once the last ones are rendered (not while they come in over a slow link). */
  private pagesWaiting = false;
  /** Whether {@link hitRunId} is the run of the hit's own event (not the last before it). */
  private hitExact = false;
  private restored = false;
  private disposed = false;
  private connected = true;
  private readonly offState: () => void;
  /** Each run's change list as read (its Changes panel), by run id. */
  private readonly changes = new Map<string, ChangesState>();
  private readonly sessionChanges: SessionChanges;

  constructor(ctx: AppContext, session: SessionInfo, hit?: AgentHit) {
    this.ctx = ctx;
    this.session = session;
    this.hit = hit;
    this.page = {
      app: ctx,
      sessionId: session.id,
      queuePosition: (run) => this.model.queued.indexOf(run) + 1,
      sections: this.sections,
      changes: (runId) => this.changes.get(runId),
      loadChanges: (runId, files) => void this.loadChanges(runId, files),
    };
    this.sessionChanges = new SessionChanges(ctx, session.id);
    this.abortButton = h(
      "button",
      {
        class: "btn btn-small btn-danger",
        type: "button",
        "data-test": "abort",
        title: "Abort the active run",
        hidden: true,
        onclick: () => void this.abort(false),
      },
      icon("stop"),
      h("span", null, "Abort"),
    );
    this.abortAllButton = h(
      "button",
      {
        class: "btn btn-small btn-ghost",
        type: "button",
        hidden: true,
        title: "Abort the active run and every queued prompt",
        onclick: () => void this.abort(true),
      },
      "Abort all",
    );
    this.choices = new AgentChoices(ctx, session);
    this.agentState = session.agentState;
    this.usageSlot = h("span", { class: "usage-slot" });
    this.header = new SessionHeader(ctx, session, {
      actions: [
        this.usageSlot,
        this.choices.element,
        new PolicyEditor(ctx, session.id).element,
        this.sessionChanges.button,
        ...(ctx.canSteer ? [this.abortAllButton, this.abortButton] : []),
      ],
      onUpdate: (fresh) => {
        this.session = fresh;
        this.composer.setCapabilities(fresh.promptCapabilities);
        this.resumeBar.update(fresh);
        // Resumed (here or by someone else): follow what comes after the `lost` event.
        if (this.ended && fresh.state === "running") this.followAgain();
      },
    });
    this.resumeBar = new ResumeBar(ctx, session.id);
    this.resumeBar.update(session);
    // A log (a polite live region): a screen reader reads out what comes in, each answer once it
    // is complete (a run is aria-busy while it streams), not every chunk of it.
    this.runsEl = h("div", { class: "runs", role: "log", "aria-label": "Conversation" });
    const inner = h("div", { class: "conv-inner" });
    // A click on a section's summary toggles it (the default action, after this listener).
    inner.addEventListener("click", (event) => {
      const details = (event.target as Element).closest("summary")?.parentElement;
      const key = details?.dataset["section"];
      if (details instanceof HTMLDetailsElement && key !== undefined) {
        this.sections.set(key, !details.open);
        // A run's Changes panel reads its list when opened.
        if (key.startsWith("changes:")) {
          this.dirty.add(key.slice("changes:".length));
          this.schedule();
        }
      }
    });
    this.intro = h(
      "div",
      { class: "intro" },
      h("div", { class: "intro-icon" }, icon("agent", "icon big")),
      h("h3", null, `Talk to ${sessionTitle(session)}`),
      h(
        "p",
        { class: "muted" },
        "Answers stream in as they are written; everyone watching this session sees the same conversation.",
      ),
    );
    this.scroller = h("div", { class: "conversation" }, inner);
    // A long log opens on its last turns, the earlier ones load as the reader scrolls up.
    this.pages =
      session.head - session.first + 1 > TAIL_MIN_EVENTS
        ? new TurnPages(ctx, session.id, {
            scroller: this.scroller,
            render: (run) => {
              const el = this.renderRunEl(run);
              this.runEls.set(run.runId, el);
              return el;
            },
            forget: (runIds) => {
              for (const id of runIds) this.runEls.delete(id);
            },
            applied: (event, runs) => this.noteHit(event, runs),
          })
        : undefined;
    inner.append(
      this.agentTitle,
      this.sessionChanges.element,
      this.intro,
      ...(this.pages ? [this.pages.element] : []),
      this.runsEl,
    );
    // A reader who scrolls back down to the bottom needs the button no more.
    this.scroller.addEventListener(
      "scroll",
      () => {
        if (this.atBottom()) this.newMessages.hidden = true;
      },
      { passive: true },
    );
    this.newMessages = h(
      "button",
      {
        class: "btn btn-small btn-primary new-messages",
        type: "button",
        hidden: true,
        "data-test": "new-messages",
        onclick: () => {
          // The button hides: a keyboard user goes on in the prompt box under the newest message.
          if (this.newMessages.matches(":focus-visible")) this.composer.focus();
          this.scrollToBottom();
        },
      },
      "New messages",
      h("span", { "aria-hidden": "true" }, "↓"),
    );
    this.composer = new PromptComposer(ctx, {
      sessionId: session.id,
      // At the bottom, the conversation sticks there while the prompt's run comes in (see flush).
      onSend: () => this.scrollToBottom(),
    });
    this.composer.setCapabilities(session.promptCapabilities);
    this.showAgentState();
    this.element = h(
      "section",
      { class: "view agent-view", "data-session": session.id },
      this.header.element,
      h("div", { class: "conversation-frame" }, this.scroller, this.newMessages),
      this.resumeBar.element,
      this.composer.element,
    );
    // A control that loses the focus by being disabled or hidden (an answered permission's
    // button, Abort once pressed) hands it on; a click elsewhere leaves the focus where it went.
    this.element.addEventListener("focusout", (event) => {
      const target = event.target;
      if (!(target instanceof HTMLElement) || (event as FocusEvent).relatedTarget !== null) return;
      requestAnimationFrame(() => {
        const unusable = gone(target) || (target instanceof HTMLButtonElement && target.disabled);
        if (!this.disposed && unusable && document.activeElement === document.body) this.refocus();
      });
    });

    // While the gateway cannot be reached, Send and Abort wait rather than time out after 10 s:
    // whenever the connection pill says Reconnecting, Disconnected or Gateway unreachable (the
    // list poll fails, while the WebSocket may still look open: a stalled link).
    const reachable = (): boolean => {
      const state = ctx.client.state;
      if (state === "reconnecting" || state === "closed") return false;
      return (state !== "open" && state !== "idle") || ctx.store.health.ok;
    };
    const follow = (): void => {
      const connected = reachable();
      if (connected === this.connected) return;
      this.connected = connected;
      this.composer.setConnected(connected);
      this.renderChrome();
    };
    this.connected = reachable();
    this.composer.setConnected(this.connected);
    const offState = ctx.client.on("state", follow);
    const offStore = ctx.store.onChange(follow);
    this.offState = () => {
      offState();
      offStore();
    };

    if (this.pages) void this.openAtTail(this.pages);
    else this.feed = this.follow();
    this.renderChrome();
  }

  /**
   * A log that is not short: where its last turns start. A long one: the prompts of the last turns
   * and of the queue that lie before them first, then a subscription from where the last turns
   * start (the older ones load on scrolling up). A shorter one: replayed whole.
   */
  private async openAtTail(pages: TurnPages): Promise<void> {
    let from: number | undefined;
    try {
      const tail = await this.ctx.client.http.turns(this.session.id, { limit: TAIL_TURNS });
      const long = tail.head - tail.first + 1 > TAIL_FIRST_EVENTS || tail.bytes > TAIL_FIRST_BYTES;
      from = long ? tail.turns[0]?.start : undefined;
      if (this.disposed) return;
      if (from !== undefined) {
        this.scroller.classList.add("paged");
        const start = from;
        const before = [...tail.turns.map((t) => t.queued), ...tail.waiting]
          .filter((e) => e !== null && e.seq < start)
          .sort((a, b) => a!.seq - b!.seq);
        for (const event of before) this.applyToRuns(event!);
        this.lastSeq = from - 1;
      }
    } catch (error) {
      // Replayed whole, as a short log is: slower, and nothing is missing.
      this.ctx.toast(`Cannot find the last turns (${errorText(error)}): reading the whole conversation`, "info");
    }
    if (this.disposed) return;
    if (from !== undefined) {
      pages.live(from);
      this.pagesWaiting = true;
    }
    this.feed = this.follow();
  }

  /** A subscription from the last event the page has (a subscription ends at `lost`: a resumed session needs a new one). */
  private follow(): SessionFeed {
    const ctx = this.ctx;
    const handlers: SessionFeedHandlers = {
      onEvent: (event) => {
        this.lastSeq = event.seq;
        this.onEvent(event);
      },
      onReset: (info) =>
        ctx.toast(`Retention dropped ${info.first - info.lastSeq - 1} old events of this conversation`, "info"),
      onError: (error) => ctx.toast(followErrorText(error), "error"),
      onReady: () => this.checkRestored(),
    };
    return new SessionFeed(ctx, this.session.id, handlers, false, this.lastSeq);
  }

  /** The session runs again after its `lost` event (resumed): a new subscription, past what the page has. */
  private followAgain(): void {
    this.ended = false;
    this.feed?.dispose();
    this.feed = this.follow();
    this.renderChrome();
  }

  mounted(): void {
    this.composer.focusForTyping();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.frame !== undefined) cancelAnimationFrame(this.frame);
    this.offState();
    this.feed?.dispose();
    this.pages?.dispose();
    this.header.dispose();
  }

  debug(): unknown {
    return {
      kind: "agent",
      session: this.session.id,
      restored: this.restored,
      lastSeq: this.feed?.lastSeq ?? 0,
      runs: this.model.runs.map((r) => ({ runId: r.runId, status: r.status, prompt: r.prompt, text: answerText(r) })),
    };
  }

  /* ------------------------------------------------------------------ events */

  private onEvent(event: SessionEvent): void {
    if (event.type === "exit" || event.type === "lost") {
      this.ended = true;
      this.session = { ...this.session, state: event.type === "exit" ? "exited" : "lost" };
      this.resumeBar.update(this.session);
    }
    if (event.type === "resumed") this.session = { ...this.session, state: "running", endedAt: null };
    if (event.type === "run.queued") this.composer.arrived(event.text, event.by.name);
    this.choices.apply(event);
    // What the page's first state already took in is not applied again.
    if (this.agentState === undefined || event.seq > this.agentState.seq) {
      const next = reduceAgentState(this.agentState, event);
      if (next !== this.agentState) {
        this.agentState = next;
        this.showAgentState();
      }
    }
    this.applyToRuns(event);
    // A run leaving the queue moves everyone behind it up one place.
    if (event.type === "run.started" || event.type === "chat.aborted")
      for (const queued of this.model.queued) this.dirty.add(queued.runId);
    this.schedule();
    this.checkRestored();
  }

  /** Applies `event` to the live runs and marks those it touched to be rendered. */
  private applyToRuns(event: SessionEvent): void {
    const runs = this.model.apply(event);
    for (const run of runs) this.dirty.add(run.runId);
    this.noteHit(event, runs);
  }

  /** The run of the search hit: the one its event touched, else the last touched before it. */
  private noteHit(event: SessionEvent, runs: readonly RunView[]): void {
    if (this.hit === undefined || this.hitExact || event.seq > this.hit.seq || runs.length === 0) return;
    this.hitRunId = runs[0]!.runId;
    this.hitExact = event.seq === this.hit.seq;
  }

  /** Reads run `runId`'s change list for its Changes panel, then renders the run again. */
  private async loadChanges(runId: string, files: number): Promise<void> {
    this.changes.set(runId, { kind: "loading", files });
    let state: ChangesState;
    try {
      const answer = await this.ctx.client.http.changes(this.session.id, { run: runId });
      state = { kind: "loaded", files, answer };
    } catch (error) {
      state = { kind: "failed", files, message: errorText(error) };
    }
    this.changes.set(runId, state);
    this.dirty.add(runId);
    this.schedule();
  }

  private checkRestored(): void {
    if (this.restored || !this.feed?.replayed) return;
    this.restored = true;
    this.element.dataset["restored"] = "true";
    // The frame that renders what the replay brought starts the pages (see flush).
    this.schedule();
    if (this.hit !== undefined) void this.showHit(this.hit);
  }

  /** Loads the turn of the search hit (when it is not among the last ones), scrolls to it and marks it and its words. */
  private async showHit(hit: AgentHit): Promise<void> {
    try {
      await this.pages?.openAround(hit.seq);
    } catch (error) {
      this.ctx.toast(`Cannot open the search hit: ${errorText(error)}`, "error");
      return;
    }
    if (this.disposed || this.hitRunId === undefined) return;
    // After the frame that renders what the feed brought.
    requestAnimationFrame(() => {
      const el = this.hitRunId === undefined ? undefined : this.runEls.get(this.hitRunId);
      if (this.disposed || el === undefined) return;
      el.dataset["hit"] = "true";
      el.scrollIntoView({ block: "center" });
      this.newMessages.hidden = true;
      if (hit.find !== undefined) highlightWords(el, hit.find);
    });
  }

  private schedule(): void {
    if (this.frame !== undefined || this.disposed) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = undefined;
      this.flush();
    });
  }

  private flush(): void {
    const stick = this.atBottom();
    const height = this.scroller.scrollHeight;
    const focused = document.activeElement;
    const hadFocus = focused instanceof HTMLElement && focused !== document.body && this.element.contains(focused);
    for (const runId of this.dirty) {
      const run = this.model.get(runId) ?? this.pages?.run(runId);
      if (!run) continue;
      const next = this.renderRunEl(run);
      const current = this.runEls.get(runId);
      if (current) {
        // Only what changed: a section the user opened and the focus stay put while the answer streams.
        morph(current, next);
      } else {
        this.runsEl.appendChild(next);
        this.runEls.set(runId, next);
      }
    }
    this.dirty.clear();
    this.renderChrome();
    if (hadFocus && (gone(focused) || document.activeElement === document.body)) this.refocus();
    if (stick) this.scrollToBottom();
    // Scrolled up to read: say that more came in below rather than pull the reader away from it.
    else if (this.scroller.scrollHeight > height) this.newMessages.hidden = false;
    if (this.restored && this.pagesWaiting) {
      this.pagesWaiting = false;
      this.pages?.enable();
    }
  }

  /** A run's element, marked when it holds the search hit the page was opened at. */
  private renderRunEl(run: RunView): HTMLElement {
    const el = renderRun(run, this.page);
    if (run.runId === this.hitRunId && this.restored) el.dataset["hit"] = "true";
    return el;
  }

  /**
   * The focused control went away (a permission answered from the keyboard, Abort pressed and
   * hidden): the focus goes to what comes next — the next open request's first option, else the
   * prompt box — not to the page's body (exploratory test).
   */
  private refocus(): void {
    const option = this.runsEl.querySelector<HTMLButtonElement>(
      ".permission.open .perm-options button:not([disabled])",
    );
    if (option) option.focus();
    // (Not on a phone: focusing the box would pop its keyboard up.)
    else this.composer.focusForTyping();
  }

  /** The reader is at the bottom (within {@link STICK_TO_BOTTOM_PX}): the conversation follows what comes in. */
  private atBottom(): boolean {
    const { scrollHeight, scrollTop, clientHeight } = this.scroller;
    return scrollHeight - scrollTop - clientHeight < STICK_TO_BOTTOM_PX;
  }

  /** Down to the newest message, which the button pointed at. */
  private scrollToBottom(): void {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.newMessages.hidden = true;
  }

  /** The agent's commands in the prompt box's menu, its usage in the header. */
  private showAgentState(): void {
    this.composer.setCommands(this.agentState?.commands ?? []);
    const title = this.agentState?.title ?? "";
    this.agentTitle.textContent = title;
    this.agentTitle.hidden = title === "";
    const usage = this.agentState?.usage;
    this.usageSlot.replaceChildren(...(usage ? [usageMeter(usage, { compact: false })] : []));
  }

  /** The parts outside the runs: intro, queue line, abort buttons, composer state. */
  private renderChrome(): void {
    this.intro.hidden = this.model.runs.length > 0 || (this.pages?.runCount ?? 0) > 0;
    const active = this.model.active;
    const queued = this.model.queued;
    const running = !this.ended && this.session.state === "running";
    this.abortButton.hidden = !active || !running;
    this.abortAllButton.hidden = queued.length === 0 || !running;
    this.abortButton.disabled = !this.connected;
    this.abortAllButton.disabled = !this.connected;
    this.composer.update({ running, active: active !== undefined, queued: queued.length });
    const waiting = this.model.openPermissions.length > 0;
    this.element.dataset["activity"] = waiting ? "waiting" : active ? "working" : "idle";
  }

  /* ------------------------------------------------------------------ actions */

  private async abort(all: boolean): Promise<void> {
    try {
      await this.ctx.client.abort(this.session.id, all ? { all: true } : {});
    } catch (error) {
      if (isSwitchboardError(error, "RUN_NOT_ACTIVE")) return; // it ended meanwhile
      this.ctx.toast(`Abort failed: ${errorText(error)}`, "error");
    }
  }
}

/** Marks each place `words` occur (any case) in `el`'s text with the search highlight (CSS Custom Highlight API). */
function highlightWords(el: HTMLElement, words: string): void {
  if (typeof Highlight === "undefined" || words === "") return;
  const wanted = words.toLowerCase();
  const ranges: Range[] = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
    const text = (node.nodeValue ?? "").toLowerCase();
    for (let at = text.indexOf(wanted); at >= 0; at = text.indexOf(wanted, at + wanted.length)) {
      const range = document.createRange();
      range.setStart(node, at);
      range.setEnd(node, at + wanted.length);
      ranges.push(range);
    }
  }
  CSS.highlights.set(HIT_HIGHLIGHT, new Highlight(...ranges));
}

/** Whether `el` can no longer hold the focus: removed from the page, or hidden. */
function gone(el: HTMLElement): boolean {
  return !el.isConnected || el.closest("[hidden]") !== null;
}
