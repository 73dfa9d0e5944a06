import { joinCommand } from "../../src/core/shell-words.js";
import { isSwitchboardError } from "../../src/client/index.js";
import type { ControlVia, SessionInfo } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";
import { fill, h, icon } from "./dom.js";
import type { IconName } from "./dom.js";
import { clockTime, controlHolder, displayState, errorText, sessionTitle, shortId } from "./format.js";
import { SessionFiles } from "./session-files.js";
import { WorktreeChip } from "./worktree-chip.js";

/** The second click of "Stop" or "Remove" must come within this long of the first. */
export const CONFIRM_WINDOW_MS = 3_000;

const KIND_ICONS: Record<SessionInfo["kind"], IconName> = { terminal: "terminal", agent: "agent", stream: "stream" };

export interface SessionHeaderOptions {
  /** The page's own buttons, shown before "Stop". */
  actions: HTMLElement[];
  /** The store has a fresher copy of the session; called before the header shows it. */
  onUpdate(session: SessionInfo): void;
  /**
   * Who holds control as the page knows it (a terminal page's control bar), so that the header
   * never says otherwise; without it (or before it knows), the store's copy says.
   */
  control?(): { controller: string | null; via: ControlVia | null; here: boolean } | undefined;
}

/**
 * The top of a session page: back to the list, what it is, its state, who watches and who
 * steers, a link to the agent that started it, "Stop" (a two-click terminate) while it runs
 * and "Remove" (a two-click purge of its record and log) once it has ended. It follows the
 * session store, so it stays current while the page is open.
 */
export class SessionHeader {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private session: SessionInfo;
  private readonly titleEl: HTMLElement;
  private readonly detailEl: HTMLElement;
  private readonly badgeEl: HTMLElement;
  /** The link to the agent that started it: on the title line, so a long command line cannot push it out of view. */
  private readonly parentEl: HTMLElement;
  private readonly metaEl: HTMLElement;
  private readonly stopButton: TwoClickButton | null;
  private readonly removeButton: TwoClickButton | null;
  private readonly stopFollowing: () => void;
  /** Set once the session is known to be removed (here, or by someone else). */
  private gone = false;
  private checkingGone = false;
  private readonly control: SessionHeaderOptions["control"];
  private readonly shareButton: HTMLButtonElement | null;
  private readonly worktree: WorktreeChip;

  constructor(ctx: AppContext, session: SessionInfo, options: SessionHeaderOptions) {
    this.ctx = ctx;
    this.session = session;
    this.control = options.control;
    this.titleEl = h("h1", { class: "view-title", dir: "auto" }); // see the list's row title
    this.detailEl = h("p", { class: "view-detail" });
    this.badgeEl = h("span", { class: "badge" });
    this.parentEl = h("span", { class: "parent-slot" });
    this.metaEl = h("div", { class: "view-meta" });
    this.worktree = new WorktreeChip(ctx, session);
    const filesSlot = h("span", { class: "files-slot" });
    this.stopButton = ctx.canSteer
      ? new TwoClickButton({
          label: "Stop",
          icon: "power",
          confirm: "Really stop?",
          busy: "Stopping…",
          title: "Terminate the session",
          test: "stop",
          action: () => this.stop(),
        })
      : null;
    this.removeButton = ctx.canSteer
      ? new TwoClickButton({
          label: "Remove",
          icon: "trash",
          confirm: "Remove for good?",
          busy: "Removing…",
          title: "Delete the session and everything it logged",
          test: "remove",
          action: () => this.remove(),
        })
      : null;
    const openShare = ctx.openShareDialog;
    this.shareButton = openShare
      ? h(
          "button",
          {
            class: "btn btn-small",
            type: "button",
            title: "Make a link that opens this session only",
            "data-test": "share",
            onclick: () => openShare(this.session.id),
          },
          icon("link"),
          h("span", null, "Share"),
        )
      : null;
    this.element = h(
      "header",
      { class: "view-head" },
      h("a", { class: "btn btn-ghost btn-icon back", href: "#/", "aria-label": "All sessions" }, icon("back")),
      h("span", { class: `kind-icon kind-${session.kind}` }, icon(KIND_ICONS[session.kind])),
      h(
        "div",
        { class: "view-heading" },
        h("div", { class: "view-title-line" }, this.titleEl, this.badgeEl, this.parentEl, this.worktree.element),
        this.detailEl,
      ),
      this.metaEl,
      h(
        "div",
        { class: "view-actions" },
        options.actions,
        this.shareButton,
        filesSlot,
        this.stopButton?.element ?? null,
        this.removeButton?.element ?? null,
      ),
    );
    // Files into the working directory: the Upload button, or files dropped on the header.
    if (ctx.canSteer && session.kind !== "stream")
      filesSlot.append(new SessionFiles(ctx, session.id, this.element).element);
    this.update(session);
    this.stopFollowing = ctx.store.onChange(() => {
      const fresh = ctx.store.get(this.session.id);
      if (!fresh) {
        if (ctx.store.loaded && ctx.store.health.ok) void this.checkGone();
        return;
      }
      options.onUpdate(fresh);
      this.update(fresh);
    });
  }

