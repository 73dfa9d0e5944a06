import type { SessionInfo } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";
import { fill, h, icon } from "./dom.js";
import type { IconName } from "./dom.js";
import { clockTime, displayState, errorText, sessionTitle, shortId } from "./format.js";

/** The second click of "Stop" must come within this long of the first. */
export const CONFIRM_WINDOW_MS = 3_000;

const KIND_ICONS: Record<SessionInfo["kind"], IconName> = { terminal: "terminal", agent: "agent", stream: "stream" };

export interface SessionHeaderOptions {
  /** The page's own buttons, shown before "Stop". */
  actions: HTMLElement[];
  /** The store has a fresher copy of the session; called before the header shows it. */
  onUpdate(session: SessionInfo): void;
}

/**
 * The top of a session page: back to the list, what it is, its state, who watches and who
 * steers, a link to the agent that started it, and "Stop" (a two-click terminate). It follows
 * the session store, so it stays current while the page is open.
 */
export class SessionHeader {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private session: SessionInfo;
  private readonly titleEl: HTMLElement;
  private readonly detailEl: HTMLElement;
  private readonly badgeEl: HTMLElement;
  private readonly metaEl: HTMLElement;
  private readonly stopButton: HTMLButtonElement | null;
  private confirmTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly stopFollowing: () => void;

  constructor(ctx: AppContext, session: SessionInfo, options: SessionHeaderOptions) {
    this.ctx = ctx;
    this.session = session;
    this.titleEl = h("h1", { class: "view-title" });
    this.detailEl = h("p", { class: "view-detail" });
    this.badgeEl = h("span", { class: "badge" });
    this.metaEl = h("div", { class: "view-meta" });
    this.stopButton = ctx.canSteer
      ? h(
          "button",
          {
            class: "btn btn-small btn-danger-ghost",
            type: "button",
            title: "Terminate the session",
            onclick: () => void this.stop(),
          },
          icon("trash"),
          h("span", null, "Stop"),
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
        h("div", { class: "view-title-line" }, this.titleEl, this.badgeEl),
        this.detailEl,
      ),
      this.metaEl,
      h("div", { class: "view-actions" }, options.actions, this.stopButton),
    );
    this.update(session);
    this.stopFollowing = ctx.store.onChange(() => {
      const fresh = ctx.store.get(this.session.id);
      if (!fresh) return;
      options.onUpdate(fresh);
      this.update(fresh);
    });
  }

  private update(session: SessionInfo): void {
    this.session = session;
    fill(this.titleEl, sessionTitle(session));
    this.titleEl.title = `${session.kind} ${session.id}`;
    const badge = displayState(session);
    this.badgeEl.className = `badge state-${badge.state}`;
    this.badgeEl.dataset["state"] = badge.state;
    fill(this.badgeEl, h("span", { class: "dot" }), badge.label);
    const details: (string | HTMLElement)[] = [];
    if (session.kind === "agent") details.push(`agent ${session.agent ?? "?"}`);
    else if (session.command) details.push(h("code", null, session.command.join(" ")));
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
      session.parent !== null
        ? h(
            "a",
            { class: "parent-link", href: `#/s/${encodeURIComponent(session.parent)}`, "data-test": "parent-link" },
            icon("link"),
            `started by ${parent ? sessionTitle(parent) : "its agent"}`,
          )
        : null,
    );
    fill(
      this.metaEl,
      h("span", { class: "meta", title: `${session.viewers} watching` }, icon("eye"), String(session.viewers)),
      h(
        "span",
        {
          class: `meta${session.controller ? " held" : ""}`,
          title: session.controller ? `${session.controller} is in control` : "Nobody is in control",
        },
        icon(session.controller ? "lock" : "unlock"),
        session.controller ?? "free",
      ),
    );
    if (this.stopButton) this.stopButton.hidden = session.state !== "running";
  }

  dispose(): void {
    this.stopFollowing();
    if (this.confirmTimer !== undefined) clearTimeout(this.confirmTimer);
  }

  private async stop(): Promise<void> {
    const button = this.stopButton;
    if (!button) return;
    if (!button.classList.contains("confirm")) {
      button.classList.add("confirm");
      fill(button, icon("trash"), h("span", null, "Really stop?"));
      this.confirmTimer = setTimeout(() => {
        button.classList.remove("confirm");
        fill(button, icon("trash"), h("span", null, "Stop"));
      }, CONFIRM_WINDOW_MS);
      return;
    }
    if (this.confirmTimer !== undefined) clearTimeout(this.confirmTimer);
    button.disabled = true;
    fill(button, icon("trash"), h("span", null, "Stopping…"));
    try {
      const ended = await this.ctx.http.deleteSession(this.session.id);
      this.ctx.store.upsert(ended);
    } catch (error) {
      this.ctx.toast(`Could not stop the session: ${errorText(error)}`, "error");
    } finally {
      button.disabled = false;
      button.classList.remove("confirm");
      fill(button, icon("trash"), h("span", null, "Stop"));
    }
  }
}
