import { AlertEvents, waitingCount } from "./alert-events.js";
import type { SessionAlert } from "./alert-events.js";
import { h, icon } from "./dom.js";
import { INSECURE_TEXT, PushError } from "./push-switch.js";
import type { PushSwitch } from "./push-switch.js";
import type { SessionStore } from "./session-store.js";

/** What a user chose in the Alerts menu; kept per signed-in name in `localStorage`. */
export interface AlertSettings {
  notify: boolean;
  sound: boolean;
}

/** The `localStorage` key of `name`'s alert settings: two people sharing a browser choose apart. */
export function settingsKey(name: string): string {
  return `switchboard.alerts.${name}`;
}

/** The beep's pitch and length (a short 880 Hz tone, quiet). */
const BEEP_HZ = 880;
const BEEP_MS = 180;

export interface AlertsOptions {
  store: SessionStore;
  me: string;
  /** The open session's id, if any: its own events do not alert a user who is looking at it. */
  openSession: () => string | null;
  navigate: (hash: string) => void;
  toast: (message: string, kind?: "error" | "info") => void;
  /** This browser's Web Push subscription (null: no push here). */
  push: PushSwitch | null;
}

/**
 * Tells someone looking elsewhere that a session needs them: the count of sessions waiting for
 * an answer in the tab's title and on its icon, and, once chosen in the "Alerts" menu, a browser
 * notification and a sound for each permission request, finished agent and ended session.
 * Permission to notify is asked only from a click in that menu, never on load.
 */
export class Alerts {
  readonly element: HTMLElement;
  private readonly options: AlertsOptions;
  private readonly events = new AlertEvents();
  private settings: AlertSettings;
  private readonly notifyBox: HTMLInputElement;
  private readonly soundBox: HTMLInputElement;
  private readonly pushBox: HTMLInputElement;
  private readonly testButton: HTMLButtonElement;
  /** Whether this browser gets Web Push: the service worker notifies then, not this page. */
  private pushOn = false;
  private readonly statusEl: HTMLElement;
  private baseTitle = "Switchboard";
  private count = 0;
  private readonly iconLink: HTMLLinkElement | null;
  private readonly plainIcon: string | null;
  private audio: AudioContext | null = null;
  /** Counts the clicks on "Browser notifications": only the latest one's answer counts. */
  private asked = 0;
  private readonly offStore: () => void;

  constructor(options: AlertsOptions) {
    this.options = options;
    this.settings = loadSettings(options.me);
    this.iconLink = document.querySelector<HTMLLinkElement>("link[rel=icon]");
    this.plainIcon = this.iconLink?.getAttribute("href") ?? null;
    this.notifyBox = h("input", {
      type: "checkbox",
      "data-test": "alerts-notify",
      onchange: () => void this.setNotify(this.notifyBox.checked),
    });
    this.soundBox = h("input", {
      type: "checkbox",
      "data-test": "alerts-sound",
      onchange: () => this.setSound(this.soundBox.checked),
    });
    this.pushBox = h("input", {
      type: "checkbox",
      "data-test": "alerts-push",
      onchange: () => void this.setPush(this.pushBox.checked),
    });
    this.statusEl = h("p", { class: "alerts-status muted" });
    this.testButton = h(
      "button",
      {
        class: "btn btn-small",
        type: "button",
        hidden: true,
        "data-test": "alerts-push-test",
        onclick: () => void this.sendTest(),
      },
      "Send a test notification",
    );
    this.element = h(
      "details",
      { class: "alerts-menu", "data-test": "alerts" },
      h(
        "summary",
        { class: "btn btn-ghost btn-small", title: "Alerts when a session needs you" },
        icon("shield"),
        h("span", { class: "nav-label" }, "Alerts"),
      ),
      h(
        "div",
        { class: "alerts-panel" },
        h("label", null, this.notifyBox, " Browser notifications"),
        h("label", null, this.soundBox, " Sound"),
        h("label", { hidden: options.push === null }, this.pushBox, " On this device, with the page closed"),
        // Push needs a secure origin: say so rather than leave the choice out unexplained.
        options.push === null && !window.isSecureContext
          ? h("p", { class: "alerts-status muted", "data-test": "alerts-push-insecure" }, INSECURE_TEXT)
          : null,
        this.testButton,
        this.statusEl,
      ),
    );
    this.showSettings();
    this.offStore = options.store.onChange(() => this.update());
    void options.push?.isOn().then((on) => {
      this.pushOn = on;
      this.showSettings();
    });
  }

  /** The page's own title; the count of sessions waiting goes in front of it. */
  set title(title: string) {
    this.baseTitle = title;
    this.showCount();
  }

  dispose(): void {
    this.offStore();
    void this.audio?.close();
    this.count = 0;
    this.showCount();
  }

  private update(): void {
    const list = this.options.store.list();
    for (const alert of this.events.next(list)) this.raise(alert);
    const count = waitingCount(list);
    if (count !== this.count) {
      this.count = count;
      this.showCount();
    }
  }

  private raise(alert: SessionAlert): void {
    const looking =
      document.visibilityState === "visible" && document.hasFocus() && this.options.openSession() === alert.sessionId;
    if (looking) return;
    if (this.settings.sound) this.beep();
    if (this.pushOn) return;
    if (!this.settings.notify || typeof Notification === "undefined" || Notification.permission !== "granted") return;
    const notification = new Notification(alert.title, {
      body: alert.body,
      // One notification per session and reason: a newer one replaces it.
      tag: `${alert.sessionId}:${alert.reason}`,
      ...(this.plainIcon !== null ? { icon: this.plainIcon } : {}),
    });
    notification.onclick = () => {
      window.focus();
      this.options.navigate(`#/s/${encodeURIComponent(alert.sessionId)}`);
      notification.close();
    };
  }

