import { joinCommand } from "../../src/core/shell-words.js";
import { HttpClient, SwitchboardClient, isSwitchboardError } from "../../src/client/index.js";
import {
  CREDENTIAL_REMOVED_MESSAGE,
  DEVICE_IDENTITY_PREFIX,
  DEVICE_REVOKED_MESSAGE,
  SHARE_EXPIRED_MESSAGE,
  SHARE_REVOKED_MESSAGE,
} from "../../src/protocol/index.js";
import type { SessionInfo } from "../../src/protocol/index.js";
import { AgentView } from "./agent-view.js";
import { PushSwitch } from "./push-switch.js";
import { Alerts } from "./alerts.js";
import { SeenSignal } from "./seen-signal.js";
import { ConnectionPill } from "./connection-pill.js";
import type { AppContext, Me, View } from "./context.js";
import { CreateDialog } from "./create-dialog.js";
import { fill, h, icon } from "./dom.js";
import { errorText } from "./format.js";
import { gatewayTarget, logout } from "./login.js";
import { PairDialog } from "./pair-dialog.js";
import { PluginsView } from "./plugins-view.js";
import { pageRequestTimeoutMs } from "./request-timeout.js";
import { parseRoute } from "./route.js";
import { SessionList } from "./session-list.js";
import { SessionStore } from "./session-store.js";
import { ShareDialog } from "./share-dialog.js";
import { TerminalView } from "./terminal-view.js";
import { Shortcuts } from "./shortcuts.js";
import { Toasts } from "./toasts.js";
import { tabClientKey } from "./tab-memory.js";

type RoutedView = View & { mounted?(): void };

/**
 * The signed-in UI: top bar (brand, connection state, who you are), the sessions list, and
 * the page of the session in the URL (`#/s/<id>`). One SDK client (one WebSocket) serves
 * every view; the list is polled over HTTP with the same cookie.
 */
export class App {
  readonly element: HTMLElement;
  readonly ctx: AppContext;
  private readonly client: SwitchboardClient;
  private readonly store: SessionStore;
  private readonly pill: ConnectionPill;
  private readonly toasts = new Toasts();
  private readonly alerts: Alerts;
  private readonly seen: SeenSignal;
  private readonly dialog: CreateDialog;
  /** Admins only: pairing codes and the device list are theirs. */
  private readonly pairDialog: PairDialog | null;
  /** Whoever may share a session (not a viewer, not a share link): "Share" on its page. */
  private readonly shareDialog: ShareDialog | null;
  private readonly shortcuts: Shortcuts;
  private readonly sidebar: HTMLElement;
  private readonly main: HTMLElement;
  private readonly sideList: SessionList;
  private homeList: SessionList | null = null;
  private view: RoutedView | null = null;
  private routeToken = 0;
  private readonly onHash = (): void => void this.route();
  private closed = false;