  /** Draws the header again (the page's control changed). */
  refresh(): void {
    this.update(this.session);
  }

  private update(session: SessionInfo): void {
    if (this.gone) return;
    this.session = session;
    this.worktree.update(session);
    fill(this.titleEl, sessionTitle(session));
    this.titleEl.title = `${session.kind} ${session.id}`;
    const badge = displayState(session);
    this.badgeEl.className = `badge state-${badge.state}`;
    this.badgeEl.dataset["state"] = badge.state;
    fill(this.badgeEl, h("span", { class: "dot" }), badge.label);
    const details: (string | HTMLElement)[] = [];
    if (session.kind === "agent") details.push(`agent ${session.agent ?? "?"}`);
    else if (session.command) details.push(h("code", null, joinCommand(session.command)));
    if (session.kind === "terminal")
      details.push(session.pty ? `pty ${session.cols ?? "?"}×${session.rows ?? "?"}` : "pipes");
    if (session.pid !== null && session.state === "running") details.push(`pid ${session.pid}`);
    details.push(`started ${clockTime(session.createdAt)}`);
    details.push(`by ${session.owner}`);
    details.push(`#${shortId(session.id)}`);
    const parent = session.parent !== null ? this.ctx.store.get(session.parent) : undefined;
    fill(
      this.detailEl,
      details.flatMap((d, i) => (i === 0 ? [d] : [" · ", d])),
    );
    fill(
      this.parentEl,
      session.parent !== null
        ? h(
            "a",
            { class: "parent-link", href: `#/s/${encodeURIComponent(session.parent)}`, "data-test": "parent-link" },
            icon("link"),
            `started by ${parent ? sessionTitle(parent) : "its agent"}`,
          )
        : null,
    );
    const shown = this.control?.() ?? { controller: session.controller, via: session.controllerVia ?? null };
    const holder = controlHolder(
      shown.controller,
      this.ctx.me.name,
      shown.via,
      "here" in shown ? shown.here : undefined,
    );
    fill(
      this.metaEl,
      presence(session),
      h(
        "span",
        { class: `meta${shown.controller ? " held" : ""}`, title: holder.title, "data-test": "control-holder" },
        icon(shown.controller ? "lock" : "unlock"),
        holder.label,
      ),
    );
    if (this.stopButton) this.stopButton.element.hidden = session.state !== "running";
    if (this.removeButton) this.removeButton.element.hidden = session.state === "running";
    // Stopped from the keyboard: the focus goes to Remove, which takes Stop's place, rather than
    // to the page's body (where the next Tab starts over at the top).
    if (
      this.stopButton?.actedWithFocus &&
      this.stopButton.element.hidden &&
      this.removeButton &&
      !this.removeButton.element.hidden &&
      (document.activeElement === document.body || document.activeElement === this.stopButton.element)
    )
      this.removeButton.element.focus();
  }