  private showCount(): void {
    document.title = this.count > 0 ? `(${this.count}) ${this.baseTitle}` : this.baseTitle;
    if (!this.iconLink || this.plainIcon === null) return;
    this.iconLink.href = this.count > 0 ? badgeIcon(this.count) : this.plainIcon;
  }

  private async setNotify(on: boolean): Promise<void> {
    const asked = ++this.asked;
    if (on && typeof Notification === "undefined") {
      this.options.toast("This browser cannot show notifications.", "error");
      on = false;
    } else if (on && Notification.permission !== "granted") {
      // Asked from this click only: a browser refuses (and users resent) a prompt on load. The
      // box is ticked once the browser says yes.
      this.notifyBox.checked = false;
      this.statusEl.textContent = "Allow notifications in the browser's prompt.";
      const answer = await Notification.requestPermission();
      // A later click decided already (a prompt can stay open while the user clicks again).
      if (asked !== this.asked) return;
      if (answer !== "granted") {
        this.options.toast(
          "Notifications are blocked for this site: allow them in the browser's site settings.",
          "error",
        );
        on = false;
      }
    }
    this.settings = { ...this.settings, notify: on };
    saveSettings(this.options.me, this.settings);
    this.showSettings();
  }

  /** Subscribes this browser to Web Push (asking the notification permission from this click) or stops it. */
  private async setPush(on: boolean): Promise<void> {
    const push = this.options.push;
    if (push === null) return;
    this.pushBox.disabled = true;
    try {
      if (on) await push.on();
      else await push.off();
      this.pushOn = on;
    } catch (error) {
      // A PushError says what happened and what to do in its own words.
      this.options.toast(
        error instanceof PushError
          ? error.message
          : `Could not ${on ? "turn on" : "turn off"} notifications on this device: ${(error as Error).message}`,
        "error",
      );
    } finally {
      this.pushBox.disabled = false;
      this.showSettings();
    }
  }

  /** "Send a test notification": the gateway pushes one to this browser's subscription. */
  private async sendTest(): Promise<void> {
    const push = this.options.push;
    if (push === null) return;
    try {
      const sent = await push.test();
      this.options.toast(
        sent > 0
          ? "Test notification sent: it shows on this device in a few seconds. If it does not, its push service did not deliver it."
          : "The gateway has no subscription of this browser: turn notifications off and on again.",
        sent > 0 ? "info" : "error",
      );
    } catch (error) {
      this.options.toast(`No test notification: ${(error as Error).message}`, "error");
    }
  }

  private setSound(on: boolean): void {
    this.settings = { ...this.settings, sound: on };
    saveSettings(this.options.me, this.settings);
    if (on) this.beep();
    this.showSettings();
  }

  private showSettings(): void {
    this.notifyBox.checked = this.settings.notify;
    this.soundBox.checked = this.settings.sound;
    this.pushBox.checked = this.pushOn;
    this.testButton.hidden = !this.pushOn;
    const blocked = typeof Notification !== "undefined" && Notification.permission === "denied";
    this.statusEl.textContent = blocked
      ? "Notifications are blocked for this site in the browser's settings."
      : this.pushOn
        ? "This device is notified with the page closed; a permission request has Allow and Reject."
        : "The tab's title and icon count the sessions waiting for an answer.";
    this.element.classList.toggle("on", this.settings.notify || this.settings.sound || this.pushOn);
  }

  private beep(): void {
    // Created from the click that turned sound on, so the browser lets it play later.
    this.audio ??= new AudioContext();
    const oscillator = this.audio.createOscillator();
    const gain = this.audio.createGain();
    oscillator.frequency.value = BEEP_HZ;
    gain.gain.value = 0.08;
    oscillator.connect(gain).connect(this.audio.destination);
    oscillator.start();
    oscillator.stop(this.audio.currentTime + BEEP_MS / 1000);
  }
}

function loadSettings(name: string): AlertSettings {
  try {
    const raw = JSON.parse(localStorage.getItem(settingsKey(name)) ?? "{}") as Partial<AlertSettings>;
    return { notify: raw.notify === true, sound: raw.sound === true };
  } catch {
    // Storage blocked or a value not ours: nothing chosen yet.
    return { notify: false, sound: false };
  }
}

function saveSettings(name: string, settings: AlertSettings): void {
  try {
    localStorage.setItem(settingsKey(name), JSON.stringify(settings));
  } catch {
    // Storage blocked (some private modes): the choice holds for this page only.
  }
}

/** The favicon with a red badge and `count` (9+ past nine), as an SVG data URL. */
export function badgeIcon(count: number): string {
  const text = count > 9 ? "9+" : String(count);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="8" fill="#6d8cff"/>` +
    `<path d="M7 19l5-4-5-4M14 21h5" fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/>` +
    `<circle cx="23" cy="9" r="9" fill="#f0506e"/>` +
    `<text x="23" y="13" font-family="sans-serif" font-size="${text.length > 1 ? 10 : 13}" font-weight="700" text-anchor="middle" fill="#fff">${text}</text></svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}