  constructor(
    me: Me,
    private readonly onSignedOut: (reason?: string) => void,
  ) {
    const target = gatewayTarget();
    const http = new HttpClient(target);
    // The tab's key keeps its control over a reload (tab-memory.ts).
    this.client = new SwitchboardClient({
      ...target,
      clientKey: tabClientKey(),
      requestTimeoutMs: pageRequestTimeoutMs(),
    });
    this.store = new SessionStore(http, (error) => this.signedOut(signedOutText(me, error)));
    this.dialog = new CreateDialog({ http, store: this.store, navigate: (hash) => this.navigate(hash) });
    const steers = me.share !== undefined ? me.share.allowControl : me.role !== "viewer";
    this.shareDialog =
      steers && me.share === undefined ? new ShareDialog(http, (m, kind) => this.toasts.show(m, kind)) : null;
    this.ctx = {
      client: this.client,
      http,
      store: this.store,
      me,
      // A share link that allows control may ask for it, and steers only while it holds it.
      canSteer: steers,
      toast: (message, kind) => this.toasts.show(message, kind),
      navigate: (hash) => this.navigate(hash),
      openCreateDialog: (kind) => this.dialog.open(kind),
      openShareDialog: this.shareDialog ? (session) => this.shareDialog?.open(session) : null,
    };
    // While the page cannot hear from the gateway, the states it shows are the last it heard:
    // they are dimmed (styles.css, .app.stale) so that nobody takes them for live.
    this.pill = new ConnectionPill(this.client, this.store, (stale) => {
      (this.element as HTMLElement | undefined)?.classList.toggle("stale", stale);
    });
    // The list poll got through while the WebSocket waits out its backoff (up to 10 s after a
    // gateway restart): the gateway is back, so reconnect now (exploratory test).
    this.store.onChange(() => {
      if (this.store.health.ok && this.client.state === "reconnecting") this.client.reconnectNow();
    });
    this.client.on("state", (change) => {
      if (change.state === "closed" && isSwitchboardError(change.error, "UNAUTHORIZED"))
        this.signedOut(signedOutText(me, change.error));
    });
    this.alerts = new Alerts({
      store: this.store,
      me: me.name,
      openSession: () => {
        const route = parseRoute(location.hash);
        return route.name === "session" ? route.id : null;
      },
      navigate: (hash) => this.navigate(hash),
      toast: (message, kind) => this.toasts.show(message, kind),
      push: PushSwitch.supported ? new PushSwitch(http) : null,
    });
    this.seen = new SeenSignal({
      store: this.store,
      http,
      // "Seen" is the owner's: a share link does not clear it for them.
      canSteer: this.ctx.canSteer && me.share === undefined,
      openSession: () => {
        const route = parseRoute(location.hash);
        return route.name === "session" ? route.id : null;
      },
    });
    this.pairDialog = me.role === "admin" ? new PairDialog(http, (m, kind) => this.toasts.show(m, kind)) : null;
    this.shortcuts = new Shortcuts({
      search: () => this.focusSearch(),
      newSession: this.ctx.canSteer && me.share === undefined ? () => this.dialog.open() : undefined,
      sessions: () => this.navigate("#/"),
    });
    this.sideList = new SessionList(this.ctx, "compact");
    this.sidebar = h("aside", { class: "sidebar" }, this.sideList.element);
    this.main = h("main", { class: "main" });
    this.element = h(
      "div",
      { class: `app route-home${me.share !== undefined ? " share-mode" : ""}` },
      h(
        "header",
        { class: "topbar" },
        h(
          "a",
          { class: "brand", href: "#/" },
          h("span", { class: "brand-mark" }, icon("terminal")),
          h("span", { class: "brand-name" }, "Switchboard"),
        ),
        this.pill.element,
        me.share !== undefined ? shareBanner(me.share) : null,
        h("div", { class: "spacer" }),
        this.alerts.element,
        h(
          "a",
          {
            class: "btn btn-ghost btn-small nav-plugins",
            href: "#/plugins",
            title: "Plugins",
            "data-test": "nav-plugins",
          },
          icon("tool"),
          h("span", { class: "nav-label" }, "Plugins"),
        ),
        this.pairDialog &&
          h(
            "button",
            {
              class: "btn btn-ghost btn-small nav-pair",
              type: "button",
              title: "Pair a device",
              "data-test": "nav-pair",
              onclick: () => this.pairDialog?.open(),
            },
            icon("link"),
            h("span", { class: "nav-label" }, "Pair a device"),
          ),
        h(
          "span",
          { class: "who", title: `Signed in as ${me.name} (${me.role})`, "data-test": "whoami" },
          h("span", { class: "avatar-small" }, me.name.slice(0, 1).toUpperCase()),
          h("span", { class: "who-name" }, me.name),
          h("span", { class: `role role-${me.role}` }, me.role),
        ),
        h(
          "button",
          {
            class: "btn btn-ghost btn-icon",
            type: "button",
            title: "Sign out",
            "aria-label": "Sign out",
            onclick: () => void this.logout(),
          },
          icon("logout"),
        ),
      ),
      h("div", { class: "layout" }, this.sidebar, this.main),
      this.dialog.element,
      this.pairDialog?.element,
      this.shareDialog?.element,
      this.shortcuts.help,
      this.toasts.element,
    );
  }