  /**
   * The list no longer has the session: ask for it (a list read that started before it was
   * created lacks it too), and say so when it is really gone.
   */
  private async checkGone(): Promise<void> {
    if (this.gone || this.checkingGone) return;
    this.checkingGone = true;
    try {
      await this.ctx.http.getSession(this.session.id);
    } catch (error) {
      if (isSwitchboardError(error, "SESSION_NOT_FOUND") && !this.gone) {
        this.showGone();
        this.ctx.toast(`${sessionTitle(this.session)} was removed`, "info");
      }
    } finally {
      this.checkingGone = false;
    }
  }

  private showGone(): void {
    this.gone = true;
    this.badgeEl.className = "badge state-removed";
    this.badgeEl.dataset["state"] = "removed";
    fill(this.badgeEl, h("span", { class: "dot" }), "Removed");
    if (this.stopButton) this.stopButton.element.hidden = true;
    if (this.removeButton) this.removeButton.element.hidden = true;
  }

  dispose(): void {
    this.stopFollowing();
    this.stopButton?.dispose();
    this.removeButton?.dispose();
  }

  private async stop(): Promise<void> {
    try {
      const ended = await this.ctx.http.deleteSession(this.session.id);
      this.ctx.store.upsert(ended);
    } catch (error) {
      this.ctx.toast(`Could not stop the session: ${errorText(error)}`, "error");
    }
  }

  private async remove(): Promise<void> {
    const title = sessionTitle(this.session);
    try {
      const removed = await this.ctx.http.removeSession(this.session.id);
      this.showGone();
      for (const s of removed) this.ctx.store.remove(s.id);
      this.ctx.toast(`Removed ${title}`, "info");
      this.ctx.navigate("#/");
    } catch (error) {
      this.ctx.toast(`Could not remove the session: ${errorText(error)}`, "error");
    }
  }
}

/**
 * Who watches now (presence): how many connections, and the names behind them — tokens, devices
 * (`device:NAME`) and share links (`share:NAME`) — as `SessionInfo.watchers` lists them.
 */
function presence(session: SessionInfo): HTMLElement {
  const names = session.watchers.join(", ");
  return h(
    "span",
    {
      class: "meta presence",
      title: names ? `${session.viewers} watching: ${names}` : `${session.viewers} watching`,
      "data-test": "presence",
    },
    icon("eye"),
    `${session.viewers} watching`,
    names ? h("span", { class: "presence-names muted", "data-test": "presence-names" }, names) : null,
  );
}

/** A button that acts on a second click within {@link CONFIRM_WINDOW_MS} of the first. */
class TwoClickButton {
  readonly element: HTMLButtonElement;
  /** The button had the focus when it acted: whoever hides it hands the focus on. */
  actedWithFocus = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly o: {
      label: string;
      icon: IconName;
      confirm: string;
      busy: string;
      title: string;
      test: string;
      action: () => Promise<void>;
    },
  ) {
    this.element = h(
      "button",
      {
        class: "btn btn-small btn-danger-ghost",
        type: "button",
        title: o.title,
        "data-test": o.test,
        onclick: () => void this.click(),
      },
      icon(o.icon),
      h("span", null, o.label),
    );
    // Escape takes an armed button back, as it closes a dialog (it stayed armed until its timeout).
    this.element.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !this.element.classList.contains("confirm") || this.element.disabled) return;
      event.preventDefault();
      event.stopPropagation();
      this.disarm();
    });
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private disarm(): void {
    this.dispose();
    this.element.classList.remove("confirm");
    this.show(this.o.label);
  }

  private show(text: string): void {
    fill(this.element, icon(this.o.icon), h("span", null, text));
  }

  private async click(): Promise<void> {
    const button = this.element;
    if (!button.classList.contains("confirm")) {
      button.classList.add("confirm");
      this.show(this.o.confirm);
      this.timer = setTimeout(() => this.disarm(), CONFIRM_WINDOW_MS);
      return;
    }
    this.dispose();
    this.actedWithFocus = document.activeElement === button;
    button.disabled = true;
    this.show(this.o.busy);
    try {
      await this.o.action();
    } finally {
      button.disabled = false;
      button.classList.remove("confirm");
      this.show(this.o.label);
      this.actedWithFocus = false;
    }
  }
}
