import { isConnectionError } from "../../src/client/index.js";
import type { StateChange, SwitchboardClient } from "../../src/client/index.js";
import { h } from "./dom.js";
import type { SessionStore } from "./session-store.js";

type Look = "live" | "busy" | "idle" | "down";

/**
 * The connection state, always in the top bar: the SDK's WebSocket state (open, connecting,
 * reconnecting with its attempt, idle, closed) and whether the list poll reaches the gateway.
 */
export class ConnectionPill {
  readonly element: HTMLElement;
  /** Every state the pill showed, oldest first (tests read it through the debug hook). */
  readonly history: string[] = [];
  private readonly client: SwitchboardClient;
  private readonly store: SessionStore;
  private readonly label: HTMLElement;
  private last: StateChange | null = null;
  /** The connection dropped with nothing to follow: the list poll is asked whether the gateway is there. */
  private checking = false;
  private readonly offs: (() => void)[] = [];

  /**
   * `stale`: told whether what the page shows may be out of date (the connection is being
   * re-established, or the gateway does not answer), each time that changes.
   */
  constructor(
    client: SwitchboardClient,
    store: SessionStore,
    private readonly stale: (stale: boolean) => void = () => undefined,
  ) {
    this.client = client;
    this.store = store;
    this.label = h("span", { class: "pill-label" });
    this.element = h(
      "span",
      { class: "conn", role: "status", "aria-live": "polite" },
      h("span", { class: "conn-dot" }),
      this.label,
    );
    this.offs.push(
      client.on("state", (change) => {
        this.last = change;
        // Idle after the connection dropped (a page that follows nothing): the gateway may be gone
        // (it stopped). Ask now, and say so meanwhile, rather than show "Standby" until the next
        // list poll said otherwise (exploratory test: ~1.5 s of Standby, then Gateway unreachable).
        if (change.state === "idle" && change.error !== undefined) {
          this.checking = true;
          void store.refresh().finally(() => {
            this.checking = false;
            this.render();
          });
        }
        this.render();
      }),
      store.onChange(() => this.render()),
    );
    this.element.addEventListener("click", () => {
      if (this.client.state === "closed") location.reload();
    });
    this.render();
  }

  dispose(): void {
    for (const off of this.offs) off();
  }

  private render(): void {
    const [look, text, title] = this.describe();
    const stale = look === "down" || this.client.state === "reconnecting";
    if (this.element.classList.contains("conn-stale") !== stale) this.stale(stale);
    this.element.className = `conn conn-${look}${stale ? " conn-stale" : ""}`;
    this.element.dataset["state"] = this.client.state;
    this.element.title = title;
    if (this.label.textContent !== text) {
      this.label.textContent = text;
      this.history.push(this.client.state);
    }
  }

  private describe(): [Look, string, string] {
    const health = this.store.health;
    switch (this.client.state) {
      case "open":
        return health.ok
          ? ["live", "Live", "Connected: updates stream in real time"]
          : ["down", "Gateway unreachable", `${health.error.message}. The states shown are the last known.`];
      case "connecting":
        return ["busy", "Connecting…", "Opening the WebSocket"];
      case "reconnecting": {
        const attempt = this.last?.attempt ?? 1;
        const seconds = Math.max(1, Math.round((this.last?.delayMs ?? 0) / 1000));
        if (isConnectionError(this.last?.error, "RESTARTING"))
          return [
            "busy",
            "Gateway restarting…",
            `Sessions keep running. Next try in ~${seconds}s; nothing is lost meanwhile.`,
          ];
        return [
          "busy",
          attempt > 1 ? `Reconnecting (try ${attempt})…` : "Reconnecting…",
          `Connection lost${this.last?.error ? `: ${this.last.error.message}` : ""}. Next try in ~${seconds}s; nothing is lost meanwhile.`,
        ];
      }
      case "idle":
        if (this.checking) return ["busy", "Checking…", "The connection dropped; asking whether the gateway is there"];
        return health.ok
          ? ["idle", "Standby", "Nothing followed right now; the connection reopens when needed"]
          : ["down", "Gateway unreachable", `${health.error.message}. The states shown are the last known.`];
      case "closed":
        return [
          "down",
          "Disconnected",
          `${this.last?.error?.message ?? "The connection was closed"}. Click to reload.`,
        ];
    }
  }
}