  start(): void {
    this.store.start();
    window.addEventListener("hashchange", this.onHash);
    exposeDebug(this);
    void this.route();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    window.removeEventListener("hashchange", this.onHash);
    this.view?.dispose();
    this.view = null;
    this.homeList?.dispose();
    this.sideList.dispose();
    this.alerts.dispose();
    this.seen.dispose();
    this.shortcuts.dispose();
    this.pill.dispose();
    this.store.stop();
    this.client.close();
  }

  get connectionHistory(): readonly string[] {
    return this.pill.history;
  }

  get currentView(): RoutedView | null {
    return this.view;
  }

  /** `/`: the search box in sight (the list's, or the sidebar's), else the sessions page's once it shows. */
  private focusSearch(frames = SEARCH_FOCUS_FRAMES): void {
    const box = [...document.querySelectorAll<HTMLInputElement>(".list-search")].find((b) => b.offsetParent !== null);
    if (box) return box.focus();
    if (frames === SEARCH_FOCUS_FRAMES) this.navigate("#/");
    if (frames > 0) requestAnimationFrame(() => this.focusSearch(frames - 1));
  }

  navigate(hash: string): void {
    if (location.hash === hash) void this.route();
    else location.hash = hash;
  }

  private async route(): Promise<void> {
    const route = parseRoute(location.hash);
    // A share link's page shows its one session, whatever the address says.
    const shared = this.ctx.me.share?.session;
    if (shared !== undefined && (route.name !== "session" || route.id !== shared)) {
      this.navigate(`#/s/${encodeURIComponent(shared)}`);
      return;
    }
    const token = ++this.routeToken;
    this.view?.dispose();
    this.view = null;
    if (route.name === "plugins") {
      this.leaveHome();
      this.element.classList.replace("route-session", "route-home");
      this.sideList.select(null);
      const view = new PluginsView(this.ctx);
      this.view = view;
      fill(this.main, view.element);
      this.alerts.title = "Plugins · Switchboard";
      return;
    }
    if (route.name === "home") {
      // The list page hides the sidebar, and its search box with it: a search being typed there
      // (`/` pressed right after `g s`, before the page turned) goes on in the list's box, words and all.
      const typing = this.sideList.searching;
      this.element.classList.replace("route-session", "route-home");
      // The filter last chosen, on this page or in the sidebar: one choice for both lists.
      this.homeList ??= new SessionList(this.ctx, "full", this.sideList.filter, this.sideList.query);
      fill(this.main, this.homeList.element);
      if (typing) this.homeList.focusSearch();
      this.sideList.select(null);
      this.alerts.title = "Switchboard";
      return;
    }
    this.leaveHome();
    this.element.classList.replace("route-home", "route-session");
    this.sideList.select(route.id);
    fill(this.main, h("div", { class: "placeholder muted" }, h("span", { class: "spinner" }), "Opening session…"));
    let session: SessionInfo;
    try {
      session = await this.ctx.http.getSession(route.id);
    } catch (error) {
      if (token !== this.routeToken) return;
      const notFound = isSwitchboardError(error, "SESSION_NOT_FOUND");
      fill(
        this.main,
        h(
          "div",
          { class: "placeholder" },
          h("h2", null, notFound ? "No such session" : "Cannot open this session"),
          h(
            "p",
            { class: "muted" },
            notFound ? "It may have been deleted, or you may not be allowed to see it." : errorText(error),
          ),
          h("a", { class: "btn", href: "#/" }, icon("back"), "All sessions"),
        ),
      );
      return;
    }
    if (token !== this.routeToken) return;
    this.store.upsert(session);
    const view: RoutedView =
      session.kind === "agent"
        ? new AgentView(
            this.ctx,
            session,
            route.seq !== undefined
              ? { seq: route.seq, ...(route.find !== undefined ? { find: route.find } : {}) }
              : undefined,
          )
        : new TerminalView(this.ctx, session, route.find);
    this.view = view;
    fill(this.main, view.element);
    view.mounted?.();
    this.alerts.title = `${session.name ?? (session.command && joinCommand(session.command)) ?? session.agent ?? "session"} · Switchboard`;
  }

