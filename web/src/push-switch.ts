import type { HttpClient } from "../../src/client/index.js";
import { pageRequestTimeoutMs } from "./request-timeout.js";

/** Why turning notifications on failed; each has its own words (`PushError.message`). */
export type PushFailure = "insecure" | "denied" | "no-push-service";

export class PushError extends Error {
  constructor(
    readonly reason: PushFailure,
    message: string,
  ) {
    super(message);
  }
}

/** What the Alerts menu says when this page cannot have push at all (http, not localhost). */
export const INSECURE_TEXT =
  "Notifications with the page closed need HTTPS (or localhost): open the gateway over https (serve --tls-cert, a TLS proxy, Tailscale Serve).";

/**
 * This browser's Web Push subscription for the signed-in identity: notifications reach it from
 * the service worker (web/src/sw.js) with the page closed. Needs a service worker, so https or
 * localhost; `supported` says whether this browser can.
 */
export class PushSwitch {
  constructor(private readonly http: HttpClient) {}

  static get supported(): boolean {
    return "serviceWorker" in navigator && "PushManager" in window && window.isSecureContext;
  }

  /** Whether this browser is subscribed now. */
  async isOn(): Promise<boolean> {
    if (!PushSwitch.supported) return false;
    const registration = await navigator.serviceWorker.ready;
    return (await registration.pushManager.getSubscription()) !== null;
  }

  /**
   * Asks the notification permission (from the click that calls it), subscribes, and tells the
   * gateway where to push. The service worker and the browser's push service each get the page's
   * request timeout (10 s): a browser whose push service never answers (no Google services on
   * Chromium, a network that blocks it) waited forever. Test: ui-push.test.ts.
   */
  async on(): Promise<void> {
    if (!window.isSecureContext) throw new PushError("insecure", INSECURE_TEXT);
    if ((await Notification.requestPermission()) !== "granted")
      throw new PushError(
        "denied",
        "Notifications are blocked for this site: allow them in the browser's site settings, then turn this on again. On an iPhone, add the page to the home screen first and turn it on from there.",
      );
    const ms = pageRequestTimeoutMs();
    const noService = () =>
      new PushError(
        "no-push-service",
        `No push service answered within ${Math.round(ms / 1000)} s: this browser cannot reach its push service (some browsers have none, and some networks block it). Browser notifications still work while the page is open.`,
      );
    const registration = await within(navigator.serviceWorker.ready, ms, noService);
    const key = await this.http.pushKey();
    const subscription =
      (await registration.pushManager.getSubscription()) ??
      (await within(
        registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64url(key) }),
        ms,
        noService,
      ));
    await this.http.subscribePush(subscription.toJSON() as Parameters<HttpClient["subscribePush"]>[0]);
  }

  /** Asks the gateway for a test notification to this browser: how many subscriptions it was sent to. */
  test(): Promise<number> {
    return this.http.testPush();
  }

  /** Tells the gateway to stop, then drops the browser's subscription. */
  async off(): Promise<void> {
    const registration = await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.getSubscription();
    if (subscription === null) return;
    await this.http.unsubscribePush(subscription.endpoint);
    await subscription.unsubscribe();
  }
}

/** `promise`, or `timedOut()` thrown once `ms` passed first. */
function within<T>(promise: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function base64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