  private leaveHome(): void {
    if (!this.homeList) return;
    // Working through "Needs input" goes on in the sidebar (exploratory test: it showed All).
    this.sideList.filter = this.homeList.filter;
    this.sideList.search(this.homeList.query);
    this.homeList.dispose();
    this.homeList = null;
  }

  private async logout(): Promise<void> {
    try {
      await logout();
    } catch (error) {
      this.toasts.show(`Sign-out failed: ${errorText(error)}`, "error");
      return;
    }
    this.signedOut();
  }

  private signedOut(reason?: string): void {
    if (this.closed) return;
    this.close();
    this.onSignedOut(reason);
  }
}

/** The top bar's note on a share link's page: whose session, read-only or not, until when. */
function shareBanner(share: NonNullable<Me["share"]>): HTMLElement {
  const until = new Date(share.expiresAt).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
  return h(
    "span",
    { class: "share-banner muted", "data-test": "share-banner", title: `This link ends ${until}` },
    icon("link"),
    share.allowControl ? ` Shared with you · until ${until}` : ` Shared with you · read-only · until ${until}`,
  );
}

/** How many frames `/` waits for the sessions page's search box after going there. */
const SEARCH_FOCUS_FRAMES = 10;

/** What the sign-in page says when this device was unpaired (its connections were told so). */
const DEVICE_REVOKED_TEXT =
  "This device was unpaired by an admin, so it is signed out. To use it again, open a new pairing link (Pair a device on a computer).";

/** What a share link's page says once its link ended (revoked, expired, or gone). */
export const SHARE_ENDED_TEXT = {
  revoked: "The owner revoked this share link, so this page no longer shows the session. Ask them for a new link.",
  expired: "This share link expired, so this page no longer shows the session. Ask the owner for a new link.",
} as const;

/** What the sign-in page says when the gateway refused this sign-in: a device told it was unpaired says so. */
function signedOutText(me: Me, error: Error): string {
  if (me.share !== undefined) {
    if (error.message === SHARE_EXPIRED_MESSAGE || me.share.expiresAt <= Date.now()) return SHARE_ENDED_TEXT.expired;
    if (error.message === SHARE_REVOKED_MESSAGE || error.message === CREDENTIAL_REMOVED_MESSAGE)
      return SHARE_ENDED_TEXT.revoked;
  }
  const revoked = error.message === DEVICE_REVOKED_MESSAGE || error.message === CREDENTIAL_REMOVED_MESSAGE;
  if (me.name.startsWith(DEVICE_IDENTITY_PREFIX) && revoked) return DEVICE_REVOKED_TEXT;
  return revoked
    ? "The token you signed in with was removed from the gateway. Sign in again."
    : "Your sign-in expired. Sign in again.";
}

/**
 * `window.__switchboard`: read-only state for the browser tests and the benchmark (and for
 * anyone curious in the devtools console). It exposes no token and no way to steer.
 */
function exposeDebug(app: App): void {
  (window as unknown as { __switchboard: unknown }).__switchboard = {
    connection: () => app.ctx.client.state,
    connectionHistory: () => [...app.connectionHistory],
    view: () => app.currentView?.debug?.() ?? null,
  };
}
